//! The in-process store: a real adapter of the store port, used by the batch engine, the CLI and
//! tests. One lock guards all state, so every transaction is atomic and isolated.

use super::*;
use crate::golden::GoldenStatus;
use std::sync::{Mutex, MutexGuard};

/// The state's maps hash with foldhash (randomly seeded): SipHash was 8% of `mdm dedupe`'s
/// instructions.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    sources: HashMap<SourceKey, SourceRecord>,
    goldens: HashMap<(String, String), GoldenRecord>,
    history: BTreeMap<(String, String, u64), HistoryEntry>,
    /// Block → golden ids, sorted (a small vector: most blocks hold one or two).
    index: HashMap<(String, String), Vec<String>>,
    claims: HashMap<(String, String), String>,
    reviews: HashMap<(String, String), ReviewTask>,
    outbox: BTreeMap<(i64, String), OutboxEntry>,
    /// Erased source records: the highest `source_seq` they had.
    tombstones: HashMap<SourceKey, u64>,
    suppressions: HashMap<(String, String), String>,
    receipts: HashMap<String, (u64, String)>,
}

/// Counts of what the store holds (for summaries and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryCounts {
    pub sources: usize,
    pub goldens_active: usize,
    pub goldens_merged: usize,
    pub history: usize,
    pub index_entries: usize,
    pub claims: usize,
    pub reviews: usize,
    pub outbox: usize,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Unavailable("in-process store lock poisoned".into()))
    }

    pub fn counts(&self) -> MemoryCounts {
        let Ok(s) = self.lock() else { return MemoryCounts::default() };
        MemoryCounts {
            sources: s.sources.len(),
            goldens_active: s.goldens.values().filter(|g| g.status == GoldenStatus::Active).count(),
            goldens_merged: s.goldens.values().filter(|g| matches!(g.status, GoldenStatus::MergedInto { .. })).count(),
            history: s.history.len(),
            index_entries: s.index.values().map(Vec::len).sum(),
            claims: s.claims.len(),
            reviews: s.reviews.len(),
            outbox: s.outbox.len(),
        }
    }

    /// Every active golden record of an entity type.
    pub fn active_goldens(&self, entity: &str) -> Vec<GoldenRecord> {
        let Ok(s) = self.lock() else { return Vec::new() };
        let mut v: Vec<GoldenRecord> =
            s.goldens.values().filter(|g| g.entity == entity && g.is_active()).cloned().collect();
        v.sort_by(|a, b| a.golden_id.cmp(&b.golden_id));
        v
    }

    /// Every review task.
    pub fn reviews(&self) -> Vec<ReviewTask> {
        let Ok(s) = self.lock() else { return Vec::new() };
        let mut v: Vec<ReviewTask> = s.reviews.values().cloned().collect();
        v.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        v
    }

    fn check(s: &State, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::PutGolden { golden, expect } => {
                let stored = s.goldens.get(&(golden.entity.clone(), golden.golden_id.clone()));
                let ok = match (expect, stored) {
                    (Expect::Absent, None) => true,
                    (Expect::Revision(r), Some(g)) => g.revision == *r,
                    _ => false,
                };
                if !ok {
                    return Err(StoreError::Conflict(Conflict::Golden(golden.golden_id.clone())));
                }
            }
            WriteOp::PutHistory(h) => {
                if s.history.contains_key(&(h.entity.clone(), h.golden_id.clone(), h.version)) {
                    return Err(StoreError::Conflict(Conflict::History(h.golden_id.clone(), h.version)));
                }
            }
            WriteOp::SetXref { source, .. } => {
                if !s.sources.contains_key(source) {
                    return Err(StoreError::Conflict(Conflict::MissingSource(source.to_string())));
                }
            }
            WriteOp::PutClaim { entity, key, golden_id, from } => {
                let holder = s.claims.get(&(entity.clone(), key.clone()));
                let ok = holder == Some(golden_id) || holder == from.as_ref();
                if !ok {
                    return Err(StoreError::Conflict(Conflict::Claim(
                        crate::blocking::BlockKey::name_of(key).to_owned(),
                    )));
                }
            }
            WriteOp::PutTombstone { source, seq, .. } => {
                let stored = s.sources.get(source).map(|r| r.seq).or_else(|| s.tombstones.get(source).copied());
                if stored.is_some_and(|st| st > *seq) {
                    return Err(StoreError::Conflict(Conflict::SourceChanged(source.to_string())));
                }
            }
            WriteOp::DeleteClaim { entity, key, holder } => {
                if s.claims.get(&(entity.clone(), key.clone())).is_some_and(|h| h != holder) {
                    return Err(StoreError::Conflict(Conflict::Claim(
                        crate::blocking::BlockKey::name_of(key).to_owned(),
                    )));
                }
            }
            WriteOp::PutIndex { .. }
            | WriteOp::DeleteIndex { .. }
            | WriteOp::PutReview(_)
            | WriteOp::PutOutbox(_)
            | WriteOp::PutSuppression { .. }
            | WriteOp::DeleteHistory { .. }
            | WriteOp::DeleteReview { .. }
            | WriteOp::DeleteOutbox { .. } => {}
        }
        Ok(())
    }

    fn apply(s: &mut State, op: WriteOp) {
        match op {
            WriteOp::PutGolden { golden, .. } => {
                s.goldens.insert((golden.entity.clone(), golden.golden_id.clone()), golden);
            }
            WriteOp::PutHistory(h) => {
                s.history.insert((h.entity.clone(), h.golden_id.clone(), h.version), h);
            }
            WriteOp::SetXref { source, golden_id } => {
                if let Some(r) = s.sources.get_mut(&source) {
                    r.golden_id = Some(golden_id);
                }
            }
            WriteOp::PutIndex { entity, key, golden_id } => {
                let ids = s.index.entry((entity, key)).or_default();
                if let Err(at) = ids.binary_search(&golden_id) {
                    ids.insert(at, golden_id);
                }
            }
            WriteOp::DeleteIndex { entity, key, golden_id } => {
                let k = (entity, key);
                if let Some(set) = s.index.get_mut(&k) {
                    if let Ok(at) = set.binary_search(&golden_id) {
                        set.remove(at);
                    }
                    if set.is_empty() {
                        s.index.remove(&k);
                    }
                }
            }
            WriteOp::PutClaim { entity, key, golden_id, .. } => {
                s.claims.insert((entity, key), golden_id);
            }
            WriteOp::PutReview(t) => {
                s.reviews.insert((t.entity.clone(), t.task_id.clone()), t);
            }
            WriteOp::PutOutbox(o) => {
                s.outbox.retain(|(_, id), _| id != &o.event_id);
                s.outbox.insert((o.created_at_ms, o.event_id.clone()), o);
            }
            WriteOp::PutSuppression { entity, key, request_id } => {
                s.suppressions.insert((entity, key), request_id);
            }
            WriteOp::PutTombstone { source, seq, .. } => {
                s.sources.remove(&source);
                s.tombstones.insert(source, seq);
            }
            WriteOp::DeleteHistory { entity, golden_id, version } => {
                s.history.remove(&(entity, golden_id, version));
            }
            WriteOp::DeleteClaim { entity, key, .. } => {
                s.claims.remove(&(entity, key));
            }
            WriteOp::DeleteReview { entity, task_id } => {
                s.reviews.remove(&(entity, task_id));
            }
            WriteOp::DeleteOutbox { event_id } => {
                s.outbox.retain(|(_, id), _| id != &event_id);
            }
        }
    }
}

impl SourceStore for MemoryStore {
    async fn put_source(&self, record: &SourceRecord, suppressed_by: &[String]) -> Result<SourceWrite, StoreError> {
        let mut s = self.lock()?;
        let entity = &record.key.entity;
        let existing = s.sources.get(&record.key);
        let stored_seq = existing.map(|e| e.seq).or_else(|| s.tombstones.get(&record.key).copied());
        if let Some(seq) = stored_seq.filter(|seq| *seq >= record.seq) {
            return Ok(SourceWrite::Stale { stored_seq: seq });
        }
        if suppressed_by.iter().any(|k| s.suppressions.contains_key(&(entity.clone(), k.clone()))) {
            return Ok(SourceWrite::Suppressed);
        }
        let golden_id = existing.and_then(|e| e.golden_id.clone());
        s.tombstones.remove(&record.key);
        let mut r = record.clone();
        r.golden_id = golden_id;
        s.sources.insert(r.key.clone(), r);
        Ok(SourceWrite::Written)
    }

    async fn get_source(&self, key: &SourceKey) -> Result<Option<SourceRecord>, StoreError> {
        Ok(self.lock()?.sources.get(key).cloned())
    }

    async fn get_sources(&self, keys: &[SourceKey]) -> Result<Vec<SourceRecord>, StoreError> {
        let s = self.lock()?;
        Ok(keys.iter().filter_map(|k| s.sources.get(k).cloned()).collect())
    }
}

impl GoldenStore for MemoryStore {
    async fn get_golden(&self, entity: &str, id: &str) -> Result<Option<GoldenRecord>, StoreError> {
        Ok(self.lock()?.goldens.get(&(entity.to_owned(), id.to_owned())).cloned())
    }

    async fn get_goldens(&self, entity: &str, ids: &[String]) -> Result<Vec<GoldenRecord>, StoreError> {
        let s = self.lock()?;
        Ok(ids.iter().filter_map(|id| s.goldens.get(&(entity.to_owned(), id.clone())).cloned()).collect())
    }

    async fn history(&self, entity: &str, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let s = self.lock()?;
        let (e, i) = (entity.to_owned(), id.to_owned());
        Ok(s.history.range((e.clone(), i.clone(), 0)..=(e, i, u64::MAX)).map(|(_, h)| h.clone()).collect())
    }
}

impl ReceiptStore for MemoryStore {
    async fn get_receipt(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.receipts.get(request_id).map(|(_, r)| r.clone()))
    }

    async fn put_receipt(&self, request_id: &str, revision: u64, receipt_json: &str) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let stored = s.receipts.get(request_id).map(|(r, _)| *r).unwrap_or(0);
        if stored + 1 != revision {
            return Err(StoreError::Conflict(Conflict::Concurrent));
        }
        s.receipts.insert(request_id.to_owned(), (revision, receipt_json.to_owned()));
        Ok(())
    }

    async fn reviews_mentioning(&self, entity: &str, golden_ids: &[String]) -> Result<Vec<ReviewTask>, StoreError> {
        let s = self.lock()?;
        let mut out: Vec<ReviewTask> = s
            .reviews
            .values()
            .filter(|t| t.entity == entity)
            .filter(|t| golden_ids.iter().any(|g| &t.golden_id == g || t.candidate_golden_ids.contains(g)))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Ok(out)
    }
}

impl LookupStore for MemoryStore {
    async fn resolve_lookups(
        &self,
        lookups: &[Lookup],
    ) -> Result<std::collections::HashMap<Lookup, String>, StoreError> {
        let s = self.lock()?;
        let mut out = std::collections::HashMap::with_capacity(lookups.len());
        for l in lookups {
            let found = match l {
                Lookup::Claim { entity, key } => s.claims.get(&(entity.clone(), key.clone())).cloned(),
                Lookup::Source(k) => s.sources.get(k).and_then(|r| r.golden_id.clone()),
            };
            if let Some(g) = found {
                out.insert(l.clone(), g);
            }
        }
        Ok(out)
    }

    async fn get_golden_refs(&self, refs: &[(String, String)]) -> Result<Vec<GoldenRecord>, StoreError> {
        let s = self.lock()?;
        Ok(refs.iter().filter_map(|r| s.goldens.get(r).cloned()).collect())
    }

    async fn history_page(
        &self,
        entity: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let s = self.lock()?;
        let (e, i) = (entity.to_owned(), id.to_owned());
        let from = (e.clone(), i.clone(), after.saturating_add(1));
        Ok(s.history.range(from..=(e, i, u64::MAX)).take(limit).map(|(_, h)| h.clone()).collect())
    }
}

impl BlockIndex for MemoryStore {
    async fn lookup(&self, entity: &str, keys: &[String], cap: usize) -> Result<Vec<BlockHit>, StoreError> {
        let s = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| {
                let set = s.index.get(&(entity.to_owned(), k.clone()));
                let n = set.map_or(0, Vec::len);
                BlockHit {
                    key: k.clone(),
                    golden_ids: if n > cap { Vec::new() } else { set.cloned().unwrap_or_default() },
                    too_common: n > cap,
                }
            })
            .collect())
    }
}

impl ClaimStore for MemoryStore {
    async fn get_claims(&self, entity: &str, keys: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        let s = self.lock()?;
        Ok(keys
            .iter()
            .filter_map(|k| s.claims.get(&(entity.to_owned(), k.clone())).map(|g| (k.clone(), g.clone())))
            .collect())
    }
}

impl ReviewStore for MemoryStore {
    async fn get_review(&self, entity: &str, task_id: &str) -> Result<Option<ReviewTask>, StoreError> {
        Ok(self.lock()?.reviews.get(&(entity.to_owned(), task_id.to_owned())).cloned())
    }
}

impl Transactor for MemoryStore {
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        let mut s = self.lock()?;
        for op in &ops {
            Self::check(&s, op)?;
        }
        for op in ops {
            Self::apply(&mut s, op);
        }
        Ok(())
    }
}

impl Outbox for MemoryStore {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.lock()?.outbox.values().take(limit).cloned().collect())
    }

    async fn delete_events(&self, event_ids: &[String]) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        s.outbox.retain(|(_, id), _| !event_ids.contains(id));
        Ok(())
    }
}
