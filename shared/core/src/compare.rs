//! Comparators: how alike two values of an attribute are, as a discrete agreement level, and the
//! Fellegi-Sunter weight of that level.

use crate::record::Text;
use crate::schema::ComparatorDef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparatorKind {
    /// Level 0: equal.
    Exact,
    /// Levels by Jaro-Winkler similarity ≥ each threshold (spaces ignored when that scores higher:
    /// `chana k` and `chanak` are equal).
    JaroWinkler,
    /// A person's given or family name: levels by Jaro-Winkler similarity ≥ each threshold, where
    /// a known nickname (`bob` for `robert`) counts as the first level below exact; one more level,
    /// after the thresholds, for an initial that matches the other name (`j` and `john`).
    PersonName,
    /// Levels by normalised Levenshtein similarity ≥ each threshold.
    Levenshtein,
    /// Jaro-Winkler over the words sorted, so word order does not matter.
    TokenJaroWinkler,
    /// Levels: equal; one typo or day/month swapped; same year.
    Date,
    /// Levels: equal; same mailbox name at another domain.
    Email,
    /// Levels: equal; same last eight digits.
    Phone,
    /// Levels: equal; one character wrong or two adjacent characters swapped, or (five characters
    /// or more) the same first three characters (district).
    Postcode,
    /// Levels by relative difference ≤ each threshold.
    Numeric,
}

impl ComparatorKind {
    /// Most agreement levels a comparator can report (besides "different").
    fn max_levels(self) -> usize {
        match self {
            Self::Exact => 1,
            Self::Email | Self::Phone | Self::Postcode => 2,
            Self::Date => 3,
            Self::JaroWinkler | Self::Levenshtein | Self::TokenJaroWinkler | Self::Numeric => 8,
            Self::PersonName => 9,
        }
    }

    fn uses_thresholds(self) -> bool {
        matches!(
            self,
            Self::JaroWinkler | Self::Levenshtein | Self::TokenJaroWinkler | Self::Numeric | Self::PersonName
        )
    }

    /// Levels beyond the thresholds: a person name's `initial` level.
    fn extra_levels(self) -> usize {
        usize::from(self == Self::PersonName)
    }
}

pub(crate) fn validate_def(d: &ComparatorDef) -> Result<(), String> {
    if d.m.is_empty() || d.m.len() != d.u.len() {
        return Err("comparator needs as many m as u probabilities, at least one".into());
    }
    if d.m.len() > d.kind.max_levels() {
        return Err(format!("comparator {:?} has at most {} agreement levels", d.kind, d.kind.max_levels()));
    }
    for p in d.m.iter().chain(&d.u) {
        if !(p.is_finite() && *p > 0.0 && *p < 1.0) {
            return Err("m and u probabilities must lie strictly between 0 and 1".into());
        }
    }
    if d.m.iter().sum::<f64>() >= 1.0 || d.u.iter().sum::<f64>() >= 1.0 {
        return Err("m (and u) probabilities must sum to less than 1: the rest is the 'different' level".into());
    }
    if d.kind.uses_thresholds() {
        if d.thresholds.len() + d.kind.extra_levels() != d.m.len() {
            return Err(match d.kind.extra_levels() {
                0 => "comparator needs one threshold per agreement level".into(),
                n => format!("comparator {:?} needs one threshold per agreement level but the last {n}", d.kind),
            });
        }
        let descending = d.thresholds.windows(2).all(|w| w[0] >= w[1]);
        let ascending = d.thresholds.windows(2).all(|w| w[0] <= w[1]);
        let ok = if d.kind == ComparatorKind::Numeric { ascending } else { descending };
        if !ok || d.thresholds.iter().any(|t| !t.is_finite() || *t < 0.0) {
            return Err("thresholds must be non-negative and ordered from the strictest level".into());
        }
    } else if !d.thresholds.is_empty() {
        return Err(format!("comparator {:?} takes no thresholds", d.kind));
    }
    Ok(())
}

/// The outcome of comparing two values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Agreement level (0 = strongest), or `None` when the values are different.
    pub level: Option<usize>,
    pub weight: f64,
}

/// A level's entry in per-level weights that end with disagreement's: a level beyond the list, or
/// none, takes the last entry.
pub(crate) fn weight_at(weights: &[f64], level: Option<usize>) -> f64 {
    let last = weights.len() - 1;
    weights[level.filter(|i| *i < last).unwrap_or(last)]
}

/// How far below exact agreement's weight a level may be and still read as the same value
/// ([`ComparatorDef::same_value_levels`]).
pub const SAME_VALUE_BITS: f64 = 1.0;

impl ComparatorDef {
    /// The match weight of an agreement level (`None`: disagreement), log2(m / u).
    pub fn weight(&self, level: Option<usize>) -> f64 {
        weight_at(self.weights(), level)
    }

    /// Whether level 0 means the two values are equal (term-frequency adjustment weighs that
    /// level by the value's frequency).
    pub fn first_level_is_exact(&self) -> bool {
        match self.kind {
            ComparatorKind::Exact
            | ComparatorKind::PersonName
            | ComparatorKind::Date
            | ComparatorKind::Email
            | ComparatorKind::Phone
            | ComparatorKind::Postcode => true,
            ComparatorKind::Numeric => self.thresholds.first() == Some(&0.0),
            _ => self.thresholds.first().is_some_and(|t| *t >= 1.0),
        }
    }

    /// How many levels, from the first, say two values are one value: exact agreement, and the
    /// levels after it whose weight is within [`SAME_VALUE_BITS`] of it (a typo or a nickname
    /// of one name, where similarity is as telling as equality). A looser level (an initial, the
    /// next flat in one building) is not among them.
    pub fn same_value_levels(&self) -> usize {
        let weights = &self.weights()[..self.m.len()];
        let Some(&exact) = weights.first() else { return 0 };
        weights.iter().take_while(|w| **w >= exact - SAME_VALUE_BITS).count()
    }

    /// The highest weight any comparison can have (a comparison's weight is one of these).
    pub fn max_weight(&self) -> f64 {
        self.weights().iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Per level, then for disagreement: log2(m / u).
    fn weights(&self) -> &[f64] {
        self.weights.get_or_init(|| {
            let disagree = {
                let m: f64 = 1.0 - self.m.iter().sum::<f64>();
                let u: f64 = 1.0 - self.u.iter().sum::<f64>();
                (m / u).log2()
            };
            self.m.iter().zip(&self.u).map(|(m, u)| (m / u).log2()).chain([disagree]).collect()
        })
    }

    /// A readable name of a level, for explanations.
    /// Kept inline (no allocation) up to 24 bytes: every level name but the name comparator's
    /// second.
    pub fn level_name(&self, level: Option<usize>) -> Text {
        let Some(i) = level.filter(|i| *i < self.m.len()) else { return Text::const_new("different") };
        let fixed = |names: &[&'static str]| Text::const_new(names.get(i).copied().unwrap_or("close"));
        match self.kind {
            ComparatorKind::Exact => Text::const_new("exact"),
            ComparatorKind::Date => fixed(&["exact", "typo_or_swap", "same_year"]),
            ComparatorKind::Email => fixed(&["exact", "same_mailbox"]),
            ComparatorKind::Phone => fixed(&["exact", "same_last_8"]),
            ComparatorKind::Postcode => fixed(&["exact", "typo_or_same_district"]),
            ComparatorKind::PersonName if i == self.thresholds.len() => Text::const_new("initial"),
            ComparatorKind::PersonName if i == 1 => {
                compact_str::format_compact!("nickname_or_similarity>={}", self.thresholds[i])
            }
            ComparatorKind::Numeric if self.thresholds[i] == 0.0 => Text::const_new("exact"),
            ComparatorKind::Numeric => {
                compact_str::format_compact!("within_{}pct", (self.thresholds[i] * 100.0).round())
            }
            _ if self.thresholds[i] >= 1.0 => Text::const_new("exact"),
            _ => compact_str::format_compact!("similarity>={}", self.thresholds[i]),
        }
    }

    /// Compares two values. `valid` says both values were normalised; a value kept raw is only
    /// compared as a plain string (equal or not).
    pub fn compare(&self, a: &str, b: &str, valid: bool) -> Comparison {
        let level = if !valid {
            if a.to_lowercase() == b.to_lowercase() {
                Some(0)
            } else if self.kind == ComparatorKind::Date {
                // An impossible date (`19319924`) beside a real one (`1931-09-24`): compare the
                // digits, so a typo still counts as one.
                let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
                let (x, y) = (digits(a), digits(b));
                (x.len() == 8 && one_typo(&x, &y)).then_some(1)
            } else {
                None
            }
        } else {
            self.level(a, b)
        };
        let level = level.filter(|l| *l < self.m.len());
        Comparison { level, weight: self.weight(level) }
    }

    fn by_similarity(&self, s: f64) -> Option<usize> {
        self.thresholds.iter().position(|t| s >= *t - 1e-12)
    }

    fn level(&self, a: &str, b: &str) -> Option<usize> {
        match self.kind {
            ComparatorKind::Exact => (a == b).then_some(0),
            ComparatorKind::JaroWinkler => self.by_similarity(text_similarity(a, b)),
            ComparatorKind::PersonName => {
                if a == b {
                    return Some(0);
                }
                let s = text_similarity(a, b);
                let s =
                    if crate::names::nicknames(a, b) { s.max(self.thresholds.get(1).copied().unwrap_or(s)) } else { s };
                self.by_similarity(s).or_else(|| crate::names::initial_of(a, b).then_some(self.thresholds.len()))
            }
            ComparatorKind::Levenshtein => {
                self.by_similarity(if a == b { 1.0 } else { strsim::normalized_levenshtein(a, b) })
            }
            ComparatorKind::TokenJaroWinkler => self.by_similarity(token_similarity(a, b)),
            ComparatorKind::Date => date_level(a, b),
            ComparatorKind::Email => {
                if a == b {
                    Some(0)
                } else {
                    let (la, lb) = (a.split('@').next(), b.split('@').next());
                    (la == lb && la.is_some_and(|l| l.len() >= 4)).then_some(1)
                }
            }
            ComparatorKind::Phone => {
                if a == b {
                    Some(0)
                } else {
                    let tail = |s: &str| s.len().checked_sub(8).and_then(|i| s.get(i..)).map(str::to_owned);
                    (tail(a).is_some() && tail(a) == tail(b)).then_some(1)
                }
            }
            ComparatorKind::Postcode => {
                if a == b {
                    Some(0)
                } else {
                    let district = a.len() >= 5 && b.len() >= 5 && a.get(..3) == b.get(..3);
                    (district || one_typo(a, b)).then_some(1)
                }
            }
            ComparatorKind::Numeric => {
                let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
                    return (a == b).then_some(0);
                };
                let scale = x.abs().max(y.abs());
                let rel = if scale == 0.0 { 0.0 } else { (x - y).abs() / scale };
                self.thresholds.iter().position(|t| rel <= *t + 1e-12)
            }
        }
    }
}

/// Jaro-Winkler similarity, ignoring spaces when that scores higher (`chana k`, `chanak`).
pub fn text_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let s = jaro_winkler(a, b);
    if !a.contains(' ') && !b.contains(' ') {
        return s;
    }
    // Short ASCII values are squeezed on the stack; others into strings.
    let (mut x, mut y) = ([0u8; SHORT], [0u8; SHORT]);
    match (squeeze_into(a, &mut x), squeeze_into(b, &mut y)) {
        (Some(x), Some(y)) => s.max(ascii_jaro_winkler(x, y)),
        _ => {
            let squeeze = |v: &str| v.chars().filter(|c| *c != ' ').collect::<String>();
            s.max(jaro_winkler(&squeeze(a), &squeeze(b)))
        }
    }
}

/// The longest ASCII value compared without allocating: a match window's flags fit in a `u64`.
const SHORT: usize = 64;

/// `v` without its spaces, in `buf`, if it is ASCII and fits.
fn squeeze_into<'b>(v: &str, buf: &'b mut [u8; SHORT]) -> Option<&'b [u8]> {
    if !v.is_ascii() || v.len() > SHORT {
        return None;
    }
    let mut n = 0;
    for &c in v.as_bytes().iter().filter(|c| **c != b' ') {
        buf[n] = c;
        n += 1;
    }
    Some(&buf[..n])
}

/// strsim's Jaro-Winkler, to the bit. ASCII text is compared as bytes, which are its characters,
/// and short values keep their match flags in two words instead of a vector (most names and
/// addresses are ASCII once normalised, and short).
fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a.is_ascii() && b.is_ascii() {
        ascii_jaro_winkler(a.as_bytes(), b.as_bytes())
    } else {
        strsim::jaro_winkler(a, b)
    }
}

fn ascii_jaro_winkler(a: &[u8], b: &[u8]) -> f64 {
    if a.len() > SHORT || b.len() > SHORT {
        return strsim::generic_jaro_winkler(&Bytes(a), &Bytes(b));
    }
    let sim = short_jaro(a, b);
    if sim > 0.7 {
        let prefix = a.iter().take(4).zip(b).take_while(|(x, y)| x == y).count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

/// Jaro similarity of two byte strings of at most [`SHORT`] bytes, computed as strsim's
/// `generic_jaro` computes it (same matches, same transpositions, same arithmetic).
fn short_jaro(a: &[u8], b: &[u8]) -> f64 {
    let (a_len, b_len) = (a.len(), b.len());
    if a_len == 0 && b_len == 0 {
        return 1.0;
    } else if a_len == 0 || b_len == 0 {
        return 0.0;
    }
    let range = (a_len.max(b_len) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, x) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = b_len.min(i + range + 1);
        for (j, y) in b.iter().enumerate().take(hi).skip(lo) {
            if y == x && b_flags & (1 << j) == 0 {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    // The matched characters of each side, in order: count the positions where they differ.
    let mut transpositions = 0usize;
    let mut rest = b_flags;
    for (i, x) in a.iter().enumerate() {
        if a_flags & (1 << i) != 0 {
            let j = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if b[j] != *x {
                transpositions += 1;
            }
        }
    }
    transpositions /= 2;
    ((matches as f64 / a_len as f64)
        + (matches as f64 / b_len as f64)
        + ((matches - transpositions) as f64 / matches as f64))
        / 3.0
}

/// ASCII text as the sequence strsim's generic functions walk.
struct Bytes<'a>(&'a [u8]);

impl<'a> IntoIterator for &Bytes<'a> {
    type Item = u8;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, u8>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().copied()
    }
}

/// Same length, and one character different or two adjacent characters swapped.
fn one_typo(a: &str, b: &str) -> bool {
    if a.len() != b.len() || !a.is_ascii() || !b.is_ascii() {
        return false;
    }
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let diffs: Vec<usize> = (0..x.len()).filter(|i| x[*i] != y[*i]).take(3).collect();
    match diffs.as_slice() {
        [_] => true,
        [i, j] => *j == i + 1 && x[*i] == y[*j] && x[*j] == y[*i],
        _ => false,
    }
}

/// Similarity of two multi-word values regardless of word order.
pub fn token_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let sorted = |s: &str| {
        let mut t: Vec<&str> = s.split_whitespace().collect();
        t.sort_unstable();
        t.join(" ")
    };
    jaro_winkler(a, b).max(jaro_winkler(&sorted(a), &sorted(b)))
}

/// ISO dates: 0 equal; 1 one digit wrong, two adjacent digits swapped, or day and month swapped; 2 same year.
fn date_level(a: &str, b: &str) -> Option<usize> {
    if a == b {
        return Some(0);
    }
    if a.len() != 10 || b.len() != 10 || !a.is_ascii() || !b.is_ascii() {
        return None;
    }
    let (ay, am, ad) = (&a[..4], &a[5..7], &a[8..10]);
    let (by, bm, bd) = (&b[..4], &b[5..7], &b[8..10]);
    if ay == by && am == bd && ad == bm {
        return Some(1);
    }
    if one_typo(a, b) {
        return Some(1);
    }
    (ay == by).then_some(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_similarity_scores_exactly_as_strsim() {
        let words = [
            "",
            "a",
            "jon",
            "john",
            "johnny",
            "jonathan",
            "smith",
            "smyth",
            "martha",
            "marhta",
            "dwayne",
            "duane",
            "dixon",
            "dicksonx",
            "abc def",
            "abcdef",
            "14 high st",
            "14 high street",
            "zzz",
        ];
        for a in words {
            for b in words {
                let fast = jaro_winkler(a, b);
                assert_eq!(fast.to_bits(), strsim::jaro_winkler(a, b).to_bits(), "{a} / {b}");
            }
        }
        // Non-ASCII text still goes by characters.
        assert_eq!(jaro_winkler("zoë", "zoe"), strsim::jaro_winkler("zoë", "zoe"));
    }

    /// Seeded random ASCII values over a small alphabet (so that they share characters), of
    /// every length up to past the stack buffers, and near copies of each other: the bytes path
    /// scores to the bit what strsim scores, with and without spaces squeezed.
    #[test]
    fn short_values_score_as_strsim_does_to_the_bit() {
        let mut seeded = crate::seeded::Seeded::new(0x2545_f491_4f6c_dd1d_u64);
        let mut next = move |n: usize| seeded.below(n);
        let alphabet = b"abcde fgh";
        let squeeze = |v: &str| v.chars().filter(|c| *c != ' ').collect::<String>();
        let mut boosted = 0;
        for round in 0..4000 {
            let a: String = (0..round % 70).map(|_| alphabet[next(alphabet.len())] as char).collect();
            let b: String = if round % 2 == 0 {
                (0..(round * 7 + 3) % 75).map(|_| alphabet[next(alphabet.len())] as char).collect()
            } else {
                // A near copy: one character changed, or two swapped.
                let mut c = a.clone().into_bytes();
                if c.len() > 2 {
                    let at = next(c.len() - 1);
                    if round % 4 == 1 {
                        c[at] = alphabet[next(alphabet.len())];
                    } else {
                        c.swap(at, at + 1);
                    }
                }
                String::from_utf8(c).unwrap_or_default()
            };
            let plain = strsim::jaro_winkler(&a, &b);
            assert_eq!(jaro_winkler(&a, &b).to_bits(), plain.to_bits(), "{a:?} / {b:?}");
            let expected = if a == b {
                1.0
            } else if a.contains(' ') || b.contains(' ') {
                plain.max(strsim::jaro_winkler(&squeeze(&a), &squeeze(&b)))
            } else {
                plain
            };
            assert_eq!(text_similarity(&a, &b).to_bits(), expected.to_bits(), "{a:?} / {b:?}");
            boosted += usize::from(plain > 0.7 && plain < 1.0);
        }
        assert!(boosted > 1000, "the near copies reach the prefix boost ({boosted})");
    }

    fn def(kind: ComparatorKind, thresholds: &[f64], m: &[f64], u: &[f64]) -> ComparatorDef {
        ComparatorDef {
            kind,
            thresholds: thresholds.to_vec(),
            m: m.to_vec(),
            u: u.to_vec(),
            weights: Default::default(),
        }
    }

    /// The bound scoring relies on to skip crosswise comparisons: no comparison of any built-in
    /// comparator weighs more than `max_weight`, and some level reaches it.
    #[test]
    fn no_comparison_outweighs_the_best_level() {
        let reg = crate::schema::SchemaRegistry::built_in().expect("schemas");
        for entity in reg.entities() {
            for a in &reg.get(entity).expect("schema").attributes {
                let c = &a.comparator;
                let levels: Vec<f64> = (0..=c.m.len()).map(|l| c.weight(Some(l))).chain([c.weight(None)]).collect();
                assert!(levels.iter().all(|w| *w <= c.max_weight()), "{entity}.{}", a.name);
                assert!(levels.contains(&c.max_weight()), "{entity}.{}", a.name);
            }
        }
    }

    #[test]
    fn weights_are_log_likelihood_ratios() {
        let d = def(ComparatorKind::Exact, &[], &[0.9], &[0.1]);
        assert!((d.compare("a", "a", true).weight - 9f64.log2()).abs() < 1e-9);
        assert!((d.compare("a", "b", true).weight - (0.1f64 / 0.9).log2()).abs() < 1e-9);
    }

    /// A typo level nearly as telling as equality reads as the same value; a loose one (an
    /// initial, the next flat) does not, nor anything after it.
    #[test]
    fn levels_that_read_as_one_value() {
        // Weights: 6.6, 6.5 (nickname or typo), 2.4, 4.3 (initial).
        let given = def(
            ComparatorKind::PersonName,
            &[1.0, 0.92, 0.8],
            &[0.6, 0.19, 0.036, 0.158],
            &[0.0061, 0.00213, 0.00683, 0.00782],
        );
        assert_eq!(given.same_value_levels(), 2);
        // "Unit 5" and "Unit 6" are alike and say the opposite of a match.
        let flat = def(ComparatorKind::JaroWinkler, &[1.0, 0.9], &[0.94, 0.011], &[0.0065, 0.18]);
        assert_eq!(flat.same_value_levels(), 1);
        assert_eq!(def(ComparatorKind::Exact, &[], &[0.9], &[0.1]).same_value_levels(), 1);
    }

    #[test]
    fn jaro_winkler_levels() {
        let d = def(ComparatorKind::JaroWinkler, &[1.0, 0.92, 0.8], &[0.8, 0.1, 0.05], &[0.01, 0.02, 0.05]);
        assert_eq!(d.compare("jonathan", "jonathan", true).level, Some(0));
        assert_eq!(d.compare("jonathan", "jonathon", true).level, Some(1));
        assert_eq!(d.compare("jonathan", "xavier", true).level, None);
        assert_eq!(d.level_name(Some(1)), "similarity>=0.92");
    }

    #[test]
    fn spaces_do_not_count_against_text() {
        let d = def(ComparatorKind::JaroWinkler, &[1.0, 0.92], &[0.8, 0.1], &[0.01, 0.02]);
        assert_eq!(d.compare("chana k", "chanak", true).level, Some(0), "a stray space");
        assert_eq!(d.compare("munmurra park", "munmurrapark", true).level, Some(0));
    }

    #[test]
    fn person_names_know_nicknames_and_initials() {
        let d = def(ComparatorKind::PersonName, &[1.0, 0.92, 0.8], &[0.8, 0.1, 0.04, 0.02], &[0.01, 0.02, 0.03, 0.04]);
        assert_eq!(d.compare("robert", "robert", true).level, Some(0));
        assert_eq!(d.compare("bob", "robert", true).level, Some(1), "nickname");
        assert_eq!(d.compare("robert", "bobby", true).level, Some(1), "nickname, either side");
        assert_eq!(d.compare("robert", "roberta", true).level, Some(1), "similar");
        assert_eq!(d.compare("r", "robert", true).level, Some(3), "initial");
        assert_eq!(d.compare("robert", "r", true).level, Some(3), "initial, either side");
        assert_eq!(d.compare("x", "robert", true).level, None);
        assert_eq!(d.compare("bob", "william", true).level, None);
        assert_eq!(d.level_name(Some(1)), "nickname_or_similarity>=0.92");
        assert_eq!(d.level_name(Some(3)), "initial");
        assert!(validate_def(&d).is_ok());
        assert!(validate_def(&def(ComparatorKind::PersonName, &[1.0, 0.9], &[0.8, 0.1], &[0.01, 0.02])).is_err());
    }

    #[test]
    fn dates_typos_and_swaps() {
        let d = def(ComparatorKind::Date, &[], &[0.8, 0.1, 0.05], &[0.001, 0.01, 0.05]);
        assert_eq!(d.compare("1985-03-12", "1985-03-12", true).level, Some(0));
        assert_eq!(d.compare("1985-03-12", "1985-12-03", true).level, Some(1), "day/month swap");
        assert_eq!(d.compare("1985-03-12", "1985-03-13", true).level, Some(1), "one digit");
        assert_eq!(d.compare("1985-03-12", "1958-03-12", true).level, Some(1), "adjacent swap");
        assert_eq!(d.compare("1985-03-12", "1985-07-30", true).level, Some(2));
        assert_eq!(d.compare("1985-03-12", "1971-07-30", true).level, None);
        assert_eq!(d.compare("1999-02-31", "1999-02-31", false).level, Some(0), "raw values as plain strings");
        assert_eq!(d.compare("19319924", "1931-09-24", false).level, Some(1), "an impossible date, one digit off");
        assert_eq!(d.compare("19319924", "1975-01-01", false).level, None);
        assert_eq!(d.compare("1985-€3-12", "1985-03-1€", true).level, None, "non-ASCII never panics");
    }

    #[test]
    fn numeric_email_phone_postcode() {
        let n = def(ComparatorKind::Numeric, &[0.0, 0.05, 0.2], &[0.6, 0.2, 0.1], &[0.01, 0.05, 0.1]);
        assert_eq!(n.compare("10", "10", true).level, Some(0));
        assert_eq!(n.compare("10", "10.4", true).level, Some(1));
        assert_eq!(n.compare("10", "12", true).level, Some(2));
        assert_eq!(n.compare("10", "20", true).level, None);
        let e = def(ComparatorKind::Email, &[], &[0.8, 0.05], &[0.001, 0.01]);
        assert_eq!(e.compare("jane.doe@a.com", "jane.doe@b.org", true).level, Some(1));
        let p = def(ComparatorKind::Phone, &[], &[0.8, 0.05], &[0.001, 0.01]);
        assert_eq!(p.compare("+447700900123", "+4407700900123", true).level, Some(1));
        assert_eq!(p.compare("1€€abc", "1€€abd", true).level, None, "non-ASCII never panics");
        let pc = def(ComparatorKind::Postcode, &[], &[0.8, 0.05], &[0.001, 0.01]);
        assert_eq!(pc.compare("SW1A1AA", "SW1A2BB", true).level, Some(1));
        assert_eq!(pc.compare("2617", "2167", true).level, Some(1), "adjacent digits swapped");
        assert_eq!(pc.compare("2617", "2618", true).level, Some(1), "one digit wrong");
        assert_eq!(pc.compare("2617", "2681", true).level, None);
    }

    #[test]
    fn definitions_are_checked() {
        assert!(validate_def(&def(ComparatorKind::Exact, &[], &[0.9], &[0.1])).is_ok());
        assert!(validate_def(&def(ComparatorKind::Exact, &[], &[0.9, 0.05], &[0.1, 0.1])).is_err());
        assert!(validate_def(&def(ComparatorKind::JaroWinkler, &[0.8, 0.9], &[0.5, 0.3], &[0.1, 0.1])).is_err());
        assert!(validate_def(&def(ComparatorKind::Exact, &[], &[0.9], &[1.0])).is_err());
        assert!(validate_def(&def(ComparatorKind::Exact, &[], &[0.6], &[0.1])).is_ok());
    }
}
