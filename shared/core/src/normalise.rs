//! Normalisers: turn a raw attribute value into its canonical form, or say why they cannot.
//!
//! A value that fails a normaliser is *kept raw* (trimmed) by the caller and flagged as a
//! data-quality issue; it is never a reason to reject the record. Messages never echo the value.

use crate::record::Text;
use serde::Deserialize;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normaliser {
    Nfkc,
    Lowercase,
    Uppercase,
    CollapseWhitespace,
    StripDiacritics,
    StripPunctuation,
    Alphanumeric,
    Email,
    Phone,
    Date,
    Postcode,
    Region,
    Country,
    Gtin,
    Decimal,
    Currency,
    Size,
    /// Street-type abbreviations spelt out (`st` → `street`, `cres` → `crescent`); expects
    /// lower-case words without punctuation. The first word is left alone (`st kilda road`).
    Street,
}

/// Why a value could not be normalised. `code()` is machine-readable and carries no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("not a valid e-mail address")]
    Email,
    #[error("not a valid phone number (expected 8 to 15 digits with a country code)")]
    Phone,
    #[error("not a recognised or possible date")]
    Date,
    #[error("not a valid postcode")]
    Postcode,
    #[error("not a recognised country")]
    Country,
    #[error("not a valid GTIN (8, 12, 13 or 14 digits with a correct check digit)")]
    Gtin,
    #[error("not a number")]
    Decimal,
    #[error("not an ISO 4217 currency code")]
    Currency,
    #[error("empty after normalisation")]
    Empty,
}

impl NormaliseError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email => "invalid_email",
            Self::Phone => "invalid_phone",
            Self::Date => "invalid_date",
            Self::Postcode => "invalid_postcode",
            Self::Country => "invalid_country",
            Self::Gtin => "invalid_gtin",
            Self::Decimal => "invalid_number",
            Self::Currency => "invalid_currency",
            Self::Empty => "empty_value",
        }
    }
}

/// Options a normaliser may need from the attribute's declaration.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormaliseOptions<'a> {
    pub default_country_code: Option<&'a str>,
}

/// Runs a pipeline of normalisers over a value. The value is trimmed first. Works on an inline
/// string: most values are short, and a step that leaves ASCII text as it is, or changes it in
/// place, then makes no allocation at all.
pub fn apply(pipeline: &[Normaliser], raw: &str, opts: NormaliseOptions<'_>) -> Result<Text, NormaliseError> {
    let mut v = Text::from(raw.trim());
    for n in pipeline {
        match n {
            Normaliser::Nfkc | Normaliser::StripDiacritics if v.is_ascii() => {}
            Normaliser::Lowercase if v.is_ascii() => v.make_ascii_lowercase(),
            Normaliser::Uppercase if v.is_ascii() => v.make_ascii_uppercase(),
            Normaliser::CollapseWhitespace if plain_words(&v, |b| !(b as char).is_whitespace()) => {}
            Normaliser::StripPunctuation if plain_words(&v, |b| b.is_ascii_alphanumeric()) => {}
            _ => v = Text::from(n.apply(&v, opts)?),
        }
    }
    if v.trim().len() != v.len() {
        v = Text::from(v.trim());
    }
    if v.is_empty() {
        return Err(NormaliseError::Empty);
    }
    Ok(v)
}

/// ASCII words of `word` bytes with one space between two words and none at either end: text
/// that collapsing white space (or stripping punctuation, when only letters and digits count as
/// `word`) leaves as it is. Most names and addresses are such text, and need no new string.
fn plain_words(v: &str, word: impl Fn(u8) -> bool) -> bool {
    let b = v.as_bytes();
    v.is_ascii()
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && b.iter()
            .zip(b.iter().skip(1).chain([&b'x']))
            .all(|(&c, &next)| if c == b' ' { next != b' ' } else { word(c) })
}

impl Normaliser {
    pub fn apply(self, v: &str, opts: NormaliseOptions<'_>) -> Result<String, NormaliseError> {
        Ok(match self {
            Self::Nfkc => nfkc(v),
            Self::Lowercase if v.is_ascii() => v.to_ascii_lowercase(),
            Self::Lowercase => v.to_lowercase(),
            Self::Uppercase => v.to_uppercase(),
            Self::CollapseWhitespace => collapse_whitespace(v),
            Self::StripDiacritics => strip_diacritics(v),
            Self::StripPunctuation => strip_punctuation(v),
            Self::Alphanumeric => v.chars().filter(|c| c.is_alphanumeric()).collect(),
            Self::Email => email(v)?,
            Self::Phone => phone(v, opts.default_country_code)?,
            Self::Date => date(v)?,
            Self::Postcode => postcode(v)?,
            Self::Region => region(v),
            Self::Country => country(v)?,
            Self::Gtin => gtin(v)?,
            Self::Decimal => decimal(v)?,
            Self::Currency => currency(v)?,
            Self::Size => size(v),
            Self::Street => street(v),
        })
    }
}

const STREET_TYPES: &[(&str, &str)] = &[
    ("al", "alley"),
    ("ally", "alley"),
    ("app", "approach"),
    ("arc", "arcade"),
    ("av", "avenue"),
    ("ave", "avenue"),
    ("bvd", "boulevard"),
    ("blvd", "boulevard"),
    ("cct", "circuit"),
    ("ch", "chase"),
    ("cir", "circle"),
    ("cl", "close"),
    ("cres", "crescent"),
    ("cr", "crescent"),
    ("crt", "court"),
    ("ct", "court"),
    ("dr", "drive"),
    ("drv", "drive"),
    ("esp", "esplanade"),
    ("gdns", "gardens"),
    ("gr", "grove"),
    ("hwy", "highway"),
    ("la", "lane"),
    ("ln", "lane"),
    ("mt", "mount"),
    ("pde", "parade"),
    ("pk", "park"),
    ("pkwy", "parkway"),
    ("pl", "place"),
    ("plz", "plaza"),
    ("rd", "road"),
    ("sq", "square"),
    ("st", "street"),
    ("str", "street"),
    ("tce", "terrace"),
    ("ter", "terrace"),
    ("wy", "way"),
];

fn street(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for (i, word) in v.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let long = if i == 0 { None } else { STREET_TYPES.iter().find(|(short, _)| *short == word).map(|(_, l)| *l) };
        out.push_str(long.unwrap_or(word));
    }
    out
}

pub fn collapse_whitespace(v: &str) -> String {
    let mut out = Words::with_capacity(v.len());
    for c in v.chars() {
        if c.is_whitespace() {
            out.gap();
        } else {
            out.push(c);
        }
    }
    out.0
}

/// Text built word by word: a gap between two words becomes one space, and none is kept at
/// either end (what `split_whitespace` and `join(" ")` give, in one pass and one string).
struct Words(String, bool);

impl Words {
    fn with_capacity(n: usize) -> Self {
        Self(String::with_capacity(n), false)
    }

    fn gap(&mut self) {
        self.1 = true;
    }

    fn push(&mut self, c: char) {
        if std::mem::take(&mut self.1) && !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push(c);
    }
}

/// NFKC form of `v`: ASCII text is its own, so it is copied without the Unicode passes.
fn nfkc(v: &str) -> String {
    if v.is_ascii() {
        v.to_owned()
    } else {
        v.nfkc().collect()
    }
}

/// Removes accents (é → e) and folds letters that do not decompose (ß → ss, ø → o, æ → ae).
pub fn strip_diacritics(v: &str) -> String {
    if v.is_ascii() {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    for c in v.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' => out.push_str("ss"),
            'ẞ' => out.push_str("SS"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("TH"),
            'ı' => out.push('i'),
            _ => out.push(c),
        }
    }
    out.nfc().collect()
}

/// Apostrophes vanish (O'Brien → OBrien); other punctuation becomes a space (Smith-Jones → Smith Jones).
pub fn strip_punctuation(v: &str) -> String {
    let mut out = Words::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\'' | '’' | '‘' | '`' | '´') {
            continue;
        }
        if c.is_alphanumeric() {
            out.push(c);
        } else {
            // White space, and punctuation read as white space.
            out.gap();
        }
    }
    out.0
}

fn email(v: &str) -> Result<String, NormaliseError> {
    // ASCII (most addresses): lower-cased in one copy, the prefix cut in place.
    let mut v: String = if v.is_ascii() { v.trim().to_ascii_lowercase() } else { nfkc(v).trim().to_lowercase() };
    if v.starts_with("mailto:") {
        v.drain(.."mailto:".len());
    }
    let (local, domain) = v.split_once('@').ok_or(NormaliseError::Email)?;
    let ok_local = !local.is_empty() && local.len() <= 64 && !local.starts_with('.') && !local.ends_with('.');
    let ok_domain = domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let ok_chars =
        !v.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';' || c == '<' || c == '>');
    if ok_local && ok_domain && ok_chars && !domain.contains('@') {
        Ok(v)
    } else {
        Err(NormaliseError::Email)
    }
}

/// E.164: `+` followed by country code and number. `00` is an international prefix; a single
/// leading `0` is a national trunk prefix replaced by the default country code.
fn phone(v: &str, default_cc: Option<&str>) -> Result<String, NormaliseError> {
    let v = nfkc(v);
    let v = v.replace("(0)", "");
    let t = v.trim();
    let plus = t.starts_with('+');
    // Extensions ("x123", "ext. 12") are not part of the number.
    let lower = t.to_lowercase();
    let t = lower.split("ext").next().unwrap_or(&lower);
    let t = t.split('x').next().unwrap_or(t);
    if t.chars().any(|c| c.is_alphabetic()) {
        return Err(NormaliseError::Phone);
    }
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    let full = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits.strip_prefix('0') {
        match default_cc {
            Some(cc) => format!("{cc}{rest}"),
            None => return Err(NormaliseError::Phone),
        }
    } else {
        match default_cc {
            // Already carries the country code.
            Some(cc) if digits.starts_with(cc) && digits.len() > 10 => digits,
            Some(cc) => format!("{cc}{digits}"),
            None => digits,
        }
    };
    if (8..=15).contains(&full.len()) && !full.starts_with('0') {
        Ok(format!("+{full}"))
    } else {
        Err(NormaliseError::Phone)
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn month_from_name(s: &str) -> Option<u32> {
    let s = s.to_lowercase();
    let s = s.trim_end_matches('.');
    if s.len() < 3 {
        return None;
    }
    MONTHS.iter().position(|m| s.starts_with(m)).map(|i| i as u32 + 1)
}

pub fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> Result<String, NormaliseError> {
    if !(1000..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(NormaliseError::Date);
    }
    // Spelled out by hand: the formatting machinery took a quarter of a record's date
    // normalisation. The ranges are checked above, so every part has its width.
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let y = y.unsigned_abs();
    Ok([
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        '-',
        digit(m / 10),
        digit(m),
        '-',
        digit(d / 10),
        digit(d),
    ]
    .into_iter()
    .collect())
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Dates to ISO 8601 (`YYYY-MM-DD`) from common formats. Numeric dates with the year last are read
/// day first (`31/12/1980`), unless the first number cannot be a day (`12/31/1980` is read as US).
fn date(v: &str) -> Result<String, NormaliseError> {
    let v = v.trim();
    // ISO date-time: keep the date part.
    let v = if v.len() > 10 && v.as_bytes().get(10).is_some_and(|b| *b == b'T' || *b == b' ') { &v[..10] } else { v };
    if v.len() == 8 && v.chars().all(|c| c.is_ascii_digit()) {
        let y: i32 = v[..4].parse().map_err(|_| NormaliseError::Date)?;
        let m = num(&v[4..6]).ok_or(NormaliseError::Date)?;
        let d = num(&v[6..8]).ok_or(NormaliseError::Date)?;
        return ymd(y, m, d);
    }
    let parts: Vec<&str> = v.split(['-', '/', '.', ' ', ',']).filter(|p| !p.is_empty()).collect();
    if parts.len() != 3 {
        return Err(NormaliseError::Date);
    }
    let year = |s: &str| -> Option<i32> {
        let n = num(s)? as i32;
        match s.len() {
            4 => Some(n),
            // Two-digit years: 00-29 → 2000s, 30-99 → 1900s.
            2 => Some(if n < 30 { 2000 + n } else { 1900 + n }),
            _ => None,
        }
    };
    // Month names: "12 March 1985", "March 12, 1985", "1985 Mar 12".
    if let Some(m) = month_from_name(parts[1]) {
        let d = num(parts[0]).ok_or(NormaliseError::Date)?;
        if parts[0].len() == 4 {
            let y = year(parts[0]).ok_or(NormaliseError::Date)?;
            return ymd(y, m, num(parts[2]).ok_or(NormaliseError::Date)?);
        }
        return ymd(year(parts[2]).ok_or(NormaliseError::Date)?, m, d);
    }
    if let Some(m) = month_from_name(parts[0]) {
        let d = num(parts[1]).ok_or(NormaliseError::Date)?;
        return ymd(year(parts[2]).ok_or(NormaliseError::Date)?, m, d);
    }
    if parts[0].len() == 4 {
        let y = year(parts[0]).ok_or(NormaliseError::Date)?;
        let m = num(parts[1]).ok_or(NormaliseError::Date)?;
        let d = num(parts[2]).ok_or(NormaliseError::Date)?;
        return ymd(y, m, d);
    }
    let a = num(parts[0]).ok_or(NormaliseError::Date)?;
    let b = num(parts[1]).ok_or(NormaliseError::Date)?;
    let y = year(parts[2]).ok_or(NormaliseError::Date)?;
    if a > 12 || b <= 12 {
        ymd(y, b, a)
    } else {
        ymd(y, a, b)
    }
}

/// Upper case, no spaces or dashes; 3 to 10 letters and digits with at least one digit.
fn postcode(v: &str) -> Result<String, NormaliseError> {
    let compact: String = if v.is_ascii() {
        // One copy: upper-cased as it is compacted.
        v.bytes()
            .filter(|b| !(*b as char).is_whitespace() && *b != b'-')
            .map(|b| char::from(b.to_ascii_uppercase()))
            .collect()
    } else {
        nfkc(v).to_uppercase().chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
    };
    if (3..=10).contains(&compact.chars().count())
        && compact.chars().all(|c| c.is_ascii_alphanumeric())
        && compact.chars().any(|c| c.is_ascii_digit())
    {
        Ok(compact)
    } else {
        Err(NormaliseError::Postcode)
    }
}

fn region(v: &str) -> String {
    collapse_whitespace(&strip_punctuation(&strip_diacritics(&nfkc(v)))).to_uppercase()
}

const COUNTRIES: &[(&str, &[&str])] = &[
    ("GB", &["UK", "GBR", "UNITED KINGDOM", "GREAT BRITAIN", "ENGLAND", "SCOTLAND", "WALES", "NORTHERN IRELAND"]),
    ("US", &["USA", "UNITED STATES", "UNITED STATES OF AMERICA", "AMERICA"]),
    ("IE", &["IRL", "IRELAND", "EIRE"]),
    ("DE", &["DEU", "GERMANY", "DEUTSCHLAND"]),
    ("FR", &["FRA", "FRANCE"]),
    ("ES", &["ESP", "SPAIN", "ESPANA"]),
    ("IT", &["ITA", "ITALY", "ITALIA"]),
    ("NL", &["NLD", "NETHERLANDS", "THE NETHERLANDS", "HOLLAND", "NEDERLAND"]),
    ("BE", &["BEL", "BELGIUM"]),
    ("CH", &["CHE", "SWITZERLAND", "SCHWEIZ", "SUISSE"]),
    ("AT", &["AUT", "AUSTRIA", "OSTERREICH"]),
    ("SE", &["SWE", "SWEDEN", "SVERIGE"]),
    ("NO", &["NOR", "NORWAY", "NORGE"]),
    ("DK", &["DNK", "DENMARK", "DANMARK"]),
    ("FI", &["FIN", "FINLAND", "SUOMI"]),
    ("PL", &["POL", "POLAND", "POLSKA"]),
    ("PT", &["PRT", "PORTUGAL"]),
    ("CA", &["CAN", "CANADA"]),
    ("AU", &["AUS", "AUSTRALIA"]),
    ("NZ", &["NZL", "NEW ZEALAND"]),
    ("JP", &["JPN", "JAPAN"]),
    ("CN", &["CHN", "CHINA"]),
    ("IN", &["IND", "INDIA"]),
    ("BR", &["BRA", "BRAZIL", "BRASIL"]),
    ("MX", &["MEX", "MEXICO"]),
    ("ZA", &["ZAF", "SOUTH AFRICA"]),
];

/// Country names and ISO 3166 alpha-3 codes to alpha-2; any two-letter code is taken as alpha-2.
fn country(v: &str) -> Result<String, NormaliseError> {
    let v = region(&v.replace('.', ""));
    if v.len() == 2 && v.chars().all(|c| c.is_ascii_uppercase()) {
        return Ok(v);
    }
    COUNTRIES
        .iter()
        .find(|(_, names)| names.contains(&v.as_str()))
        .map(|(code, _)| (*code).to_owned())
        .ok_or(NormaliseError::Country)
}

/// GTIN-8/12/13/14 with a valid check digit, to 14 digits.
fn gtin(v: &str) -> Result<String, NormaliseError> {
    let digits: String = v.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 13, 14].contains(&digits.len()) {
        return Err(NormaliseError::Gtin);
    }
    let padded = format!("{digits:0>14}");
    let d: Vec<u32> = padded.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = d[..13].iter().enumerate().map(|(i, x)| if i % 2 == 0 { x * 3 } else { *x }).sum();
    if (10 - sum % 10) % 10 == d[13] {
        Ok(padded)
    } else {
        Err(NormaliseError::Gtin)
    }
}

/// A decimal number in plain notation: `1,234.50` → `1234.5`, `12,5` → `12.5`.
fn decimal(v: &str) -> Result<String, NormaliseError> {
    let t: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let t = t.trim_start_matches(['$', '€', '£']);
    let t = if t.contains('.') && t.contains(',') {
        t.replace(',', "")
    } else if t.matches(',').count() == 1 && !t.contains('.') {
        t.replace(',', ".")
    } else {
        t.to_owned()
    };
    let n: f64 = t.parse().map_err(|_| NormaliseError::Decimal)?;
    if !n.is_finite() {
        return Err(NormaliseError::Decimal);
    }
    Ok(format_number(n))
}

pub fn format_number(n: f64) -> String {
    let s = format!("{n:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn currency(v: &str) -> Result<String, NormaliseError> {
    let t = v.trim().to_uppercase();
    let t = match t.as_str() {
        "$" => "USD".to_owned(),
        "€" => "EUR".to_owned(),
        "£" => "GBP".to_owned(),
        _ => t,
    };
    if t.len() == 3 && t.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(t)
    } else {
        Err(NormaliseError::Currency)
    }
}

/// Pack sizes: `500 ML` → `500ml`, `1 Litre` → `1l`, `2 x 250 g` → `2x250g`.
fn size(v: &str) -> String {
    let v = nfkc(v).to_lowercase();
    let v = v.replace("litres", "l").replace("liters", "l").replace("litre", "l").replace("liter", "l");
    let v = v.replace("grams", "g").replace("gram", "g").replace("kilograms", "kg").replace("kilos", "kg");
    let v = v.replace("millilitres", "ml").replace("milliliters", "ml");
    v.chars().filter(|c| !c.is_whitespace()).collect()
}

/// American Soundex of the first word-like token (letters only), e.g. Robert → R163.
pub fn soundex(v: &str) -> Option<String> {
    soundex_code(v).map(|code| code.iter().map(|&b| char::from(b)).collect())
}

/// [`soundex`] as its four ASCII bytes, without an allocation (blocking keys take one per
/// name part of every record).
pub fn soundex_code(v: &str) -> Option<[u8; 4]> {
    let mut letters = v.bytes().filter(u8::is_ascii_alphabetic).map(|c| c.to_ascii_uppercase());
    let first = letters.next()?;
    let code = |c: u8| match c {
        b'B' | b'F' | b'P' | b'V' => b'1',
        b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
        b'D' | b'T' => b'3',
        b'L' => b'4',
        b'M' | b'N' => b'5',
        b'R' => b'6',
        b'H' | b'W' => b'h',
        _ => b'0',
    };
    let mut out = [first, b'0', b'0', b'0'];
    let mut len = 1;
    let mut last = code(first);
    for c in letters {
        let k = code(c);
        if k == b'h' {
            continue;
        }
        if k != b'0' && k != last {
            out[len] = k;
            len += 1;
            if len == 4 {
                break;
            }
        }
        last = k;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Normaliser::*;

    const NAME: &[Normaliser] = &[Nfkc, StripDiacritics, Lowercase, StripPunctuation, CollapseWhitespace];

    fn n(p: &[Normaliser], v: &str) -> Result<String, NormaliseError> {
        apply(p, v, NormaliseOptions { default_country_code: Some("44") }).map(String::from)
    }

    /// Seeded random text over letters, digits, Unicode white space, punctuation and apostrophes:
    /// the one-pass word builders and the in-place pipeline give what the plain definitions give.
    #[test]
    fn plain_words_are_left_as_they_are_and_anything_else_is_rewritten() {
        let texts = [
            "",
            " ",
            "a",
            "anna",
            "anna marie",
            "anna  marie",
            " anna",
            "anna ",
            "o'brien",
            "o brien",
            "st. john's",
            "a\tb",
            "a\u{b}b",
            "a\u{a0}b",
            "ánna",
            "ann-marie",
            "12 high st",
            "x  ",
            "mac\ndonald",
            "a b c",
            "A.B",
        ];
        for v in texts {
            for (n, step) in [
                (Normaliser::CollapseWhitespace, collapse_whitespace as fn(&str) -> String),
                (Normaliser::StripPunctuation, strip_punctuation),
            ] {
                // `apply` trims first, and empty results are an error: compare on what it keeps.
                let expected = step(v.trim());
                let expected = expected.trim();
                match apply(&[n], v, NormaliseOptions::default()) {
                    Ok(got) => assert_eq!(got, expected, "{n:?} of {v:?}"),
                    Err(NormaliseError::Empty) => assert!(expected.is_empty(), "{n:?} of {v:?}"),
                    Err(e) => panic!("{n:?} of {v:?}: {e:?}"),
                }
            }
        }
        assert!(plain_words("anna marie", |b| b.is_ascii_alphanumeric()));
        assert!(!plain_words("anna  marie", |b| b.is_ascii_alphanumeric()));
        assert!(!plain_words("o'brien", |b| b.is_ascii_alphanumeric()));
        assert!(plain_words("o'brien", |b| !(b as char).is_whitespace()));
        assert!(!plain_words("ánna", |_| true), "non-ASCII text takes the full step");
    }

    #[test]
    fn one_pass_text_steps_equal_their_plain_definitions() {
        let plain_collapse = |v: &str| v.split_whitespace().collect::<Vec<_>>().join(" ");
        let plain_strip = |v: &str| {
            let kept: String = v
                .chars()
                .filter(|c| !matches!(c, '\'' | '’' | '‘' | '`' | '´'))
                .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
                .collect();
            plain_collapse(&kept)
        };
        let plain_apply = |p: &[Normaliser], v: &str| -> Result<String, NormaliseError> {
            let mut v = v.trim().to_owned();
            for step in p {
                v = step.apply(&v, NormaliseOptions { default_country_code: Some("44") })?;
            }
            let v = v.trim().to_owned();
            if v.is_empty() {
                Err(NormaliseError::Empty)
            } else {
                Ok(v)
            }
        };
        let alphabet: Vec<char> = "aZé9 \t\u{a0}\u{2003}-.,'’`Öß_/".chars().collect();
        let mut seeded = crate::seeded::Seeded::new(0x9e37_79b9_7f4a_7c15_u64);
        let mut next = move |n: usize| seeded.below(n);
        let mut words = 0;
        for round in 0..3000 {
            let v: String = (0..round % 23).map(|_| alphabet[next(alphabet.len())]).collect();
            assert_eq!(collapse_whitespace(&v), plain_collapse(&v), "{v:?}");
            assert_eq!(strip_punctuation(&v), plain_strip(&v), "{v:?}");
            for p in [NAME, &[Lowercase, StripPunctuation], &[Uppercase, CollapseWhitespace], &[Nfkc]] {
                assert_eq!(n(p, &v), plain_apply(p, &v), "{p:?} {v:?}");
            }
            words += usize::from(plain_collapse(&v).contains(' '));
        }
        assert!(words > 1000, "the values have inner gaps ({words})");
    }

    #[test]
    fn names_fold_case_accents_punctuation_and_space() {
        assert_eq!(n(NAME, "  JOSÉ   O'Brien-Núñez ").as_deref(), Ok("jose obrien nunez"));
        assert_eq!(n(NAME, "Straße").as_deref(), Ok("strasse"));
        assert_eq!(n(NAME, "Ｊｏｈｎ").as_deref(), Ok("john"), "NFKC folds full-width letters");
        assert_eq!(n(NAME, " -- "), Err(NormaliseError::Empty));
    }

    #[test]
    fn street_types_spelt_out() {
        assert_eq!(
            n(&[Normaliser::Lowercase, Normaliser::StripPunctuation, Normaliser::Street], "12 High St.")
                .expect("street"),
            "12 high street"
        );
        assert_eq!(n(&[Normaliser::Street], "st kilda rd").expect("street"), "st kilda road", "the first word stays");
        assert_eq!(n(&[Normaliser::Street], "pinkerton cct").expect("street"), "pinkerton circuit");
        assert_eq!(n(&[Normaliser::Street], "stanley street").expect("street"), "stanley street");
    }

    #[test]
    fn emails() {
        assert_eq!(n(&[Email], " Jane.Doe@Example.COM ").as_deref(), Ok("jane.doe@example.com"));
        assert_eq!(n(&[Email], "MAILTO:Jane@Example.com").as_deref(), Ok("jane@example.com"));
        assert_eq!(n(&[Email], "Zoë@Exämple.DE").as_deref(), Ok("zoë@exämple.de"), "non-ASCII takes the Unicode path");
        for bad in ["jane", "jane@", "@example.com", "jane@example", "ja ne@example.com", "a@b@c.com"] {
            assert_eq!(n(&[Email], bad), Err(NormaliseError::Email), "{bad}");
        }
        // A NUL or another control character is never part of an address.
        for bad in
            ["jane\u{0}@example.com", "jane@exam\u{7}ple.com", "ja\u{1b}ne@example.com", "jane@example.com\u{0}x"]
        {
            assert_eq!(n(&[Email], bad), Err(NormaliseError::Email), "{bad:?}");
        }
    }

    #[test]
    fn phones_to_e164() {
        assert_eq!(n(&[Phone], "07700 900123").as_deref(), Ok("+447700900123"));
        assert_eq!(n(&[Phone], "+44 (0)7700-900-123").as_deref(), Ok("+447700900123"));
        assert_eq!(n(&[Phone], "0044 7700 900123").as_deref(), Ok("+447700900123"));
        assert_eq!(n(&[Phone], "+1 (555) 010-4477 ext 12").as_deref(), Ok("+15550104477"));
        assert_eq!(n(&[Phone], "447700900123").as_deref(), Ok("+447700900123"));
        assert_eq!(n(&[Phone], "12"), Err(NormaliseError::Phone));
        assert_eq!(n(&[Phone], "call me"), Err(NormaliseError::Phone));
    }

    /// Every valid day of boundary and leap years reads as the formatting machinery writes it.
    #[test]
    fn dates_spell_out_as_formatted() {
        for y in [1000, 1900, 1999, 2000, 2024, 9999] {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(ymd(y, m, d), Ok(format!("{y:04}-{m:02}-{d:02}")));
                }
                assert_eq!(ymd(y, m, days_in_month(y, m) + 1), Err(NormaliseError::Date));
            }
        }
        assert_eq!(ymd(999, 1, 1), Err(NormaliseError::Date));
        assert_eq!(ymd(10000, 1, 1), Err(NormaliseError::Date));
    }

    #[test]
    fn dates_to_iso() {
        for (raw, iso) in [
            ("1985-03-12", "1985-03-12"),
            ("1985/3/12", "1985-03-12"),
            ("19850312", "1985-03-12"),
            ("12/03/1985", "1985-03-12"),
            ("12.03.1985", "1985-03-12"),
            ("03/25/1985", "1985-03-25"),
            ("12 March 1985", "1985-03-12"),
            ("Mar 12, 1985", "1985-03-12"),
            ("1985-03-12T10:00:00Z", "1985-03-12"),
            ("29/02/2000", "2000-02-29"),
            ("12/03/85", "1985-03-12"),
        ] {
            assert_eq!(n(&[Date], raw).as_deref(), Ok(iso), "{raw}");
        }
        for bad in ["1999-02-31", "2001-02-29", "31/31/1999", "yesterday", "1985-13-01", "0000-01-01"] {
            assert_eq!(n(&[Date], bad), Err(NormaliseError::Date), "{bad}");
        }
    }

    #[test]
    fn postcodes_regions_countries() {
        assert_eq!(n(&[Postcode], " sw1a 1aa ").as_deref(), Ok("SW1A1AA"));
        assert_eq!(n(&[Postcode], "10115").as_deref(), Ok("10115"));
        assert_eq!(n(&[Postcode], "98101-1234").as_deref(), Ok("981011234"));
        assert_eq!(n(&[Postcode], "n/a"), Err(NormaliseError::Postcode));
        assert_eq!(n(&[Postcode], "ｓｗ１ａ　１ａａ").as_deref(), Ok("SW1A1AA"), "full-width forms fold first");
        assert_eq!(n(&[Region], " Île-de-France ").as_deref(), Ok("ILE DE FRANCE"));
        assert_eq!(n(&[Country], "United Kingdom").as_deref(), Ok("GB"));
        assert_eq!(n(&[Country], "u.s.a.").as_deref(), Ok("US"));
        assert_eq!(n(&[Country], "de").as_deref(), Ok("DE"));
        assert_eq!(n(&[Country], "Atlantis"), Err(NormaliseError::Country));
    }

    #[test]
    fn product_codes() {
        assert_eq!(n(&[Gtin], "4006381333931").as_deref(), Ok("04006381333931"));
        assert_eq!(n(&[Gtin], "4006381333932"), Err(NormaliseError::Gtin));
        assert_eq!(n(&[Gtin], "abc"), Err(NormaliseError::Gtin));
        assert_eq!(n(&[Decimal], "1,234.50").as_deref(), Ok("1234.5"));
        assert_eq!(n(&[Decimal], "12,5").as_deref(), Ok("12.5"));
        assert_eq!(n(&[Decimal], "£3").as_deref(), Ok("3"));
        assert_eq!(n(&[Decimal], "cheap"), Err(NormaliseError::Decimal));
        assert_eq!(n(&[Currency], "eur").as_deref(), Ok("EUR"));
        assert_eq!(n(&[Size], "500 ML").as_deref(), Ok("500ml"));
        assert_eq!(n(&[Size], "1 Litre").as_deref(), Ok("1l"));
    }

    #[test]
    fn soundex_codes() {
        assert_eq!(soundex("Robert").as_deref(), Some("R163"));
        assert_eq!(soundex("Rupert").as_deref(), Some("R163"));
        assert_eq!(soundex("Ashcraft").as_deref(), Some("A261"));
        assert_eq!(soundex("Tymczak").as_deref(), Some("T522"));
        assert_eq!(soundex("Pfister").as_deref(), Some("P236"));
        assert_eq!(soundex("smyth"), soundex("smith"));
        assert_eq!(soundex("123"), None);
        assert_eq!(soundex_code("Lee"), Some(*b"L000"), "padded with zeros");
        // The code as it was written over a vector of characters.
        fn by_chars(v: &str) -> Option<String> {
            let letters: Vec<char> =
                v.chars().filter(|c| c.is_ascii_alphabetic()).map(|c| c.to_ascii_uppercase()).collect();
            let first = *letters.first()?;
            let code = |c: char| match c {
                'B' | 'F' | 'P' | 'V' => '1',
                'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
                'D' | 'T' => '3',
                'L' => '4',
                'M' | 'N' => '5',
                'R' => '6',
                'H' | 'W' => 'h',
                _ => '0',
            };
            let mut out = String::from(first);
            let mut last = code(first);
            for &c in &letters[1..] {
                let k = code(c);
                if k == 'h' {
                    continue;
                }
                if k != '0' && k != last {
                    out.push(k);
                    if out.len() == 4 {
                        break;
                    }
                }
                last = k;
            }
            while out.len() < 4 {
                out.push('0');
            }
            Some(out)
        }
        for v in
            ["Robert", "ashcraft", "Müller", "Øster-gaard", "o'neil", "Hhh", "wh", "Ægir", "jean-luc", "", "ß", "Bb Cc"]
        {
            assert_eq!(soundex(v), by_chars(v), "{v:?}");
        }
    }
}
