//! The in-process store: a real adapter of the store port, used by the batch engine, the CLI and
//! tests. Two locks (shared by reads) guard its state: one the source records (with tombstones and
//! suppression markers), one everything else. A transaction holds both, taken in that order, so
//! every transaction is atomic and isolated; storing a source record holds only the first.

use super::*;
use crate::golden::GoldenStatus;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The state's maps hash with foldhash (randomly seeded): SipHash was 8% of `mdm dedupe`'s
/// instructions.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Source records and golden records are found by a 128-bit hash of their key (see [`Slots`]) and
/// kept behind a pointer (shared, so reads hand them out without a copy): the tables then hold 16-byte keys and pointers, which keeps their spare capacity
/// and their regrowth cheap on large batch runs.
#[derive(Default)]
struct State {
    slots: Slots,
    goldens: Sharded<u128, Arc<GoldenRecord>>,
    history: BTreeMap<(String, String, u64), HistoryEntry>,
    /// The blocking index, kept compact: it is most of what a large batch run holds.
    index: BlockTable,
    /// Claim → holder, keyed and numbered like the blocking index.
    claims: Sharded<[u32; 4], u32>,
    reviews: HashMap<(String, String), ReviewTask>,
    /// Label sets by entity type and position.
    labels: BTreeMap<(String, String), crate::golden::LabelSet>,
    outbox: BTreeMap<(i64, String), OutboxEntry>,
    receipts: HashMap<String, (u64, String)>,
}

/// Source records and what guards their writes.
#[derive(Default)]
struct Records {
    slots: Slots,
    sources: Sharded<u128, Arc<SourceRecord>>,
    /// Erased source records: the highest `source_seq` they had.
    tombstones: HashMap<SourceKey, u64>,
    suppressions: HashMap<(String, String), String>,
    /// Why each linked source record is a member (kept beside the records: the batch engine
    /// writes none).
    links: HashMap<SourceKey, Arc<crate::golden::Link>>,
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

/// A hash map in 64 parts, chosen by bits of the (already hashed) key: each part grows on its own,
/// so growing never holds two copies of the whole table at once. On large batch runs that
/// doubling was the peak of memory.
struct Sharded<K, V> {
    parts: Vec<HashMap<K, V>>,
}

/// A key that is itself a hash: some of its bits pick the part.
trait ShardKey: std::hash::Hash + Eq + Copy {
    fn part(&self) -> usize;
}

impl ShardKey for u128 {
    fn part(&self) -> usize {
        (self >> 122) as usize
    }
}

impl ShardKey for [u32; 4] {
    fn part(&self) -> usize {
        (self[3] >> 26) as usize
    }
}

impl<K: ShardKey, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Self { parts: (0..64).map(|_| HashMap::default()).collect() }
    }
}

impl<K: ShardKey, V> Sharded<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.parts[k.part()].get(k)
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.parts[k.part()].get_mut(k)
    }

    fn contains_key(&self, k: &K) -> bool {
        self.parts[k.part()].contains_key(k)
    }

    fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.parts[k.part()].insert(k, v)
    }

    fn entry(&mut self, k: K) -> std::collections::hash_map::Entry<'_, K, V> {
        self.parts[k.part()].entry(k)
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.parts[k.part()].remove(k)
    }

    fn len(&self) -> usize {
        self.parts.iter().map(HashMap::len).sum()
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.parts.iter().flat_map(HashMap::values)
    }

    /// Room for `n` entries in all (spread evenly over the parts, as the hashes spread them).
    fn reserve(&mut self, n: usize) {
        for part in &mut self.parts {
            part.reserve(n.div_ceil(64));
        }
    }
}

/// How much a batch run expects to store: its tables are then sized once instead of growing by
/// doubling, which moves every entry each time (at 100k records, 8 % of the merging thread's
/// time). A guess: too low, the tables grow as usual; too high, they hold room never used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub sources: usize,
    pub goldens: usize,
    /// Distinct blocks of the blocking index.
    pub blocks: usize,
    pub claims: usize,
}

/// 128-bit hashes of keys: two independently, randomly seeded 64-bit hashes. Two different keys
/// share one with a chance of about 2^-128 per pair, far below any hardware fault rate, and no
/// input can be crafted to collide (the seeds are random per store).
#[derive(Default)]
struct Slots(foldhash::quality::RandomState, foldhash::quality::RandomState);

impl Slots {
    fn of<T: std::hash::Hash + Copy>(&self, key: T) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one(key)) << 64) | u128::from(self.1.hash_one(key))
    }

    fn source(&self, k: &SourceKey) -> u128 {
        self.of((k.entity.as_str(), k.system.as_str(), k.source_id.as_str()))
    }

    fn golden(&self, entity: &str, golden_id: &str) -> u128 {
        self.of((entity, golden_id))
    }
}

/// The blocking index: block → golden ids. A block is named by the 128-bit hash of its entity and
/// key, golden ids are interned as numbers, and a block holding one golden record (most do) keeps
/// its number in the table itself: an entry takes 21 bytes instead of three strings.
#[derive(Default)]
struct BlockTable {
    slots: Slots,
    /// Block → a golden number, or (with [`LIST`] set) the index of its list in `lists`.
    blocks: Sharded<[u32; 4], u32>,
    /// Blocks holding more than one golden record: numbers, sorted.
    lists: Vec<Vec<u32>>,
    /// Unused entries of `lists`.
    free: Vec<u32>,
    /// Interned golden ids: number → id, and id → number.
    ids: Vec<Box<str>>,
    numbers: HashMap<u128, u32>,
    /// The last golden id numbered: a merge writes a dozen entries for one golden record.
    last: Option<(Box<str>, u32)>,
}

/// Marks a block value as a list index.
const LIST: u32 = 1 << 31;

impl State {
    /// The golden record holding a claim.
    fn claim(&self, entity: &str, key: &IndexKey) -> Option<&str> {
        self.claims.get(&self.index.block(entity, key)).and_then(|n| self.index.name(*n))
    }
}

impl BlockTable {
    fn block(&self, entity: &str, key: &IndexKey) -> [u32; 4] {
        let h = self.slots.of((entity, key));
        [h as u32, (h >> 32) as u32, (h >> 64) as u32, (h >> 96) as u32]
    }

    /// A golden id's number. Numbers (and list indexes) have 31 bits: two billion golden records,
    /// far more than one process can hold (about 2 KiB each).
    fn number(&mut self, golden_id: &str) -> u32 {
        if let Some((id, n)) = &self.last {
            if **id == *golden_id {
                return *n;
            }
        }
        let slot = self.slots.of(golden_id);
        let n = match self.numbers.get(&slot) {
            Some(n) => *n,
            None => {
                let n = u32::try_from(self.ids.len()).unwrap_or(LIST - 1).min(LIST - 1);
                self.ids.push(golden_id.into());
                self.numbers.insert(slot, n);
                n
            }
        };
        self.last = Some((golden_id.into(), n));
        n
    }

    fn put(&mut self, entity: &str, key: &IndexKey, golden_id: &str) {
        let block = self.block(entity, key);
        let n = self.number(golden_id);
        // One probe: most blocks are new, or already name this golden record.
        let value = match self.blocks.entry(block) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(n);
                return;
            }
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
        };
        if value & LIST != 0 {
            if let Some(list) = self.lists.get_mut((value & !LIST) as usize) {
                if let Err(at) = list.binary_search(&n) {
                    list.insert(at, n);
                }
            }
        } else if value != n {
            let list = if value < n { vec![value, n] } else { vec![n, value] };
            let at = match self.free.pop() {
                Some(at) => {
                    self.lists[at as usize] = list;
                    at
                }
                None => {
                    self.lists.push(list);
                    u32::try_from(self.lists.len() - 1).unwrap_or(0)
                }
            };
            self.blocks.insert(block, at | LIST);
        }
    }

    fn delete(&mut self, entity: &str, key: &IndexKey, golden_id: &str) {
        let block = self.block(entity, key);
        let (Some(value), Some(&n)) = (self.blocks.get(&block).copied(), self.numbers.get(&self.slots.of(golden_id)))
        else {
            return;
        };
        if value & LIST == 0 {
            if value == n {
                self.blocks.remove(&block);
            }
            return;
        }
        let at = value & !LIST;
        let Some(list) = self.lists.get_mut(at as usize) else { return };
        if let Ok(i) = list.binary_search(&n) {
            list.remove(i);
        }
        match list.as_slice() {
            [] => {
                self.blocks.remove(&block);
                self.lists[at as usize] = Vec::new();
                self.free.push(at);
            }
            [only] => {
                let only = *only;
                self.blocks.insert(block, only);
                self.lists[at as usize] = Vec::new();
                self.free.push(at);
            }
            _ => {}
        }
    }

    fn get(&self, entity: &str, key: &IndexKey) -> &[u32] {
        match self.blocks.get(&self.block(entity, key)) {
            None => &[],
            Some(v) if v & LIST != 0 => self.lists.get((v & !LIST) as usize).map_or(&[], Vec::as_slice),
            Some(v) => std::slice::from_ref(v),
        }
    }

    /// The golden id behind a number.
    fn name(&self, n: u32) -> Option<&str> {
        self.ids.get(n as usize).map(|id| &**id)
    }

    /// The golden ids behind numbers, in the order of the numbers (lookups promise no order:
    /// sorting the ids of large blocks was 3 % of a matching thread's work).
    fn names(&self, numbers: &[u32]) -> Vec<String> {
        numbers.iter().filter_map(|n| self.ids.get(*n as usize)).map(|id| String::from(&**id)).collect()
    }

    fn entries(&self) -> usize {
        self.blocks
            .values()
            .map(|v| if v & LIST != 0 { self.lists.get((v & !LIST) as usize).map_or(0, Vec::len) } else { 1 })
            .sum()
    }
}

/// Tries at taking a held lock before sleeping on it. The batch engine's store threads hold it
/// for microseconds at a time; sleeping and waking for each wait cost more than the waits
/// (16,000 context switches on 100k records, against 1,500 with spinning). With more threads
/// than cores a long spin mostly waits for a holder that is not running: 2,000 tries took 7 %
/// less CPU time than 20,000 at 100k records, with as many context switches.
const SPINS: usize = 2_000;

/// Tries after the spins that first hand the core to any other thread that can run: on a virtual
/// machine whose idle cores halt, waking a sleeping thread takes about a third of a millisecond,
/// longer than most waits for this lock.
const YIELDS: usize = 200;

/// Takes a lock: `SPINS` tries, then `YIELDS` tries that yield the core, then a wait.
fn spin<G>(try_take: impl Fn() -> Option<G>, take: impl FnOnce() -> G) -> G {
    for _ in 0..SPINS {
        if let Some(g) = try_take() {
            return g;
        }
        std::hint::spin_loop();
    }
    for _ in 0..YIELDS {
        if let Some(g) = try_take() {
            return g;
        }
        std::thread::yield_now();
    }
    take()
}

#[derive(Default)]
pub struct MemoryStore {
    /// Source records. Their own lock: the batch engine stores records on its matching threads
    /// while they and the merging thread read golden records and blocks.
    records: RwLock<Records>,
    /// Everything else. Reads share the lock: the batch engine matches on some threads while it
    /// merges on another.
    state: RwLock<State>,
    /// Term counts ([`TermStore`]) per entity type: each key's count and the total. Their own
    /// lock: counting does not wait for a merge.
    terms: parking_lot::Mutex<HashMap<String, TermTally>>,
}

/// One entity type's term counts: per key, and the total.
type TermTally = (HashMap<String, u64>, u64);

impl MemoryStore {
    /// A store with room for what a batch run expects ([`Expected`]).
    pub fn with_expected(expected: Expected) -> Self {
        let mut records = Records::default();
        records.sources.reserve(expected.sources);
        let mut state = State::default();
        state.goldens.reserve(expected.goldens);
        state.index.blocks.reserve(expected.blocks);
        state.index.numbers.reserve(expected.goldens);
        state.index.ids.reserve(expected.goldens);
        state.claims.reserve(expected.claims);
        Self { records: RwLock::new(records), state: RwLock::new(state), terms: Default::default() }
    }

    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        Ok(spin(|| self.state.try_read(), || self.state.read()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        Ok(spin(|| self.state.try_write(), || self.state.write()))
    }

    fn records(&self) -> Result<RwLockReadGuard<'_, Records>, StoreError> {
        Ok(spin(|| self.records.try_read(), || self.records.read()))
    }

    /// Taken before [`MemoryStore::write`] where both are held.
    fn write_records(&self) -> Result<RwLockWriteGuard<'_, Records>, StoreError> {
        Ok(spin(|| self.records.try_write(), || self.records.write()))
    }

    pub fn counts(&self) -> MemoryCounts {
        let Ok(r) = self.records() else { return MemoryCounts::default() };
        let sources = r.sources.len();
        drop(r);
        let Ok(s) = self.lock() else { return MemoryCounts::default() };
        MemoryCounts {
            sources,
            goldens_active: s.goldens.values().filter(|g| g.status == GoldenStatus::Active).count(),
            goldens_merged: s.goldens.values().filter(|g| matches!(g.status, GoldenStatus::MergedInto { .. })).count(),
            history: s.history.len(),
            index_entries: s.index.entries(),
            claims: s.claims.len(),
            reviews: s.reviews.len(),
            outbox: s.outbox.len(),
        }
    }

    /// Everything the store holds that can carry a value — source records, golden records,
    /// history, review tasks, pending events, receipts — as text: what a byte search for an
    /// erased subject's values reads (index entries and claims hold digests and ids only).
    pub fn dump(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if let Ok(r) = self.records() {
            for v in r.sources.values() {
                let _ = writeln!(out, "{v:?}");
            }
        }
        if let Ok(s) = self.lock() {
            for v in s.goldens.values() {
                let _ = writeln!(out, "{v:?}");
            }
            for v in s.history.values() {
                let _ = writeln!(out, "{v:?}");
            }
            for v in s.reviews.values() {
                let _ = writeln!(out, "{v:?}");
            }
            for v in s.outbox.values() {
                let _ = writeln!(out, "{v:?}");
            }
            for (_, text) in s.receipts.values() {
                let _ = writeln!(out, "{text}");
            }
        }
        out
    }

    /// Every active golden record of an entity type.
    pub fn active_goldens(&self, entity: &str) -> Vec<GoldenRecord> {
        let Ok(s) = self.lock() else { return Vec::new() };
        let mut v: Vec<GoldenRecord> =
            s.goldens.values().filter(|g| g.entity == entity && g.is_active()).map(|g| (**g).clone()).collect();
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

    fn check(r: &Records, s: &State, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::PutGolden { golden, expect } => {
                let stored = s.goldens.get(&s.slots.golden(&golden.entity, &golden.golden_id));
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
                if !r.sources.contains_key(&r.slots.source(source)) {
                    return Err(StoreError::Conflict(Conflict::MissingSource(source.to_string())));
                }
            }
            WriteOp::PutClaim { entity, key, golden_id, from } => {
                let holder = s.claim(entity, key);
                let ok = holder == Some(&**golden_id) || holder == from.as_deref();
                if !ok {
                    return Err(StoreError::Conflict(Conflict::Claim(key.name().to_owned())));
                }
            }
            WriteOp::PutTombstone { source, seq, unlinked, .. } => {
                let record = r.sources.get(&r.slots.source(source));
                let stored = record.map(|x| x.seq).or_else(|| r.tombstones.get(source).copied());
                let linked = record.is_some_and(|x| x.golden_id.is_some());
                if stored.is_some_and(|st| st > *seq) || (*unlinked && linked) {
                    return Err(StoreError::Conflict(Conflict::SourceChanged(source.to_string())));
                }
            }
            WriteOp::ReleaseHeld { record, seq } => {
                let stored = r.sources.get(&r.slots.source(&record.key));
                if !stored.is_some_and(|x| x.seq == *seq && x.held) {
                    return Err(StoreError::Conflict(Conflict::SourceChanged(record.key.to_string())));
                }
            }
            WriteOp::DeleteClaim { entity, key, holder } => {
                if s.claim(entity, key).is_some_and(|h| h != holder) {
                    return Err(StoreError::Conflict(Conflict::Claim(key.name().to_owned())));
                }
            }
            WriteOp::CheckUnsuppressed { entity, key } => {
                if r.suppressions.contains_key(&(entity.clone(), key.clone())) {
                    return Err(StoreError::Conflict(Conflict::Suppressed));
                }
            }
            WriteOp::PutIndex { .. }
            | WriteOp::DeleteIndex { .. }
            | WriteOp::PutLabels(_)
            | WriteOp::PutReview(_)
            | WriteOp::PutOutbox(_)
            | WriteOp::PutSuppression { .. }
            | WriteOp::DeleteHistory { .. }
            | WriteOp::DeleteReview { .. }
            | WriteOp::DeleteOutbox { .. } => {}
        }
        Ok(())
    }

    fn apply(r: &mut Records, s: &mut State, op: WriteOp) {
        match op {
            WriteOp::PutGolden { golden, .. } => {
                let slot = s.slots.golden(&golden.entity, &golden.golden_id);
                s.goldens.insert(slot, golden);
            }
            WriteOp::PutHistory(h) => {
                s.history.insert((h.entity.clone(), h.golden_id.clone(), h.version), *h);
            }
            WriteOp::SetXref { source, golden_id, why } => {
                if let Some(why) = why {
                    r.links.insert(source.clone(), why);
                }
                let slot = r.slots.source(&source);
                if let Some(x) = r.sources.get_mut(&slot) {
                    // In place unless a reader still holds this version (then it keeps it).
                    Arc::make_mut(x).golden_id = Some(golden_id);
                }
            }
            WriteOp::PutIndex { entity, key, golden_id } => s.index.put(&entity, &key, &golden_id),
            WriteOp::DeleteIndex { entity, key, golden_id } => s.index.delete(&entity, &key, &golden_id),
            WriteOp::PutClaim { entity, key, golden_id, .. } => {
                let (block, n) = (s.index.block(&entity, &key), s.index.number(&golden_id));
                s.claims.insert(block, n);
            }
            WriteOp::PutReview(t) => {
                s.reviews.insert((t.entity.clone(), t.task_id.clone()), *t);
            }
            WriteOp::PutOutbox(o) => {
                s.outbox.retain(|(_, id), _| id != &o.event_id);
                s.outbox.insert((o.created_at_ms, o.event_id.clone()), *o);
            }
            WriteOp::PutSuppression { entity, key, request_id } => {
                r.suppressions.insert((entity, key), request_id);
            }
            WriteOp::PutTombstone { source, seq, .. } => {
                let slot = r.slots.source(&source);
                r.sources.remove(&slot);
                r.links.remove(&source);
                r.tombstones.insert(source, seq);
            }
            WriteOp::DeleteHistory { entity, golden_id, version } => {
                s.history.remove(&(entity, golden_id, version));
            }
            WriteOp::ReleaseHeld { record, .. } => {
                let slot = r.slots.source(&record.key);
                r.sources.insert(slot, Arc::new(*record));
            }
            WriteOp::PutLabels(l) => {
                s.labels.insert((l.entity.clone(), l.position()), *l);
            }
            WriteOp::DeleteClaim { entity, key, .. } => {
                let block = s.index.block(&entity, &key);
                s.claims.remove(&block);
            }
            WriteOp::DeleteReview { entity, task_id } => {
                s.reviews.remove(&(entity, task_id));
            }
            WriteOp::DeleteOutbox { event_id } => {
                s.outbox.retain(|(_, id), _| id != &event_id);
            }
            WriteOp::CheckUnsuppressed { .. } => {}
        }
    }
}

impl MemoryStore {
    /// Stores `record` (the caller's own copy) under the write lock: the copy, if one is needed,
    /// is made before the lock is taken, so readers on other threads do not wait for it.
    fn store_source(&self, mut record: SourceRecord, suppressed_by: &[String]) -> Result<SourceWrite, StoreError> {
        let mut s = self.write_records()?;
        let slot = s.slots.source(&record.key);
        let existing = s.sources.get(&slot);
        let stored_seq = existing.map(|e| e.seq).or_else(|| s.tombstones.get(&record.key).copied());
        if let Some(seq) = stored_seq.filter(|seq| *seq >= record.seq) {
            return Ok(SourceWrite::Stale { stored_seq: seq });
        }
        let entity = &record.key.entity;
        // A record a steward released from a hold is exempt; its new versions keep that.
        record.exempt = existing.and_then(|e| e.exempt.clone());
        if record.exempt.is_none()
            && suppressed_by.iter().any(|k| s.suppressions.contains_key(&(entity.to_string(), k.clone())))
        {
            return Ok(SourceWrite::Suppressed);
        }
        // A held version is no member of any golden record: it drops its cross-reference.
        record.golden_id = existing.filter(|_| !record.held).and_then(|e| e.golden_id.clone());
        // The generation: kept over a live version, new over nothing or a tombstone.
        record.first_seq = existing.map_or(record.seq, |e| e.first_seq);
        if record.held {
            s.links.remove(&record.key);
        }
        s.tombstones.remove(&record.key);
        s.sources.insert(slot, Arc::new(record));
        Ok(SourceWrite::Written)
    }
}

impl SourceStore for MemoryStore {
    async fn put_source(&self, record: &SourceRecord, suppressed_by: &[String]) -> Result<SourceWrite, StoreError> {
        self.store_source(record.clone(), suppressed_by)
    }

    async fn put_source_owned(
        &self,
        record: SourceRecord,
        suppressed_by: &[String],
    ) -> Result<SourceWrite, StoreError> {
        self.store_source(record, suppressed_by)
    }

    async fn get_source(&self, key: &SourceKey) -> Result<Option<Arc<SourceRecord>>, StoreError> {
        let s = self.records()?;
        Ok(s.sources.get(&s.slots.source(key)).cloned())
    }

    async fn is_suppressed(&self, entity: &str, keys: &[String]) -> Result<bool, StoreError> {
        let s = self.records()?;
        Ok(keys.iter().any(|k| s.suppressions.contains_key(&(entity.to_owned(), k.clone()))))
    }

    async fn get_sources(&self, keys: &[SourceKey]) -> Result<Vec<Arc<SourceRecord>>, StoreError> {
        let s = self.records()?;
        Ok(keys.iter().filter_map(|k| s.sources.get(&s.slots.source(k))).cloned().collect())
    }
}

impl GoldenStore for MemoryStore {
    async fn get_golden(&self, entity: &str, id: &str) -> Result<Option<GoldenRecord>, StoreError> {
        let s = self.lock()?;
        Ok(s.goldens.get(&s.slots.golden(entity, id)).map(|g| (**g).clone()))
    }

    async fn get_goldens(&self, entity: &str, ids: &[String]) -> Result<Vec<GoldenRecord>, StoreError> {
        let s = self.lock()?;
        Ok(ids.iter().filter_map(|id| s.goldens.get(&s.slots.golden(entity, id))).map(|g| (**g).clone()).collect())
    }

    async fn get_goldens_shared(&self, entity: &str, ids: &[String]) -> Result<Vec<Arc<GoldenRecord>>, StoreError> {
        let s = self.lock()?;
        Ok(ids.iter().filter_map(|id| s.goldens.get(&s.slots.golden(entity, id))).cloned().collect())
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
        let mut s = self.write()?;
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
        let r = self.records()?;
        let s = self.lock()?;
        let mut out = std::collections::HashMap::with_capacity(lookups.len());
        for l in lookups {
            let found = match l {
                Lookup::Claim { entity, key } => s.claim(entity, &IndexKey::parse(key)).map(str::to_owned),
                Lookup::Source(k) => r.sources.get(&r.slots.source(k)).and_then(|x| x.golden_id.clone()),
            };
            if let Some(g) = found {
                out.insert(l.clone(), g);
            }
        }
        Ok(out)
    }

    async fn get_link(&self, key: &SourceKey) -> Result<Option<crate::golden::Link>, StoreError> {
        Ok(self.records()?.links.get(key).map(|l| (**l).clone()))
    }

    async fn get_golden_refs(&self, refs: &[(String, String)]) -> Result<Vec<GoldenRecord>, StoreError> {
        let s = self.lock()?;
        Ok(refs.iter().filter_map(|(e, id)| s.goldens.get(&s.slots.golden(e, id))).map(|g| (**g).clone()).collect())
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

impl MemoryStore {
    /// A block as a lookup with `cap` reports it (names spelled out only when they are used).
    fn block_hit(s: &State, entity: &str, key: &IndexKey, cap: usize) -> BlockHit {
        let ids = s.index.get(entity, key);
        if ids.len() > cap {
            BlockHit { key: key.clone(), golden_ids: Vec::new(), too_common: true }
        } else {
            BlockHit::capped(key, s.index.names(ids), cap)
        }
    }
}

impl TermStore for MemoryStore {
    async fn term_counts(&self, entity: &str, keys: &[String]) -> Result<crate::terms::TermTotals, StoreError> {
        let terms = self.terms.lock();
        let Some((counts, total)) = terms.get(entity) else {
            return Ok(crate::terms::TermTotals { counts: vec![0; keys.len()], total: 0 });
        };
        let counts = keys.iter().map(|k| counts.get(k).copied().unwrap_or(0)).collect();
        Ok(crate::terms::TermTotals { counts, total: *total })
    }

    async fn count_terms(&self, entity: &str, keys: &[String], delta: i64) -> Result<(), StoreError> {
        let mut terms = self.terms.lock();
        let (counts, total) = terms.entry(entity.to_owned()).or_default();
        let apply = |c: u64| c.saturating_add_signed(delta);
        for k in keys {
            let c = apply(counts.get(k).copied().unwrap_or(0));
            if c == 0 {
                counts.remove(k);
            } else {
                counts.insert(k.clone(), c);
            }
        }
        *total = apply(*total);
        Ok(())
    }
}

impl BlockIndex for MemoryStore {
    async fn lookup(&self, entity: &str, keys: &[IndexKey], caps: &[usize]) -> Result<Vec<BlockHit>, StoreError> {
        let s = self.lock()?;
        Ok(keys.iter().enumerate().map(|(i, k)| Self::block_hit(&s, entity, k, cap_of(caps, i))).collect())
    }

    async fn add_to_blocks(
        &self,
        entity: &str,
        keys: &[IndexKey],
        golden_id: &str,
        cap: usize,
    ) -> Result<Vec<BlockHit>, StoreError> {
        let mut s = self.write()?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(Self::block_hit(&s, entity, k, cap));
            s.index.put(entity, k, golden_id);
        }
        Ok(out)
    }
}

impl ClaimStore for MemoryStore {
    async fn get_claims(&self, entity: &str, keys: &[IndexKey]) -> Result<BTreeMap<IndexKey, String>, StoreError> {
        let s = self.lock()?;
        Ok(keys.iter().filter_map(|k| s.claim(entity, k).map(|g| (k.clone(), g.to_owned()))).collect())
    }
}

impl ReviewStore for MemoryStore {
    async fn get_review(&self, entity: &str, task_id: &str) -> Result<Option<ReviewTask>, StoreError> {
        Ok(self.lock()?.reviews.get(&(entity.to_owned(), task_id.to_owned())).cloned())
    }

    async fn review_backlog(&self, entity: &str) -> Result<super::ReviewBacklog, StoreError> {
        let s = self.lock()?;
        let open = s.reviews.values().filter(|t| t.entity == entity && t.status == crate::golden::ReviewStatus::Open);
        let (count, oldest) = open.fold((0u64, None::<i64>), |(n, o), t| {
            (n + 1, Some(o.map_or(t.created_at_ms, |o| o.min(t.created_at_ms))))
        });
        Ok(super::ReviewBacklog { open: count, oldest_opened_ms: oldest })
    }

    async fn labels(&self, entity: &str, after: Option<&str>, limit: usize) -> Result<super::LabelPage, StoreError> {
        let s = self.lock()?;
        let mut sets: Vec<crate::golden::LabelSet> = s
            .labels
            .range((entity.to_owned(), after.unwrap_or("").to_owned())..)
            .take_while(|((e, _), _)| e == entity)
            .filter(|((_, p), _)| after.is_none_or(|a| p.as_str() > a))
            .take(limit + 1)
            .map(|(_, l)| l.clone())
            .collect();
        let more = sets.len() > limit;
        sets.truncate(limit);
        let next = if more { sets.last().map(crate::golden::LabelSet::position) } else { None };
        Ok(super::LabelPage { sets, next })
    }

    /// A scan of the records, sorted: this store holds few held records.
    async fn held_records(
        &self,
        entity: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<super::HeldPage, StoreError> {
        let r = self.records()?;
        let mut held: Vec<(String, Arc<SourceRecord>)> = r
            .sources
            .values()
            .filter(|x| x.held && x.key.entity == entity)
            .map(|x| (super::held_position(&x.key), Arc::clone(x)))
            .filter(|(p, _)| after.is_none_or(|a| p.as_str() > a))
            .collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        let more = held.len() > limit;
        held.truncate(limit);
        let next = if more { held.last().map(|(p, _)| p.clone()) } else { None };
        Ok(super::HeldPage { records: held.into_iter().map(|(_, x)| x).collect(), next })
    }

    /// Sorted on each call: this store's tasks are few (batch runs keep none).
    async fn review_queue(
        &self,
        entity: &str,
        open: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<super::ReviewPage, StoreError> {
        let s = self.lock()?;
        let mut queue: Vec<(String, &ReviewTask)> = s
            .reviews
            .values()
            .filter(|t| t.entity == entity && (t.status == crate::golden::ReviewStatus::Open) == open)
            .map(|t| (super::review_queue_position(t), t))
            .filter(|(p, _)| after.is_none_or(|a| p.as_str() > a))
            .collect();
        queue.sort_by(|a, b| a.0.cmp(&b.0));
        let more = queue.len() > limit;
        queue.truncate(limit);
        let next = if more { queue.last().map(|(p, _)| p.clone()) } else { None };
        Ok(super::ReviewPage { tasks: queue.into_iter().map(|(_, t)| t.clone()).collect(), next })
    }
}

impl Transactor for MemoryStore {
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        let mut r = self.write_records()?;
        let mut s = self.write()?;
        for op in &ops {
            Self::check(&r, &s, op)?;
        }
        for op in ops {
            Self::apply(&mut r, &mut s, op);
        }
        Ok(())
    }
}

impl Outbox for MemoryStore {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.lock()?.outbox.values().take(limit).cloned().collect())
    }

    async fn delete_events(&self, event_ids: &[String]) -> Result<(), StoreError> {
        let mut s = self.write()?;
        s.outbox.retain(|(_, id), _| !event_ids.contains(id));
        Ok(())
    }

    /// Every pending event about them: this store keeps events apart from history.
    async fn pending_events_of(&self, entity: &str, golden_ids: &[String]) -> Result<Vec<OutboxEntry>, StoreError> {
        let s = self.lock()?;
        let about = |o: &&OutboxEntry| {
            o.event.entity_type() == Some(entity)
                && o.event.golden_id().is_some_and(|g| golden_ids.iter().any(|i| i == g))
        };
        Ok(s.outbox.values().filter(about).cloned().collect())
    }
}

/// Each outbox entry is an item of its own, named by its event id.
impl crate::publish::EventItems for MemoryStore {
    async fn events_in(&self, item: &crate::publish::EventItem) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
        let s = self.lock()?;
        Ok(s.outbox.iter().find(|((_, id), _)| *id == item.0).map(|(_, e)| vec![e.clone()]))
    }

    async fn unpublished(&self, before_ms: i64, limit: usize) -> Result<Vec<crate::publish::EventItem>, StoreError> {
        let s = self.lock()?;
        Ok(s.outbox
            .values()
            .filter(|e| e.created_at_ms < before_ms)
            .take(limit)
            .map(|e| (e.event_id.clone(), String::new()))
            .collect())
    }

    async fn mark_delivered(&self, items: &[crate::publish::EventItem]) -> Result<(), StoreError> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        self.delete_events(&ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockTable, IndexKey};

    #[test]
    fn blocks_grow_into_lists_and_shrink_back() {
        let mut t = BlockTable::default();
        let (k, other) = (IndexKey::parse("k"), IndexKey::parse("other"));
        // A block's ids come in no particular order.
        let names = |t: &BlockTable, key: &IndexKey| {
            let mut ids = t.names(t.get("customer", key));
            ids.sort();
            ids
        };
        t.put("customer", &k, "g2");
        assert_eq!(names(&t, &k), ["g2"]);
        t.put("customer", &k, "g2");
        t.put("customer", &k, "g1");
        t.put("customer", &k, "g3");
        assert_eq!(names(&t, &k), ["g1", "g2", "g3"]);
        assert!(t.get("product", &k).is_empty(), "blocks are per entity type");
        t.delete("customer", &k, "g2");
        t.delete("customer", &k, "g9");
        assert_eq!(names(&t, &k), ["g1", "g3"]);
        t.delete("customer", &k, "g1");
        assert_eq!(names(&t, &k), ["g3"]);
        assert_eq!(t.free.len(), 1, "a block back to one golden record gives its list back");
        t.put("customer", &other, "g1");
        t.put("customer", &other, "g4");
        assert_eq!(t.free.len(), 0, "the freed list is reused");
        t.delete("customer", &k, "g3");
        assert!(t.get("customer", &k).is_empty());
        assert_eq!(t.entries(), 2);
    }
}
