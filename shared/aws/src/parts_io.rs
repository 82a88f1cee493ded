//! The DynamoDB side of golden-record parts: read with the `META` item; new parts written in the
//! transaction that writes the `META` item naming them (ahead of it only when they do not fit);
//! replaced ones, and parts nothing names, deleted after a later write.

use super::*;
use crate::parts::{self, Layout, PartBody, PART_PREFIX};
use tracing::warn;

/// Reads of a golden record that a concurrent write keeps changing under it, before it gives up
/// (the caller retries later).
const PART_READS: usize = 5;
/// New parts go in the transaction when it then holds at most this many bytes of them
/// (`TransactWriteItems` takes 4 MB in all).
const PARTS_IN_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;

/// The part names a golden record's `META` item lists.
fn part_names(item: &Item) -> Vec<String> {
    match item.get("parts") {
        Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The revision a part was first written with (its name's suffix).
fn part_revision(sk: &str) -> Option<u64> {
    sk.rsplit_once('.').and_then(|(_, r)| r.parse().ok())
}

fn revision_of(item: &Item) -> Option<u64> {
    item.get("revision").and_then(|v| v.as_n().ok()).and_then(|r| r.parse().ok())
}

/// What a store remembers of a golden record's stored layout.
#[derive(Debug, Clone, Default)]
pub(super) struct SeenParts {
    pub revision: u64,
    pub names: Vec<String>,
    /// Parts found in the partition that the `META` item at `revision` does not name, written
    /// with a revision not above it: left by a transaction that failed, or by a deletion that
    /// failed. The next write of the record deletes them.
    pub orphans: Vec<String>,
}

impl DynamoStore {
    /// A golden record from its `META` item, with its parts read (one `Query` of the partition's
    /// `P#` items) when it has any. A part missing (a replica behind, or a write that replaced
    /// it meanwhile) makes it read the `META` item and the parts again strongly; only a record
    /// that misses a part at one revision read strongly twice is corrupt.
    pub(super) async fn golden_from(&self, item: Item, consistent: bool) -> Result<GoldenRecord, StoreError> {
        let mut item = item;
        let mut consistent = consistent;
        let mut missing_at: Option<u64> = None;
        for _ in 0..PART_READS {
            let mut g: GoldenRecord = parse(&item)?;
            let names = part_names(&item);
            let pk = keys::golden_item_key(&g.entity, &g.golden_id);
            if names.is_empty() {
                self.remember_parts(pk, SeenParts { revision: g.revision, ..Default::default() });
                return Ok(g);
            }
            let mut found: HashMap<String, Item> = HashMap::new();
            for part in self.query(pk.clone(), SortKeys::Prefix(PART_PREFIX), None, consistent).await? {
                if let Some(sk) = part.get("sk").and_then(|v| v.as_s().ok()) {
                    found.insert(sk.clone(), part);
                }
            }
            let bodies: Option<Vec<PartBody>> =
                names.iter().map(|n| found.get(n).map(parse)).collect::<Option<_>>().transpose()?;
            if let Some(bodies) = bodies {
                parts::join(&mut g, bodies);
                let orphans = found
                    .keys()
                    .filter(|sk| !names.contains(sk) && part_revision(sk).is_some_and(|r| r <= g.revision))
                    .cloned()
                    .collect();
                self.remember_parts(pk, SeenParts { revision: g.revision, names, orphans });
                return Ok(g);
            }
            if consistent && missing_at == Some(g.revision) {
                return Err(StoreError::Corrupt(format!("golden record {} misses a part", g.golden_id)));
            }
            if consistent {
                missing_at = Some(g.revision);
            }
            consistent = true;
            match self.get(golden_key(&g.entity, &g.golden_id), true).await? {
                Some(again) => item = again,
                None => return Err(StoreError::Unavailable("golden record vanished while read".into())),
            }
        }
        Err(StoreError::Unavailable("golden record kept changing while read".into()))
    }

    fn remember_parts(&self, pk: String, seen: SeenParts) {
        if let Ok(mut all) = self.parts_seen.lock() {
            if all.len() >= PARTS_SEEN {
                all.clear();
            }
            all.insert(pk, seen);
        }
    }

    /// What the stored `META` item at `revision` names: remembered from the read the plan was
    /// made from, or read (names only).
    async fn stored_parts(&self, golden: &GoldenRecord, expect: &Expect) -> Result<SeenParts, StoreError> {
        let Expect::Revision(r) = expect else { return Ok(SeenParts::default()) };
        let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
        if let Some(seen) = self.parts_seen.lock().ok().and_then(|s| s.get(&pk).cloned()) {
            if seen.revision == *r {
                return Ok(seen);
            }
        }
        let item = self.get(golden_key(&golden.entity, &golden.golden_id), true).await?;
        let names = item.as_ref().map(part_names).unwrap_or_default();
        Ok(SeenParts { revision: item.as_ref().and_then(revision_of).unwrap_or(*r), names, orphans: Vec::new() })
    }

    /// How every golden record the transaction writes is stored, and the items of its new parts.
    pub(super) async fn plan_parts<'a>(&self, items: &'a [WriteOp]) -> Result<(Layouts<'a>, Vec<Item>), StoreError> {
        let mut layouts = Layouts::new();
        let mut new_parts = Vec::new();
        for op in items {
            let WriteOp::PutGolden { golden, expect } = op else { continue };
            let seen = self.stored_parts(golden, expect).await?;
            if seen.names.is_empty() && seen.orphans.is_empty() && !parts::needs_parts(golden) {
                continue;
            }
            let mut layout = parts::split(golden, &seen.names);
            layout.replaced.extend(seen.orphans.iter().filter(|o| !seen.names.contains(o)).cloned());
            let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
            for part in layout.parts.iter().filter(|p| !seen.names.contains(&p.sk)) {
                new_parts.push(HashMap::from([
                    ("pk".into(), s(pk.clone())),
                    ("sk".into(), s(part.sk.clone())),
                    ("kind".into(), s("golden_part")),
                    ("data".into(), data(&part.body)?),
                ]));
            }
            layouts.insert((golden.entity.as_str(), golden.golden_id.as_str()), layout);
        }
        Ok((layouts, new_parts))
    }

    /// Whether new parts fit in the transaction beside its `ops` (by items and bytes).
    pub(super) fn parts_fit(ops: usize, parts: &[Item]) -> bool {
        let bytes: usize = parts.iter().map(capacity::item_size).sum();
        ops + parts.len() <= MAX_TRANSACTION_ITEMS && bytes <= PARTS_IN_TRANSACTION_BYTES
    }

    /// New parts that do not fit in the transaction, written ahead of it (one `PutItem` each):
    /// a transaction that then fails leaves them unnamed, for the next write to delete.
    pub(super) async fn put_parts(&self, parts: Vec<Item>) -> Result<(), StoreError> {
        for item in parts {
            self.put_item(item).await?;
        }
        Ok(())
    }

    /// The new parts as transaction items (no condition: a part's name is its content).
    pub(super) fn part_puts(&self, parts: Vec<Item>) -> Result<Vec<TransactWriteItem>, StoreError> {
        parts
            .into_iter()
            .map(|item| {
                let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(build_err)?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// After the transaction: the parts the written records no longer name (and unnamed ones
    /// seen when they were read) are deleted, every part of an erased record, and the names
    /// remembered. Best effort: a part left is unnamed, and the next write deletes it.
    pub(super) async fn parts_written(&self, items: &[WriteOp], layouts: &Layouts<'_>) {
        for op in items {
            let WriteOp::PutGolden { golden, .. } = op else { continue };
            let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
            let (names, old) = match layouts.get(&(golden.entity.as_str(), golden.golden_id.as_str())) {
                Some(l) => (l.names(), l.replaced.clone()),
                None => (Vec::new(), Vec::new()),
            };
            let mut gone: Vec<String> = old.into_iter().filter(|o| !names.contains(o)).collect();
            let mut left = Vec::new();
            if golden.status == mdm_core::GoldenStatus::Erased {
                match self.query(pk.clone(), SortKeys::Prefix(PART_PREFIX), None, true).await {
                    Ok(found) => {
                        for part in found {
                            if let Some(sk) = part.get("sk").and_then(|v| v.as_s().ok()) {
                                if !gone.contains(sk) {
                                    gone.push(sk.clone());
                                }
                            }
                        }
                    }
                    Err(e) => {
                        warn!(golden_id = %golden.golden_id, error = %e, "reading an erased record's parts failed")
                    }
                }
            }
            for sk in gone {
                if let Err(e) = self.delete(pk.clone(), sk.clone()).await {
                    warn!(golden_id = %golden.golden_id, error = %e, "deleting a replaced part failed; the next write deletes it");
                    left.push(sk);
                }
            }
            self.remember_parts(pk, SeenParts { revision: golden.revision, names, orphans: left });
        }
    }

    pub(super) async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.count(&self.counts.update_item);
        meter().request("PutItem");
        meter().write("PutItem", &[Write::Put(&item)], false);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable("PutItem"))?;
        Ok(())
    }
}

/// How each golden record a transaction writes is stored: by entity and golden id.
pub(super) type Layouts<'a> = HashMap<(&'a str, &'a str), Layout>;
