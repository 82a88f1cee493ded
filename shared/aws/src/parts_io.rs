//! The DynamoDB side of golden-record parts: read with the `META` item, written ahead of the
//! transaction, replaced ones deleted after it.

use super::*;
use crate::parts::{self, PartBody, PART_PREFIX};

/// The part names a golden record's `META` item lists.
fn part_names(item: &Item) -> Vec<String> {
    match item.get("parts") {
        Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}

impl DynamoStore {
    /// A golden record from its `META` item, with its parts read (one `Query` of the partition's
    /// `P#` items) when it has any. A part missing from an eventually consistent read (a replica
    /// behind a newer `META` item) makes it read the `META` item again strongly.
    pub(super) async fn golden_from(&self, item: Item, consistent: bool) -> Result<GoldenRecord, StoreError> {
        let mut item = item;
        let mut consistent = consistent;
        loop {
            let mut g: GoldenRecord = parse(&item)?;
            let names = part_names(&item);
            let pk = keys::golden_item_key(&g.entity, &g.golden_id);
            if names.is_empty() {
                self.remember_parts(pk, g.revision, names);
                return Ok(g);
            }
            let mut found: HashMap<String, Item> = HashMap::new();
            for part in self.query(pk.clone(), Some(PART_PREFIX), None, consistent).await? {
                if let Some(sk) = part.get("sk").and_then(|v| v.as_s().ok()) {
                    found.insert(sk.clone(), part);
                }
            }
            let bodies: Option<Vec<PartBody>> =
                names.iter().map(|n| found.get(n).map(parse)).collect::<Option<_>>().transpose()?;
            match bodies {
                Some(bodies) => {
                    parts::join(&mut g, bodies);
                    self.remember_parts(pk, g.revision, names);
                    return Ok(g);
                }
                None if !consistent => {
                    consistent = true;
                    match self.get(golden_key(&g.entity, &g.golden_id), true).await? {
                        Some(again) => item = again,
                        None => return Err(StoreError::Unavailable("golden record vanished while read".into())),
                    }
                }
                None => return Err(StoreError::Corrupt(format!("golden record {} misses a part", g.golden_id))),
            }
        }
    }

    fn remember_parts(&self, pk: String, revision: u64, names: Vec<String>) {
        if let Ok(mut seen) = self.parts_seen.lock() {
            if seen.len() >= PARTS_SEEN {
                seen.clear();
            }
            seen.insert(pk, (revision, names));
        }
    }

    /// The part names the stored `META` item at `revision` lists: remembered from the read the
    /// plan was made from, or read (names only).
    async fn stored_parts(&self, golden: &GoldenRecord, expect: &Expect) -> Result<Vec<String>, StoreError> {
        let Expect::Revision(r) = expect else { return Ok(Vec::new()) };
        let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
        if let Some((rev, names)) = self.parts_seen.lock().ok().and_then(|s| s.get(&pk).cloned()) {
            if rev == *r {
                return Ok(names);
            }
        }
        let item = self.get(golden_key(&golden.entity, &golden.golden_id), true).await?;
        Ok(item.as_ref().map(part_names).unwrap_or_default())
    }

    /// Splits every golden record the transaction writes, and writes the parts that are new
    /// (one `PutItem` each, at half a transaction's write units).
    pub(super) async fn write_parts<'a>(&self, items: &'a [WriteOp]) -> Result<Layouts<'a>, StoreError> {
        let mut layouts = Layouts::new();
        for op in items {
            let WriteOp::PutGolden { golden, expect } = op else { continue };
            let old = self.stored_parts(golden, expect).await?;
            if old.is_empty() && !parts::needs_parts(golden) {
                continue;
            }
            let layout = parts::split(golden, &old);
            let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
            for part in layout.parts.iter().filter(|p| !old.contains(&p.sk)) {
                let item: Item = HashMap::from([
                    ("pk".into(), s(pk.clone())),
                    ("sk".into(), s(part.sk.clone())),
                    ("kind".into(), s("golden_part")),
                    ("data".into(), data(&part.body)?),
                ]);
                self.put_item(item).await?;
            }
            layouts.insert((golden.entity.as_str(), golden.golden_id.as_str()), layout);
        }
        Ok(layouts)
    }

    /// After the transaction: the parts the written records no longer name are deleted, every
    /// part of an erased record (also ones a failed transaction left), and the names remembered.
    pub(super) async fn parts_written(&self, items: &[WriteOp], layouts: &Layouts<'_>) -> Result<(), StoreError> {
        for op in items {
            let WriteOp::PutGolden { golden, .. } = op else { continue };
            let pk = keys::golden_item_key(&golden.entity, &golden.golden_id);
            let (names, old) = match layouts.get(&(golden.entity.as_str(), golden.golden_id.as_str())) {
                Some(l) => (l.names(), l.replaced.clone()),
                None => (Vec::new(), Vec::new()),
            };
            let mut gone: Vec<String> = old.into_iter().filter(|o| !names.contains(o)).collect();
            if golden.status == mdm_core::GoldenStatus::Erased {
                for part in self.query(pk.clone(), Some(PART_PREFIX), None, true).await? {
                    if let Some(sk) = part.get("sk").and_then(|v| v.as_s().ok()) {
                        if !gone.contains(sk) {
                            gone.push(sk.clone());
                        }
                    }
                }
            }
            for sk in gone {
                self.delete(pk.clone(), sk).await?;
            }
            self.remember_parts(pk, golden.revision, names);
        }
        Ok(())
    }

    async fn put_item(&self, item: Item) -> Result<(), StoreError> {
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
