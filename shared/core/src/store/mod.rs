//! The store port: small traits for what the hub reads and writes, one transaction operation
//! for everything a merge changes, and adapters (in-process here; DynamoDB in `mdm-aws`).

use crate::events::HubEvent;
use crate::golden::{GoldenRecord, HistoryEntry, ReviewTask};
pub use crate::index_keys::IndexKey;
use crate::keys::SourceKey;
use crate::record::SourceRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod memory;

/// Most items one transaction may write (DynamoDB's `TransactWriteItems` limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Result of a conditional source write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceWrite {
    Written,
    /// A version with this or a higher `source_seq` is already stored (or an erased record's
    /// tombstone keeps that `source_seq`): dropped.
    Stale {
        stored_seq: u64,
    },
    /// A suppression marker of an erased subject matches one of the record's identifiers:
    /// nothing was written.
    Suppressed,
    /// (From `Hub::ingest` in suppression mode `hold` only.) Suppressed, then stored as held:
    /// kept for a steward's review, never matched.
    Held,
}

/// Condition on a golden record write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The golden record must not exist yet.
    Absent,
    /// The stored golden record must have this revision (optimistic lock).
    Revision(u64),
}

/// An event waiting in the outbox for the publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub event_id: String,
    pub created_at_ms: i64,
    pub event: HubEvent,
    /// Published in its slim form whatever its size: the event is about a golden record of more
    /// than [`crate::golden::HISTORY_MEMBERS`] members, whose history version (where the event
    /// waits) does not list them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slim: bool,
}

impl OutboxEntry {
    /// An event for the outbox, slim when its golden record has more than
    /// [`crate::golden::HISTORY_MEMBERS`] members.
    pub fn new(event_id: String, created_at_ms: i64, event: HubEvent) -> Self {
        let slim = event.golden_members() > crate::golden::HISTORY_MEMBERS;
        Self { event_id, created_at_ms, event, slim }
    }
}

/// One write of a transaction. Every operation names one item; an item appears at most once.
/// Golden records, history versions, review tasks and events are boxed: a plan holds a dozen or two operations,
/// mostly index entries and claims, and an unboxed event made every one of them 400 bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    PutGolden {
        /// Shared: the in-process store keeps it as it is and hands it out to reads.
        golden: Arc<GoldenRecord>,
        expect: Expect,
    },
    /// Fails if that version already exists.
    PutHistory(Box<HistoryEntry>),
    /// Points a source record at its golden record; fails if the source record does not exist.
    SetXref {
        source: SourceKey,
        golden_id: String,
        /// Why it is a member, when the write makes a link (`None` keeps what is stored: a
        /// record moving with its golden record into a merge's survivor keeps its reason).
        why: Option<Arc<crate::golden::Link>>,
    },
    /// Index writes are most of a merge plan's items (a dozen for a new golden record): they
    /// share their entity type and golden id instead of each holding copies.
    PutIndex {
        entity: Arc<str>,
        key: IndexKey,
        golden_id: Arc<str>,
    },
    DeleteIndex {
        entity: Arc<str>,
        key: IndexKey,
        golden_id: Arc<str>,
    },
    /// Takes (or moves) a claim on a strong key. `from: None` requires the claim to be free,
    /// `from: Some(g)` requires it to be held by `g`; either passes if `golden_id` holds it already.
    PutClaim {
        entity: Arc<str>,
        key: IndexKey,
        golden_id: Arc<str>,
        from: Option<String>,
    },
    PutReview(Box<ReviewTask>),
    PutOutbox(Box<OutboxEntry>),
    /// Erasure: a keyed hash of an erased subject's identifier (no plain value). Idempotent.
    PutSuppression {
        entity: String,
        key: String,
        request_id: String,
    },
    /// Erasure: replaces a source record by a tombstone without attribute values that keeps its
    /// `source_seq`, so a late or duplicate delivery cannot re-create it. Fails if a newer
    /// version was stored since it was read (`source_seq > seq`).
    PutTombstone {
        source: SourceKey,
        seq: u64,
        request_id: String,
        /// Also fails if the stored record points at a golden record: taking back a record
        /// that no golden record may list yet.
        unlinked: bool,
    },
    DeleteHistory {
        entity: String,
        golden_id: String,
        version: u64,
    },
    /// Removes a claim if `holder` holds it (or it is gone already).
    DeleteClaim {
        entity: String,
        key: IndexKey,
        holder: String,
    },
    DeleteReview {
        entity: String,
        task_id: String,
    },
    DeleteOutbox {
        event_id: String,
    },
    /// A steward releases a held record: the stored version `seq` (which must be held) is
    /// stored again as `record` (not held, with its exemption). Fails if another version was
    /// stored since or it is not held.
    ReleaseHeld {
        record: Box<SourceRecord>,
        seq: u64,
    },
    /// Record pairs a steward decision labels (written with the decision).
    PutLabels(Box<crate::golden::LabelSet>),
    /// A condition, nothing written: the transaction fails with [`Conflict::Suppressed`] if a
    /// suppression marker of `entity` exists for `key` (a keyed hash of an identifier of the
    /// record being merged). An adapter may check before it writes instead of with the write,
    /// if it bounds the time between the check and the write taking effect and
    /// [`Transactor::settle_suppression`] waits longer: an erasure waits that long after writing
    /// markers before it looks for records, so a merge racing it is either stopped or found.
    CheckUnsuppressed {
        entity: String,
        key: String,
    },
}

/// The identity of the item an operation writes, borrowed from the operation (no allocation):
/// two operations on one item compare equal. The part that tells items apart comes first and the
/// entity type last: sorting a transaction's items then rarely compares entity names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemRef<'a> {
    /// Golden id, entity.
    Golden(&'a str, &'a str),
    /// Golden id, version, entity.
    History(&'a str, u64, &'a str),
    Source(&'a SourceKey),
    /// Key, golden id, entity.
    Index(&'a IndexKey, &'a str, &'a str),
    /// Key, entity.
    Claim(&'a IndexKey, &'a str),
    /// Task id, entity.
    Review(&'a str, &'a str),
    Outbox(&'a str),
    /// Key, entity.
    Suppression(&'a str, &'a str),
    /// Decision id, entity.
    Labels(&'a str, &'a str),
}

impl WriteOp {
    /// The item this operation writes (for the one-op-per-item rule).
    pub fn item(&self) -> ItemRef<'_> {
        match self {
            Self::PutGolden { golden, .. } => ItemRef::Golden(&golden.golden_id, &golden.entity),
            Self::PutHistory(h) => ItemRef::History(&h.golden_id, h.version, &h.entity),
            Self::DeleteHistory { entity, golden_id, version } => ItemRef::History(golden_id, *version, entity),
            Self::SetXref { source, .. } | Self::PutTombstone { source, .. } => ItemRef::Source(source),
            Self::ReleaseHeld { record, .. } => ItemRef::Source(&record.key),
            Self::PutLabels(l) => ItemRef::Labels(&l.id, &l.entity),
            Self::PutIndex { entity, key, golden_id } | Self::DeleteIndex { entity, key, golden_id } => {
                ItemRef::Index(key, golden_id, entity)
            }
            Self::PutClaim { entity, key, .. } => ItemRef::Claim(key, entity),
            Self::DeleteClaim { entity, key, .. } => ItemRef::Claim(key, entity),
            Self::PutReview(t) => ItemRef::Review(&t.task_id, &t.entity),
            Self::DeleteReview { entity, task_id } => ItemRef::Review(task_id, entity),
            Self::PutOutbox(o) => ItemRef::Outbox(&o.event_id),
            Self::DeleteOutbox { event_id } => ItemRef::Outbox(event_id),
            Self::PutSuppression { entity, key, .. } | Self::CheckUnsuppressed { entity, key } => {
                ItemRef::Suppression(key, entity)
            }
        }
    }
}

/// Why a conditional write failed: someone else changed what we read. Re-read and retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("golden record {0} changed or already exists")]
    Golden(String),
    #[error("history version {1} of {0} already exists")]
    History(String, u64),
    #[error("a claim on a {0} key is held by another golden record")]
    Claim(String),
    #[error("source record {0} does not exist")]
    MissingSource(String),
    #[error("source record {0} changed since it was read")]
    SourceChanged(String),
    /// The store cancelled the transaction because another one touched the same items.
    #[error("another transaction touched the same items")]
    Concurrent,
    /// A suppression marker forbids the write ([`WriteOp::CheckUnsuppressed`]): the record
    /// carries an identifier of an erased subject. Not worth retrying.
    #[error("a suppression marker of an erased subject forbids this write")]
    Suppressed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error("transaction of {0} items exceeds the limit of {MAX_TRANSACTION_ITEMS}")]
    TooLarge(usize),
    #[error("invalid transaction: {0}")]
    Invalid(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(c) if *c != Conflict::Suppressed)
    }

    /// A [`WriteOp::CheckUnsuppressed`] failed: the record is an erased subject's.
    pub fn is_suppressed(&self) -> bool {
        matches!(self, Self::Conflict(Conflict::Suppressed))
    }
}

/// A blocking-index lookup result for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHit {
    pub key: IndexKey,
    pub golden_ids: Vec<String>,
    /// More golden records share this key than the cap allows: skipped.
    pub too_common: bool,
}

/// The cap of the `i`-th key of a lookup: `caps[i]`, or the last cap for keys past the end (so
/// one cap applies to every key); no cap when `caps` is empty.
pub fn cap_of(caps: &[usize], i: usize) -> usize {
    caps.get(i).or(caps.last()).copied().unwrap_or(usize::MAX)
}

impl BlockHit {
    /// A block's golden ids as a lookup with `cap` reports them: none, and too common, above it.
    pub fn capped(key: &IndexKey, golden_ids: Vec<String>, cap: usize) -> Self {
        if golden_ids.len() > cap {
            Self { key: key.clone(), golden_ids: Vec::new(), too_common: true }
        } else {
            Self { key: key.clone(), golden_ids, too_common: false }
        }
    }
}

pub trait SourceStore: Send + Sync {
    /// Stores a source record if it is new or its `seq` is higher than the stored one
    /// (`attribute_not_exists(pk) OR source_seq < :seq`), and only if no suppression marker of
    /// its entity type exists for any of `suppressed_by` (keyed hashes of the record's
    /// identifiers). A suppressed write leaves the stored version as it was; an adapter may
    /// write first and take the write back when it then finds a marker, if it checks after
    /// writing (a marker written before the check is seen). A stored record a steward released
    /// from a hold (`exempt`) is exempt from the markers: the write goes through, and the new
    /// version keeps the exemption. Keeps the stored cross-reference. Tombstones count
    /// as stored versions and are not returned by the reads.
    fn put_source(
        &self,
        record: &SourceRecord,
        suppressed_by: &[String],
    ) -> impl Future<Output = Result<SourceWrite, StoreError>> + Send;
    /// [`SourceStore::put_source`] for a record its caller has no further use for: an adapter
    /// that keeps records in memory keeps this one instead of a copy.
    fn put_source_owned(
        &self,
        record: SourceRecord,
        suppressed_by: &[String],
    ) -> impl Future<Output = Result<SourceWrite, StoreError>> + Send {
        async move { self.put_source(&record, suppressed_by).await }
    }
    /// Reads hand out shared records: a record is read far more often than it changes (a merge
    /// plan reads every member of the golden records it touches), and an adapter that keeps
    /// records in memory then lends its own instead of copying it.
    fn get_source(&self, key: &SourceKey)
        -> impl Future<Output = Result<Option<Arc<SourceRecord>>, StoreError>> + Send;
    /// The source record, for a reader that knows version `seq` was stored: an adapter may read
    /// a cheaper, possibly stale replica first, and must read like [`SourceStore::get_source`]
    /// when that replica is missing the record or holds an older version.
    fn get_source_at(
        &self,
        key: &SourceKey,
        seq: u64,
    ) -> impl Future<Output = Result<Option<Arc<SourceRecord>>, StoreError>> + Send {
        let _ = seq;
        self.get_source(key)
    }
    /// [`SourceStore::put_source`] for a batch, in order, each record with its markers' keys; the
    /// results in the same order. The outcome is what one `put_source` after another gives; an
    /// adapter may write every record first and then read all their markers at once (each
    /// record is still written before its markers are read, which is what keeps a record racing
    /// an erasure out).
    fn put_sources(
        &self,
        batch: &[(&SourceRecord, &[String])],
    ) -> impl Future<Output = Vec<Result<SourceWrite, StoreError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(batch.len());
            for (record, guards) in batch {
                out.push(self.put_source(record, guards).await);
            }
            out
        }
    }
    /// Whether a suppression marker of `entity` exists for any of `keys` (keyed hashes of a
    /// record's identifiers), read strongly: a marker written before the call is seen.
    fn is_suppressed(&self, entity: &str, keys: &[String]) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Batch read; missing keys are left out.
    fn get_sources(
        &self,
        keys: &[SourceKey],
    ) -> impl Future<Output = Result<Vec<Arc<SourceRecord>>, StoreError>> + Send;
}

pub trait GoldenStore: Send + Sync {
    fn get_golden(
        &self,
        entity: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<GoldenRecord>, StoreError>> + Send;
    /// Batch read; missing ids are left out.
    fn get_goldens(
        &self,
        entity: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<GoldenRecord>, StoreError>> + Send;
    /// [`GoldenStore::get_goldens`], shared: an adapter that keeps golden records in memory
    /// hands out its own copy instead of cloning it (matching reads a few golden records per
    /// record, and only looks at them).
    fn get_goldens_shared(
        &self,
        entity: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Arc<GoldenRecord>>, StoreError>> + Send {
        async move { Ok(self.get_goldens(entity, ids).await?.into_iter().map(Arc::new).collect()) }
    }
    /// History versions, oldest first.
    fn history(&self, entity: &str, id: &str) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;
}

pub trait BlockIndex: Send + Sync {
    /// Golden ids per key, at most the key's cap each ([`cap_of`]: `caps[i]` for `keys[i]`, one
    /// cap for all); a key with more is reported too common, without its ids. A weak key's own
    /// limit (a birth date alone: 2) is far below the entity's, so its full blocks are not
    /// spelled out only to be skipped.
    fn lookup(
        &self,
        entity: &str,
        keys: &[IndexKey],
        caps: &[usize],
    ) -> impl Future<Output = Result<Vec<BlockHit>, StoreError>> + Send;
    /// Writes `golden_id` into the block of each key (as [`WriteOp::PutIndex`] does, ahead of
    /// the transaction that creates the golden record) and returns what each block held before,
    /// as [`BlockIndex::lookup`] would have with `cap`. A merge that creates a golden record
    /// learns from its own index writes whether another one appeared under its keys since the
    /// decision was made, without reading the blocks again.
    fn add_to_blocks(
        &self,
        entity: &str,
        keys: &[IndexKey],
        golden_id: &str,
        cap: usize,
    ) -> impl Future<Output = Result<Vec<BlockHit>, StoreError>> + Send;
}

pub trait ClaimStore: Send + Sync {
    /// Current holders of the given claim keys (free keys are left out).
    fn get_claims(
        &self,
        entity: &str,
        keys: &[IndexKey],
    ) -> impl Future<Output = Result<BTreeMap<IndexKey, String>, StoreError>> + Send;
    /// When the given claims were taken (ms since the epoch). An adapter may write new claims
    /// ahead of its transaction (the DynamoDB adapter does): a claim naming a golden record that
    /// does not exist is then a transaction in flight while it is young, and one that failed
    /// once it is older than [`crate::HubConfig::claim_lease_ms`]. An adapter that writes claims
    /// with their golden record has no such claims and answers nothing.
    fn claim_times(
        &self,
        entity: &str,
        keys: &[IndexKey],
    ) -> impl Future<Output = Result<BTreeMap<IndexKey, i64>, StoreError>> + Send {
        let _ = (entity, keys);
        async { Ok(BTreeMap::new()) }
    }
}

pub trait ReviewStore: Send + Sync {
    fn get_review(
        &self,
        entity: &str,
        task_id: &str,
    ) -> impl Future<Output = Result<Option<ReviewTask>, StoreError>> + Send;
    /// Review tasks of one entity type, open (`open`) or resolved, oldest first: up to `limit`
    /// after the cursor a previous page returned. Served by an index keyed by status and age
    /// (never a scan of the tasks).
    fn review_queue(
        &self,
        entity: &str,
        open: bool,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ReviewPage, StoreError>> + Send;
    /// How many review tasks of an entity type are open, and when the oldest opened.
    fn review_backlog(&self, entity: &str) -> impl Future<Output = Result<ReviewBacklog, StoreError>> + Send;
    /// Label sets of an entity type (steward decisions as labelled record pairs), oldest
    /// first, after `after` (a [`crate::golden::LabelSet::position`]).
    fn labels(
        &self,
        entity: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<LabelPage, StoreError>> + Send;
    /// Records of an entity type held under suppression mode `hold` (not yet released or
    /// erased), by source key after `after`.
    fn held_records(
        &self,
        entity: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<HeldPage, StoreError>> + Send;
}

/// A held record's position in its list (`held_records`' cursor).
pub fn held_position(key: &SourceKey) -> String {
    format!("{}#{}", crate::keys::encode_part(&key.system), crate::keys::encode_part(&key.source_id))
}

/// The open review tasks of one entity type: how many, and the oldest's opening time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewBacklog {
    pub open: u64,
    pub oldest_opened_ms: Option<i64>,
}

/// A page of the records held under suppression mode `hold`, oldest key first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldPage {
    pub records: Vec<Arc<SourceRecord>>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A page of label sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelPage {
    pub sets: Vec<crate::golden::LabelSet>,
    pub next: Option<String>,
}

/// A page of the review queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewPage {
    pub tasks: Vec<ReviewTask>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A review task's position in its queue: its opening time, then its id (sorts oldest first).
pub fn review_queue_position(task: &ReviewTask) -> String {
    format!("{:013}#{}", task.created_at_ms.max(0), task.task_id)
}

pub trait Transactor: Send + Sync {
    /// Applies every operation or none (at most [`MAX_TRANSACTION_ITEMS`], one per item). Blocking-index
    /// entries are the exception: an adapter may write new ones before and drop old ones after the
    /// rest, so a failed transaction can leave an entry naming a golden record that does not exist.
    fn transact(&self, ops: Vec<WriteOp>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Waits until an erasure that wrote suppression markers at `markers_at_ms` (now `now_ms`)
    /// may look for records: longer than this adapter lets pass between checking a
    /// [`WriteOp::CheckUnsuppressed`] and its write taking effect. At once for an adapter that
    /// checks with the write.
    fn settle_suppression(&self, markers_at_ms: i64, now_ms: i64) -> impl Future<Output = ()> + Send {
        let _ = (markers_at_ms, now_ms);
        async {}
    }
}

pub trait Outbox: Send + Sync {
    /// Pending events, oldest first.
    fn pending_events(&self, limit: usize) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;
    /// Removes delivered events.
    fn delete_events(&self, event_ids: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Pending events about these golden records that an erasure must delete itself: those not
    /// kept in the records' history items (which the erasure deletes with them). Without a scan
    /// of the outbox: the DynamoDB adapter keeps a golden record's events in its history items,
    /// and its other events (review tasks opened, erasures) carry ids only, so it answers none.
    fn pending_events_of(
        &self,
        entity: &str,
        golden_ids: &[String],
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;
}

/// An identifier that names at most one golden record, resolvable in a batched read: a claim on
/// a strong key (e.g. a product's SKU or GTIN) or a source key's cross-reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    Claim { entity: String, key: String },
    Source(SourceKey),
}

/// Erasure receipts (no personal data): status, counts and times of one request.
pub trait ReceiptStore: Send + Sync {
    /// The stored receipt JSON of a request.
    fn get_receipt(&self, request_id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Stores revision `revision` of a receipt: revision 1 only if none exists, revision n only
    /// over revision n - 1 (optimistic lock); a conflict otherwise.
    fn put_receipt(
        &self,
        request_id: &str,
        revision: u64,
        receipt_json: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Review tasks of an entity type that name any of these golden records (as the holder or a
    /// candidate). DynamoDB: a query per golden record of the items that index its tasks.
    fn reviews_mentioning(
        &self,
        entity: &str,
        golden_ids: &[String],
    ) -> impl Future<Output = Result<Vec<ReviewTask>, StoreError>> + Send;
}

/// Batched reads for the read API: identifiers to golden ids, golden records of several entity
/// types at once, and history pages. An adapter answers each call with as few requests as its
/// store allows (DynamoDB: `BatchGetItem` in chunks of 100, one `Query` per page).
pub trait LookupStore: Send + Sync {
    /// The golden id each identifier points at; unknown identifiers are left out.
    fn resolve_lookups(
        &self,
        lookups: &[Lookup],
    ) -> impl Future<Output = Result<HashMap<Lookup, String>, StoreError>> + Send;
    /// Golden records by `(entity, golden_id)`; missing ones are left out.
    fn get_golden_refs(
        &self,
        refs: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<GoldenRecord>, StoreError>> + Send;
    /// Why a source record is a member of its golden record, as stored with its link.
    fn get_link(&self, key: &SourceKey)
        -> impl Future<Output = Result<Option<crate::golden::Link>, StoreError>> + Send;
    /// At most `limit` history versions greater than `after`, oldest first.
    fn history_page(
        &self,
        entity: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;
}

/// Everything the hub needs from a store.
pub trait Store:
    SourceStore + GoldenStore + BlockIndex + ClaimStore + ReviewStore + Transactor + Outbox + TermStore
{
}
impl<T: SourceStore + GoldenStore + BlockIndex + ClaimStore + ReviewStore + Transactor + Outbox + TermStore> Store
    for T
{
}

/// How many linked source records hold each value of a term-frequency attribute
/// ([`crate::terms`]). Keys are [`crate::terms::term_key`]s: digests, no values. A store that
/// keeps no counts answers none, and matches are not adjusted.
pub trait TermStore: Send + Sync {
    /// Each key's count (0 for one never counted) and the entity type's total; eventually
    /// consistent reads are enough (counts are statistics).
    fn term_counts(
        &self,
        entity: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<crate::terms::TermTotals, StoreError>> + Send {
        let _ = entity;
        let counts = vec![0; keys.len()];
        async move { Ok(crate::terms::TermTotals { counts, total: 0 }) }
    }
    /// Adds `delta` to each key's count and to the entity type's total (one record counted in or
    /// out). A count that falls to zero or below leaves nothing stored under its key.
    fn count_terms(
        &self,
        entity: &str,
        keys: &[String],
        delta: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (entity, keys, delta);
        async { Ok(()) }
    }
}

/// Checks the rules every adapter enforces before it writes: size and one op per item.
pub fn check_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooLarge(ops.len()));
    }
    // Sorted, a repeated item sits beside its twin (cheaper than a hash set for a few items).
    let mut items: Vec<ItemRef<'_>> = ops.iter().map(WriteOp::item).collect();
    items.sort_unstable();
    if items.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid("an item appears twice in one transaction".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two operations on one item are refused whatever else they say; operations on items that
    /// differ in any part of their identity pass, in any order.
    #[test]
    fn one_operation_per_item() {
        let index =
            |e: &str, k: &str, g: &str| WriteOp::PutIndex { entity: e.into(), key: k.into(), golden_id: g.into() };
        let unindex =
            |e: &str, k: &str, g: &str| WriteOp::DeleteIndex { entity: e.into(), key: k.into(), golden_id: g.into() };
        let claim = |e: &str, k: &str, g: &str| WriteOp::PutClaim {
            entity: e.into(),
            key: k.into(),
            golden_id: g.into(),
            from: None,
        };
        let review = |e: &str, t: &str| WriteOp::DeleteReview { entity: e.into(), task_id: t.into() };
        let distinct = vec![
            index("customer", "k=1", "g1"),
            index("customer", "k=1", "g2"),
            index("customer", "k=2", "g1"),
            index("product", "k=1", "g1"),
            claim("customer", "k=1", "g1"),
            claim("product", "k=1", "g1"),
            review("customer", "t1"),
            review("product", "t1"),
        ];
        assert_eq!(check_transaction(&distinct), Ok(()));
        let mut reversed = distinct.clone();
        reversed.reverse();
        assert_eq!(check_transaction(&reversed), Ok(()));
        // Items the list above does not hold, twice.
        for (a, b) in [
            (index("customer", "k=9", "g1"), unindex("customer", "k=9", "g1")),
            (claim("customer", "k=9", "g1"), claim("customer", "k=9", "g2")),
            (review("customer", "t9"), review("customer", "t9")),
        ] {
            let mut once = distinct.clone();
            once.insert(1, a.clone());
            assert_eq!(check_transaction(&once), Ok(()));
            let mut ops = once;
            ops.push(b);
            assert!(matches!(check_transaction(&ops), Err(StoreError::Invalid(_))), "{ops:?}");
        }
    }
}
