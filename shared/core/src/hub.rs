//! The hub's use cases over the store port: ingest a record, match it, merge it. The Lambda
//! handlers and the batch engine call these; they hold no logic of their own.

use crate::blocking::keys_of;
use crate::golden::GoldenRecord;
use crate::golden::GoldenStatus;
use crate::index_keys::IndexKey;
use crate::keys::{golden_id_for, SourceKey};
use crate::matching::{decide, BlockingStats, MatchDecision, MatchResult};
use crate::plan::{plan_merge, review_task_id, GoldenState, MergeInput, MergeOutcome, MergePlan};
use crate::record::SourceRecord;
use crate::schema::{EntitySchema, SchemaRegistry};
use crate::store::{Conflict, SourceWrite, Store, StoreError, WriteOp};
use crate::terms::TermCounts;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{debug, warn};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown entity type '{0}'")]
    UnknownEntity(String),
    #[error("source record {0} does not exist (erased, or never stored)")]
    SourceMissing(String),
    #[error("gave up after {0} conflicting attempts; retry later")]
    TooManyConflicts(u32),
    #[error("source record {0} is held for review (it matched an erased subject)")]
    Held(String),
    /// A suppression marker of an erased subject matches one of the record's identifiers: it is
    /// not merged (and, not yet in a golden record, taken back in suppression mode `reject`).
    #[error("source record {0} carries an identifier of an erased subject: not merged")]
    Suppressed(String),
}

impl HubError {
    /// Worth retrying later (the message goes back to its queue), as opposed to never succeeding.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => matches!(e, StoreError::Conflict(_) | StoreError::Unavailable(_)),
            Self::TooManyConflicts(_) => true,
            Self::UnknownEntity(_) | Self::SourceMissing(_) | Self::Held(_) | Self::Suppressed(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Write history versions and why each source record is a member (the batch engine turns
    /// this off).
    pub keep_history: bool,
    /// Write change events to the outbox (off for the batch engine).
    pub emit_events: bool,
    pub max_attempts: u32,
    /// A claim naming a golden record that does not exist is left to the transaction that
    /// wrote it for this long; after that it is free to take (see
    /// [`crate::store::ClaimStore::claim_times`]). Longer than a merge handler can run.
    pub claim_lease_ms: i64,
    /// Resolve at most this many hops of merged-into pointers.
    pub max_pointer_hops: usize,
    /// Secrets of the keyed hashes that mark erased subjects' identifiers, newest first: markers
    /// are written with the first and checked under each (so a secret can be rotated).
    pub suppression_secrets: Vec<Vec<u8>>,
    /// What ingest does with a record that matches an erased subject.
    pub suppression_mode: SuppressionMode,
    /// Fill [`MergeReport::touched`] (the batch engine checks decisions made ahead against it).
    pub trace_writes: bool,
    /// Keep term counts in the store ([`crate::terms`]): a record is counted when first linked
    /// and matches read the counts. Off for a batch run, which counts in input order itself.
    pub count_terms: bool,
}

/// What ingest does with a record that matches an erased subject's suppression marker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SuppressionMode {
    /// Not stored; the caller is told (`suppressed`).
    #[default]
    Reject,
    /// Stored as held: kept for a steward's review, never matched or merged.
    Hold,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            keep_history: true,
            emit_events: true,
            max_attempts: 32,
            claim_lease_ms: 120_000,
            max_pointer_hops: 8,
            suppression_secrets: Vec::new(),
            suppression_mode: SuppressionMode::Reject,
            trace_writes: false,
            count_terms: true,
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub outcome: MergeOutcome,
    pub effective: bool,
    pub review_task: Option<String>,
    /// Detail-types of the events written to the outbox.
    pub events: Vec<&'static str>,
    pub attempts: u32,
    pub final_decision: MatchDecision,
    /// Candidate retrieval for the final decision (counts and key names only).
    pub blocking: BlockingStats,
    pub golden: GoldenRecord,
    /// What the merge wrote that a match reads, as [`Touched`] hashes: the blocks whose entries
    /// changed and the golden records written. Empty unless [`HubConfig::trace_writes`].
    pub touched: Vec<u64>,
}

/// Hashes naming what a match reads and a merge writes: a block (by its stored key) or a golden
/// record (by id). A match's result depends only on the blocks of its record's keys and on the
/// golden records it read, so a decision made while other merges ran is still the one a match
/// made after them when none of their [`MergeReport::touched`] hashes is among its reads. Two
/// names may share a hash; that only makes a decision look stale when it is not.
pub struct Touched;

impl Touched {
    fn hash(kind: u8, entity: &str, name: &str) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x6d64_6d5f_7472_6163).hash_one((kind, entity, name))
    }

    /// The block of a stored key.
    pub fn block(entity: &str, key: &IndexKey) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x6d64_6d5f_7472_6163).hash_one((b'b', entity, key))
    }

    /// The block of a stored key, read while it held too many golden records to give candidates
    /// (too common, or over its key's own limit). Adding entries keeps it so: only an entry
    /// taken out of it can change what a match reads there, and only that touches this hash.
    pub fn full_block(entity: &str, key: &IndexKey) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x6d64_6d5f_7472_6163).hash_one((b'f', entity, key))
    }

    /// A golden record.
    pub fn golden(entity: &str, golden_id: &str) -> u64 {
        Self::hash(b'g', entity, golden_id)
    }

    /// What a list of writes changes that a match reads.
    fn of<'a>(ops: impl Iterator<Item = &'a crate::store::WriteOp> + Clone) -> Vec<u64> {
        use crate::store::WriteOp;
        // Room for one hash per write, made once (most writes name a block or golden record).
        let mut out = Vec::with_capacity(ops.clone().count());
        for op in ops {
            match op {
                WriteOp::PutIndex { entity, key, .. } => out.push(Self::block(entity, key)),
                WriteOp::DeleteIndex { entity, key, .. } => {
                    out.push(Self::block(entity, key));
                    out.push(Self::full_block(entity, key));
                }
                WriteOp::PutGolden { golden, .. } => out.push(Self::golden(&golden.entity, &golden.golden_id)),
                _ => {}
            }
        }
        out
    }
}

pub struct Hub<S> {
    registry: Arc<SchemaRegistry>,
    store: S,
    config: HubConfig,
    clock: fn() -> i64,
}

/// Each key's block cap for a lookup: its own limit, if it has one below the entity's.
fn block_caps(schema: &EntitySchema, record_keys: &[crate::blocking::StoredKey]) -> Vec<usize> {
    let cap = schema.matching.max_block_size;
    record_keys.iter().map(|k| k.max_block_size().map_or(cap, |own| own.min(cap))).collect()
}

/// A block skipped as too common: over the entity's limit, or over its key's own. `keys` are
/// the stored forms of `record_keys`, in the same order.
fn too_full(record_keys: &[crate::blocking::StoredKey], keys: &[IndexKey], hit: &crate::store::BlockHit) -> bool {
    hit.too_common
        || keys
            .iter()
            .position(|k| *k == hit.key)
            .and_then(|i| record_keys.get(i))
            .and_then(crate::blocking::StoredKey::max_block_size)
            .is_some_and(|cap| hit.golden_ids.len() > cap)
}

/// How [`Hub::plan`] reads: `replica`, the source record may come from a stale replica; `heal`,
/// a retry, which looks for the golden record a lost cross-reference should name;
/// `assume_free_claims`, claims not listed by a golden record of the group are taken as free
/// (the transaction's conditions check them) instead of being read.
#[derive(Debug, Clone, Copy)]
struct PlanReads {
    replica: bool,
    heal: bool,
    assume_free_claims: bool,
    /// Rebuilding a golden record's matching state, not deciding identity: claims held by
    /// other golden records are left alone without scoring them.
    reindex: bool,
}

#[path = "apart.rs"]
mod apart;
/// `mdm reindex`: a golden record's index entries, claims and stored layout rebuilt from its
/// members.
#[path = "reindex.rs"]
mod reindex;
pub use reindex::Reindexed;

/// Removes the plan's index entries for `golden_id` (from the main transaction and the
/// follow-ups) and returns their keys. Entries under keys the plan claims for it stay: the
/// claim's condition already fails if another golden record took the key meanwhile, and an
/// adapter may write the entry with the claim (the DynamoDB adapter keeps both on one item).
fn take_index_puts(plan: &mut MergePlan, golden_id: &str) -> Vec<IndexKey> {
    use crate::store::WriteOp;
    let claimed: BTreeSet<IndexKey> = plan
        .writes
        .iter()
        .chain(plan.follow_ups.iter().flatten())
        .filter_map(|op| match op {
            WriteOp::PutClaim { key, golden_id: g, .. } if **g == *golden_id => Some(key.clone()),
            _ => None,
        })
        .collect();
    let mut keys = Vec::new();
    let mut take = |ops: &mut Vec<WriteOp>| {
        ops.retain(|op| match op {
            WriteOp::PutIndex { key, golden_id: g, .. } if **g == *golden_id && !claimed.contains(key) => {
                keys.push(key.clone());
                false
            }
            _ => true,
        })
    };
    take(&mut plan.writes);
    for chunk in plan.follow_ups.iter_mut() {
        take(chunk);
    }
    plan.follow_ups.retain(|c| !c.is_empty());
    keys
}

impl<S: Store> Hub<S> {
    pub fn new(registry: Arc<SchemaRegistry>, store: S) -> Self {
        Self { registry, store, config: HubConfig::default(), clock: crate::time::now_ms }
    }

    pub fn with_config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub(crate) fn schema(&self, entity: &str) -> Result<&EntitySchema, HubError> {
        self.registry.get(entity).ok_or_else(|| HubError::UnknownEntity(entity.to_owned()))
    }

    /// Stores a validated source record, unless a version with this or a higher `source_seq` is
    /// stored already (stale or duplicate delivery).
    pub async fn ingest(&self, record: &SourceRecord) -> Result<SourceWrite, HubError> {
        let schema = self.schema(&record.key.entity)?;
        let guards = crate::erasure::suppression_keys(schema, record, &self.config.suppression_secrets);
        self.ingest_guarded(record, &guards).await
    }

    /// [`Hub::ingest`] for a record the caller has no further use for: the store may keep it
    /// without a copy. A record with suppression keys to check goes the way of [`Hub::ingest`]
    /// (a suppressed record may be needed again, to hold it).
    pub async fn ingest_owned(&self, record: SourceRecord) -> Result<SourceWrite, HubError> {
        let schema = self.schema(&record.key.entity)?;
        let guards = crate::erasure::suppression_keys(schema, &record, &self.config.suppression_secrets);
        if !guards.is_empty() {
            return self.ingest_guarded(&record, &guards).await;
        }
        Ok(self.store.put_source_owned(record, &[]).await?)
    }

    /// [`Hub::ingest`] for a batch (a request's or a file chunk's records), in order; the results
    /// in the same order. The store writes them all and reads their suppression markers in one
    /// round ([`crate::store::SourceStore::put_sources`]); the outcome is what one `ingest` after
    /// another gives.
    pub async fn ingest_many(&self, records: &[SourceRecord]) -> Vec<Result<SourceWrite, HubError>> {
        let mut out: Vec<Option<Result<SourceWrite, HubError>>> = (0..records.len()).map(|_| None).collect();
        let mut known = Vec::with_capacity(records.len());
        let mut guards = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match self.schema(&record.key.entity) {
                Ok(schema) => {
                    known.push(i);
                    guards.push(crate::erasure::suppression_keys(schema, record, &self.config.suppression_secrets));
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let batch: Vec<(&SourceRecord, &[String])> =
            known.iter().zip(&guards).map(|(i, g)| (&records[*i], g.as_slice())).collect();
        let writes = self.store.put_sources(&batch).await;
        for ((i, g), write) in known.iter().zip(&guards).zip(writes) {
            let record = &records[*i];
            let result = match write {
                Ok(write) => self.after_source_write(record, g, write).await,
                Err(e) => Err(e.into()),
            };
            out[*i] = Some(match result {
                Ok(write) => self.migrate_if_suppressed(record, write).await,
                Err(e) => Err(e),
            });
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Err(HubError::Store(StoreError::Corrupt("an ingest without an outcome".into()))))
            })
            .collect()
    }

    async fn ingest_guarded(&self, record: &SourceRecord, guards: &[String]) -> Result<SourceWrite, HubError> {
        let write = self.ingest_checked(record, guards).await?;
        self.migrate_if_suppressed(record, write).await
    }

    async fn migrate_if_suppressed(&self, record: &SourceRecord, write: SourceWrite) -> Result<SourceWrite, HubError> {
        if matches!(write, SourceWrite::Suppressed | SourceWrite::Held) {
            // The record met a marker, perhaps one written under a superseded normaliser: with
            // the value at hand, its current form is suppressed too (docs/privacy.md). Best
            // effort: the older forms stay checked.
            if let Err(e) = crate::erasure::migrate_markers(self, record).await {
                warn!(error = %e, "suppression markers not migrated");
            }
        }
        Ok(write)
    }

    async fn ingest_checked(&self, record: &SourceRecord, guards: &[String]) -> Result<SourceWrite, HubError> {
        let write = self.store.put_source(record, guards).await?;
        self.after_source_write(record, guards, write).await
    }

    /// What a source write leads to: a redelivery's markers checked again, a suppressed record
    /// held (suppression mode `hold`).
    async fn after_source_write(
        &self,
        record: &SourceRecord,
        guards: &[String],
        write: SourceWrite,
    ) -> Result<SourceWrite, HubError> {
        match write {
            SourceWrite::Stale { stored_seq } if stored_seq == record.seq && !guards.is_empty() => {
                self.recheck_redelivery(record, guards).await
            }
            SourceWrite::Suppressed if self.config.suppression_mode == SuppressionMode::Hold => {
                let mut held = record.clone();
                held.held = true;
                Ok(match self.store.put_source(&held, &[]).await? {
                    SourceWrite::Written => SourceWrite::Held,
                    other => other,
                })
            }
            other => Ok(other),
        }
    }

    /// A redelivery of the version stored: an adapter that checks the markers after writing may
    /// have stopped in between on the first delivery, so the check runs again. A suppressed
    /// version that no golden record lists yet is taken back (a tombstone keeps its sequence);
    /// one already merged was stored and linked before the marker existed and stays a duplicate.
    async fn recheck_redelivery(&self, record: &SourceRecord, guards: &[String]) -> Result<SourceWrite, HubError> {
        let duplicate = SourceWrite::Stale { stored_seq: record.seq };
        let stored = self.store.get_source(&record.key).await?;
        let Some(stored) = stored.filter(|s| s.seq == record.seq && s.golden_id.is_none() && !s.held) else {
            return Ok(duplicate);
        };
        if !self.store.is_suppressed(&record.key.entity, guards).await? {
            return Ok(duplicate);
        }
        if self.config.suppression_mode == SuppressionMode::Hold {
            // Held: the caller does not queue it for matching, as for a record held on first delivery.
            return Ok(SourceWrite::Held);
        }
        let request_id = "suppressed-on-ingest".to_owned();
        let op = crate::store::WriteOp::PutTombstone {
            source: stored.key.clone(),
            seq: stored.seq,
            request_id,
            unlinked: true,
        };
        match self.store.transact(vec![op]).await {
            Ok(()) => Ok(SourceWrite::Suppressed),
            // Linked or replaced meanwhile: not this delivery's to take back.
            Err(e) if e.is_conflict() => Ok(duplicate),
            Err(e) => Err(e.into()),
        }
    }

    /// The record a merged-into chain starting at `id` ends at (active or erased), within the
    /// pointer-hop limit.
    pub async fn final_record(&self, entity: &str, id: &str) -> Result<Option<GoldenRecord>, HubError> {
        let mut at = id.to_owned();
        for _ in 0..=self.config.max_pointer_hops {
            match self.store.get_golden(entity, &at).await? {
                Some(g) => match &g.status {
                    GoldenStatus::MergedInto { survivor } => at = survivor.clone(),
                    _ => return Ok(Some(g)),
                },
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Follows merged-into pointers; returns active golden records by the id they were asked for.
    pub(crate) async fn resolve(
        &self,
        entity: &str,
        ids: &[String],
    ) -> Result<BTreeMap<String, Arc<GoldenRecord>>, HubError> {
        let mut out = BTreeMap::new();
        // First hop: most ids name active records, which answer for themselves.
        let mut pending: BTreeMap<String, String> = BTreeMap::new();
        for g in self.store.get_goldens_shared(entity, ids).await? {
            match &g.status {
                GoldenStatus::Active => {
                    out.insert(g.golden_id.clone(), g);
                }
                GoldenStatus::MergedInto { survivor } => {
                    pending.insert(g.golden_id.clone(), survivor.clone());
                }
                GoldenStatus::Erased => {}
            }
        }
        for _ in 1..=self.config.max_pointer_hops {
            if pending.is_empty() {
                break;
            }
            let want: Vec<String> = pending.values().cloned().collect::<BTreeSet<_>>().into_iter().collect();
            // Who asked for each record read (ids merged into one survivor ask for it together).
            let mut askers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (asked, at) in pending {
                askers.entry(at).or_default().push(asked);
            }
            let mut next = BTreeMap::new();
            for g in self.store.get_goldens_shared(entity, &want).await? {
                let Some(mut asked) = askers.remove(&g.golden_id) else { continue };
                match &g.status {
                    GoldenStatus::Active => {
                        // The last asker takes the record read, the others a copy.
                        let last = asked.pop();
                        for a in asked {
                            out.insert(a, g.clone());
                        }
                        if let Some(a) = last {
                            out.insert(a, g);
                        }
                    }
                    GoldenStatus::MergedInto { survivor } => {
                        for a in asked {
                            next.insert(a, survivor.clone());
                        }
                    }
                    GoldenStatus::Erased => {}
                }
            }
            pending = next;
        }
        Ok(out)
    }

    /// Scores a record against the store without writing anything (also used by `POST /v1/match`).
    pub async fn match_record(&self, record: &SourceRecord) -> Result<MatchResult, HubError> {
        self.match_among(record, &[], None).await
    }

    /// [`Hub::match_record`] with term counts the caller keeps (a batch run counts in input
    /// order: [`crate::terms::RunningCounts`]).
    pub async fn match_record_counted(
        &self,
        record: &SourceRecord,
        terms: TermCounts,
    ) -> Result<MatchResult, HubError> {
        self.match_among(record, &[], Some(terms)).await
    }

    /// The store's term counts for a record's values; the record itself is taken out when it is
    /// linked already (counted when it was).
    async fn term_counts(&self, schema: &EntitySchema, record: &SourceRecord) -> Result<TermCounts, HubError> {
        if !self.config.count_terms || !crate::terms::adjusts(schema) {
            return Ok(TermCounts::default());
        }
        let keys = crate::terms::term_keys(schema, record);
        let texts: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
        let totals = self.store.term_counts(&schema.entity, &texts).await?;
        Ok(crate::terms::lined_up(schema, &keys, &totals, record.golden_id.is_some()))
    }

    /// Counts a record that was just linked for the first time. Best effort: a count is
    /// statistics, and the merge it follows is done.
    async fn count_linked(&self, schema: &EntitySchema, keys: Vec<String>) {
        if let Err(e) = self.store.count_terms(&schema.entity, &keys, 1).await {
            warn!(entity = %schema.entity, error = %e, "term counts not updated");
        }
    }

    /// [`Hub::match_record`], with the golden records holding claims on the record's strong
    /// keys scored too, whether or not the index read found them: a merge deciding again after
    /// its claim failed must weigh the holder, which a replica of the index may not show yet.
    async fn match_with_claim_holders(&self, record: &SourceRecord) -> Result<MatchResult, HubError> {
        let schema = self.schema(&record.key.entity)?;
        let strong: Vec<IndexKey> = keys_of(schema, record).iter().filter(|k| k.claim()).map(IndexKey::from).collect();
        let holders: Vec<String> = if strong.is_empty() {
            Vec::new()
        } else {
            let held = self.store.get_claims(&schema.entity, &strong).await?;
            held.into_values().collect::<BTreeSet<_>>().into_iter().collect()
        };
        self.match_among(record, &holders, None).await
    }

    /// Scores a record against the golden records its blocks name and the `extra` ones.
    async fn match_among(
        &self,
        record: &SourceRecord,
        extra: &[String],
        terms: Option<TermCounts>,
    ) -> Result<MatchResult, HubError> {
        let schema = self.schema(&record.key.entity)?;
        let terms = match terms {
            Some(t) => t,
            None => self.term_counts(schema, record).await?,
        };
        let record_keys = keys_of(schema, record);
        let keys: Vec<IndexKey> = record_keys.iter().map(IndexKey::from).collect();
        let hits = self.store.lookup(&schema.entity, &keys, &block_caps(schema, record_keys)).await?;
        let mut too_common = Vec::new();
        // Every id once per block that names it: sorted, a run's length is the id's votes.
        let mut named: Vec<&str> = Vec::new();
        for h in &hits {
            if too_full(record_keys, &keys, h) {
                too_common.push(h.key.name().to_owned());
                continue;
            }
            named.extend(h.golden_ids.iter().map(String::as_str));
        }
        named.sort_unstable();
        let mut ranked: Vec<(&str, usize)> = Vec::new();
        for id in named {
            match ranked.last_mut() {
                Some((last, votes)) if *last == id => *votes += 1,
                _ => ranked.push((id, 1)),
            }
        }
        // Golden records sharing more keys first, capped.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        ranked.truncate(schema.matching.max_candidates);
        let mut ids: Vec<String> = ranked.into_iter().map(|(g, _)| g.to_owned()).collect();
        for g in extra {
            if !ids.contains(g) {
                ids.push(g.clone());
            }
        }
        let resolved = self.resolve(&schema.entity, &ids).await?;
        // Ids merged into one survivor resolve to it more than once: each record counts once.
        let mut candidates: Vec<Arc<GoldenRecord>> = Vec::with_capacity(resolved.len());
        for g in resolved.into_values() {
            if !candidates.iter().any(|c| c.golden_id == g.golden_id) {
                candidates.push(g);
            }
        }
        let own = match &record.golden_id {
            Some(id) => self.resolve(&schema.entity, std::slice::from_ref(id)).await?.into_values().next(),
            None => None,
        };
        let stats = BlockingStats { keys: keys.len(), too_common, candidates: candidates.len() };
        Ok(decide(schema, record, &candidates, own.as_deref(), stats, &terms))
    }

    /// Reads a stored source record and decides what it belongs to.
    pub async fn match_source(&self, key: &SourceKey) -> Result<(Arc<SourceRecord>, MatchResult), HubError> {
        self.match_source_at(key, None).await
    }

    /// [`Hub::match_source`] for a change known to be stored at version `seq` (a queue message
    /// names it): the store may read a replica first and the primary only when the replica is
    /// missing the record or older ([`SourceStore::get_source_at`]).
    pub async fn match_source_at(
        &self,
        key: &SourceKey,
        seq: Option<u64>,
    ) -> Result<(Arc<SourceRecord>, MatchResult), HubError> {
        let source = match seq {
            Some(seq) => self.store.get_source_at(key, seq).await?,
            None => self.store.get_source(key).await?,
        };
        let source = source.ok_or_else(|| HubError::SourceMissing(key.to_string()))?;
        if source.held {
            return Err(HubError::Held(key.to_string()));
        }
        let result = self.match_record(&source).await?;
        Ok((source, result))
    }

    /// A golden record read (a copy of it, to plan with) and its members. A held version (it
    /// carries an erased subject's identifier) is no member: the plan drops it from the list.
    pub(crate) async fn state_of(&self, golden: Arc<GoldenRecord>) -> Result<GoldenState, HubError> {
        let golden = Arc::unwrap_or_clone(golden);
        let mut members = self.store.get_sources(&golden.members).await?;
        members.retain(|m| !m.held);
        Ok(GoldenState { golden, members })
    }

    /// Builds the merge plan for a source record and a decision from the current state.
    /// With `replica`, the source record may come from a stale replica: a golden record its
    /// cross-reference leads to that no longer lists it (a steward moved it since) is a conflict,
    /// and the caller reads again; so is a golden record to join that lists it already. A new
    /// golden record's id derives from the source key, so creating one twice fails its condition.
    ///
    /// With `heal` (a retry), a record without a cross-reference is checked against the golden
    /// record it would create: an adapter that writes cross-references after its transaction
    /// may have lost one, and that golden record then lists the record already.
    async fn plan(&self, source: &SourceRecord, result: &MatchResult, reads: PlanReads) -> Result<MergePlan, HubError> {
        let PlanReads { replica, heal, assume_free_claims, reindex } = reads;
        let schema = self.schema(&source.key.entity)?;
        let current = match &source.golden_id {
            None if heal => {
                let own = golden_id_for(&source.key, source.first_seq);
                match self.resolve(&schema.entity, std::slice::from_ref(&own)).await?.into_values().next() {
                    Some(g) if g.members.contains(&source.key) => Some(self.state_of(g).await?),
                    _ => None,
                }
            }
            Some(id) => match self.resolve(&schema.entity, std::slice::from_ref(id)).await?.into_values().next() {
                Some(g) if replica && !g.members.contains(&source.key) => {
                    return Err(StoreError::Conflict(Conflict::SourceChanged(source.key.to_string())).into());
                }
                Some(g) => Some(self.state_of(g).await?),
                None => None,
            },
            None => None,
        };
        let mut targets = Vec::new();
        if let MatchDecision::Link { golden_ids } = &result.decision {
            let resolved = self.resolve(&schema.entity, golden_ids).await?;
            let mut seen: BTreeSet<String> = current.iter().map(|c| c.golden.golden_id.clone()).collect();
            for g in resolved.into_values() {
                if replica && current.is_none() && g.members.contains(&source.key) {
                    // Joined already: the replica missed the cross-reference.
                    return Err(StoreError::Conflict(Conflict::SourceChanged(source.key.to_string())).into());
                }
                if seen.insert(g.golden_id.clone()) {
                    targets.push(self.state_of(g).await?);
                }
            }
        }
        // A keep-apart constraint written since the decision was made: decide again (the new
        // decision respects it).
        let group: Vec<&GoldenRecord> = current.iter().chain(targets.iter()).map(|g| &g.golden).collect();
        if group.iter().enumerate().any(|(i, a)| group[i + 1..].iter().any(|b| a.kept_apart_from(b))) {
            return Err(StoreError::Conflict(Conflict::Golden(group[0].golden_id.clone())).into());
        }
        // Claims involved: every claim key of every member, and the losers' claims.
        let members = current.iter().chain(targets.iter()).map(|g| g.members.len()).sum::<usize>();
        let mut claim_keys: Vec<IndexKey> = Vec::with_capacity(4 * (1 + members));
        for r in std::iter::once(source)
            .chain(current.iter().flat_map(|c| c.members.iter().map(|m| &**m)))
            .chain(targets.iter().flat_map(|t| t.members.iter().map(|m| &**m)))
        {
            claim_keys.extend(keys_of(schema, r).iter().filter(|k| k.claim()).map(IndexKey::from));
        }
        for g in current.iter().chain(targets.iter()) {
            claim_keys.extend(g.golden.claims.iter().cloned());
        }
        claim_keys.sort_unstable();
        claim_keys.dedup();
        // A claim a golden record of the group lists is its own: the transaction that wrote the
        // claim listed it, and only merging that record away or erasure takes it (both change
        // the list). Only the other keys are read.
        let mut claims: BTreeMap<IndexKey, String> = BTreeMap::new();
        for g in current.iter().chain(targets.iter()) {
            for k in g.golden.claims.iter() {
                claims.insert(k.clone(), g.golden.golden_id.clone());
            }
        }
        let unknown: Vec<IndexKey> = claim_keys.into_iter().filter(|k| !claims.contains_key(k)).collect();
        if !unknown.is_empty() && !assume_free_claims {
            claims.extend(self.store.get_claims(&schema.entity, &unknown).await?);
        }
        // Holders outside the group that were merged into another golden record.
        let group: BTreeSet<&str> = current.iter().chain(targets.iter()).map(|g| g.golden.golden_id.as_str()).collect();
        let outside: Vec<String> = claims
            .values()
            .filter(|h| !group.contains(h.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut merged_holders = BTreeMap::new();
        let mut free_holders = BTreeSet::new();
        if !outside.is_empty() {
            let resolved = self.resolve(&schema.entity, &outside).await?;
            let mut absent = BTreeSet::new();
            for holder in &outside {
                match resolved.get(holder) {
                    Some(active) if active.golden_id != *holder => {
                        merged_holders.insert(holder.clone(), active.golden_id.clone());
                    }
                    Some(_) => {}
                    None => {
                        absent.insert(holder.as_str());
                    }
                }
            }
            if !absent.is_empty() {
                free_holders = self.free_claim_holders(schema, source, &claims, &absent).await?;
            }
            // A claim on one of the record's own strong keys held by an active golden record
            // the decision never scored: an index read (a replica) missed that record. Left
            // alone, the record would join or create another golden record without the claim
            // and duplicate it. The merge decides again, scoring the holder.
            let scored: BTreeSet<&str> = result.candidates.iter().map(|c| c.golden_id.as_str()).collect();
            for key in keys_of(schema, source).iter().filter(|k| k.claim() && !reindex).map(IndexKey::from) {
                let Some(holder) = claims.get(&key) else { continue };
                let Some(active) = resolved.get(holder) else { continue };
                if !group.contains(active.golden_id.as_str()) && !scored.contains(active.golden_id.as_str()) {
                    return Err(StoreError::Conflict(Conflict::Claim(key.name().to_owned())).into());
                }
            }
        }
        let reviewed = result.review_candidates();
        let review_exists = match &result.decision {
            MatchDecision::Review { .. } => {
                let holder = current
                    .as_ref()
                    .map_or_else(|| golden_id_for(&source.key, source.first_seq), |c| c.golden.golden_id.clone());
                let task = review_task_id(&schema.entity, &holder, &reviewed);
                self.store.get_review(&schema.entity, &task).await?.is_some()
            }
            MatchDecision::Link { .. } if !reviewed.is_empty() => {
                // Beside a link: the task's holder is the golden record the record joins (the
                // plan picks it among its own and the targets).
                let mut exists = false;
                for g in current.iter().chain(targets.iter()) {
                    let task = review_task_id(&schema.entity, &g.golden.golden_id, &reviewed);
                    exists |= self.store.get_review(&schema.entity, &task).await?.is_some();
                }
                exists
            }
            _ => false,
        };
        // The record must carry no erased subject's identifier when its merge takes effect.
        // (A record a steward released from a hold is exempt.)
        let guards = if source.exempt.is_some() {
            Vec::new()
        } else {
            crate::erasure::suppression_keys(schema, source, &self.config.suppression_secrets)
        };
        let mut plan = plan_merge(&MergeInput {
            schema,
            source,
            current: current.as_ref(),
            targets: &targets,
            result,
            claims: &claims,
            review_exists,
            now_ms: self.now_ms(),
            keep_history: self.config.keep_history,
            emit_events: self.config.emit_events,
            merged_holders: &merged_holders,
            free_holders: &free_holders,
            reserved: guards.len(),
        });
        let entity = &schema.entity;
        plan.writes.extend(guards.into_iter().map(|key| WriteOp::CheckUnsuppressed { entity: entity.clone(), key }));
        Ok(plan)
    }

    /// Removes the block entries a NEW merge wrote ahead for `golden_id` and did not go on with.
    /// A concurrent delivery of the same record may have created that golden record meanwhile
    /// (the same id): its entries are then written again.
    async fn take_back_entries(&self, entity: &str, keys: &[IndexKey], golden_id: &str) -> Result<(), HubError> {
        let (e, g): (Arc<str>, Arc<str>) = (entity.into(), golden_id.into());
        let ops: Vec<WriteOp> = keys
            .iter()
            .map(|k| WriteOp::DeleteIndex { entity: e.clone(), key: k.clone(), golden_id: g.clone() })
            .collect();
        for chunk in ops.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
            self.store.transact(chunk.to_vec()).await?;
        }
        if self.store.get_golden(entity, golden_id).await?.is_some() {
            self.store.add_to_blocks(entity, keys, golden_id, usize::MAX).await?;
        }
        Ok(())
    }

    /// A merge that a suppression marker stopped: the record is not merged. One that no golden
    /// record lists yet is taken back in suppression mode `reject` (a tombstone keeps its
    /// sequence), with the index entries its merge may have written ahead for the golden record
    /// it would have created; in mode `hold` it stays, unmatched. One already in a golden record
    /// stays as it is there (that golden record held its identifiers before the marker existed).
    async fn stop_suppressed(&self, key: &SourceKey) -> Result<MergeReport, HubError> {
        let stopped = HubError::Suppressed(key.to_string());
        let Some(source) = self.store.get_source(key).await? else { return Err(stopped) };
        if source.golden_id.is_some() {
            return Err(stopped);
        }
        let schema = self.schema(&key.entity)?;
        let own = golden_id_for(&source.key, source.first_seq);
        if self.store.get_golden(&schema.entity, &own).await?.is_none() {
            let entity: Arc<str> = schema.entity.as_str().into();
            let golden_id: Arc<str> = own.as_str().into();
            let leftovers: Vec<WriteOp> = keys_of(schema, &source)
                .iter()
                .map(|k| WriteOp::DeleteIndex {
                    entity: entity.clone(),
                    key: IndexKey::from(k),
                    golden_id: golden_id.clone(),
                })
                .collect();
            for chunk in leftovers.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
                self.store.transact(chunk.to_vec()).await?;
            }
        }
        if self.config.suppression_mode == SuppressionMode::Reject {
            let request_id = "suppressed-on-merge".to_owned();
            let op = WriteOp::PutTombstone { source: key.clone(), seq: source.seq, request_id, unlinked: true };
            match self.store.transact(vec![op]).await {
                // Linked or replaced meanwhile: the next delivery decides again.
                Err(e) if e.is_conflict() => {}
                other => other?,
            }
        }
        Err(stopped)
    }

    /// Of the claim holders that do not exist, those whose claims are free to take: the golden
    /// record this source record would create (an earlier attempt of this very merge wrote the
    /// claim) and claims older than the lease (a transaction that failed after writing them). A
    /// younger claim of another golden record is a transaction in flight: a conflict, so the
    /// merge tries again and then finds that golden record.
    async fn free_claim_holders(
        &self,
        schema: &EntitySchema,
        source: &SourceRecord,
        claims: &BTreeMap<IndexKey, String>,
        absent: &BTreeSet<&str>,
    ) -> Result<BTreeSet<String>, HubError> {
        let own = golden_id_for(&source.key, source.first_seq);
        let others: Vec<IndexKey> =
            claims.iter().filter(|(_, h)| absent.contains(h.as_str()) && **h != own).map(|(k, _)| k.clone()).collect();
        let taken_at =
            if others.is_empty() { BTreeMap::new() } else { self.store.claim_times(&schema.entity, &others).await? };
        let now = self.now_ms();
        for key in &others {
            if taken_at.get(key).is_some_and(|t| now - t < self.config.claim_lease_ms) {
                return Err(StoreError::Conflict(Conflict::Claim(key.name().to_owned())).into());
            }
        }
        Ok(absent.iter().map(|h| (*h).to_owned()).collect())
    }

    /// A NEW or REVIEW decision is stale when a golden record found under the record's blocking
    /// keys now was not among the candidates it considered: it was created or changed after the
    /// decision was made (the match queue runs ahead of the merge queue). Such a decision is made
    /// again.
    async fn is_stale(
        &self,
        schema: &EntitySchema,
        source: &SourceRecord,
        result: &MatchResult,
    ) -> Result<bool, HubError> {
        let record_keys = keys_of(schema, source);
        let keys: Vec<IndexKey> = record_keys.iter().map(IndexKey::from).collect();
        if keys.is_empty() {
            return Ok(false);
        }
        let hits = self.store.lookup(&schema.entity, &keys, &block_caps(schema, record_keys)).await?;
        self.any_unseen(schema, source, result, hits).await
    }

    /// Whether the blocks `hits` of the record's keys name an active golden record the decision
    /// did not consider (nor the record's own).
    async fn any_unseen(
        &self,
        schema: &EntitySchema,
        source: &SourceRecord,
        result: &MatchResult,
        mut hits: Vec<crate::store::BlockHit>,
    ) -> Result<bool, HubError> {
        let record_keys = keys_of(schema, source);
        let keys: Vec<IndexKey> = record_keys.iter().map(IndexKey::from).collect();
        hits.retain(|h| !too_full(record_keys, &keys, h));
        let mut considered: BTreeSet<&str> = result.candidates.iter().map(|c| c.golden_id.as_str()).collect();
        if let Some(own) = &source.golden_id {
            considered.insert(own);
        }
        let unseen: Vec<String> = hits
            .iter()
            .flat_map(|h| h.golden_ids.iter())
            .filter(|g| !considered.contains(g.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if unseen.is_empty() {
            return Ok(false);
        }
        let resolved = self.resolve(&schema.entity, &unseen).await?;
        let own = match &source.golden_id {
            Some(id) => self.resolve(&schema.entity, std::slice::from_ref(id)).await?.into_values().next(),
            None => None,
        };
        Ok(resolved.values().any(|g| {
            !considered.contains(g.golden_id.as_str()) && own.as_ref().is_none_or(|o| o.golden_id != g.golden_id)
        }))
    }

    /// Applies a decision that came through a queue (it may be stale). See [`Hub::merge_decision`].
    pub async fn merge_source(&self, key: &SourceKey, result: MatchResult) -> Result<MergeReport, HubError> {
        self.merge_decision(key, result, None, false).await
    }

    /// Applies a decision for a source record. The decision is made again first when it is not
    /// `fresh` and either the stored record is no longer the version it was made for (`seq`) or a
    /// golden record it did not consider now shares a blocking key. On a conflict (another writer
    /// changed what was read) it re-reads, re-matches and tries again.
    pub async fn merge_decision(
        &self,
        key: &SourceKey,
        result: MatchResult,
        seq: Option<u64>,
        fresh: bool,
    ) -> Result<MergeReport, HubError> {
        let mut result = result;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The first attempt of a queued decision may read a replica (the message names the
            // version); a stale cross-reference shows in the plan and retries read strongly.
            let replica = attempt == 1 && seq.is_some();
            let source = match seq {
                Some(seq) if replica => self.store.get_source_at(key, seq).await?,
                _ => self.store.get_source(key).await?,
            };
            let source = source.ok_or_else(|| HubError::SourceMissing(key.to_string()))?;
            if source.held {
                return Err(HubError::Held(key.to_string()));
            }
            let schema = self.schema(&source.key.entity)?;
            // Only a NEW or REVIEW decision can have missed a golden record created since: a LINK
            // already joins one, and re-reading every block for it would double the index reads.
            // For a record not in a golden record yet, whose golden record the merge creates,
            // the check rides on the index writes instead (below).
            let may_be_stale = !matches!(result.decision, MatchDecision::Link { .. });
            let on_write = !fresh && may_be_stale && source.golden_id.is_none();
            let rematch = attempt > 1
                || (!fresh
                    && (seq.is_some_and(|s| s != source.seq)
                        || (may_be_stale && !on_write && self.is_stale(schema, &source, &result).await?)));
            if rematch {
                result = if attempt > 1 {
                    self.match_with_claim_holders(&source).await?
                } else {
                    self.match_record(&source).await?
                };
            }
            // A first-arrival record creating its golden record takes its claims without reading
            // them: a claim held elsewhere (a shared family phone) fails the transaction's
            // condition, and the retry reads the holders.
            let reads = PlanReads {
                replica,
                heal: attempt > 1,
                assume_free_claims: on_write && !rematch && matches!(result.decision, MatchDecision::New),
                reindex: false,
            };
            let mut plan = match self.plan(&source, &result, reads).await {
                Err(HubError::Store(e)) if e.is_conflict() && attempt < self.config.max_attempts => {
                    debug!(source = %key, attempt, error = %e, "stale read or a claim in flight; re-reading");
                    continue;
                }
                Err(HubError::Store(e)) if e.is_conflict() => return Err(HubError::TooManyConflicts(attempt)),
                other => other?,
            };
            if on_write && !rematch {
                if let MergeOutcome::Created { golden_id } = &plan.outcome {
                    let golden_id = golden_id.clone();
                    let keys = take_index_puts(&mut plan, &golden_id);
                    let before = self
                        .store
                        .add_to_blocks(&schema.entity, &keys, &golden_id, schema.matching.max_block_size)
                        .await?;
                    if self.any_unseen(schema, &source, &result, before).await? {
                        // The entries just written name a golden record that is not created now:
                        // taken out, so they do not count toward their blocks' caps.
                        debug!(source = %key, attempt, "a golden record appeared under the record's keys; deciding again");
                        self.take_back_entries(&schema.entity, &keys, &golden_id).await?;
                        continue;
                    }
                } else if self.is_stale(schema, &source, &result).await? {
                    continue;
                }
            }
            let touched = if self.config.trace_writes {
                Touched::of(plan.writes.iter().chain(plan.follow_ups.iter().flatten()))
            } else {
                Vec::new()
            };
            // A record linked for the first time is counted under its values once merged.
            let count = (source.golden_id.is_none() && self.config.count_terms && crate::terms::adjusts(schema))
                .then(|| crate::terms::term_keys(schema, &source).into_iter().map(|(_, k)| k).collect::<Vec<_>>());
            // The store sets the record's cross-reference: this copy would only keep the old
            // version alive.
            drop(source);
            match self.store.transact(std::mem::take(&mut plan.writes)).await {
                Ok(()) => {
                    for chunk in std::mem::take(&mut plan.follow_ups) {
                        // Idempotent maintenance. On a failure stop: the stored golden record does
                        // not list what is missing, so the retry (or the next change) writes it.
                        if let Err(e) = self.store.transact(chunk).await {
                            warn!(golden_id = %plan.outcome.golden_id(), error = %e, "follow-up chunk failed; will retry");
                            return Err(e.into());
                        }
                    }
                    if let Some(keys) = count {
                        self.count_linked(schema, keys).await;
                    }
                    debug!(source = %key, outcome = plan.outcome.name(), attempt, "merged");
                    return Ok(MergeReport {
                        outcome: plan.outcome,
                        effective: plan.effective,
                        review_task: plan.review_task,
                        events: std::mem::take(&mut plan.event_types),
                        attempts: attempt,
                        final_decision: result.decision,
                        blocking: result.blocking,
                        golden: plan.golden,
                        touched,
                    });
                }
                Err(e) if e.is_suppressed() => return self.stop_suppressed(key).await,
                Err(e) if e.is_conflict() && attempt < self.config.max_attempts => {
                    debug!(source = %key, attempt, error = %e, "conflict; re-reading");
                    continue;
                }
                Err(e) if e.is_conflict() => return Err(HubError::TooManyConflicts(attempt)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`Hub::process`] with term counts the caller keeps ([`Hub::match_record_counted`]).
    pub async fn process_counted(&self, key: &SourceKey, terms: TermCounts) -> Result<MergeReport, HubError> {
        let source = self.store.get_source(key).await?.ok_or_else(|| HubError::SourceMissing(key.to_string()))?;
        let result = self.match_record_counted(&source, terms).await?;
        drop(source);
        self.merge_decision(key, result, None, true).await
    }

    /// Match then merge (the batch engine's path; the Lambda path runs the two in separate handlers).
    pub async fn process(&self, key: &SourceKey) -> Result<MergeReport, HubError> {
        let (_, result) = self.match_source(key).await?;
        self.merge_decision(key, result, None, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteOp;

    /// An entry added names its block; an entry taken out also names the block as a full one
    /// reads it (a full block only changes for a match when it shrinks); a golden record written
    /// names itself; other writes name nothing a match reads.
    #[test]
    fn writes_name_what_a_match_reads() {
        let key = IndexKey::parse("k=1");
        let index = |put: bool| {
            let (entity, golden_id) = ("customer".into(), "g1".into());
            if put {
                WriteOp::PutIndex { entity, key: key.clone(), golden_id }
            } else {
                WriteOp::DeleteIndex { entity, key: key.clone(), golden_id }
            }
        };
        let (block, full) = (Touched::block("customer", &key), Touched::full_block("customer", &key));
        assert_ne!(block, full);
        assert_eq!(Touched::of([index(true)].iter()), vec![block]);
        assert_eq!(Touched::of([index(false)].iter()), vec![block, full]);
        let review = WriteOp::DeleteReview { entity: "customer".into(), task_id: "t1".into() };
        assert!(Touched::of([review].iter()).is_empty());
    }
}
