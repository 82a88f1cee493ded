//! Term frequencies: how many stored source records hold each value of an attribute whose
//! exact agreement is weighed by how common the value is (`term_frequency = true` in the schema;
//! given and family names). Agreeing on a rare family name is stronger evidence than agreeing on
//! a common one.
//!
//! The exact level's weight log2(m / u) becomes log2(m / f), `f` the value's share of records
//! (Winkler's frequency-based matching, as Splink applies it): the schema's `u` of that level is
//! the share a random record's value has on average, and the difference log2(u / f) is added.
//! A young store's counts say little yet, so the difference is weighed by `total / (total + k)`
//! (`term_frequency_prior`, `k` records): a store of a few hundred records matches almost as if
//! unadjusted. The difference is its own line of the explanation (`tf:{attribute}`), after the
//! group bounds, so a capped group does not swallow it.
//!
//! A record counts once, under the values it has when it is first linked to a golden record;
//! an erasure takes its values out again. A count is statistics, not a guarantee: a crash
//! between the merge and the count leaves one record uncounted.

use crate::keys::digest_hex;
use crate::record::{Slot, SourceRecord};
use crate::schema::EntitySchema;

/// The counts a match weighs a record's values by: per schema attribute (by position), how many
/// other stored records hold the record's value (`None`: not adjusted), and how many records are
/// counted in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermCounts {
    pub counts: Vec<Option<u64>>,
    pub total: u64,
}

impl TermCounts {
    /// How many other records hold the record's value of attribute `i`, if it is adjusted.
    pub fn count(&self, i: usize) -> Option<u64> {
        self.counts.get(i).copied().flatten()
    }
}

/// What a store answers for a set of term keys: each key's count (0 when never counted) and the
/// entity type's total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermTotals {
    pub counts: Vec<u64>,
    pub total: u64,
}

/// The stored key of a value of attribute `attribute`: `{attribute}={32 hex digits}`, the first
/// 16 bytes of SHA-256 over the name and the value (no value in clear).
pub fn term_key(attribute: &str, value: &str) -> String {
    let mut key = String::with_capacity(attribute.len() + 33);
    key.push_str(attribute);
    key.push('=');
    key.push_str(&digest_hex(&[attribute, value], 16));
    key
}

/// The record's term keys: per adjusted attribute holding a value, its position in the schema
/// and its key.
pub fn term_keys(schema: &EntitySchema, record: &SourceRecord) -> Vec<(usize, String)> {
    keys_of_slots(schema, &record.slots(schema))
}

fn keys_of_slots(schema: &EntitySchema, slots: &[Slot<'_>]) -> Vec<(usize, String)> {
    schema
        .attributes
        .iter()
        .zip(slots)
        .enumerate()
        .filter(|(_, (def, _))| def.term_frequency)
        .filter_map(|(i, (def, slot))| Some((i, term_key(&def.name, slot.value?))))
        .collect()
}

/// Whether the schema adjusts any attribute.
pub fn adjusts(schema: &EntitySchema) -> bool {
    schema.attributes.iter().any(|a| a.term_frequency)
}

/// Lines a store's answer up with the schema: `keys` as [`term_keys`] gave them. `own` says the
/// record itself is among the counted ones (it is taken out of its values' counts).
pub fn lined_up(schema: &EntitySchema, keys: &[(usize, String)], totals: &TermTotals, own: bool) -> TermCounts {
    let mut counts = vec![None; schema.attributes.len()];
    let less = u64::from(own);
    for ((i, _), c) in keys.iter().zip(&totals.counts) {
        counts[*i] = Some(c.saturating_sub(less));
    }
    TermCounts { counts, total: totals.total.saturating_sub(less) }
}

/// The change (in bits) to an exact agreement's weight log2(m / u) for a value `count` other
/// records of `total` hold: log2(u / f), `f = count / total` (at least one record: the
/// candidate's), weighed by `total / (total + k)` so that it fades in as the store grows. Zero
/// while the store is empty; positive for values rarer than `u`, negative for commoner ones.
pub fn adjustment(u: f64, count: u64, total: u64, prior: f64) -> f64 {
    if !(u > 0.0 && prior >= 0.0) || total == 0 {
        return 0.0;
    }
    let n = total as f64;
    let f = (count.max(1) as f64 / n).min(1.0);
    (u / f).log2() * n / (n + prior)
}

/// Counts a batch run keeps itself, record by record in input order: what a store counting each
/// record as it is linked would answer the next record's match (the batch engine matches ahead
/// of its merges, so the store's own counts would depend on timing).
#[derive(Debug, Default)]
pub struct RunningCounts {
    counts: std::collections::HashMap<String, u64>,
    total: u64,
}

impl RunningCounts {
    /// The counts before `record` (the record not among them), then counts it.
    pub fn next(&mut self, schema: &EntitySchema, record: &SourceRecord) -> TermCounts {
        let keys = term_keys(schema, record);
        let mut counts = vec![None; schema.attributes.len()];
        for (i, key) in keys {
            let c = self.counts.entry(key).or_insert(0);
            counts[i] = Some(*c);
            *c += 1;
        }
        let out = TermCounts { counts, total: self.total };
        self.total += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_values_weigh_more_than_common_ones_and_a_young_store_barely_moves() {
        let u = 0.001;
        let rare = adjustment(u, 1, 500_000, 1000.0);
        let common = adjustment(u, 5_000, 500_000, 1000.0);
        assert!(rare > 7.0 && common < -3.0, "rare {rare}, common {common}");
        // As common as the schema says: no change.
        assert!(adjustment(u, 500, 500_000, 1000.0).abs() < 0.01);
        // A store of 100 records: a tenth of the difference at most.
        assert!(adjustment(u, 1, 100, 1000.0).abs() < 0.7);
        assert_eq!(adjustment(u, 3, 0, 1000.0), 0.0);
    }

    #[test]
    fn keys_hide_the_value_and_differ_by_attribute() {
        let a = term_key("family_name", "smith");
        assert!(a.starts_with("family_name=") && !a.contains("smith") && a.len() == "family_name=".len() + 32);
        assert_ne!(a, term_key("given_name", "smith"));
        assert_eq!(a, term_key("family_name", "smith"));
    }
}
