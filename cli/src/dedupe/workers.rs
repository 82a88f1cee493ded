//! The batch engine's threads, one per core. Each in turn reads a batch of rows (under a lock, in
//! input order), prepares and matches its records against the store as it is then, and leaves the
//! decisions ready; whichever thread finds the merging free merges every batch that is ready, in
//! input order, one record at a time. No thread waits for another to hand it work, so the cores
//! stay busy without the sleeping and waking (or yielding) of a pipeline of stages.
//!
//! The result is the one a single thread gives, record for record: a decision is made again when
//! a merge after the ones its match saw wrote something the match read ([`Touched`]).

use super::reading::{self, Prepared, Reading, Row};
use super::survivors::Survivors;
use mdm_core::hub::{Hub, MergeReport, Touched};
use mdm_core::matching::MatchResult;
use mdm_core::plan::MergeOutcome;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{IndexKey, SourceWrite};
use mdm_core::terms::{RunningCounts, TermCounts};
use mdm_core::{SchemaRegistry, SourceKey};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

/// Batches a thread may read ahead of the merges (counting the ones being matched and the ones
/// waiting to merge). The further ahead a match runs, the likelier a merge since touched what it
/// read and the decision is made again.
pub const LOOKAHEAD: u64 = 8;

/// Batches a thread may read and prepare ahead of the merges: preparing a record does not
/// depend on the store, so a thread that may not match further ahead prepares instead.
const PREPARE_AHEAD: u64 = 32;

/// A record matched ahead of its merge, with what the match read.
pub struct Matched {
    file_index: usize,
    record_id: String,
    key: SourceKey,
    result: MatchResult,
    /// [`Touched`] hashes of the blocks and golden records the match read.
    reads: Vec<u64>,
    /// Merges complete when the match began: it saw every write of those, and perhaps part of
    /// the ones after.
    merged_before: u64,
    /// The term counts the match used (a decision made again uses them too).
    terms: TermCounts,
}

/// Decides what a record belongs to against the store as it is, noting what the decision read,
/// and then stores the record (ingest).
pub async fn match_one(
    hub: &Hub<MemoryStore>,
    merged: &AtomicU64,
    shown: &[String],
    prepared: Prepared,
) -> Result<Matched, String> {
    let Prepared { file_index, line, record_id, record, terms } = prepared;
    // Matching reads golden records only, so the record is matched first and then handed to the
    // store, which keeps it without a copy; its merge comes after both.
    let merged_before = merged.load(Ordering::Acquire);
    let result = hub.match_record_counted(&record, terms.clone()).await.map_err(|e| e.to_string())?;
    let entity = record.key.entity.as_str();
    // A block the match skipped as too full stays so while merges only add to it.
    let too_full = |name: &str| result.blocking.too_common.iter().any(|n| n == name);
    let keys = hub.registry().get(entity).map(|schema| mdm_core::blocking::keys_of(schema, &record));
    let mut reads: Vec<u64> = Vec::with_capacity(keys.map_or(0, <[_]>::len) + result.candidates.len());
    if let Some(keys) = keys {
        reads.extend(keys.iter().map(|k| {
            let key = IndexKey::from(k);
            if too_full(k.name()) {
                Touched::full_block(entity, &key)
            } else {
                Touched::block(entity, &key)
            }
        }));
    }
    reads.extend(result.candidates.iter().map(|c| Touched::golden(entity, &c.golden_id)));
    let key = record.key.clone();
    if hub.ingest_owned(*record).await.map_err(|e| e.to_string())? != SourceWrite::Written {
        let file = shown.get(file_index).map_or("input", String::as_str);
        return Err(format!("{file}: line {line}: record id repeats an earlier record"));
    }
    Ok(Matched { file_index, record_id, key, result, reads, merged_before, terms })
}

/// Merges decisions made ahead, in input order. A decision is made again when a merge after the
/// ones its match saw wrote a block or golden record it read ([`Touched`]); the result is then the
/// one a single thread, matching and merging each record in turn, gives.
pub struct Merger {
    hub: Arc<Hub<MemoryStore>>,
    /// Merges complete, for the matches.
    pub merged: Arc<AtomicU64>,
    /// Per slot of a table of [`Touched`] hashes (folded): the last merge that wrote one. Two
    /// hashes may share a slot; that only remakes a decision that was sound.
    last_touch: Vec<u32>,
    /// Decisions made again.
    pub remade: usize,
}

impl Merger {
    const SLOT_BITS: u32 = 20;

    pub fn new(hub: Arc<Hub<MemoryStore>>) -> Self {
        Self { hub, merged: Arc::new(AtomicU64::new(0)), last_touch: vec![0; 1 << Self::SLOT_BITS], remade: 0 }
    }

    fn slot(hash: u64) -> usize {
        (hash >> (64 - Self::SLOT_BITS)) as usize
    }

    /// Whether a merge after the first `merged_before` wrote something `reads` names.
    fn stale(&self, reads: &[u64], merged_before: u64) -> bool {
        reads.iter().any(|h| u64::from(self.last_touch[Self::slot(*h)]) > merged_before)
    }

    /// Merges the next record in input order.
    async fn merge(&mut self, m: Matched) -> Result<MergeReport, String> {
        let report = if self.stale(&m.reads, m.merged_before) {
            self.remade += 1;
            self.hub.process_counted(&m.key, m.terms).await
        } else {
            self.hub.merge_decision(&m.key, m.result, None, true).await
        }
        .map_err(|e| e.to_string())?;
        let merge = self.merged.load(Ordering::Relaxed) + 1;
        let at = u32::try_from(merge).unwrap_or(u32::MAX);
        for h in &report.touched {
            self.last_touch[Self::slot(*h)] = at;
        }
        self.merged.store(merge, Ordering::Release);
        Ok(report)
    }
}

/// Counts for the run's summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub links: usize,
    pub merges: usize,
    pub reviews: usize,
    /// Candidates scored, over all records.
    pub candidates: usize,
    /// Keys skipped as too common, over all records.
    pub too_common: usize,
}

/// What the merges leave: per record, in input order, its file (index into the inputs), its id
/// and the golden record its merge put it in (see [`Survivors`] for where it ended).
pub struct Merging {
    pub merger: Merger,
    /// The next batch to merge.
    next: u64,
    pub survivors: Survivors,
    pub processed: Vec<(u32, mdm_core::Text, u32)>,
    pub tally: Tally,
    /// The first error in input order: the run stops there.
    pub error: Option<String>,
}

impl Merging {
    pub fn new(merger: Merger, expected_rows: usize) -> Self {
        Self {
            merger,
            next: 0,
            survivors: Survivors::default(),
            processed: Vec::with_capacity(expected_rows),
            tally: Tally::default(),
            error: None,
        }
    }

    async fn merge_batch(&mut self, batch: Vec<Result<Matched, String>>) -> Result<(), String> {
        for matched in batch {
            let matched = matched?;
            let (file_index, record_id) = (matched.file_index, matched.record_id.as_str().into());
            let report = self.merger.merge(matched).await?;
            match &report.outcome {
                MergeOutcome::Linked { .. } => self.tally.links += 1,
                MergeOutcome::Merged { golden_id, merged } => {
                    self.tally.merges += 1;
                    self.survivors.merged(golden_id, merged);
                }
                _ => {}
            }
            let golden = self.survivors.number(report.outcome.golden_id());
            if report.review_task.is_some() {
                self.tally.reviews += 1;
            }
            self.tally.candidates += report.blocking.candidates;
            self.tally.too_common += report.blocking.too_common.len();
            self.processed.push((u32::try_from(file_index).unwrap_or(u32::MAX), record_id, golden));
        }
        Ok(())
    }
}

/// What the threads share.
pub struct Engine {
    hub: Arc<Hub<MemoryStore>>,
    registry: Arc<SchemaRegistry>,
    /// The input files as given (for messages).
    shown: Vec<String>,
    runtime: tokio::runtime::Handle,
    reading: Mutex<Reading>,
    /// Batches read so far.
    read: AtomicU64,
    /// Batches read and prepared, not yet matched, by number.
    prepared: Mutex<BTreeMap<u64, Vec<Result<Prepared, String>>>>,
    /// The next batch to match (changed under the lock of `prepared`).
    next_match: AtomicU64,
    /// Batches matched and not yet merged, by number.
    ready: Mutex<BTreeMap<u64, Vec<Result<Matched, String>>>>,
    merging: Mutex<Merging>,
    /// Term counts in input order (taken under the lock of `prepared`, as batches are taken to
    /// be matched).
    running: Mutex<RunningCounts>,
    /// Batches merged so far.
    merged: AtomicU64,
    /// Records merged so far (the merger's count).
    records_merged: Arc<AtomicU64>,
    /// Set once the merges reach an error: every thread stops.
    stop: AtomicBool,
    lookahead: u64,
}

/// Sets the stop flag when a thread's work ends other than by finishing the input (a panic, a
/// poisoned lock).
struct StopOnExit<'a> {
    stop: &'a AtomicBool,
    finished: bool,
}

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.stop.store(true, Ordering::Release);
        }
    }
}

/// Pauses between checks while a thread may not read further ahead: first spinning (the other
/// threads are running on their own cores, a batch merges in well under a millisecond), then
/// yielding the core, then sleeping briefly, for a machine busy with other work.
struct Backoff(u32);

impl Backoff {
    fn pause(&mut self) {
        self.0 += 1;
        if self.0 <= 64 {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        } else if self.0 <= 256 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

impl Engine {
    pub fn new(
        hub: Arc<Hub<MemoryStore>>,
        registry: Arc<SchemaRegistry>,
        shown: Vec<String>,
        reading: Reading,
        merging: Merging,
        lookahead: u64,
    ) -> Self {
        let records_merged = merging.merger.merged.clone();
        Self {
            hub,
            registry,
            shown,
            runtime: tokio::runtime::Handle::current(),
            reading: Mutex::new(reading),
            read: AtomicU64::new(0),
            prepared: Mutex::new(BTreeMap::new()),
            next_match: AtomicU64::new(0),
            ready: Mutex::new(BTreeMap::new()),
            merging: Mutex::new(merging),
            running: Mutex::new(RunningCounts::default()),
            merged: AtomicU64::new(0),
            records_merged,
            stop: AtomicBool::new(false),
            lookahead: lookahead.max(1),
        }
    }

    /// Runs the input through `threads` threads; the merges' results once every batch read is
    /// merged, or the first error in input order.
    pub fn run(self, threads: usize) -> Result<Merging, String> {
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for i in 0..threads.max(1) {
                let handle = std::thread::Builder::new()
                    .name(format!("work-{i}"))
                    .spawn_scoped(scope, || self.work())
                    .map_err(|e| format!("cannot start a thread: {e}"));
                match handle {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        self.stop.store(true, Ordering::Release);
                        return Err(e);
                    }
                }
            }
            let mut failed = false;
            for h in handles {
                failed |= h.join().is_err();
            }
            if failed {
                return Err("a batch engine thread failed".to_owned());
            }
            Ok(())
        })?;
        let read = self.reading.into_inner().map_err(|_| "the reading failed".to_owned())?.batches();
        let merging = self.merging.into_inner().map_err(|_| "the merging failed".to_owned())?;
        if let Some(e) = merging.error {
            return Err(e);
        }
        if merging.next != read {
            return Err(format!("{} of {read} batches read were merged", merging.next));
        }
        Ok(merging)
    }

    /// One thread: merges what is ready; else matches the next batch prepared, if it is close
    /// enough behind the merges; else reads and prepares another batch (preparing does not
    /// depend on the store, so it may run further ahead); until the input is read and matched.
    fn work(&self) {
        // A thread that ends early (a panic, a poisoned lock) stops the others: the batch it
        // held would never be merged, and they would wait for it.
        let mut exit = StopOnExit { stop: &self.stop, finished: false };
        let mut backoff = Backoff(0);
        loop {
            self.merge_ready();
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if let Some((number, batch)) = self.next_to_match() {
                let matched = self.match_batch(batch);
                match self.ready.lock() {
                    Ok(mut ready) => ready.insert(number, matched),
                    Err(_) => return,
                };
                backoff.0 = 0;
                continue;
            }
            let merged = self.merged.load(Ordering::Acquire);
            if self.read.load(Ordering::Acquire) < merged + PREPARE_AHEAD {
                let next = match self.reading.lock() {
                    Ok(mut reading) => {
                        let next = reading.next_batch();
                        self.read.store(reading.batches(), Ordering::Release);
                        next
                    }
                    Err(_) => return,
                };
                if let Some((number, rows)) = next {
                    let prepared = self.prepare_batch(rows);
                    match self.prepared.lock() {
                        Ok(mut p) => p.insert(number, prepared),
                        Err(_) => return,
                    };
                    backoff.0 = 0;
                    continue;
                }
                // The input is read: done once nothing read waits to be matched (a batch being
                // prepared elsewhere is matched by the thread preparing it).
                if self.prepared.lock().map_or(true, |p| p.is_empty()) {
                    break;
                }
            }
            backoff.pause();
        }
        self.merge_ready();
        exit.finished = true;
    }

    /// The next batch to match, if it is prepared and close enough behind the merges.
    fn next_to_match(&self) -> Option<(u64, Vec<Result<Prepared, String>>)> {
        let mut prepared = self.prepared.lock().ok()?;
        let (&number, _) = prepared.first_key_value()?;
        let next = self.next_match.load(Ordering::Relaxed);
        if number != next || number >= self.merged.load(Ordering::Acquire) + self.lookahead {
            return None;
        }
        self.next_match.store(next + 1, Ordering::Relaxed);
        let mut batch = prepared.remove(&number)?;
        // Batches are taken in input order, one at a time: each record gets the counts of the
        // records before it, as a store counting each record when it is linked would give.
        let mut running = self.running.lock().ok()?;
        for p in batch.iter_mut().flatten() {
            if let Some(schema) = self.registry.get(&p.record.key.entity) {
                if mdm_core::terms::adjusts(schema) {
                    p.terms = running.next(schema, &p.record);
                }
            }
        }
        Some((number, batch))
    }

    /// Prepares a batch's rows; stops at the first error.
    fn prepare_batch(&self, rows: Vec<Result<Row, String>>) -> Vec<Result<Prepared, String>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let prepared = row.and_then(|row| reading::prepare(&self.registry, row));
            let failed = prepared.is_err();
            out.push(prepared);
            if failed {
                break;
            }
        }
        out
    }

    /// Matches a batch's records; stops at the first error.
    fn match_batch(&self, batch: Vec<Result<Prepared, String>>) -> Vec<Result<Matched, String>> {
        self.runtime.block_on(async {
            let mut out = Vec::with_capacity(batch.len());
            for prepared in batch {
                let matched = match prepared {
                    Ok(prepared) => match_one(&self.hub, &self.records_merged, &self.shown, prepared).await,
                    Err(e) => Err(e),
                };
                let failed = matched.is_err();
                out.push(matched);
                if failed {
                    break;
                }
            }
            out
        })
    }

    /// Merges the batches that are ready, in order, unless another thread is merging: that one
    /// looks again for ready batches after it lets go, so none is left behind.
    fn merge_ready(&self) {
        loop {
            let mut merging = match self.merging.try_lock() {
                Ok(m) => m,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(_)) => {
                    self.stop.store(true, Ordering::Release);
                    return;
                }
            };
            // Nothing merges after the first error in input order: it is the one reported.
            if merging.error.is_some() || self.stop.load(Ordering::Acquire) {
                return;
            }
            loop {
                let next = merging.next;
                let Some(batch) = self.ready.lock().ok().and_then(|mut ready| ready.remove(&next)) else { break };
                let merged = self.runtime.block_on(merging.merge_batch(batch));
                merging.next += 1;
                self.merged.store(merging.next, Ordering::Release);
                if let Err(e) = merged {
                    merging.error = Some(e);
                    self.stop.store(true, Ordering::Release);
                    return;
                }
            }
            drop(merging);
            // A batch made ready while this thread merged, by a thread that found the merges
            // taken: either it is in `ready` now, or that thread's try came after the lock was
            // let go and it merges the batch itself.
            let next = self.merged.load(Ordering::Acquire);
            if self.stop.load(Ordering::Acquire) || !self.ready.lock().is_ok_and(|ready| ready.contains_key(&next)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_core::record::validate;
    use mdm_core::store::SourceStore;
    use serde_json::{json, Map, Value};
    use std::collections::BTreeSet;

    fn people() -> Vec<Value> {
        let rows = [
            ("crm", "c1", "Anna", "Kowalski", "anna.k@example.com", "1984-07-21", "SW1A 1AA"),
            ("crm", "c2", "Bob", "Okafor", "bob@example.org", "1962-11-03", "M1 1AE"),
            ("web", "w1", "Ana", "Kowalsky", "ANNA.K@EXAMPLE.COM", "21/07/1984", "SW1A 1AA"),
            ("crm", "c3", "Priya", "Raman", "", "1990-02-14", "B1 1BB"),
            ("web", "w2", "Robert", "Okafor", "bob@example.org", "1962-11-03", "M1 1AE"),
            ("erp", "e1", "Kowalski", "Anna", "", "1984-07-21", "SW1A 1AA"),
            ("erp", "e2", "Priya", "Ramen", "priya@example.in", "1990-02-14", "B1 1BB"),
            ("web", "w3", "Carl", "Jensen", "carl@example.dk", "1970-01-05", "EC1A 1BB"),
        ];
        rows.iter()
            .map(|(system, id, given, family, email, dob, postcode)| {
                let mut attrs = Map::new();
                for (k, v) in [
                    ("given_name", given),
                    ("family_name", family),
                    ("email", email),
                    ("date_of_birth", dob),
                    ("postcode", postcode),
                ] {
                    if !v.is_empty() {
                        attrs.insert(k.into(), Value::String((*v).into()));
                    }
                }
                json!({"entityType": "customer", "sourceSystem": system, "sourceId": id, "sourceSeq": 1,
                       "attributes": attrs})
            })
            .collect()
    }

    fn hub() -> Arc<Hub<MemoryStore>> {
        let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
        Arc::new(
            Hub::new(registry, MemoryStore::new())
                .with_config(super::super::batch_config())
                .with_clock(super::super::batch_clock),
        )
    }

    /// Each record's golden record after the whole input.
    async fn clusters(hub: &Hub<MemoryStore>, keys: &[SourceKey]) -> Vec<String> {
        let mut out = Vec::new();
        for k in keys {
            let source = hub.store().get_source(k).await.expect("read").expect("stored");
            let golden = hub.final_record("customer", source.golden_id.as_deref().expect("xref")).await.expect("read");
            out.push(golden.expect("golden").golden_id);
        }
        out
    }

    /// Every decision made before any merge (as far ahead as matching can run) still gives the
    /// clusters of matching and merging one record at a time: each stale decision is made again.
    #[tokio::test]
    async fn decisions_made_ahead_give_the_clusters_of_one_thread() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let records: Vec<mdm_core::SourceRecord> =
            people().iter().map(|r| validate(&registry, r, 0).expect("valid")).collect();
        let keys: Vec<SourceKey> = records.iter().map(|r| r.key.clone()).collect();

        let one = hub();
        for r in &records {
            one.ingest(r).await.expect("ingest");
            one.process(&r.key).await.expect("process");
        }
        let expected = clusters(&one, &keys).await;
        assert!(expected.iter().collect::<BTreeSet<_>>().len() < records.len(), "the input has duplicates");

        let ahead = hub();
        let mut merger = Merger::new(ahead.clone());
        let shown = vec!["people.csv".to_owned()];
        let mut matched = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let prepared = Prepared {
                file_index: 0,
                line: i as u64 + 2,
                record_id: record.key.source_id.to_string(),
                record: Box::new(record),
                terms: Default::default(),
            };
            matched.push(match_one(&ahead, &merger.merged, &shown, prepared).await.expect("match"));
        }
        assert!(matched.iter().all(|m| m.merged_before == 0 && m.result.decision == mdm_core::MatchDecision::New));
        for m in matched {
            merger.merge(m).await.expect("merge");
        }
        assert_eq!(clusters(&ahead, &keys).await, expected);
        assert!(merger.remade > 0, "the duplicates' decisions were stale");
        assert!(merger.remade < keys.len(), "a decision nothing touched since is kept");
    }

    /// Once a merge meets an error, no thread merges further: the first error in input order
    /// is the one the run reports.
    #[test]
    fn merges_stop_at_the_first_error_in_input_order() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let _in_runtime = runtime.enter();
        let hub = hub();
        let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
        let layout = super::super::reading::Layout {
            entity: "customer".into(),
            id_column: "id".into(),
            maps: Default::default(),
            attributes: Default::default(),
        };
        let reading = Reading::new(layout, Vec::new(), Vec::new());
        let merging = Merging::new(Merger::new(hub.clone()), 0);
        let engine = Engine::new(hub, registry, Vec::new(), reading, merging, LOOKAHEAD);
        {
            let mut ready = engine.ready.lock().expect("ready");
            ready.insert(0, vec![Err("line 302: the first".to_owned())]);
            ready.insert(1, vec![Err("line 320: a later one".to_owned())]);
        }
        engine.merge_ready();
        // Another thread's turn, with the next batch ready.
        engine.merge_ready();
        assert!(engine.stop.load(Ordering::Acquire));
        let merging = engine.merging.into_inner().expect("merging");
        assert_eq!(merging.error.as_deref(), Some("line 302: the first"));
        assert_eq!(merging.next, 1, "nothing merged after the error");
    }

    #[test]
    fn a_decision_is_stale_only_after_a_later_merge_touched_what_it_read() {
        let mut merger = Merger::new(hub());
        let (a, b) = (Touched::block("customer", &IndexKey::parse("k=1")), Touched::golden("customer", "g1"));
        merger.last_touch[Merger::slot(a)] = 3;
        assert!(merger.stale(&[b, a], 2), "merge 3 came after the two the match saw");
        assert!(!merger.stale(&[a], 3), "the match saw merge 3");
        assert!(!merger.stale(&[b], 0) || Merger::slot(a) == Merger::slot(b));
        assert!(!merger.stale(&[], 0));
    }
}
