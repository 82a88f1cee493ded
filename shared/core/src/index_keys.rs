//! The blocking keys a golden record is indexed under and the claims it holds, kept compact.
//!
//! A stored key reads `{name}={32 hex digits}` (`BlockKey::key`). Golden records keep each as the
//! shared name and the 16 digest bytes ([`IndexKey`]), in a sorted, shared slice ([`KeySet`]):
//! a golden record holds ten to twenty keys, and as strings in a B-tree they were a large part of
//! a batch run's memory. Both serialise as the strings they stand for.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// One stored blocking key. Keys the hub makes are held as name and digest; any other text (a
/// key written by hand, say) is kept as it is. Parsing is canonical, so equal text gives equal
/// keys.
#[derive(Clone)]
pub enum IndexKey {
    Digest(crate::blocking::KeyName, [u8; 16]),
    Other(Box<str>),
}

/// Keys order by digest, then name; digests before other text. The order only has to be the
/// same within a process (key sets sort themselves when they are read), so it starts where two
/// keys differ: digests differ almost always, and comparing 16 bytes as one number is cheaper
/// than comparing the names (sorting the keys of a merge plan was mostly comparing names).
impl Ord for IndexKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Self::Digest(a, x), Self::Digest(b, y)) => {
                u128::from_be_bytes(*x).cmp(&u128::from_be_bytes(*y)).then_with(|| a.cmp(b))
            }
            (Self::Digest(..), Self::Other(_)) => std::cmp::Ordering::Less,
            (Self::Other(_), Self::Digest(..)) => std::cmp::Ordering::Greater,
            (Self::Other(a), Self::Other(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Digest(a, x), Self::Digest(b, y)) => x == y && a == b,
            (Self::Other(a), Self::Other(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for IndexKey {}

/// By content, as `==` compares.
impl std::hash::Hash for IndexKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Self::Digest(name, digest) => {
                state.write_u8(0);
                name.as_str().hash(state);
                digest.hash(state);
            }
            Self::Other(text) => {
                state.write_u8(1);
                text.hash(state);
            }
        }
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl IndexKey {
    pub fn parse(text: &str) -> Self {
        let digest = text.split_once('=').and_then(|(name, hex)| {
            let hex = hex.as_bytes();
            if name.is_empty() || name.contains('=') || hex.len() != 32 {
                return None;
            }
            let mut digest = [0u8; 16];
            for (i, pair) in hex.chunks(2).enumerate() {
                digest[i] = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
            }
            Some((name, digest))
        });
        match digest {
            Some((name, digest)) => Self::Digest(crate::blocking::shared_name(name), digest),
            None => Self::Other(text.into()),
        }
    }

    /// The key as stored (what `to_string` gives, without the formatting machinery).
    pub fn text(&self) -> String {
        match self {
            Self::Digest(name, digest) => {
                let mut out = String::with_capacity(name.len() + 33);
                out.push_str(name);
                out.push('=');
                crate::keys::push_hex(&mut out, digest);
                out
            }
            Self::Other(text) => text.to_string(),
        }
    }

    /// The name part (safe to log: no values).
    pub fn name(&self) -> &str {
        match self {
            Self::Digest(name, _) => name,
            Self::Other(text) => crate::blocking::BlockKey::name_of(text),
        }
    }
}

impl From<&str> for IndexKey {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<&crate::blocking::StoredKey> for IndexKey {
    fn from(k: &crate::blocking::StoredKey) -> Self {
        Self::Digest(k.key_name(), k.digest)
    }
}

impl fmt::Display for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Digest(..) => f.write_str(&self.text()),
            Self::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for IndexKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IndexKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

/// A sorted set of keys without duplicates, shared between copies of a golden record.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeySet(Arc<[IndexKey]>);

impl KeySet {
    pub fn iter(&self) -> std::slice::Iter<'_, IndexKey> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &IndexKey) -> bool {
        self.0.binary_search(key).is_ok()
    }

    /// Keys in `self` and not in `other`, in order: both sets are sorted, so one walk through
    /// the two finds them (no search per key).
    pub fn difference<'a>(&'a self, other: &'a KeySet) -> impl Iterator<Item = &'a IndexKey> {
        let mut theirs = other.iter().peekable();
        self.iter().filter(move |k| {
            while theirs.next_if(|t| *t < *k).is_some() {}
            theirs.peek() != Some(k)
        })
    }

    /// The keys as a B-tree set, to edit.
    pub fn to_set(&self) -> std::collections::BTreeSet<IndexKey> {
        self.iter().cloned().collect()
    }

    /// The keys as the strings they stand for.
    pub fn texts(&self) -> impl Iterator<Item = String> + '_ {
        self.iter().map(IndexKey::text)
    }
}

impl FromIterator<IndexKey> for KeySet {
    fn from_iter<I: IntoIterator<Item = IndexKey>>(iter: I) -> Self {
        let mut keys: Vec<IndexKey> = iter.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        Self(keys.into())
    }
}

impl From<std::collections::BTreeSet<IndexKey>> for KeySet {
    fn from(set: std::collections::BTreeSet<IndexKey>) -> Self {
        Self(set.into_iter().collect::<Vec<_>>().into())
    }
}

impl<'a> IntoIterator for &'a KeySet {
    type Item = &'a IndexKey;
    type IntoIter = std::slice::Iter<'a, IndexKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for KeySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for KeySet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<IndexKey>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_key_takes_24_bytes() {
        // The name is one pointer; text keys fit beside it: golden records hold a dozen keys each.
        assert_eq!(std::mem::size_of::<IndexKey>(), 24);
    }

    #[test]
    fn keys_parse_canonically_and_print_back() {
        let text = "email.value=00112233445566778899aabbccddeeff";
        let k = IndexKey::parse(text);
        assert!(matches!(k, IndexKey::Digest(n, _) if n.as_str() == "email.value"));
        assert_eq!(k.to_string(), text);
        assert_eq!(k.name(), "email.value");
        for other in ["k=1", "no-equals", "a=00112233445566778899AABBCCDDEEFF", "=00112233445566778899aabbccddeeff"] {
            let k = IndexKey::parse(other);
            assert!(matches!(k, IndexKey::Other(_)), "{other}");
            assert_eq!(k.to_string(), other);
        }
        assert_eq!(IndexKey::parse("k=1").name(), "k");
    }

    /// The order and equality are those of (variant, digest, name text) whether or not two names
    /// share their text: the interned fast path changes the cost only.
    #[test]
    fn keys_order_by_digest_then_name_text() {
        let leaked = crate::blocking::KeyName::unshared;
        let names = ["a.x", "a.y", "b", "b.x"];
        let mut keys = Vec::new();
        // Digests that differ in their first byte only, their last byte only, or everywhere.
        let mut first = [0u8; 16];
        first[0] = 1;
        let mut last = [0u8; 16];
        last[15] = 1;
        for n in names {
            for d in [[0u8; 16], [1; 16], [255; 16], first, last] {
                // One copy interned, one not: equal keys with different name pointers.
                keys.push(IndexKey::Digest(crate::blocking::shared_name(n), d));
                keys.push(IndexKey::Digest(leaked(n), d));
            }
        }
        keys.push(IndexKey::Other("a".into()));
        keys.push(IndexKey::Other("z".into()));
        let plain = |k: &IndexKey| match k {
            IndexKey::Digest(n, d) => (0, d.to_vec(), n.as_str().to_string()),
            IndexKey::Other(t) => (1, Vec::new(), t.to_string()),
        };
        for x in &keys {
            for y in &keys {
                assert_eq!(x.cmp(y), plain(x).cmp(&plain(y)), "{x:?} / {y:?}");
                assert_eq!(x == y, plain(x) == plain(y), "{x:?} / {y:?}");
            }
        }
    }

    /// The walk gives what a search per key gives, for overlapping, disjoint, nested and empty
    /// sets (digests and other text mixed).
    #[test]
    fn difference_is_a_search_per_key() {
        let key = |i: u8| {
            if i % 5 == 0 {
                IndexKey::Other(format!("k={i}").into())
            } else {
                IndexKey::Digest(crate::blocking::shared_name(if i % 2 == 0 { "a.x" } else { "b.y" }), [i; 16])
            }
        };
        let set = |range: std::ops::Range<u8>, step: usize| -> KeySet { range.step_by(step).map(key).collect() };
        let sets = [set(0..0, 1), set(0..20, 1), set(0..20, 2), set(5..30, 3), set(20..40, 1), set(0..40, 7)];
        for a in &sets {
            for b in &sets {
                let walked: Vec<&IndexKey> = a.difference(b).collect();
                let searched: Vec<&IndexKey> = a.iter().filter(|k| !b.contains(k)).collect();
                assert_eq!(walked, searched, "{a:?} - {b:?}");
            }
        }
    }

    #[test]
    fn sets_are_sorted_unique_and_serialise_as_strings() {
        let a = "b.x=00000000000000000000000000000001";
        let b = "a.x=00000000000000000000000000000002";
        let set: KeySet = [a, b, a, "k=1"].into_iter().map(IndexKey::parse).collect();
        assert_eq!(set.len(), 3);
        assert!(set.contains(&IndexKey::parse(b)) && !set.contains(&IndexKey::parse("k=2")));
        let json = serde_json::to_string(&set).expect("json");
        let back: KeySet = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, set);
        let texts: Vec<String> = set.texts().collect();
        assert!(texts.contains(&a.to_string()) && texts.contains(&"k=1".to_string()));
        let fewer: KeySet = [IndexKey::parse(a)].into_iter().collect();
        let gone: Vec<String> = set.difference(&fewer).map(IndexKey::to_string).collect();
        assert_eq!(gone.len(), 2);
        assert!(!gone.contains(&a.to_string()));
    }
}
