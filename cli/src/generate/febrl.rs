//! The `febrl` people profile: records shaped like the FEBRL data sets (lower-case Australian
//! names and addresses, birth dates as `YYYYMMDD`, a social security number) and corrupted after
//! the FEBRL generator's model (Christen & Pudjijono, "Accurate synthetic generation of realistic
//! personal information", PAKDD 2009):
//!
//! - originals miss a value now and then (each field 2 %);
//! - a duplicate carries one to four modifications (at most two per field), each on a field drawn
//!   by the field's weight, of a kind drawn by the field's own table: keyboard typos (a letter
//!   inserted, deleted, substituted by a neighbouring key, or two letters transposed; anywhere in
//!   the value, the first letter included), OCR confusions (`m`/`rn`, `l`/`1`, `o`/`0`…), phonetic
//!   respellings (`ph`/`f`, `mac`/`mc`, doubled letters…), a missing value, another value of the
//!   field's domain, words swapped, spaces inserted or removed, abbreviations (street types,
//!   unit words, a given name to its initial), date errors (day and month swapped, a digit
//!   changed, a year or day off by one) and the two names swapped.
//!
//! Suburb, postcode and state are drawn independently of each other, as FEBRL draws them.
//!
//! Entities never share a given name, surname and birth date (in either name order) nor a social
//! security number, as in the default profile.

use super::{claim_key, Claims, Date, PeopleWorld, Rng, Sink, STREET_TYPES};

pub(super) const HEADER: [&str; 11] = [
    "rec_id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
];

/// The fields of a record, in output order after `rec_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Given,
    Surname,
    StreetNumber,
    Address1,
    Address2,
    Suburb,
    Postcode,
    State,
    Dob,
    Ssid,
}

const FIELDS: usize = 10;

/// How often each field is picked for a modification.
const FIELD_WEIGHTS: &[(Field, u32)] = &[
    (Field::Given, 18),
    (Field::Surname, 18),
    (Field::StreetNumber, 8),
    (Field::Address1, 12),
    (Field::Address2, 6),
    (Field::Suburb, 10),
    (Field::Postcode, 10),
    (Field::State, 4),
    (Field::Dob, 10),
    (Field::Ssid, 4),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modification {
    Typo,
    Ocr,
    Phonetic,
    Missing,
    OtherValue,
    SwapWords,
    Spaces,
    Abbreviate,
    SwapNames,
    DateError,
    DigitSlip,
}

use Modification::*;

/// Each field's modifications and their weights (FEBRL gives each field a table of its own).
fn table(f: Field) -> &'static [(Modification, u32)] {
    match f {
        Field::Given => &[
            (Typo, 40),
            (Ocr, 6),
            (Phonetic, 14),
            (Missing, 10),
            (OtherValue, 4),
            (Spaces, 3),
            (Abbreviate, 8),
            (SwapNames, 8),
        ],
        Field::Surname => {
            &[(Typo, 42), (Ocr, 6), (Phonetic, 16), (Missing, 10), (OtherValue, 4), (Spaces, 6), (SwapNames, 8)]
        }
        Field::Address1 => {
            &[(Typo, 35), (Ocr, 5), (Phonetic, 8), (Missing, 10), (OtherValue, 5), (SwapWords, 5), (Abbreviate, 25)]
        }
        Field::Address2 => &[(Typo, 35), (Ocr, 5), (Missing, 35), (Abbreviate, 20), (SwapWords, 5)],
        Field::Suburb => &[(Typo, 40), (Ocr, 5), (Phonetic, 15), (Missing, 10), (OtherValue, 10), (Spaces, 5)],
        Field::Postcode | Field::StreetNumber | Field::Ssid => {
            &[(DigitSlip, 60), (Ocr, 10), (Missing, 15), (OtherValue, 10)]
        }
        Field::State => &[(Missing, 40), (OtherValue, 40), (Typo, 20)],
        Field::Dob => &[(DateError, 75), (Missing, 15), (Ocr, 10)],
    }
}

/// QWERTY neighbours of each lower-case letter and digit.
fn neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "awedxz",
        'd' => "serfcx",
        'f' => "drtgvc",
        'g' => "ftyhbv",
        'h' => "gyujnb",
        'j' => "huikmn",
        'k' => "jiolm",
        'l' => "kop",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        '1' => "2q",
        '2' => "13w",
        '3' => "24e",
        '4' => "35r",
        '5' => "46t",
        '6' => "57y",
        '7' => "68u",
        '8' => "79i",
        '9' => "80o",
        '0' => "9p",
        _ => "",
    }
}

/// Characters an OCR reading confuses, both ways.
const OCR: &[(&str, &str)] = &[
    ("m", "rn"),
    ("rn", "m"),
    ("l", "1"),
    ("1", "l"),
    ("o", "0"),
    ("0", "o"),
    ("s", "5"),
    ("5", "s"),
    ("b", "6"),
    ("6", "b"),
    ("g", "9"),
    ("9", "g"),
    ("z", "2"),
    ("2", "z"),
    ("i", "l"),
    ("cl", "d"),
    ("d", "cl"),
    ("h", "b"),
    ("e", "c"),
    ("u", "v"),
    ("v", "u"),
    ("8", "3"),
    ("3", "8"),
    ("7", "1"),
];

/// Spelling by sound: a pattern and what it is heard as.
const PHONETIC: &[(&str, &str)] = &[
    ("ph", "f"),
    ("f", "ph"),
    ("ck", "k"),
    ("k", "ck"),
    ("c", "k"),
    ("ee", "ea"),
    ("ea", "ee"),
    ("ie", "y"),
    ("y", "ie"),
    ("ey", "y"),
    ("ou", "ow"),
    ("ow", "ou"),
    ("sch", "sh"),
    ("sh", "sch"),
    ("z", "s"),
    ("s", "z"),
    ("th", "t"),
    ("mac", "mc"),
    ("mc", "mac"),
    ("ai", "ay"),
    ("ay", "ai"),
    ("oo", "u"),
    ("gh", ""),
    ("wr", "r"),
    ("kn", "n"),
    ("tt", "t"),
    ("ll", "l"),
    ("nn", "n"),
    ("ss", "s"),
    ("t", "tt"),
    ("l", "ll"),
    ("n", "nn"),
    ("ei", "ie"),
    ("ie", "ei"),
    ("x", "ks"),
    ("qu", "kw"),
    ("er", "a"),
    ("a", "er"),
    ("i", "y"),
];

/// Abbreviations of words in the second address line.
const UNIT_WORDS: &[(&str, &str)] =
    &[("unit", "u"), ("apartment", "apt"), ("level", "lvl"), ("house", "hse"), ("flat", "f")];

const STATES: &[&str] = &["nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"];

/// One record: the fields in output order.
type Fields = [String; FIELDS];

pub(super) struct FebrlGen<'w> {
    world: &'w PeopleWorld,
    claims: Claims,
}

impl<'w> FebrlGen<'w> {
    pub(super) fn new(world: &'w PeopleWorld, records: usize) -> Self {
        FebrlGen { world, claims: Claims::with_capacity(records * 2) }
    }

    pub(super) fn entity(&mut self, rng: &mut Rng, e: u32, copies: usize, sink: &mut Sink) {
        let clean = self.draw(rng, e);
        let mut original = clean.clone();
        for v in original.iter_mut() {
            if rng.chance(0.02) {
                v.clear();
            }
        }
        sink.push(e, &original);
        for _ in 1..copies {
            let dup = self.duplicate(rng, e, &clean);
            sink.push(e, &dup);
        }
    }

    /// The claims of a record: the name pair (either order) with the birth date, and the social
    /// security number.
    fn keys(f: &Fields) -> Vec<u64> {
        let mut keys = Vec::with_capacity(2);
        let (g, s, d) = (&f[Field::Given as usize], &f[Field::Surname as usize], &f[Field::Dob as usize]);
        if !g.is_empty() && !s.is_empty() && !d.is_empty() {
            let (a, b) = if g <= s { (g, s) } else { (s, g) };
            keys.push(claim_key(1, &[a, b, d]));
        }
        let ssid = &f[Field::Ssid as usize];
        if !ssid.is_empty() {
            keys.push(claim_key(4, &[ssid]));
        }
        keys
    }

    fn draw(&mut self, rng: &mut Rng, e: u32) -> Fields {
        let w = self.world;
        loop {
            // FEBRL draws suburb, postcode and state from separate frequency tables: they are
            // independent of each other, unlike the default profile's localities.
            let a = w.address(rng);
            let (postcode, state) = (w.address(rng).postcode, w.address(rng).region);
            let dob = Date::random(rng, 1930, 2006);
            let f: Fields = [
                w.given(rng).to_lowercase(),
                w.family(rng).to_lowercase(),
                a.number,
                a.line1.to_lowercase(),
                a.line2.to_lowercase(),
                a.locality.to_lowercase(),
                postcode,
                state.to_lowercase(),
                format!("{:04}{:02}{:02}", dob.y, dob.m, dob.d),
                format!("{}", rng.range(1_000_000, 9_999_999)),
            ];
            if self.claims.claim_all(&Self::keys(&f), e) {
                return f;
            }
        }
    }

    fn duplicate(&mut self, rng: &mut Rng, e: u32, clean: &Fields) -> Fields {
        for _ in 0..24 {
            let mut d = clean.clone();
            let want = match rng.below(100) {
                0..=39 => 1,
                40..=69 => 2,
                70..=89 => 3,
                _ => 4,
            };
            let mut per_field = [0u8; FIELDS];
            let mut done = 0;
            for _ in 0..want * 8 {
                if done == want {
                    break;
                }
                let f = super::weighted(rng, FIELD_WEIGHTS);
                if per_field[f as usize] >= 2 {
                    continue;
                }
                let m = super::weighted(rng, table(f));
                if self.modify(rng, &mut d, f, m) {
                    per_field[f as usize] += 1;
                    done += 1;
                }
            }
            if d != *clean && self.claims.claim_all(&Self::keys(&d), e) {
                return d;
            }
        }
        // Rare: every try collided with another entity's claims. No birth date claims nothing.
        let mut d = clean.clone();
        d[Field::Dob as usize].clear();
        d
    }

    fn modify(&self, rng: &mut Rng, d: &mut Fields, f: Field, m: Modification) -> bool {
        let w = self.world;
        let v = &mut d[f as usize];
        let new = match m {
            Missing => (!v.is_empty()).then(String::new),
            Typo => typo(rng, v),
            Ocr => substitute(rng, v, OCR),
            Phonetic => substitute(rng, v, PHONETIC),
            Spaces => spaces(rng, v),
            SwapWords => {
                let words: Vec<&str> = v.split(' ').collect();
                (words.len() >= 2).then(|| {
                    let mut words = words.clone();
                    let at = rng.below(words.len() - 1);
                    words.swap(at, at + 1);
                    words.join(" ")
                })
            }
            Abbreviate => match f {
                Field::Given => v.chars().next().map(String::from),
                Field::Address1 => {
                    let (street, kind) = v.rsplit_once(' ').unwrap_or(("", ""));
                    STREET_TYPES.iter().find(|t| t.0 == kind).map(|t| format!("{street} {}", t.1))
                }
                _ => UNIT_WORDS.iter().find(|u| v.contains(u.0)).map(|u| v.replacen(u.0, u.1, 1)),
            },
            OtherValue => Some(match f {
                Field::Given => w.given(rng).to_lowercase(),
                Field::Surname => w.family(rng).to_lowercase(),
                Field::Address1 => w.address(rng).line1.to_lowercase(),
                Field::Suburb => w.address(rng).locality.to_lowercase(),
                Field::Postcode => w.address(rng).postcode,
                Field::State => (*rng.pick(STATES)).to_owned(),
                Field::StreetNumber => rng.range(1, 300).to_string(),
                _ => format!("{}", rng.range(1_000_000, 9_999_999)),
            }),
            DigitSlip => digit_slip(rng, v),
            DateError => date_error(rng, v),
            SwapNames => {
                d.swap(Field::Given as usize, Field::Surname as usize);
                return d[0] != d[1];
            }
        };
        match new {
            Some(n) if n != *v => {
                *v = n;
                true
            }
            _ => false,
        }
    }
}

/// A keyboard slip anywhere in the value: a neighbouring key inserted or substituted, a letter
/// deleted, or two letters transposed.
fn typo(rng: &mut Rng, v: &str) -> Option<String> {
    let mut c: Vec<char> = v.chars().collect();
    if c.len() < 2 {
        return None;
    }
    let at = rng.below(c.len());
    match rng.below(4) {
        0 => {
            let n = neighbours(c[at]);
            let k = n.chars().nth(rng.below(n.len().max(1)))?;
            c.insert(at + rng.below(2), k);
        }
        1 => {
            c.remove(at);
        }
        2 => {
            let n = neighbours(c[at]);
            c[at] = n.chars().nth(rng.below(n.len().max(1)))?;
        }
        _ => {
            let at = at.min(c.len() - 2);
            c.swap(at, at + 1);
        }
    }
    Some(c.into_iter().collect())
}

/// One occurrence of a pattern of `rules` replaced; a rule that occurs in the value is drawn.
fn substitute(rng: &mut Rng, v: &str, rules: &[(&str, &str)]) -> Option<String> {
    let found: Vec<&(&str, &str)> = rules.iter().filter(|(from, _)| v.contains(from)).collect();
    if found.is_empty() {
        return None;
    }
    let (from, to) = **rng.pick(&found);
    let at: Vec<usize> = v.match_indices(from).map(|(i, _)| i).collect();
    let i = *rng.pick(&at);
    Some(format!("{}{to}{}", &v[..i], &v[i + from.len()..]))
}

/// A space inserted inside a word, or one removed between words.
fn spaces(rng: &mut Rng, v: &str) -> Option<String> {
    if let Some(i) = v.find(' ').filter(|_| rng.chance(0.5)) {
        return Some(format!("{}{}", &v[..i], &v[i + 1..]));
    }
    let c: Vec<char> = v.chars().collect();
    if c.len() < 4 {
        return None;
    }
    let at = 1 + rng.below(c.len() - 2);
    Some(c[..at].iter().chain(std::iter::once(&' ')).chain(&c[at..]).collect())
}

/// A digit substituted by a neighbouring key's, or two digits transposed.
fn digit_slip(rng: &mut Rng, v: &str) -> Option<String> {
    let mut c: Vec<char> = v.chars().collect();
    if c.is_empty() {
        return None;
    }
    if c.len() >= 2 && rng.chance(0.3) {
        let at = rng.below(c.len() - 1);
        c.swap(at, at + 1);
    } else {
        let at = rng.below(c.len());
        let n: Vec<char> = neighbours(c[at]).chars().filter(char::is_ascii_digit).collect();
        if n.is_empty() {
            return None;
        }
        c[at] = *rng.pick(&n);
    }
    Some(c.into_iter().collect())
}

/// A date error on `YYYYMMDD`: day and month swapped, one digit changed, or the year or the day
/// off by one; always a valid date.
fn date_error(rng: &mut Rng, v: &str) -> Option<String> {
    let n = |a: usize, b: usize| v.get(a..b).and_then(|s| s.parse::<u32>().ok());
    let date = Date { y: n(0, 4)?, m: n(4, 6)?, d: n(6, 8)? };
    let new = match rng.below(4) {
        0 if date.d <= 12 && date.d != date.m => Date { y: date.y, m: date.d, d: date.m },
        1 => Date { y: if rng.chance(0.5) { date.y + 1 } else { date.y - 1 }, ..date },
        2 => Date { d: if date.d > 1 { date.d - 1 } else { date.d + 1 }, ..date },
        _ => date.slip(rng),
    };
    new.valid().then(|| format!("{:04}{:02}{:02}", new.y, new.m, new.d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifications_change_the_value_and_keep_dates_valid() {
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            if let Some(t) = typo(&mut rng, "mitchell") {
                assert_ne!(t, "");
                assert!((7..=9).contains(&t.chars().count()), "{t}");
            }
            let d = date_error(&mut rng, "19840721").expect("a date error");
            assert_ne!(d, "19840721");
            let (y, m, day) = (&d[..4], &d[4..6], &d[6..]);
            let date = Date { y: y.parse().unwrap_or(0), m: m.parse().unwrap_or(0), d: day.parse().unwrap_or(0) };
            assert!(date.valid(), "{d}");
            let p = digit_slip(&mut rng, "2615").expect("a slip");
            assert_eq!(p.len(), 4);
            assert_ne!(p, "2615");
        }
        assert_eq!(substitute(&mut rng, "macdonald", &[("mac", "mc")]).as_deref(), Some("mcdonald"));
        assert_eq!(substitute(&mut rng, "smith", &[("mac", "mc")]), None);
    }
}
