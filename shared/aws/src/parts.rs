//! Member parts of a large golden record on DynamoDB.
//!
//! A golden record's member list, index keys and claims grow with its members (one shared
//! placeholder e-mail can gather thousands). DynamoDB items hold at most 400 KB, so past
//! [`INLINE_MEMBERS`] members or [`INLINE_KEYS`] keys the three collections leave the golden
//! record's `META` item for **part items** in its partition (`GOLD#{entity}#{id}`, sort key
//! `P#{hash}.{revision}`), read with one `Query`. The `META` item lists the part names it uses.
//!
//! Parts are immutable and named by their content (and the revision that first wrote that
//! content), so a change rewrites only the parts whose content changed:
//!
//! - members, in join order, [`MEMBERS_PER_PART`] to a part: a new member rewrites the last part;
//! - index keys and claims, each in `2^b` buckets by the key's digest (`b` grows with the count,
//!   about [`KEYS_PER_PART`] keys a bucket): a member's dozen new keys rewrite a dozen buckets.
//!
//! New parts are written ahead of the transaction that writes the `META` item naming them; parts
//! it no longer names are deleted after it. A part written by a transaction that then failed is
//! named by nothing and skipped by reads; the erasure of the golden record deletes every part of
//! the partition.

use mdm_core::golden::GoldenRecord;
use mdm_core::store::IndexKey;
use mdm_core::SourceKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Members a golden record keeps in its own item.
pub const INLINE_MEMBERS: usize = 256;
/// Index keys plus claims a golden record keeps in its own item.
pub const INLINE_KEYS: usize = 3_072;
/// Members a part holds (about 50 bytes each as JSON).
pub const MEMBERS_PER_PART: usize = 1_000;
/// Keys a bucket holds on average (about 60 bytes each: digests do not deflate).
pub const KEYS_PER_PART: usize = 500;
/// The sort-key prefix of part items.
pub const PART_PREFIX: &str = "P#";

/// What one part holds: a run of members, or one bucket of index keys or of claims.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartBody {
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "m")]
    pub members: Vec<SourceKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "k")]
    pub index_keys: Vec<IndexKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "c")]
    pub claims: Vec<IndexKey>,
}

/// A part to store: its sort key and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub sk: String,
    pub body: PartBody,
}

/// How a golden record is stored: the record for its `META` item (without the collections that
/// went to parts) and the parts it names, in order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub meta: GoldenRecord,
    pub parts: Vec<Part>,
    /// The part names the stored record listed before (the adapter deletes those no longer
    /// named once the new record is written).
    pub replaced: Vec<String>,
}

impl Layout {
    /// The sort keys the `META` item names.
    pub fn names(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.sk.clone()).collect()
    }
}

/// Whether a golden record's collections are too large for its own item.
pub fn needs_parts(g: &GoldenRecord) -> bool {
    g.members.len() > INLINE_MEMBERS || g.index_keys.len() + g.claims.len() > INLINE_KEYS
}

/// Buckets for `n` keys: a power of two, about [`KEYS_PER_PART`] keys each.
fn buckets(n: usize) -> usize {
    n.div_ceil(KEYS_PER_PART).max(1).next_power_of_two()
}

/// The bucket of a key: the low bits of the first bytes of its text's SHA-256 (uniform whatever
/// the key's name).
fn bucket_of(key: &IndexKey, buckets: usize) -> usize {
    let h = Sha256::digest(key.text().as_bytes());
    (u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize) & (buckets - 1)
}

fn content_hash(body: &PartBody) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    let h = Sha256::digest(&json);
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_of(sk: &str) -> Option<&str> {
    sk.strip_prefix(PART_PREFIX).and_then(|rest| rest.split_once('.')).map(|(h, _)| h)
}

fn bucketed(keys: &mut dyn Iterator<Item = &IndexKey>, n: usize) -> Vec<Vec<IndexKey>> {
    let b = buckets(n);
    let mut out = vec![Vec::new(); b];
    for k in keys {
        out[bucket_of(k, b)].push(k.clone());
    }
    out.retain(|v| !v.is_empty());
    out
}

/// Splits a golden record into its `META` record and parts. A part whose content one of `old`
/// (the names the stored `META` item lists) has keeps that name; new content is named with the
/// record's revision.
pub fn split(g: &GoldenRecord, old: &[String]) -> Layout {
    if !needs_parts(g) {
        return Layout { meta: g.clone(), parts: Vec::new(), replaced: old.to_vec() };
    }
    let reuse: HashMap<&str, &String> = old.iter().filter_map(|sk| hash_of(sk).map(|h| (h, sk))).collect();
    let mut bodies: Vec<PartBody> = Vec::new();
    for run in g.members.chunks(MEMBERS_PER_PART) {
        bodies.push(PartBody { members: run.to_vec(), ..Default::default() });
    }
    for bucket in bucketed(&mut g.index_keys.iter(), g.index_keys.len()) {
        bodies.push(PartBody { index_keys: bucket, ..Default::default() });
    }
    for bucket in bucketed(&mut g.claims.iter(), g.claims.len()) {
        bodies.push(PartBody { claims: bucket, ..Default::default() });
    }
    let parts = bodies
        .into_iter()
        .map(|body| {
            let hash = content_hash(&body);
            let sk = match reuse.get(hash.as_str()) {
                Some(sk) => (*sk).clone(),
                None => format!("{PART_PREFIX}{hash}.{}", g.revision),
            };
            Part { sk, body }
        })
        .collect();
    let meta = GoldenRecord {
        members: Default::default(),
        index_keys: Default::default(),
        claims: Default::default(),
        ..g.clone()
    };
    Layout { meta, parts, replaced: old.to_vec() }
}

/// Puts the collections of `parts` (in the order the `META` item names them) back into the
/// record read from the `META` item.
pub fn join(meta: &mut GoldenRecord, parts: Vec<PartBody>) {
    let mut members = Vec::new();
    let mut index_keys = Vec::new();
    let mut claims = Vec::new();
    for p in parts {
        members.extend(p.members);
        index_keys.extend(p.index_keys);
        claims.extend(p.claims);
    }
    meta.members = members.into();
    meta.index_keys = index_keys.into_iter().collect();
    meta.claims = claims.into_iter().collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> IndexKey {
        IndexKey::parse(&format!("email.exact={i:032x}"))
    }

    fn golden(members: usize, revision: u64) -> GoldenRecord {
        let keys: Vec<IndexKey> = (0..members * 3).map(key).collect();
        GoldenRecord {
            members: (0..members)
                .map(|i| SourceKey::new("customer", "shop", format!("p-{i}")))
                .collect::<Vec<_>>()
                .into(),
            index_keys: keys.iter().cloned().collect(),
            claims: keys.iter().step_by(3).cloned().collect(),
            ..mdm_core::store::conformance::golden_record("customer", "g1", revision)
        }
    }

    #[test]
    fn a_small_golden_record_stays_in_one_item() {
        let g = golden(10, 1);
        let layout = split(&g, &[]);
        assert!(layout.parts.is_empty());
        assert_eq!(layout.meta, g);
    }

    #[test]
    fn a_large_golden_record_splits_into_bounded_parts_and_joins_back() {
        let g = golden(5_000, 7);
        let layout = split(&g, &[]);
        assert!(layout.meta.members.is_empty() && layout.meta.index_keys.is_empty() && layout.meta.claims.is_empty());
        for p in &layout.parts {
            let bytes = serde_json::to_vec(&p.body).expect("json").len();
            assert!(bytes < 150_000, "a part of {bytes} bytes");
        }
        let mut back = layout.meta.clone();
        join(&mut back, layout.parts.iter().map(|p| p.body.clone()).collect());
        assert_eq!(back, g);
    }

    #[test]
    fn one_new_member_rewrites_few_parts() {
        let g = golden(5_000, 7);
        let before = split(&g, &[]);
        let mut grown = golden(5_001, 8);
        grown.claims = g.claims.clone();
        let after = split(&grown, &before.names());
        let old: std::collections::BTreeSet<String> = before.names().into_iter().collect();
        let new: Vec<&Part> = after.parts.iter().filter(|p| !old.contains(&p.sk)).collect();
        // The last member run and the buckets of the member's three new keys.
        assert!(new.len() <= 4, "{} parts rewritten of {}", new.len(), after.parts.len());
        assert!(new.iter().all(|p| p.sk.ends_with(".8")));
        assert!(after.parts.len() > 20);
    }
}
