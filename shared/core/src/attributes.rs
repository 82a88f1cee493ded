//! Attribute maps: attribute name → value, for source records, golden records and match values.
//!
//! A sorted vector without spare capacity, not a `BTreeMap`: a record holds about ten attributes,
//! and a B-tree node always reserves room for eleven entries plus its own bookkeeping. Large batch
//! runs hold three such maps per record, so the difference is a large part of their memory.
//! Serialised as a JSON object with its keys in order, exactly like the `BTreeMap` it replaces.

use crate::record::Text;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct AttributeMap<V> {
    /// Sorted by name; names are unique.
    entries: Vec<(Text, V)>,
}

impl<V> Default for AttributeMap<V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<V> AttributeMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.position(name).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets a value; returns the one it replaces. Grows by one entry at a time (maps are small
    /// and built once).
    pub fn insert(&mut self, name: impl Into<Text>, value: V) -> Option<V> {
        let name = name.into();
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.reserve_exact(1);
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<V> {
        let i = self.position(name).ok()?;
        let (_, v) = self.entries.remove(i);
        self.entries.shrink_to_fit();
        Some(v)
    }

    /// The value of `name`, inserted as `V::default()` first when missing.
    pub fn get_or_default(&mut self, name: &str) -> &mut V
    where
        V: Default,
    {
        let i = match self.position(name) {
            Ok(i) => i,
            Err(i) => {
                self.entries.reserve_exact(1);
                self.entries.insert(i, (name.into(), V::default()));
                i
            }
        };
        &mut self.entries[i].1
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Text, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&Text, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Text> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// The values of the names `order` yields in ascending name order, as `(position, name)`:
    /// a vector of `len` with each value found at its position. One walk over both orders, no
    /// search per name.
    pub fn aligned<'a, 'n>(
        &'a self,
        order: impl IntoIterator<Item = (usize, &'n str)>,
        len: usize,
    ) -> Vec<Option<&'a V>> {
        let mut out = vec![None; len];
        let mut entries = self.entries.iter().peekable();
        'names: for (position, name) in order {
            while let Some((k, v)) = entries.peek() {
                match k.as_str().cmp(name) {
                    std::cmp::Ordering::Less => {
                        entries.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if let Some(slot) = out.get_mut(position) {
                            *slot = Some(v);
                        }
                        entries.next();
                        continue 'names;
                    }
                    std::cmp::Ordering::Greater => continue 'names,
                }
            }
            break;
        }
        out
    }

    /// Keeps the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Text, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.entries.shrink_to_fit();
    }

    fn from_vec(mut entries: Vec<(Text, V)>) -> Self {
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Already in order without repeats (maps built in a schema's name order).
            entries.shrink_to_fit();
            return Self { entries };
        }
        // Like `BTreeMap`'s `collect`: for a repeated name the last value wins.
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| later.0 == kept.0);
        entries.shrink_to_fit();
        Self { entries }
    }
}

impl<V> std::ops::Index<&str> for AttributeMap<V> {
    type Output = V;

    /// Panics when the attribute is missing, like `BTreeMap` (for tests and known names only).
    fn index(&self, name: &str) -> &V {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no attribute '{name}'"),
        }
    }
}

impl<K: Into<Text>, V> FromIterator<(K, V)> for AttributeMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl<K: Into<Text>, V> Extend<(K, V)> for AttributeMap<V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<V> IntoIterator for AttributeMap<V> {
    type Item = (Text, V);
    type IntoIter = std::vec::IntoIter<(Text, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a AttributeMap<V> {
    type Item = (&'a Text, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (Text, V)>, fn(&'a (Text, V)) -> (&'a Text, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<V: fmt::Debug> fmt::Debug for AttributeMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for AttributeMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for AttributeMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = AttributeMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of attributes")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some((k, v)) = access.next_entry::<Text, V>()? {
                    entries.push((k, v));
                }
                Ok(AttributeMap::from_vec(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m: AttributeMap<u32> = [("b", 2), ("a", 1), ("c", 3), ("a", 9)].into_iter().collect();
        assert_eq!(m.keys().map(Text::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m.get("a"), Some(&9), "the last value of a repeated name wins, as in a BTreeMap");
        assert_eq!(m.insert("bb", 4), None);
        assert_eq!(m.insert("b", 5), Some(2));
        assert_eq!(m.remove("c"), Some(3));
        assert_eq!(m.remove("zz"), None);
        *m.get_or_default("d") += 7;
        *m.get_or_default("a") += 1;
        let as_btree: BTreeMap<&str, u32> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(as_btree, BTreeMap::from([("a", 10), ("b", 5), ("bb", 4), ("d", 7)]));
        assert_eq!(m.entries.capacity(), m.len(), "no spare capacity");
        assert!(m.contains_key("bb") && !m.contains_key("c"));
        assert_eq!(m["d"], 7);
    }

    #[test]
    fn aligned_lines_values_up_with_the_positions_asked_for() {
        let m: AttributeMap<u32> = [("b", 2), ("d", 4), ("e", 5)].into_iter().collect();
        // Names in ascending order with the positions they should land at.
        let order = [(3, "a"), (0, "b"), (4, "c"), (1, "d"), (2, "f")];
        assert_eq!(m.aligned(order, 5), vec![Some(&2), Some(&4), None, None, None]);
        assert_eq!(m.aligned([(1, "e")], 2), vec![None, Some(&5)]);
        assert_eq!(AttributeMap::<u32>::new().aligned(order, 5), vec![None; 5]);
    }

    #[test]
    fn serialises_like_a_btree_map() {
        let m: AttributeMap<String> = [("z", "1"), ("a", "2")].into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        let b: BTreeMap<String, String> =
            [("z", "1"), ("a", "2")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(serde_json::to_string(&m).expect("json"), serde_json::to_string(&b).expect("json"));
        let back: AttributeMap<String> = serde_json::from_str(r#"{"z":"1","a":"2","a":"3"}"#).expect("parse");
        assert_eq!(back.get("a").map(String::as_str), Some("3"));
        assert_eq!(back.keys().map(Text::as_str).collect::<Vec<_>>(), ["a", "z"]);
        assert!(serde_json::from_str::<AttributeMap<String>>("[1]").is_err());
    }
}
