//! The DynamoDB adapter of the store port: one table, items as in docs/architecture.md
//! ("DynamoDB items"). Every conditional rule of the port is a DynamoDB condition expression;
//! every multi-item change is one `TransactWriteItems`.

use crate::capacity::{self, meter, Write};
use crate::recent::{ClaimState, RecentEntries};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use mdm_core::golden::{GoldenRecord, HistoryEntry, ReviewTask};
use mdm_core::keys::{self, SourceKey};
use mdm_core::record::SourceRecord;
use mdm_core::store::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

const META: &str = "META";
const OUTBOX_PREFIX: &str = "OUT#";
/// DynamoDB's `BatchGetItem` limit.
const BATCH_GET: usize = 100;

/// Requests and consumed capacity (as DynamoDB reports it) per operation, of this store instance:
/// per-test and per-route counts. Request units computed by DynamoDB's rules, process-wide, are
/// [`crate::capacity::meter`]'s.
#[derive(Debug, Default)]
pub struct CallCounts {
    pub get_item: AtomicU64,
    pub update_item: AtomicU64,
    pub query: AtomicU64,
    pub scan: AtomicU64,
    pub batch_get_item: AtomicU64,
    pub transact_write_items: AtomicU64,
    pub delete_item: AtomicU64,
    /// Consumed capacity units × 1000 (read and write added up), as DynamoDB reports them.
    pub capacity_milli: AtomicU64,
}

impl CallCounts {
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        [
            ("GetItem", &self.get_item),
            ("UpdateItem", &self.update_item),
            ("Query", &self.query),
            ("Scan", &self.scan),
            ("BatchGetItem", &self.batch_get_item),
            ("TransactWriteItems", &self.transact_write_items),
            ("DeleteItem", &self.delete_item),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
        .collect()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    fn capacity(&self, units: Option<f64>) {
        if let Some(u) = units {
            self.capacity_milli.fetch_add((u * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    counts: Arc<CallCounts>,
    /// Strongly consistent blocking-index reads (the default); see [`DynamoStore::eventual_reads`]
    /// and [`DynamoStore::merge_reads`].
    consistent_index: bool,
    /// Strongly consistent claim reads (the default); see [`DynamoStore::eventual_reads`].
    consistent_claims: bool,
    /// Source records read eventually consistently first, strongly when that read is older than
    /// the version asked for; see [`DynamoStore::eventual_reads`].
    eventual_sources: bool,
    /// Index entries this process wrote lately, added to eventually consistent lookups.
    recent: Arc<RecentEntries>,
    /// Strongly consistent batch reads of golden records (the default); see
    /// [`DynamoStore::eventual_reads`].
    consistent_goldens: bool,
    /// A block item keeps at most this many golden ids and one more: enough to answer every
    /// lookup whose cap is at most this; see [`DynamoStore::with_block_cap`].
    block_cap: usize,
    /// The part names (`crate::parts`) of the golden records this process read or wrote last,
    /// with their revision: a write knows which parts it replaces without reading them again.
    parts_seen: Arc<std::sync::Mutex<PartsSeen>>,
}

/// Which sort keys of a partition a [`DynamoStore::query`] reads.
#[derive(Debug, Clone, Copy)]
enum SortKeys<'a> {
    All,
    Prefix(&'a str),
    /// Greater than this one.
    After(&'a str),
    /// From, to (both included).
    Between(&'a str, &'a str),
}

/// Golden record partition → (revision, part names).
type PartsSeen = HashMap<String, parts_io::SeenParts>;

/// Golden records whose part names a store remembers (then it forgets them all).
const PARTS_SEEN: usize = 20_000;

/// A transaction is sent within this long of the claims written ahead of it, well inside the
/// hub's claim lease (`HubConfig::claim_lease_ms`, 120 s).
const CLAIMS_AHEAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A merge's `TransactWriteItems` is sent within this long of its suppression-marker check
/// (`WriteOp::CheckUnsuppressed`, read strongly just before), and given this long to answer.
const SUPPRESSION_CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);
const SUPPRESSION_TRANSACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// How long an erasure waits after writing markers before it looks for records: the deadline
/// and the timeout above, and as long again for a request DynamoDB applies after the client
/// gave up on it.
const SUPPRESSION_SETTLE_MS: u64 = 10_000;

/// Golden ids a block item keeps (and one more) unless [`DynamoStore::with_block_cap`] says.
pub const DEFAULT_BLOCK_CAP: usize = 100;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn unavailable<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    op: &str,
) -> impl Fn(SdkError<E, R>) -> StoreError + '_ {
    move |e| StoreError::Unavailable(crate::errors::describe(op, &e))
}

/// The outcome of a conditional write whose failed condition is an answer, not an error.
fn unless_condition_failed<T, E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    op: &str,
    sent: Result<T, SdkError<E, R>>,
) -> Result<(), StoreError> {
    match sent {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(unavailable(op)(e)),
    }
}

/// A serde error described without its message, which can quote the offending value.
fn json_error(e: &serde_json::Error) -> String {
    format!("{:?} error at line {}, column {}", e.classify(), e.line(), e.column())
}

/// JSON below this size is stored as text; above it, deflated (a binary attribute).
const COMPRESS_ABOVE: usize = 256;

/// An item's `data` attribute: the JSON of a record, deflated when that makes it smaller. Write
/// units are charged per started KB of the whole item (and twice in a transaction), so a golden
/// record's JSON of ~2.5 KB costs 3 units where its ~1 KB deflated form costs 1.
fn data<T: Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(json_error(&e)))?;
    if json.len() > COMPRESS_ABOVE {
        let mut z =
            flate2::write::DeflateEncoder::new(Vec::with_capacity(json.len() / 2), flate2::Compression::default());
        let packed = std::io::Write::write_all(&mut z, &json).and_then(|()| z.finish());
        if let Ok(packed) = packed {
            if packed.len() < json.len() {
                return Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(packed)));
            }
        }
    }
    String::from_utf8(json).map(AttributeValue::S).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The JSON text of an item's `data` attribute (inflating a binary one); `None` without data.
pub fn data_text(item: &Item) -> Result<Option<String>, StoreError> {
    match item.get("data") {
        Some(AttributeValue::S(text)) => Ok(Some(text.clone())),
        Some(AttributeValue::B(blob)) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::DeflateDecoder::new(blob.as_ref()), &mut text)
                .map_err(|e| StoreError::Corrupt(format!("item data: cannot inflate: {}", e.kind())))?;
            Ok(Some(text))
        }
        Some(_) => Err(StoreError::Corrupt("item data is neither text nor binary".into())),
        None => Ok(None),
    }
}

fn parse<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let text = data_text(item)?.ok_or_else(|| StoreError::Corrupt("item has no data".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("item data: {}", json_error(&e))))
}

fn source_key_item(k: &SourceKey) -> Item {
    HashMap::from([("pk".into(), s(k.item_key())), ("sk".into(), s(META))])
}

fn golden_key(entity: &str, id: &str) -> Item {
    HashMap::from([("pk".into(), s(keys::golden_item_key(entity, id))), ("sk".into(), s(META))])
}

/// An erased source record's tombstone: a stored sequence without a record.
fn is_tombstone(item: &Item) -> bool {
    item.get("kind").and_then(|v| v.as_s().ok()).is_some_and(|k| k == "tombstone")
}

fn source_from(item: &Item) -> Result<SourceRecord, StoreError> {
    let mut r: SourceRecord = parse(item)?;
    r.golden_id = item.get("golden_id").and_then(|v| v.as_s().ok()).cloned();
    if let Some(text) = item.get("exempt").and_then(|v| v.as_s().ok()) {
        let exemption = serde_json::from_str(text).map_err(|e| StoreError::Corrupt(json_error(&e)))?;
        r.exempt = Some(Arc::new(exemption));
    }
    if let Some(first) = item.get("first_seq").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()) {
        r.first_seq = first;
    }
    Ok(r)
}

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            counts: Arc::new(CallCounts::default()),
            consistent_index: true,
            consistent_claims: true,
            eventual_sources: false,
            consistent_goldens: true,
            recent: Arc::new(RecentEntries::default()),
            block_cap: DEFAULT_BLOCK_CAP,
            parts_seen: Arc::new(std::sync::Mutex::new(HashMap::new())),
        }
    }

    /// The largest `max_block_size` of the entity types this store serves (100 unless set).
    pub fn with_block_cap(mut self, cap: usize) -> Self {
        self.block_cap = cap;
        self
    }

    /// Reads the blocking index, the claims and candidate golden records eventually consistently,
    /// at half the read units: for the match handler, whose decision is advisory. The merge
    /// handler rematches when the source record's version changed, rechecks a NEW or REVIEW
    /// decision against the index before it creates a golden record, and every write it makes is
    /// conditional. A source record asked for at a version
    /// ([`SourceStore::get_source_at`]) is read eventually consistently too, and read again
    /// strongly when that read is missing or older (a record the matcher cannot see yet would
    /// otherwise be dropped as missing).
    pub fn eventual_reads(mut self) -> Self {
        self.consistent_index = false;
        self.consistent_claims = false;
        self.consistent_goldens = false;
        self.eventual_sources = true;
        self
    }

    /// Reads the blocking index and the claims eventually consistently, with the entries and
    /// claims this process wrote in the last [`crate::recent::WINDOW`] laid over
    /// ([`crate::recent`]): for the merge handler, whose recheck of a NEW or REVIEW decision
    /// reads every block of the record. A claim read from a stale replica fails the
    /// transaction's condition and is read strongly on the retry. The source record of the
    /// message is read like the matcher reads it ([`SourceStore::get_source_at`]); the plan
    /// checks its cross-reference against the golden records, which stay strong: the plan's
    /// conditions are on their revisions.
    pub fn merge_reads(mut self) -> Self {
        self.consistent_index = false;
        self.consistent_claims = false;
        self.eventual_sources = true;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn counts(&self) -> &CallCounts {
        &self.counts
    }

    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    async fn get(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        self.count(&self.counts.get_item);
        meter().request("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
        meter().read_items("GetItem", &[&key], out.item.as_slice(), consistent);
        Ok(out.item)
    }

    /// Reads many items by key (chunks of 100, unprocessed keys retried).
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.batch_get_projected(keys, None, true).await
    }

    /// [`Self::batch_get`], returning only the named attributes (`(name, placeholder)` pairs).
    async fn batch_get_projected(
        &self,
        keys: Vec<Item>,
        projection: Option<&[(&str, &str)]>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > 10 {
                    return Err(StoreError::Unavailable("BatchGetItem: keys left unprocessed after 10 rounds".into()));
                }
                if rounds > 1 {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << rounds.min(6))).await;
                }
                self.count(&self.counts.batch_get_item);
                meter().request("BatchGetItem");
                let asked = pending.clone();
                let mut ka = KeysAndAttributes::builder().set_keys(Some(pending)).consistent_read(consistent);
                if let Some(attrs) = projection {
                    let expr: Vec<&str> = attrs.iter().map(|(_, p)| *p).collect();
                    ka = ka.projection_expression(expr.join(", "));
                    for (name, placeholder) in attrs {
                        ka = ka.expression_attribute_names(*placeholder, *name);
                    }
                }
                let ka = ka.build().map_err(build_err)?;
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ka)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(unavailable("BatchGetItem"))?;
                for c in resp.consumed_capacity() {
                    self.counts.capacity(c.capacity_units());
                }
                let items = resp.responses.as_ref().and_then(|r| r.get(&self.table)).map_or(&[][..], Vec::as_slice);
                out.extend(items.iter().cloned());
                pending = resp
                    .unprocessed_keys
                    .as_ref()
                    .and_then(|u| u.get(&self.table))
                    .map(|ka| ka.keys().to_vec())
                    .unwrap_or_default();
                let charged: Vec<&Item> = asked.iter().filter(|k| !pending.contains(k)).collect();
                if projection.is_some() {
                    let claims = projection.is_some_and(|p| p.iter().any(|(n, _)| *n == "golden_id"));
                    meter().read_projected("BatchGetItem", &charged, items, consistent, claims);
                } else {
                    meter().read_items("BatchGetItem", &charged, items, consistent);
                }
            }
        }
        Ok(out)
    }

    /// The items of a partition whose sort keys meet `range`, in sort-key order (pages followed),
    /// or at most `limit`.
    async fn query(
        &self,
        pk: String,
        range: SortKeys<'_>,
        limit: Option<usize>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.count(&self.counts.query);
            meter().request("Query");
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(consistent)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start.take());
            q = match range {
                SortKeys::All => q.key_condition_expression("pk = :pk"),
                SortKeys::Prefix(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(p)),
                SortKeys::After(a) => {
                    q.key_condition_expression("pk = :pk AND sk > :a").expression_attribute_values(":a", s(a))
                }
                SortKeys::Between(from, to) => q
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to)),
            };
            if let Some(l) = limit {
                q = q.limit((l - out.len()).clamp(1, 1000) as i32);
            }
            let resp = q.send().await.map_err(unavailable("Query"))?;
            self.counts.capacity(resp.consumed_capacity().and_then(|c| c.capacity_units()));
            meter().read_page("Query", &pk, resp.items(), consistent);
            out.extend(resp.items().iter().cloned());
            match resp.last_evaluated_key {
                Some(k) if limit.is_none_or(|l| out.len() < l) => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// One transaction item. A claim lives on its block's item; `claim_adds` names the claims
    /// whose golden record's index entry is added by the same update.
    fn op_item(
        &self,
        op: &WriteOp,
        folded: &Folded,
        claim_adds: &ClaimAdds,
        layouts: &Layouts,
    ) -> Result<TransactWriteItem, StoreError> {
        let t = &self.table;
        let put = |item: Item,
                   cond: Option<&str>,
                   values: Vec<(&str, AttributeValue)>|
         -> Result<TransactWriteItem, StoreError> {
            let mut p = Put::builder().table_name(t).set_item(Some(item));
            if let Some(c) = cond {
                p = p.condition_expression(c);
            }
            for (k, v) in values {
                p = p.expression_attribute_values(k, v);
            }
            Ok(TransactWriteItem::builder().put(p.build().map_err(build_err)?).build())
        };
        let delete = |pk: String,
                      sk: String,
                      cond: Option<(&str, &str, AttributeValue)>|
         -> Result<TransactWriteItem, StoreError> {
            let mut d = Delete::builder().table_name(t).key("pk", s(pk)).key("sk", s(sk));
            if let Some((c, k, v)) = cond {
                d = d.condition_expression(c).expression_attribute_values(k, v);
            }
            Ok(TransactWriteItem::builder().delete(d.build().map_err(build_err)?).build())
        };
        match op {
            WriteOp::PutGolden { golden, expect } => {
                let mut item = golden_key(&golden.entity, &golden.golden_id);
                item.insert("kind".into(), s("golden"));
                item.insert("revision".into(), n(golden.revision));
                item.insert("version".into(), n(golden.version));
                item.insert("status".into(), s(status_name(golden)));
                match layouts.get(&(golden.entity.as_str(), golden.golden_id.as_str())) {
                    Some(layout) if !layout.parts.is_empty() => {
                        item.insert("data".into(), data(&layout.meta)?);
                        item.insert("parts".into(), AttributeValue::L(layout.names().into_iter().map(s).collect()));
                        item.insert("members_n".into(), n(golden.members.len() as u64));
                    }
                    _ => {
                        item.insert("data".into(), data(golden)?);
                    }
                }
                match expect {
                    Expect::Absent => put(item, Some("attribute_not_exists(pk)"), vec![]),
                    Expect::Revision(r) => put(item, Some("revision = :r"), vec![(":r", n(*r))]),
                }
            }
            WriteOp::PutHistory(h) => {
                let events = folded.get(&(h.golden_id.as_str(), h.version)).map_or(&[][..], Vec::as_slice);
                let item = HashMap::from([
                    ("pk".into(), s(keys::golden_item_key(&h.entity, &h.golden_id))),
                    ("sk".into(), s(keys::history_sort_key(h.version))),
                    ("kind".into(), s("history")),
                    ("data".into(), if events.is_empty() { data(h)? } else { data(&history_with_events(h, events)?)? }),
                ]);
                put(item, Some("attribute_not_exists(pk)"), vec![])
            }
            WriteOp::SetXref { source, golden_id, why } => {
                let mut u = Update::builder()
                    .table_name(t)
                    .set_key(Some(source_key_item(source)))
                    .update_expression(if why.is_some() {
                        "SET golden_id = :g, why = :w"
                    } else {
                        "SET golden_id = :g"
                    })
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":g", s(golden_id));
                if let Some(w) = why {
                    u = u.expression_attribute_values(":w", s(link_text(w)?));
                }
                let u = u.build().map_err(build_err)?;
                Ok(TransactWriteItem::builder().update(u).build())
            }
            WriteOp::PutIndex { .. } | WriteOp::DeleteIndex { .. } => {
                Err(StoreError::Invalid("index entries are written outside transactions".into()))
            }
            WriteOp::PutSuppression { entity, key, request_id } => {
                let item = HashMap::from([
                    ("pk".into(), s(keys::suppression_item_key(entity, key))),
                    ("sk".into(), s(META)),
                    ("kind".into(), s("suppression")),
                    ("request_id".into(), s(request_id)),
                ]);
                put(item, None, vec![])
            }
            WriteOp::PutTombstone { source, seq, request_id, unlinked } => {
                let mut item = source_key_item(source);
                item.insert("kind".into(), s("tombstone"));
                item.insert("source_seq".into(), n(*seq));
                item.insert("request_id".into(), s(request_id));
                let condition = if *unlinked {
                    "attribute_not_exists(pk) OR (source_seq <= :seq AND attribute_not_exists(golden_id))"
                } else {
                    "attribute_not_exists(pk) OR source_seq <= :seq"
                };
                put(item, Some(condition), vec![(":seq", n(*seq))])
            }
            WriteOp::DeleteHistory { entity, golden_id, version } => {
                delete(keys::golden_item_key(entity, golden_id), keys::history_sort_key(*version), None)
            }
            WriteOp::DeleteClaim { entity, key, holder } => {
                let u = Update::builder()
                    .table_name(t)
                    .set_key(Some(block_key(entity, &key.text())))
                    .update_expression("REMOVE golden_id")
                    .condition_expression("attribute_not_exists(golden_id) OR golden_id = :g")
                    .expression_attribute_values(":g", s(holder))
                    .build()
                    .map_err(build_err)?;
                Ok(TransactWriteItem::builder().update(u).build())
            }
            WriteOp::DeleteReview { entity, task_id } => {
                delete(keys::review_item_key(entity, task_id), META.to_owned(), None)
            }
            WriteOp::DeleteOutbox { event_id } => {
                let (pk, sk) = Self::outbox_key(event_id);
                delete(pk, sk, None)
            }
            WriteOp::PutLabels(l) => {
                let item = HashMap::from([
                    ("pk".into(), s(keys::labels_key(&l.entity))),
                    ("sk".into(), s(l.position())),
                    ("kind".into(), s("label")),
                    ("data".into(), data(&**l)?),
                ]);
                put(item, None, vec![])
            }
            WriteOp::ReleaseHeld { record, seq } => {
                // The version stored again, not held, with its exemption (an attribute of its
                // own, kept over later versions like the cross-reference).
                let mut stored = (**record).clone();
                let exempt = stored.exempt.take();
                stored.golden_id = None;
                let exempt = serde_json::to_string(&exempt).map_err(|e| StoreError::Corrupt(json_error(&e)))?;
                let u = Update::builder()
                    .table_name(t)
                    .set_key(Some(source_key_item(&record.key)))
                    .update_expression("SET #d = :d, exempt = :x REMOVE held")
                    .condition_expression("source_seq = :seq AND attribute_exists(held)")
                    .expression_attribute_names("#d", "data")
                    .expression_attribute_values(":d", data(&stored)?)
                    .expression_attribute_values(":x", s(exempt))
                    .expression_attribute_values(":seq", n(*seq))
                    .build()
                    .map_err(build_err)?;
                Ok(TransactWriteItem::builder().update(u).build())
            }
            // Checked before the transaction (`transact`), never sent in it.
            WriteOp::CheckUnsuppressed { .. } => {
                Err(StoreError::Invalid("a suppression check is not a transaction item".into()))
            }
            WriteOp::PutClaim { entity, key, golden_id, from } => {
                let mut u = Update::builder()
                    .table_name(t)
                    .set_key(Some(block_key(entity, &key.text())))
                    .expression_attribute_names("#k", "kind")
                    .expression_attribute_values(":k", s("index"))
                    .expression_attribute_values(":g", s(&**golden_id));
                u = if claim_adds.contains(&(&**entity, key)) {
                    u.update_expression("SET golden_id = :g, #k = :k ADD g :gs")
                        .expression_attribute_values(":gs", AttributeValue::Ss(vec![golden_id.to_string()]))
                } else {
                    u.update_expression("SET golden_id = :g, #k = :k")
                };
                u = match from {
                    None => u.condition_expression("attribute_not_exists(golden_id) OR golden_id = :g"),
                    Some(f) => u
                        .condition_expression("golden_id = :f OR golden_id = :g")
                        .expression_attribute_values(":f", s(f)),
                };
                Ok(TransactWriteItem::builder().update(u.build().map_err(build_err)?).build())
            }
            WriteOp::PutReview(task) => {
                let mut item = HashMap::from([
                    ("pk".into(), s(keys::review_item_key(&task.entity, &task.task_id))),
                    ("sk".into(), s(META)),
                    ("kind".into(), s("review")),
                    ("status".into(), s(format!("{:?}", task.status).to_lowercase())),
                    ("data".into(), data(task)?),
                ]);
                if let Some(at) = task.expires_at {
                    // A resolved task is kept for its retention period, then removed (TTL).
                    item.insert("expiresAt".into(), n(at.max(0) as u64));
                }
                put(item, None, vec![])
            }
            WriteOp::PutOutbox(entry) => {
                let item = HashMap::from([
                    ("pk".into(), s(format!("{OUTBOX_PREFIX}{}", entry.event_id))),
                    ("sk".into(), s(META)),
                    ("kind".into(), s("outbox")),
                    ("created_at".into(), n(entry.created_at_ms.max(0) as u64)),
                    ("data".into(), data(entry)?),
                ]);
                put(item, None, vec![])
            }
        }
    }

    /// The stored sequence that made a source write stale.
    async fn stale(&self, record: &SourceRecord) -> Result<SourceWrite, StoreError> {
        let current = self.get(source_key_item(&record.key), true).await?;
        let stored_seq = current
            .as_ref()
            .and_then(|i| i.get("source_seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(record.seq);
        Ok(SourceWrite::Stale { stored_seq })
    }

    /// Whether a suppression marker exists for one of `guards` (strongly consistent reads).
    async fn suppressed(&self, entity: &str, guards: &[String]) -> Result<bool, StoreError> {
        let mut unique: Vec<&String> = guards.iter().collect();
        unique.sort();
        unique.dedup();
        let keys: Vec<Item> = unique
            .iter()
            .map(|g| HashMap::from([("pk".into(), s(keys::suppression_item_key(entity, g))), ("sk".into(), s(META))]))
            .collect();
        Ok(!self.batch_get_projected(keys, Some(&[("pk", "#p")]), true).await?.is_empty())
    }

    /// Takes back a source write that a suppression marker forbids: the version it replaced is
    /// put back (or the new item deleted), unless a newer version has replaced it meanwhile.
    async fn undo_source_write(&self, record: &SourceRecord, old: Option<Item>) -> Result<(), StoreError> {
        // A failed condition means a newer version replaced ours: its own write checks the markers.
        const NOT_REPLACED: &str = "source_seq = :seq";
        match old {
            Some(old) => {
                self.count(&self.counts.update_item);
                meter().request("PutItem");
                meter().write("PutItem", &[Write::Put(&old)], false);
                let put = self.client.put_item().table_name(&self.table).set_item(Some(old));
                let sent = put.condition_expression(NOT_REPLACED).expression_attribute_values(":seq", n(record.seq));
                unless_condition_failed("PutItem", sent.send().await)
            }
            None => {
                let key = source_key_item(&record.key);
                self.count(&self.counts.delete_item);
                meter().request("DeleteItem");
                meter().write("DeleteItem", &[Write::Delete(&key)], false);
                let delete = self.client.delete_item().table_name(&self.table).set_key(Some(key));
                let sent = delete.condition_expression(NOT_REPLACED).expression_attribute_values(":seq", n(record.seq));
                unless_condition_failed("DeleteItem", sent.send().await)
            }
        }
    }

    /// Sends one `TransactWriteItems`: `None` when it succeeded, the cancellation reason codes
    /// (one per item) when DynamoDB cancelled it; a transaction in progress on the same items
    /// is a conflict.
    async fn send_transaction(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<String>>, StoreError> {
        self.count(&self.counts.transact_write_items);
        meter().request("TransactWriteItems");
        meter().write("TransactWriteItems", &transaction_writes(&items), true);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                for c in out.consumed_capacity() {
                    self.counts.capacity(c.capacity_units());
                }
                Ok(None)
            }
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(tc) => {
                    Ok(Some(tc.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect()))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(StoreError::Conflict(Conflict::Concurrent))
                }
                other => Err(StoreError::Unavailable(format!(
                    "TransactWriteItems: {}",
                    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(other).unwrap_or("service error")
                ))),
            },
            Err(e) => Err(unavailable("TransactWriteItems")(e)),
        }
    }

    /// Items holding events not delivered yet, written before `before_ms`, at most `limit`: the
    /// pending-event items, a `Query` per partition. What the publisher's sweep sends again when
    /// the stream did not (records past its retries or its retention).
    pub async fn unpublished_items(&self, before_ms: i64, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..PENDING_SHARDS {
            for item in self.query(format!("{PENDING_PREFIX}{shard}"), SortKeys::All, None, true).await? {
                let at = item.get("at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()) else { continue };
                let Some((pk, sk)) = sk.split_once('|') else { continue };
                if at < before_ms {
                    out.push((keys::decode_part(pk), keys::decode_part(sk)));
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Takes delivered items out of the pending set: their pending-event items are deleted, and
    /// delivered outbox items too (a history item keeps its events).
    pub async fn mark_delivered(&self, items: &[(String, String)]) -> Result<(), StoreError> {
        for (pk, sk) in items {
            if pk.starts_with(OUTBOX_PREFIX) {
                self.delete(pk.clone(), sk.clone()).await?;
            }
            let key = pending_key(pk, sk);
            let (Some(ppk), Some(psk)) = (
                key.get("pk").and_then(|v| v.as_s().ok()).cloned(),
                key.get("sk").and_then(|v| v.as_s().ok()).cloned(),
            ) else {
                continue;
            };
            self.delete(ppk, psk).await?;
        }
        Ok(())
    }

    /// The outbox item's key for an event id (the publisher reads and deletes it).
    pub fn outbox_key(event_id: &str) -> (String, String) {
        (format!("{OUTBOX_PREFIX}{event_id}"), META.to_owned())
    }

    /// Reads one outbox entry by the keys a stream record carries.
    /// The events a stream record names: an outbox item's event, or the events folded into a
    /// history item (see [`fold_events`]; none for a history item without events). `None` when
    /// the item is gone (delivered and deleted, or erased). The history item is read eventually
    /// consistently first, and strongly when the replica does not have it yet.
    pub async fn stream_events(&self, pk: &str, sk: &str) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
        if pk.starts_with(OUTBOX_PREFIX) {
            return Ok(self.get_outbox(pk, sk).await?.map(|e| vec![e]));
        }
        if !sk.starts_with("V#") {
            return Ok(Some(Vec::new()));
        }
        let key = HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]);
        let item = match self.get(key.clone(), false).await? {
            Some(item) => Some(item),
            None => self.get(key, true).await?,
        };
        match item.map(|i| data_text(&i)).transpose()?.flatten() {
            Some(text) => Ok(Some(events_in_history(&text)?)),
            None => Ok(None),
        }
    }

    pub async fn get_outbox(&self, pk: &str, sk: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let key = HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]);
        match self.get(key, true).await? {
            Some(item) => Ok(Some(parse(&item)?)),
            None => Ok(None),
        }
    }

    async fn delete(&self, pk: String, sk: String) -> Result<(), StoreError> {
        self.count(&self.counts.delete_item);
        let key: Item = HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]);
        meter().request("DeleteItem");
        meter().write("DeleteItem", &[Write::Delete(&key)], false);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(unavailable("DeleteItem"))?;
        Ok(())
    }
}

/// Claims (entity, key) whose update also adds the claiming golden record to the block.
use parts_io::Layouts;

/// The items that hold events are history versions and outbox items; the unpublished set is the
/// pending-event items (`PEND#{shard}`).
impl mdm_core::publish::EventItems for DynamoStore {
    async fn events_in(&self, item: &mdm_core::publish::EventItem) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
        self.stream_events(&item.0, &item.1).await
    }

    async fn unpublished(&self, before_ms: i64, limit: usize) -> Result<Vec<mdm_core::publish::EventItem>, StoreError> {
        self.unpublished_items(before_ms, limit).await
    }

    async fn mark_delivered(&self, items: &[mdm_core::publish::EventItem]) -> Result<(), StoreError> {
        DynamoStore::mark_delivered(self, items).await
    }
}

/// Reading and writing the parts of large golden records (`crate::parts`).
#[path = "parts_io.rs"]
mod parts_io;

/// Loading source records in bulk.
#[path = "bulk_load.rs"]
mod bulk_load;

/// Table walks and job checkpoints for maintenance tools.
#[path = "maintenance.rs"]
mod maintenance;
pub use maintenance::{Cursor, JobState};

/// Checkpoints of bulk files.
#[path = "file_checkpoint.rs"]
mod file_checkpoint;

type ClaimAdds<'a> = std::collections::HashSet<(&'a str, &'a IndexKey)>;

/// Partitions of the pending-event items (`PEND#{shard}`): spread so that no partition takes
/// every write.
pub const PENDING_SHARDS: u32 = 16;
const PENDING_PREFIX: &str = "PEND#";

/// The pending-event item of an item (`pk`, `sk`) that holds events not delivered yet: ids
/// only, written ahead of the transaction that writes the events and deleted once the publisher
/// delivered them.
fn pending_key(pk: &str, sk: &str) -> Item {
    let shard = u32::from(keys::digest(&[pk])[0]) % PENDING_SHARDS;
    HashMap::from([
        ("pk".to_owned(), s(format!("{PENDING_PREFIX}{shard}"))),
        ("sk".to_owned(), s(format!("{}|{}", keys::encode_part(pk), keys::encode_part(sk)))),
    ])
}

/// The items a transaction writes events into: each history version with events about it in
/// the same transaction, and each outbox item.
fn event_items(ops: &[WriteOp]) -> Vec<(String, String, i64)> {
    let (_, folded) = fold_events(ops);
    let mut out = Vec::new();
    for op in ops {
        match op {
            WriteOp::PutHistory(h) if folded.contains_key(&(h.golden_id.as_str(), h.version)) => {
                out.push((keys::golden_item_key(&h.entity, &h.golden_id), keys::history_sort_key(h.version), h.at_ms))
            }
            WriteOp::PutOutbox(e) => {
                if let Some(at) = e.event.golden_version() {
                    if ops
                        .iter()
                        .any(|o| matches!(o, WriteOp::PutHistory(h) if (h.golden_id.as_str(), h.version) == at))
                    {
                        continue;
                    }
                }
                out.push((format!("{OUTBOX_PREFIX}{}", e.event_id), META.to_owned(), e.created_at_ms));
            }
            _ => {}
        }
    }
    out
}

/// Outbox events that travel in a history item written by the same transaction, by the golden
/// record and version they are about.
type Folded<'a> = HashMap<(&'a str, u64), Vec<&'a OutboxEntry>>;

/// Moves every outbox event about a golden record version whose history item the same
/// transaction writes into that item: one item written instead of two, and none to delete once
/// published. The table's stream names the history item; the publisher reads the events from it
/// ([`DynamoStore::stream_events`]). Other events keep an outbox item of their own.
fn fold_events(ops: &[WriteOp]) -> (Vec<&WriteOp>, Folded<'_>) {
    let histories: std::collections::HashSet<(&str, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::PutHistory(h) => Some((h.golden_id.as_str(), h.version)),
            _ => None,
        })
        .collect();
    let mut folded: Folded = HashMap::new();
    let mut rest = Vec::with_capacity(ops.len());
    for op in ops {
        if let WriteOp::PutOutbox(entry) = op {
            if let Some(at) = entry.event.golden_version().filter(|at| histories.contains(at)) {
                folded.entry(at).or_default().push(entry);
                continue;
            }
        }
        rest.push(op);
    }
    (rest, folded)
}

/// The JSON a history item's `data` holds when events travel with it: the history entry plus an
/// `outbox` list. An event's golden-record view is left out when it is the snapshot's view (the
/// publisher rebuilds it), so the events cost a few hundred bytes.
fn history_with_events(h: &HistoryEntry, events: &[&OutboxEntry]) -> Result<serde_json::Value, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(json_error(&e));
    let view = serde_json::to_value(mdm_core::events::GoldenView::of(&h.snapshot)).map_err(corrupt)?;
    let mut list = Vec::with_capacity(events.len());
    for e in events {
        let mut v = serde_json::to_value(e).map_err(corrupt)?;
        let detail = v.get_mut("event").and_then(|ev| ev.get_mut("detail")).and_then(|d| d.as_object_mut());
        if let Some(detail) = detail {
            // A slim event is published without its golden record: the snapshot's (without the
            // member list of a record that large) stands in for it at rest.
            if detail.get("golden") == Some(&view) || (e.slim && detail.contains_key("golden")) {
                detail.remove("golden");
                if let Some(o) = v.as_object_mut() {
                    o.insert(GOLDEN_FROM_SNAPSHOT.into(), serde_json::Value::Bool(true));
                }
            }
        }
        list.push(v);
    }
    let mut v = serde_json::to_value(h).map_err(corrupt)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("outbox".into(), serde_json::Value::Array(list));
    }
    Ok(v)
}

/// Marks a folded event whose golden-record view is the history snapshot's.
const GOLDEN_FROM_SNAPSHOT: &str = "goldenFromSnapshot";

/// The events a history item carries, views rebuilt from its snapshot.
fn events_in_history(text: &str) -> Result<Vec<OutboxEntry>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("history item: {}", json_error(&e)));
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
    let Some(serde_json::Value::Array(list)) = v.as_object_mut().and_then(|o| o.remove("outbox")) else {
        return Ok(Vec::new());
    };
    let h: HistoryEntry = serde_json::from_value(v).map_err(corrupt)?;
    let view = serde_json::to_value(mdm_core::events::GoldenView::of(&h.snapshot)).map_err(corrupt)?;
    let mut out = Vec::with_capacity(list.len());
    for mut e in list {
        let rebuild = e.as_object_mut().and_then(|o| o.remove(GOLDEN_FROM_SNAPSHOT)).is_some();
        if rebuild {
            if let Some(d) = e.get_mut("event").and_then(|ev| ev.get_mut("detail")).and_then(|d| d.as_object_mut()) {
                d.insert("golden".into(), view.clone());
            }
        }
        out.push(serde_json::from_value(e).map_err(corrupt)?);
    }
    Ok(out)
}

/// What each item of a transaction writes, for the capacity meter.
fn transaction_writes(items: &[TransactWriteItem]) -> Vec<Write<'_>> {
    items
        .iter()
        .filter_map(|t| {
            if let Some(p) = t.put() {
                Some(Write::Put(p.item()))
            } else if let Some(u) = t.update() {
                let (set, remove) = capacity::update_parts(
                    u.update_expression(),
                    u.expression_attribute_names(),
                    u.expression_attribute_values(),
                );
                Some(Write::Update { key: u.key(), set, remove })
            } else if let Some(d) = t.delete() {
                Some(Write::Delete(d.key()))
            } else {
                t.condition_check().map(|c| Write::Check(c.key()))
            }
        })
        .collect()
}

/// The item of one block of the blocking index.
fn block_key(entity: &str, key: &str) -> Item {
    HashMap::from([("pk".into(), s(keys::block_item_key(entity, key))), ("sk".into(), s(META))])
}

/// The golden ids a block item (or the attributes an update returned) holds, sorted.
fn block_ids(item: &Item) -> Vec<String> {
    let mut ids = item.get("g").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    ids.sort();
    ids
}

fn status_name(g: &GoldenRecord) -> &'static str {
    match g.status {
        mdm_core::GoldenStatus::Active => "active",
        mdm_core::GoldenStatus::MergedInto { .. } => "merged",
        mdm_core::GoldenStatus::Erased => "erased",
    }
}

fn conflict_for(op: &WriteOp) -> Conflict {
    match op {
        WriteOp::PutGolden { golden, .. } => Conflict::Golden(golden.golden_id.clone()),
        WriteOp::PutHistory(h) => Conflict::History(h.golden_id.clone(), h.version),
        WriteOp::SetXref { source, .. } => Conflict::MissingSource(source.to_string()),
        WriteOp::PutClaim { key, .. } | WriteOp::DeleteClaim { key, .. } => Conflict::Claim(key.name().to_owned()),
        WriteOp::PutTombstone { source, .. } => Conflict::SourceChanged(source.to_string()),
        WriteOp::ReleaseHeld { record, .. } => Conflict::SourceChanged(record.key.to_string()),
        _ => Conflict::Concurrent,
    }
}

/// What the conditional write of a source version leaves to do.
enum SourceStep {
    /// Decided without the markers: stale, or nothing to check.
    Done(SourceWrite),
    /// Written; its markers decide. The version it replaced, to put back if one exists.
    Check(Option<Item>),
}

impl DynamoStore {
    /// The conditional update of a source version (the first half of `put_source`).
    async fn write_source(&self, record: &SourceRecord, suppressed_by: &[String]) -> Result<SourceStep, StoreError> {
        let mut stored = record.clone();
        stored.golden_id = None;
        // Kept as an attribute of its own (see `ReleaseHeld`), not in the data.
        stored.exempt = None;
        // A held version is no member of any golden record: it drops its cross-reference.
        // The generation (`first_seq`) stays over a live version; a tombstone has none.
        let update: &str = if record.held {
            "SET #k = :k, source_seq = :seq, #d = :d, first_seq = if_not_exists(first_seq, :seq), held = :k REMOVE request_id, golden_id, why"
        } else {
            "SET #k = :k, source_seq = :seq, #d = :d, first_seq = if_not_exists(first_seq, :seq) REMOVE request_id, held"
        };
        const CONDITION: &str = "attribute_not_exists(pk) OR source_seq < :seq";
        let values = [(":k", s("source")), (":seq", n(record.seq)), (":d", data(&stored)?)];
        self.count(&self.counts.update_item);
        meter().request("UpdateItem");
        let key = source_key_item(&record.key);
        let names = HashMap::from([("#k".to_owned(), "kind".to_owned()), ("#d".to_owned(), "data".to_owned())]);
        let value_map: HashMap<String, AttributeValue> =
            values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let (set, remove) = capacity::update_parts(update, Some(&names), Some(&value_map));
        meter().write("UpdateItem", &[Write::Update { key: &key, set, remove }], false);
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(CONDITION)
            .expression_attribute_names("#k", "kind")
            .expression_attribute_names("#d", "data")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if !suppressed_by.is_empty() {
            // The replaced version comes back at no extra cost, to be put back if suppressed.
            u = u.return_values(ReturnValue::AllOld);
        }
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        let old = match u.send().await {
            Ok(out) => {
                self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
                out.attributes.filter(|a| !a.is_empty())
            }
            // An older or equal version: stale takes precedence over suppression.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                return Ok(SourceStep::Done(self.stale(record).await?));
            }
            Err(e) => return Err(unavailable("UpdateItem")(e)),
        };
        if record.held {
            // Listed for the stewards (`held_records`); an entry whose record was released or
            // erased since is passed over by the reader.
            let entry = HashMap::from([
                ("pk".to_owned(), s(keys::held_list_key(&record.key.entity))),
                ("sk".to_owned(), s(mdm_core::store::held_position(&record.key))),
            ]);
            self.set_attributes(entry, vec![("kind", s("held"))]).await?;
        }
        // A record a steward released from a hold is exempt from the markers.
        let exempt = old.as_ref().is_some_and(|o| o.contains_key("exempt"));
        if suppressed_by.is_empty() || exempt {
            return Ok(SourceStep::Done(SourceWrite::Written));
        }
        Ok(SourceStep::Check(old))
    }
}

impl SourceStore for DynamoStore {
    /// The conditional update first, then strongly consistent reads of the suppression markers:
    /// a marker found undoes the write. Either the erasure that wrote a marker finds this record,
    /// or this read finds the marker (the marker is written before the erasure looks for records;
    /// the record before this read). Reads cost half what `ConditionCheck`s in a transaction do,
    /// and the source write is no longer transactional.
    async fn put_source(&self, record: &SourceRecord, suppressed_by: &[String]) -> Result<SourceWrite, StoreError> {
        let old = match self.write_source(record, suppressed_by).await? {
            SourceStep::Done(write) => return Ok(write),
            SourceStep::Check(old) => old,
        };
        if !self.suppressed(&record.key.entity, suppressed_by).await? {
            return Ok(SourceWrite::Written);
        }
        self.undo_source_write(record, old).await?;
        Ok(SourceWrite::Suppressed)
    }

    /// Every record's conditional update, in order, then the markers of all of them in one round
    /// of strongly consistent reads (100 keys a `BatchGetItem`) instead of one read a record. Each
    /// record is still written before its markers are read. Writes a marker forbids are taken
    /// back last first, so that a key written twice in the batch ends as one write after another
    /// would leave it.
    async fn put_sources(&self, batch: &[(&SourceRecord, &[String])]) -> Vec<Result<SourceWrite, StoreError>> {
        let mut out: Vec<Option<Result<SourceWrite, StoreError>>> = (0..batch.len()).map(|_| None).collect();
        let mut pending = Vec::new();
        for (i, (record, guards)) in batch.iter().enumerate() {
            match self.write_source(record, guards).await {
                Ok(SourceStep::Done(write)) => out[i] = Some(Ok(write)),
                Ok(SourceStep::Check(old)) => pending.push((i, old)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        if !pending.is_empty() {
            let marker = |i: usize, g: &String| keys::suppression_item_key(&batch[i].0.key.entity, g);
            let mut wanted: Vec<String> =
                pending.iter().flat_map(|(i, _)| batch[*i].1.iter().map(move |g| marker(*i, g))).collect();
            wanted.sort();
            wanted.dedup();
            let items: Vec<Item> = wanted
                .iter()
                .map(|pk| HashMap::from([("pk".into(), s(pk.as_str())), ("sk".into(), s(META))]))
                .collect();
            match self.batch_get_projected(items, Some(&[("pk", "#p")]), true).await {
                Ok(found) => {
                    let found: std::collections::HashSet<&str> = found
                        .iter()
                        .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()))
                        .map(String::as_str)
                        .collect();
                    for (i, old) in pending.into_iter().rev() {
                        let (record, guards) = batch[i];
                        let hit = guards.iter().any(|g| found.contains(marker(i, g).as_str()));
                        out[i] = Some(if hit {
                            self.undo_source_write(record, old).await.map(|()| SourceWrite::Suppressed)
                        } else {
                            Ok(SourceWrite::Written)
                        });
                    }
                }
                Err(e) => {
                    for (i, _) in pending {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::Corrupt("a batch write without an outcome".into()))))
            .collect()
    }

    async fn get_source(&self, key: &SourceKey) -> Result<Option<Arc<SourceRecord>>, StoreError> {
        match self.get(source_key_item(key), true).await? {
            Some(item) if !is_tombstone(&item) => Ok(Some(Arc::new(source_from(&item)?))),
            _ => Ok(None),
        }
    }

    /// Eventually consistent first (half the read units) when the store reads eventually; a
    /// replica without the record or with an older version is followed by a strong read.
    async fn get_source_at(&self, key: &SourceKey, seq: u64) -> Result<Option<Arc<SourceRecord>>, StoreError> {
        if self.eventual_sources {
            let item = self.get(source_key_item(key), false).await?;
            let stored_seq = item.as_ref().and_then(|i| i.get("source_seq")).and_then(|v| v.as_n().ok());
            if stored_seq.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= seq) {
                return match item {
                    Some(item) if !is_tombstone(&item) => Ok(Some(Arc::new(source_from(&item)?))),
                    _ => Ok(None),
                };
            }
        }
        self.get_source(key).await
    }

    async fn is_suppressed(&self, entity: &str, keys: &[String]) -> Result<bool, StoreError> {
        if keys.is_empty() {
            return Ok(false);
        }
        self.suppressed(entity, keys).await
    }

    async fn get_sources(&self, keys: &[SourceKey]) -> Result<Vec<Arc<SourceRecord>>, StoreError> {
        let items = self.batch_get(keys.iter().map(source_key_item).collect()).await?;
        let mut by_key: HashMap<SourceKey, SourceRecord> = items
            .iter()
            .filter(|i| !is_tombstone(i))
            .map(source_from)
            .map(|r| r.map(|r| (r.key.clone(), r)))
            .collect::<Result<_, _>>()?;
        Ok(keys.iter().filter_map(|k| by_key.remove(k)).map(Arc::new).collect())
    }
}

impl GoldenStore for DynamoStore {
    async fn get_golden(&self, entity: &str, id: &str) -> Result<Option<GoldenRecord>, StoreError> {
        match self.get(golden_key(entity, id), true).await? {
            Some(item) => Ok(Some(self.golden_from(item, true).await?)),
            None => Ok(None),
        }
    }

    async fn get_goldens(&self, entity: &str, ids: &[String]) -> Result<Vec<GoldenRecord>, StoreError> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique.iter().map(|id| golden_key(entity, id)).collect();
        let items = self.batch_get_projected(keys, None, self.consistent_goldens).await?;
        let mut by_id: HashMap<String, GoldenRecord> = HashMap::with_capacity(items.len());
        for item in items {
            let g = self.golden_from(item, self.consistent_goldens).await?;
            by_id.insert(g.golden_id.clone(), g);
        }
        Ok(unique.into_iter().filter_map(|id| by_id.remove(id)).collect())
    }

    async fn history(&self, entity: &str, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let items = self.query(keys::golden_item_key(entity, id), SortKeys::Prefix("V#"), None, true).await?;
        items.iter().map(parse).collect()
    }
}

impl ReceiptStore for DynamoStore {
    async fn get_receipt(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let key = HashMap::from([("pk".into(), s(keys::erasure_item_key(request_id))), ("sk".into(), s(META))]);
        Ok(self.get(key, true).await?.and_then(|i| i.get("data").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn put_receipt(&self, request_id: &str, revision: u64, receipt_json: &str) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".into(), s(keys::erasure_item_key(request_id))),
            ("sk".into(), s(META)),
            ("kind".into(), s("erasure")),
            ("revision".into(), n(revision)),
            ("data".into(), s(receipt_json)),
        ]);
        self.count(&self.counts.update_item);
        meter().request("PutItem");
        meter().write("PutItem", &[Write::Put(&item)], false);
        let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        put = if revision <= 1 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("revision = :r").expression_attribute_values(":r", n(revision - 1))
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::Conflict(Conflict::Concurrent))
            }
            Err(e) => Err(unavailable("PutItem")(e)),
        }
    }

    /// A query per golden record of the items that index its review tasks (`REVG#`, written
    /// with each task), then the tasks themselves; an index item whose task is gone is passed
    /// over.
    async fn reviews_mentioning(&self, entity: &str, golden_ids: &[String]) -> Result<Vec<ReviewTask>, StoreError> {
        let mut task_ids = std::collections::BTreeSet::new();
        for g in golden_ids {
            for item in self.query(keys::review_mention_key(entity, g), SortKeys::All, None, true).await? {
                if let Some(id) = item.get("sk").and_then(|v| v.as_s().ok()) {
                    task_ids.insert(id.clone());
                }
            }
        }
        let wanted: Vec<Item> = task_ids
            .iter()
            .map(|t| HashMap::from([("pk".into(), s(keys::review_item_key(entity, t))), ("sk".into(), s(META))]))
            .collect();
        let mut out = Vec::new();
        for item in self.batch_get(wanted).await? {
            let t: ReviewTask = parse(&item)?;
            if golden_ids.iter().any(|g| &t.golden_id == g || t.candidate_golden_ids.contains(g)) {
                out.push(t);
            }
        }
        out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Ok(out)
    }
}

/// A link reason as the source item keeps it (`why`): JSON, a few hundred bytes.
fn link_text(link: &mdm_core::golden::Link) -> Result<String, StoreError> {
    serde_json::to_string(link).map_err(|e| StoreError::Invalid(format!("link reason: {e}")))
}

impl LookupStore for DynamoStore {
    /// The source item, projected to `why` (one strongly consistent `BatchGetItem`).
    async fn get_link(&self, key: &SourceKey) -> Result<Option<mdm_core::golden::Link>, StoreError> {
        let got = self.batch_get_projected(vec![source_key_item(key)], Some(&[("why", "#w")]), true).await?;
        let Some(text) = got.first().and_then(|i| i.get("why")).and_then(|v| v.as_s().ok()) else { return Ok(None) };
        serde_json::from_str(text).map(Some).map_err(|e| StoreError::Invalid(format!("stored link reason: {e}")))
    }

    /// One `BatchGetItem` per 100 distinct identifiers, claims and source items mixed, reading
    /// only the key and the golden id.
    async fn resolve_lookups(&self, lookups: &[Lookup]) -> Result<HashMap<Lookup, String>, StoreError> {
        let mut by_pk: HashMap<String, Vec<&Lookup>> = HashMap::with_capacity(lookups.len());
        for l in lookups {
            let pk = match l {
                Lookup::Claim { entity, key } => keys::block_item_key(entity, key),
                Lookup::Source(k) => k.item_key(),
            };
            by_pk.entry(pk).or_default().push(l);
        }
        let item_keys = by_pk.keys().map(|pk| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(META))])).collect();
        let items = self.batch_get_projected(item_keys, Some(&[("pk", "#pk"), ("golden_id", "#g")]), true).await?;
        let mut out = HashMap::with_capacity(items.len());
        for item in items {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            let g = item.get("golden_id").and_then(|v| v.as_s().ok());
            if let (Some(pk), Some(g)) = (pk, g) {
                for l in by_pk.get(pk).into_iter().flatten() {
                    out.insert((*l).clone(), g.clone());
                }
            }
        }
        Ok(out)
    }

    async fn get_golden_refs(&self, refs: &[(String, String)]) -> Result<Vec<GoldenRecord>, StoreError> {
        let mut unique: Vec<&(String, String)> = refs.iter().collect();
        unique.sort();
        unique.dedup();
        let items = self.batch_get(unique.iter().map(|(e, id)| golden_key(e, id)).collect()).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.golden_from(item, true).await?);
        }
        Ok(out)
    }

    async fn history_page(
        &self,
        entity: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        // A Query answers at most 1 MB: versions of a large record fill that before `limit`,
        // so the pages are followed until `limit` versions are read or none are left.
        let from = keys::history_sort_key(after.saturating_add(1));
        let range = SortKeys::Between(&from, "V#~");
        let items = self.query(keys::golden_item_key(entity, id), range, Some(limit.clamp(1, 1000)), true).await?;
        items.iter().map(parse).collect()
    }
}

impl BlockIndex for DynamoStore {
    /// One item per block (`BLK#…`, `META`) whose string set `g` holds the golden ids: all of a
    /// record's blocks in one `BatchGetItem`, half a unit each when eventually consistent.
    async fn lookup(&self, entity: &str, keys: &[IndexKey], caps: &[usize]) -> Result<Vec<BlockHit>, StoreError> {
        let texts: Vec<String> = keys.iter().map(IndexKey::text).collect();
        let unique: std::collections::BTreeSet<&String> = texts.iter().collect();
        let wanted: Vec<Item> = unique.into_iter().map(|k| block_key(entity, k)).collect();
        let items = self.batch_get_projected(wanted, None, self.consistent_index).await?;
        let mut by_pk: HashMap<String, Vec<String>> = HashMap::with_capacity(items.len());
        for item in &items {
            if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) {
                by_pk.insert(pk.clone(), block_ids(item));
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (i, (key, k)) in keys.iter().zip(&texts).enumerate() {
            let mut golden_ids = by_pk.get(&keys::block_item_key(entity, k)).cloned().unwrap_or_default();
            if !self.consistent_index {
                self.recent.complete(entity, k, &mut golden_ids);
            }
            out.push(BlockHit::capped(key, golden_ids, cap_of(caps, i)));
        }
        Ok(out)
    }

    /// One `UpdateItem` per block (`ADD` to the set, the set as it was returned at no extra
    /// cost), all sent at once. A block that already holds more than the store's cap is left
    /// as it is (it is too common for every lookup) and reported too common.
    async fn add_to_blocks(
        &self,
        entity: &str,
        keys: &[IndexKey],
        golden_id: &str,
        cap: usize,
    ) -> Result<Vec<BlockHit>, StoreError> {
        let texts: Vec<String> = keys.iter().map(IndexKey::text).collect();
        let before = self.block_updates(entity, texts.iter().map(|k| (k.as_str(), golden_id, true))).await?;
        Ok(keys
            .iter()
            .zip(before)
            .map(|(k, ids)| match ids {
                Some(ids) => BlockHit::capped(k, ids, cap),
                // Too full to add to: too common for every lookup.
                None => BlockHit { key: k.clone(), golden_ids: Vec::new(), too_common: true },
            })
            .collect())
    }
}

impl DynamoStore {
    /// Adds (`true`) golden ids to or removes them from blocks, one `UpdateItem` each, all at
    /// once; returns each block's ids before the update, or `None` for a block too full to add to.
    async fn block_updates<'a>(
        &self,
        entity: &str,
        updates: impl Iterator<Item = (&'a str, &'a str, bool)>,
    ) -> Result<Vec<Option<Vec<String>>>, StoreError> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut n = 0;
        for (i, (key, golden_id, add)) in updates.enumerate() {
            let this = self.clone();
            let (entity, key, golden_id) = (entity.to_owned(), key.to_owned(), golden_id.to_owned());
            tasks.spawn(async move { (i, this.block_update(&entity, &key, &golden_id, add).await) });
            n += 1;
        }
        let mut out = vec![None; n];
        while let Some(done) = tasks.join_next().await {
            let (i, before) = done.map_err(|e| StoreError::Unavailable(format!("block update task: {e}")))?;
            out[i] = before?;
        }
        Ok(out)
    }

    async fn block_update(
        &self,
        entity: &str,
        key: &str,
        golden_id: &str,
        add: bool,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let item_key = block_key(entity, key);
        self.count(&self.counts.update_item);
        meter().request("UpdateItem");
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key.clone()))
            .expression_attribute_values(":g", AttributeValue::Ss(vec![golden_id.to_owned()]))
            .return_values(ReturnValue::UpdatedOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        u = if add {
            u.update_expression("ADD g :g SET #k = :k")
                .condition_expression("attribute_not_exists(g) OR size(g) <= :cap")
                .expression_attribute_names("#k", "kind")
                .expression_attribute_values(":k", s("index"))
                .expression_attribute_values(":cap", n(self.block_cap as u64))
        } else {
            u.update_expression("DELETE g :g")
        };
        let (before, result) = match u.send().await {
            Ok(out) => {
                self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
                let before = out.attributes.as_ref().map(block_ids).unwrap_or_default();
                (Some(before), Ok(()))
            }
            // Full: more golden records share the key than any lookup takes.
            Err(SdkError::ServiceError(e)) if add && e.err().is_conditional_check_failed_exception() => (None, Ok(())),
            Err(e) => (None, Err(unavailable("UpdateItem")(e))),
        };
        result?;
        let mut after: Vec<String> = before.clone().unwrap_or_default();
        if before.is_some() {
            if add {
                self.recent.added(entity, key, golden_id);
                after.push(golden_id.to_owned());
            } else {
                self.recent.removed(entity, key, golden_id);
                after.retain(|g| g != golden_id);
            }
        }
        let set = if after.is_empty() { vec![] } else { vec![("g".to_owned(), AttributeValue::Ss(after))] };
        let remove = if set.is_empty() { vec!["g".to_owned()] } else { vec![] };
        meter().write("UpdateItem", &[Write::Update { key: &item_key, set, remove }], false);
        Ok(before)
    }
}

/// One item per counted value (`TERM#{entity}#{term key}`, `META`) and one per entity type for
/// the total (`TERMS#{entity}`, `META`), each holding the number `c`. The total is one item that
/// every first link of a record updates: it takes about 1,000 new records a second per entity
/// type (a partition's write rate).
impl TermStore for DynamoStore {
    /// Every key and the total in one `BatchGetItem`, eventually consistent.
    async fn term_counts(&self, entity: &str, keys: &[String]) -> Result<mdm_core::terms::TermTotals, StoreError> {
        let total_pk = keys::term_total_key(entity);
        let mut pks: Vec<String> = keys.iter().map(|k| keys::term_item_key(entity, k)).collect();
        pks.push(total_pk.clone());
        let unique: std::collections::BTreeSet<&String> = pks.iter().collect();
        let wanted: Vec<Item> = unique.into_iter().map(|pk| term_item(pk.clone())).collect();
        let items = self.batch_get_projected(wanted, Some(&[("pk", "#p"), ("c", "#c")]), false).await?;
        let mut by_pk: HashMap<&str, u64> = HashMap::with_capacity(items.len());
        for item in &items {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            let c = item.get("c").and_then(|v| v.as_n().ok()).and_then(|c| c.parse::<i64>().ok());
            if let (Some(pk), Some(c)) = (pk, c) {
                by_pk.insert(pk.as_str(), u64::try_from(c).unwrap_or(0));
            }
        }
        let count = |pk: &str| by_pk.get(pk).copied().unwrap_or(0);
        let counts = pks[..keys.len()].iter().map(|pk| count(pk)).collect();
        Ok(mdm_core::terms::TermTotals { counts, total: count(&total_pk) })
    }

    /// One `UpdateItem` (`ADD c`) per key and one for the total, all at once; a key whose count
    /// falls to zero is then deleted on the condition that it still is zero or less.
    async fn count_terms(&self, entity: &str, keys: &[String], delta: i64) -> Result<(), StoreError> {
        let mut tasks = tokio::task::JoinSet::new();
        let items = keys.iter().map(|k| (keys::term_item_key(entity, k), true));
        for (pk, drop_at_zero) in items.chain([(keys::term_total_key(entity), false)]) {
            let this = self.clone();
            tasks.spawn(async move { this.count_term(pk, delta, drop_at_zero).await });
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let result = done.map_err(|e| StoreError::Unavailable(format!("term count task: {e}"))).and_then(|r| r);
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn term_item(pk: String) -> Item {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(META))])
}

impl DynamoStore {
    async fn count_term(&self, pk: String, delta: i64, drop_at_zero: bool) -> Result<(), StoreError> {
        let key = term_item(pk);
        self.count(&self.counts.update_item);
        meter().request("UpdateItem");
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("ADD c :d SET #k = :k")
            .expression_attribute_names("#k", "kind")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":k", s("term"))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("UpdateItem"))?;
        self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
        let after = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("c"))
            .and_then(|v| v.as_n().ok())
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0);
        let set = vec![("c".to_owned(), AttributeValue::N(after.to_string())), ("kind".to_owned(), s("term"))];
        meter().write("UpdateItem", &[Write::Update { key: &key, set, remove: vec![] }], false);
        if !drop_at_zero || after > 0 {
            return Ok(());
        }
        // The last record holding the value is gone: no digest of it stays behind.
        self.count(&self.counts.delete_item);
        meter().request("DeleteItem");
        meter().write("DeleteItem", &[Write::Delete(&key)], false);
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("c <= :z")
            .expression_attribute_values(":z", AttributeValue::N("0".into()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Counted again meanwhile: it stays.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(unavailable("DeleteItem")(e)),
        }
    }
}

impl ClaimStore for DynamoStore {
    /// Strongly consistent, or (merge and match handlers) eventually consistent with this
    /// process's own recent claim writes laid over, and keys whose conditional write failed
    /// lately read strongly.
    async fn get_claims(
        &self,
        entity: &str,
        claim_keys: &[IndexKey],
    ) -> Result<BTreeMap<IndexKey, String>, StoreError> {
        let texts: Vec<(String, &IndexKey)> = claim_keys.iter().map(|k| (k.text(), k)).collect();
        let wanted: HashMap<String, &String> =
            texts.iter().map(|(k, _)| (keys::block_item_key(entity, k), k)).collect();
        let key_of_text: HashMap<&String, &IndexKey> = texts.iter().map(|(t, k)| (t, *k)).collect();
        let key_of = |pk: &String| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(META))]);
        let mut items = Vec::new();
        const HOLDER: &[(&str, &str)] = &[("pk", "#p"), ("golden_id", "#g")];
        if self.consistent_claims {
            items = self.batch_get_projected(wanted.keys().map(key_of).collect(), Some(HOLDER), true).await?;
        } else {
            let (strong, eventual): (Vec<&String>, Vec<&String>) =
                wanted.keys().partition(|pk| self.recent.claim(entity, wanted[*pk]) == Some(ClaimState::Suspect));
            for (pks, consistent) in [(strong, true), (eventual, false)] {
                if !pks.is_empty() {
                    let keys = pks.into_iter().map(key_of).collect();
                    items.extend(self.batch_get_projected(keys, Some(HOLDER), consistent).await?);
                }
            }
        }
        let mut out = BTreeMap::new();
        if !self.consistent_claims {
            for (text, k) in &texts {
                if let Some(ClaimState::Written(holder)) = self.recent.claim(entity, text) {
                    match holder {
                        Some(h) => out.insert((*k).clone(), h),
                        None => out.remove(*k),
                    };
                }
            }
        }
        for item in items {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            let g = item.get("golden_id").and_then(|v| v.as_s().ok());
            if let (Some(pk), Some(g)) = (pk, g) {
                if let Some(k) = wanted.get(pk) {
                    // What this process wrote lately wins over a replica's older answer.
                    let own =
                        !self.consistent_claims && matches!(self.recent.claim(entity, k), Some(ClaimState::Written(_)));
                    if let (false, Some(key)) = (own, key_of_text.get(*k)) {
                        out.insert((*key).clone(), g.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `claimed_at` of claims written ahead of a transaction (strongly consistent).
    async fn claim_times(&self, entity: &str, keys: &[IndexKey]) -> Result<BTreeMap<IndexKey, i64>, StoreError> {
        let wanted: HashMap<String, &IndexKey> =
            keys.iter().map(|k| (keys::block_item_key(entity, &k.text()), k)).collect();
        let item_keys = wanted.keys().map(|pk| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(META))])).collect();
        let items = self.batch_get_projected(item_keys, Some(&[("pk", "#p"), ("claimed_at", "#c")]), true).await?;
        let mut out = BTreeMap::new();
        for item in &items {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            let at = item.get("claimed_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
            if let (Some(k), Some(at)) = (pk.and_then(|pk| wanted.get(pk)), at) {
                out.insert((*k).clone(), at);
            }
        }
        Ok(out)
    }
}

impl ReviewStore for DynamoStore {
    async fn get_review(&self, entity: &str, task_id: &str) -> Result<Option<ReviewTask>, StoreError> {
        let key = HashMap::from([("pk".into(), s(keys::review_item_key(entity, task_id))), ("sk".into(), s(META))]);
        match self.get(key, true).await? {
            Some(item) => Ok(Some(parse(&item)?)),
            None => Ok(None),
        }
    }

    /// The open queue's entries (a `Query`, pages followed; each entry is a few dozen bytes):
    /// their number, and the first one's opening time (its sort key starts with it).
    async fn review_backlog(&self, entity: &str) -> Result<ReviewBacklog, StoreError> {
        let entries = self.query(keys::review_queue_key(entity, true), SortKeys::All, None, true).await?;
        let oldest_opened_ms = entries
            .first()
            .and_then(|i| i.get("sk").and_then(|v| v.as_s().ok()))
            .and_then(|sk| sk.split_once('#'))
            .and_then(|(ms, _)| ms.parse().ok());
        Ok(ReviewBacklog { open: entries.len() as u64, oldest_opened_ms })
    }

    /// One `Query` of the label list (its pages followed up to `limit` sets).
    async fn labels(
        &self,
        entity: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<mdm_core::store::LabelPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let range = after.map_or(SortKeys::All, SortKeys::After);
        let items = self.query(keys::labels_key(entity), range, Some(limit + 1), true).await?;
        let mut sets: Vec<mdm_core::golden::LabelSet> = items.iter().map(parse).collect::<Result<_, _>>()?;
        let more = sets.len() > limit;
        sets.truncate(limit);
        let next = if more { sets.last().map(mdm_core::golden::LabelSet::position) } else { None };
        Ok(mdm_core::store::LabelPage { sets, next })
    }

    /// One `Query` of the held list, then the records in `BatchGetItem`s of 100; entries whose
    /// record is no longer held (released, erased, or replaced by a newer version) are passed
    /// over and deleted.
    async fn held_records(
        &self,
        entity: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<mdm_core::store::HeldPage, StoreError> {
        let pk = keys::held_list_key(entity);
        let limit = limit.clamp(1, 1000);
        let range = after.map_or(SortKeys::All, SortKeys::After);
        let entries = self.query(pk.clone(), range, Some(limit + 1), true).await?;
        let positions: Vec<String> =
            entries.iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned()).collect();
        let more = positions.len() > limit;
        let positions = &positions[..positions.len().min(limit)];
        let wanted: Vec<SourceKey> = positions
            .iter()
            .filter_map(|p| p.split_once('#'))
            .map(|(sys, id)| SourceKey::new(entity, keys::decode_part(sys), keys::decode_part(id)))
            .collect();
        let found = self.get_sources(&wanted).await?;
        let mut records = Vec::with_capacity(found.len());
        for (key, position) in wanted.iter().zip(positions) {
            match found.iter().find(|r| &r.key == key) {
                Some(r) if r.held => records.push(Arc::clone(r)),
                _ => self.delete(pk.clone(), position.clone()).await?,
            }
        }
        let next = if more { positions.last().cloned() } else { None };
        Ok(mdm_core::store::HeldPage { records, next })
    }

    /// One `Query` of the queue's partition (sort keys after the cursor), then the tasks in
    /// `BatchGetItem`s of 100.
    async fn review_queue(
        &self,
        entity: &str,
        open: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ReviewPage, StoreError> {
        let pk = keys::review_queue_key(entity, open);
        let limit = limit.clamp(1, 1000);
        let mut positions = self.review_queue_positions(&pk, after, limit + 1).await?;
        let more = positions.len() > limit;
        positions.truncate(limit);
        let ids: Vec<&str> = positions.iter().filter_map(|p| p.split_once('#').map(|(_, id)| id)).collect();
        let wanted: Vec<Item> = ids
            .iter()
            .map(|t| HashMap::from([("pk".into(), s(keys::review_item_key(entity, t))), ("sk".into(), s(META))]))
            .collect();
        let mut by_id: HashMap<String, ReviewTask> = HashMap::new();
        for item in self.batch_get(wanted).await? {
            let t: ReviewTask = parse(&item)?;
            by_id.insert(t.task_id.clone(), t);
        }
        // A task gone (erased) is passed over.
        let tasks = ids.iter().filter_map(|id| by_id.remove(*id)).collect();
        let next = if more { positions.last().cloned() } else { None };
        Ok(ReviewPage { tasks, next })
    }
}

impl Transactor for DynamoStore {
    /// One `TransactWriteItems` for everything but the blocking index and the cross-references,
    /// which cost half a transaction's write units outside it:
    ///
    /// - Index entries are a candidate list, not a record: new ones are added to their block
    ///   items before the transaction and dropped ones after it (`UpdateItem`, one per block). An
    ///   entry written for a transaction that then failed names a golden record that does not
    ///   exist (or, golden ids being derived from the first source key, one the retry writes);
    ///   lookups resolve it to nothing. An entry under a key the transaction claims for the same
    ///   golden record goes with the claim, in the transaction.
    /// - Cross-references follow the golden records that list their source records: each is a
    ///   conditional `UpdateItem` after the transaction. A lost one fails the call, so the queue
    ///   delivers the message again; the retry finds the golden record that lists the source
    ///   (see `Hub::merge_decision`) and writes it.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        let mut xrefs = Vec::new();
        let mut ahead = Vec::new();
        let mut guards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                WriteOp::CheckUnsuppressed { entity, key } => guards.entry(entity).or_default().push(key),
                WriteOp::PutIndex { .. } => puts.push(op),
                WriteOp::DeleteIndex { .. } => deletes.push(op),
                WriteOp::SetXref { .. } => xrefs.push(op),
                WriteOp::PutClaim { from: None, .. } => ahead.push(op),
                _ => items.push(op),
            }
        }
        // A claim and its golden record's entry in the same block: one update instead of two
        // writes.
        let claimed: std::collections::HashSet<(&str, &IndexKey, &str)> = items
            .iter()
            .chain(&ahead)
            .filter_map(|op| match op {
                WriteOp::PutClaim { entity, key, golden_id, .. } => Some((&**entity, key, &**golden_id)),
                _ => None,
            })
            .collect();
        let (folded, puts): (Vec<WriteOp>, Vec<WriteOp>) = puts.into_iter().partition(|op| {
            matches!(op, WriteOp::PutIndex { entity, key, golden_id }
                if claimed.contains(&(&**entity, key, &**golden_id)))
        });
        let claim_adds: ClaimAdds = folded
            .iter()
            .filter_map(|op| match op {
                WriteOp::PutIndex { entity, key, .. } => Some((&**entity, key)),
                _ => None,
            })
            .collect();
        // Markers first (strongly consistent), before anything is written: an erasure waits
        // `suppression_settle_ms` after writing its markers, longer than this check may precede
        // the transaction's effect (the deadline and the timeout below).
        // Parts of large golden records: in the transaction when they fit; otherwise ahead of
        // everything (immutable, named by content: a transaction that then fails leaves parts
        // nothing names, which the next write deletes).
        let (layouts, new_parts) = self.plan_parts(&items).await?;
        let part_items = if Self::parts_fit(items.len(), &new_parts) {
            self.part_puts(new_parts)?
        } else {
            self.put_parts(new_parts).await?;
            Vec::new()
        };
        let checked = std::time::Instant::now();
        for (entity, keys) in &guards {
            if self.suppressed(entity, keys).await? {
                return Err(StoreError::Conflict(Conflict::Suppressed));
            }
        }
        // Boxed: the merge and erasure futures that await this one are deep already.
        Box::pin(self.review_mentions(&items)).await?;
        let leaving = Box::pin(self.queue_entries_leaving(&items)).await?;
        Box::pin(self.pending_ahead(&items)).await?;
        self.index_writes(&puts).await?;
        let claims_written = std::time::Instant::now();
        self.claims_ahead(&ahead, &claim_adds).await?;
        if !items.is_empty() {
            if claims_written.elapsed() > CLAIMS_AHEAD_DEADLINE {
                // Too late for the lease the claims give it; the retry claims again.
                return Err(StoreError::Conflict(Conflict::Concurrent));
            }
            if guards.is_empty() {
                self.transact_items(&items, &claim_adds, &layouts, part_items).await?;
            } else {
                if checked.elapsed() > SUPPRESSION_CHECK_DEADLINE {
                    // Too long since the marker check; the retry checks again.
                    return Err(StoreError::Conflict(Conflict::Concurrent));
                }
                let sent = self.transact_items(&items, &claim_adds, &layouts, part_items);
                match tokio::time::timeout(SUPPRESSION_TRANSACTION_TIMEOUT, sent).await {
                    Ok(result) => result?,
                    Err(_) => return Err(StoreError::Unavailable("TransactWriteItems timed out".into())),
                }
            }
        }
        for op in &folded {
            if let WriteOp::PutIndex { entity, key, golden_id } = op {
                self.recent.added(entity, &key.text(), golden_id);
            }
        }
        for op in &xrefs {
            if let WriteOp::SetXref { source, golden_id, why } = op {
                self.set_xref(source, golden_id, why.as_deref()).await?;
            }
        }
        self.index_writes(&deletes).await?;
        for (pk, sk) in leaving {
            self.delete(pk, sk).await?;
        }
        // Best effort, last: a part left behind is named by nothing and deleted by a later write.
        self.parts_written(&items, &layouts).await;
        Ok(())
    }

    async fn settle_suppression(&self, markers_at_ms: i64, now_ms: i64) {
        let left = markers_at_ms.saturating_add(SUPPRESSION_SETTLE_MS as i64).saturating_sub(now_ms);
        if left > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(left as u64)).await;
        }
    }
}

impl DynamoStore {
    /// New claims, written ahead of the transaction at half its write units: one `UpdateItem`
    /// of the block item each (`golden_id`, `claimed_at`, and the block addition when the plan
    /// indexes the golden record there), on condition that the claim is free or already this
    /// golden record's. A claim held by another golden record fails the call as a conflict.
    /// If the transaction then fails, the claims name a golden record that does not exist: the
    /// retry, which derives the same golden id, finds them its own; another merge leaves them
    /// alone for the lease and then takes them (`Hub::plan`, `ClaimStore::claim_times`).
    async fn claims_ahead(&self, ops: &[WriteOp], claim_adds: &ClaimAdds<'_>) -> Result<(), StoreError> {
        let now = mdm_core::time::now_ms().max(0) as u64;
        for op in ops {
            let WriteOp::PutClaim { entity, key: index_key, golden_id, .. } = op else { continue };
            let key = &index_key.text();
            let item_key = block_key(entity, key);
            let add = claim_adds.contains(&(&**entity, index_key));
            let mut set = vec![
                ("golden_id".to_owned(), s(&**golden_id)),
                ("claimed_at".to_owned(), n(now)),
                ("kind".to_owned(), s("index")),
            ];
            if add {
                set.push(("g".to_owned(), AttributeValue::Ss(vec![golden_id.to_string()])));
            }
            self.count(&self.counts.update_item);
            meter().request("UpdateItem");
            meter().write("UpdateItem", &[Write::Update { key: &item_key, set, remove: vec![] }], false);
            let mut u = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key))
                .condition_expression("attribute_not_exists(golden_id) OR golden_id = :g")
                .expression_attribute_names("#k", "kind")
                .expression_attribute_values(":g", s(&**golden_id))
                .expression_attribute_values(":t", n(now))
                .expression_attribute_values(":k", s("index"))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            u = if add {
                u.update_expression("SET golden_id = :g, claimed_at = :t, #k = :k ADD g :gs")
                    .expression_attribute_values(":gs", AttributeValue::Ss(vec![golden_id.to_string()]))
            } else {
                u.update_expression("SET golden_id = :g, claimed_at = :t, #k = :k")
            };
            match u.send().await {
                Ok(out) => {
                    self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
                    self.recent.claimed(entity, key, Some(golden_id));
                }
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                    self.recent.suspect(entity, key);
                    return Err(StoreError::Conflict(Conflict::Claim(
                        mdm_core::blocking::BlockKey::name_of(key).to_owned(),
                    )));
                }
                Err(e) => return Err(unavailable("UpdateItem")(e)),
            }
        }
        Ok(())
    }

    /// Points a stored source record at its golden record (`UpdateItem`, on condition that the
    /// source item exists).
    /// The cross-reference, and why the record is a member when the write makes a link.
    async fn set_xref(
        &self,
        source: &SourceKey,
        golden_id: &str,
        why: Option<&mdm_core::golden::Link>,
    ) -> Result<(), StoreError> {
        let key = source_key_item(source);
        let why = why.map(link_text).transpose()?;
        self.count(&self.counts.update_item);
        meter().request("UpdateItem");
        let mut set = vec![("golden_id".into(), s(golden_id))];
        set.extend(why.iter().map(|w| ("why".to_owned(), s(w))));
        meter().write("UpdateItem", &[Write::Update { key: &key, set, remove: vec![] }], false);
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(if why.is_some() { "SET golden_id = :g, why = :w" } else { "SET golden_id = :g" })
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":g", s(golden_id));
        if let Some(w) = why {
            u = u.expression_attribute_values(":w", s(w));
        }
        let sent = u.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await;
        match sent {
            Ok(out) => {
                self.counts.capacity(out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(())
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::Conflict(Conflict::MissingSource(source.to_string())))
            }
            Err(e) => Err(unavailable("UpdateItem")(e)),
        }
    }

    /// A pending-event item for every item of the transaction that will hold events, written
    /// ahead of it: the sweep finds undelivered events through them. One whose transaction then
    /// failed names an item that does not exist; the sweep deletes it.
    async fn pending_ahead(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        for (pk, sk, at) in event_items(ops) {
            self.set_attributes(pending_key(&pk, &sk), vec![("kind", s("pending")), ("at", n(at.max(0) as u64))])
                .await?;
        }
        Ok(())
    }

    /// Creates or updates a small item with these attributes (one unconditional `UpdateItem`).
    async fn set_attributes(&self, key: Item, attrs: Vec<(&str, AttributeValue)>) -> Result<(), StoreError> {
        self.count(&self.counts.update_item);
        meter().request("UpdateItem");
        let set: Vec<(String, AttributeValue)> = attrs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        meter().write("UpdateItem", &[Write::Update { key: &key, set, remove: vec![] }], false);
        let mut u = self.client.update_item().table_name(&self.table).set_key(Some(key));
        let mut parts = Vec::with_capacity(attrs.len());
        for (i, (name, value)) in attrs.into_iter().enumerate() {
            parts.push(format!("#n{i} = :v{i}"));
            u = u
                .expression_attribute_names(format!("#n{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        u.update_expression(format!("SET {}", parts.join(", "))).send().await.map_err(unavailable("UpdateItem"))?;
        Ok(())
    }

    /// The items that index a new review task under each golden record it names (holder and
    /// candidates), written ahead of the transaction that stores the task: erasure finds a
    /// golden record's tasks with a query. One left behind by a failed transaction, or naming a
    /// task deleted since, is passed over by the reader.
    async fn review_mentions(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        for op in ops {
            let WriteOp::PutReview(task) = op else { continue };
            // Its place in the review queue (status and age).
            let open = task.status == mdm_core::golden::ReviewStatus::Open;
            let queue = HashMap::from([
                ("pk".to_owned(), s(keys::review_queue_key(&task.entity, open))),
                ("sk".to_owned(), s(review_queue_position(task))),
            ]);
            let mut attrs = vec![("kind", s("review_queue"))];
            if let Some(at) = task.expires_at {
                // A resolved task's entry: gone with the task when its retention ends (TTL).
                attrs.push(("expiresAt", n(at.max(0) as u64)));
            }
            self.set_attributes(queue, attrs).await?;
            for g in std::iter::once(&task.golden_id).chain(&task.candidate_golden_ids) {
                let key = HashMap::from([
                    ("pk".to_owned(), s(keys::review_mention_key(&task.entity, g))),
                    ("sk".to_owned(), s(&task.task_id)),
                ]);
                self.set_attributes(key, vec![("kind", s("review_mention"))]).await?;
            }
        }
        Ok(())
    }

    /// Up to `fetch` sort keys of a review-queue partition after `after`.
    async fn review_queue_positions(
        &self,
        pk: &str,
        after: Option<&str>,
        fetch: usize,
    ) -> Result<Vec<String>, StoreError> {
        let range = after.map_or(SortKeys::All, SortKeys::After);
        let entries = self.query(pk.to_owned(), range, Some(fetch), true).await?;
        Ok(entries.iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned()).collect())
    }

    /// The review-queue entries that leave with the transaction, deleted after it: those of the
    /// tasks it deletes (read before it: an entry's key holds the task's opening time), and the
    /// open-queue entries of the tasks it resolves (the resolved queue lists them from then on).
    async fn queue_entries_leaving(&self, ops: &[WriteOp]) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for op in ops {
            match op {
                WriteOp::DeleteReview { entity, task_id } => {
                    if let Some(task) = self.get_review(entity, task_id).await? {
                        let open = task.status == mdm_core::golden::ReviewStatus::Open;
                        out.push((keys::review_queue_key(entity, open), review_queue_position(&task)));
                    }
                }
                WriteOp::PutReview(task) if task.status != mdm_core::golden::ReviewStatus::Open => {
                    out.push((keys::review_queue_key(&task.entity, true), review_queue_position(task)));
                }
                // A released record leaves the held list.
                WriteOp::ReleaseHeld { record, .. } => {
                    out.push((keys::held_list_key(&record.key.entity), mdm_core::store::held_position(&record.key)));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Index puts and deletes, one `UpdateItem` per block, all sent at once.
    async fn index_writes(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let mut by_entity: BTreeMap<&str, Vec<(String, &str, bool)>> = BTreeMap::new();
        for op in ops {
            match op {
                WriteOp::PutIndex { entity, key, golden_id } => {
                    by_entity.entry(entity).or_default().push((key.text(), golden_id, true))
                }
                WriteOp::DeleteIndex { entity, key, golden_id } => {
                    by_entity.entry(entity).or_default().push((key.text(), golden_id, false))
                }
                _ => return Err(StoreError::Invalid("only index entries are written here".into())),
            }
        }
        for (entity, updates) in &by_entity {
            self.block_updates(entity, updates.iter().map(|(k, g, add)| (k.as_str(), *g, *add))).await?;
        }
        Ok(())
    }

    async fn transact_items(
        &self,
        ops: &[WriteOp],
        claim_adds: &ClaimAdds<'_>,
        layouts: &Layouts<'_>,
        parts: Vec<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        let (ops, folded) = fold_events(ops);
        let mut items =
            ops.iter().map(|op| self.op_item(op, &folded, claim_adds, layouts)).collect::<Result<Vec<_>, _>>()?;
        // After the operations: cancellation reasons line up with `ops`.
        items.extend(parts);
        let Some(reasons) = self.send_transaction(items).await? else {
            for op in ops {
                match op {
                    WriteOp::PutClaim { entity, key, golden_id, .. } => {
                        self.recent.claimed(entity, &key.text(), Some(golden_id));
                    }
                    WriteOp::DeleteClaim { entity, key, .. } => self.recent.claimed(entity, &key.text(), None),
                    _ => {}
                }
            }
            return Ok(());
        };
        for (op, reason) in ops.iter().copied().zip(&reasons) {
            let claim = match op {
                WriteOp::PutClaim { entity, key, .. } => Some((&**entity, key)),
                WriteOp::DeleteClaim { entity, key, .. } => Some((entity.as_str(), key)),
                _ => None,
            };
            if let (Some((entity, key)), "ConditionalCheckFailed") = (claim, reason.as_str()) {
                self.recent.suspect(entity, &key.text());
            }
        }
        match reasons.iter().position(|r| r == "ConditionalCheckFailed") {
            Some(i) => Err(StoreError::Conflict(ops.get(i).map_or(Conflict::Concurrent, |op| conflict_for(op)))),
            None if reasons.iter().any(|r| r == "TransactionConflict") => {
                Err(StoreError::Conflict(Conflict::Concurrent))
            }
            None => Err(StoreError::Unavailable(format!("TransactWriteItems cancelled: {reasons:?}"))),
        }
    }
}

impl Outbox for DynamoStore {
    /// Events not delivered yet (the stream normally drives publishing): the items of the
    /// `unpublished` index, read by key; outbox items and history items with events alike.
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for (pk, sk) in self.unpublished_items(i64::MAX, limit).await? {
            out.extend(self.stream_events(&pk, &sk).await?.unwrap_or_default());
        }
        out.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.event_id.cmp(&b.event_id)));
        out.truncate(limit);
        Ok(out)
    }

    /// None: a golden record's events travel in its history items (deleted with them), and the
    /// outbox items of the others (review tasks opened, erasures) carry ids only.
    async fn pending_events_of(&self, _entity: &str, _golden_ids: &[String]) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }

    /// Deletes the outbox items and their pending-event items.
    async fn delete_events(&self, event_ids: &[String]) -> Result<(), StoreError> {
        let items: Vec<(String, String)> = event_ids.iter().map(|id| Self::outbox_key(id)).collect();
        self.mark_delivered(&items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_core::events::{Envelope, GoldenChanged, GoldenErased, GoldenView, HubEvent};
    use mdm_core::golden::{Cause, GoldenAttribute, GoldenStatus};
    use mdm_core::survivorship::Rule;

    fn golden(id: &str, version: u64) -> GoldenRecord {
        let mut attributes = mdm_core::attributes::AttributeMap::new();
        attributes.insert(
            "email",
            GoldenAttribute {
                value: "ana@example.com".into(),
                from: mdm_core::golden::Origin::new("crm", "1"),
                source_seq: 1,
                rule: Rule::MostRecent,
                valid: true,
            },
        );
        GoldenRecord {
            entity: "customer".into(),
            golden_id: id.into(),
            version,
            revision: version,
            status: GoldenStatus::Active,
            attributes: attributes.into(),
            members: vec![SourceKey::new("customer", "crm", "1")].into(),
            match_values: Default::default(),
            index_keys: Default::default(),
            claims: Default::default(),
            created_at_ms: 1,
            updated_at_ms: 1,
            merged_from: Vec::new(),
            kept_apart: Vec::new(),
            pins: Vec::new(),
            quality: None,
        }
    }

    fn history(g: &GoldenRecord) -> HistoryEntry {
        HistoryEntry::of(g, Cause::Ingest, "c", 1)
    }

    fn created(g: &GoldenRecord) -> OutboxEntry {
        let event = HubEvent::GoldenRecordCreated(GoldenChanged {
            envelope: Envelope::new(g, vec!["email".into()], Cause::Ingest, "c", 1),
            golden: GoldenView::of(g),
        });
        OutboxEntry { event_id: event.event_id(), created_at_ms: 1, event, slim: false }
    }

    #[test]
    fn events_about_a_written_history_version_travel_in_its_item() {
        let g = golden("g1", 2);
        let other = golden("g2", 5);
        let ops = vec![
            WriteOp::PutHistory(Box::new(history(&g))),
            WriteOp::PutOutbox(Box::new(created(&g))),
            // About a version this transaction writes no history for: keeps its own item.
            WriteOp::PutOutbox(Box::new(created(&other))),
        ];
        let (rest, folded) = fold_events(&ops);
        assert_eq!(rest.len(), 2);
        assert!(matches!(rest[1], WriteOp::PutOutbox(e) if e.event.golden_id() == Some("g2")));
        assert_eq!(folded[&("g1", 2)].len(), 1);

        let stored = history_with_events(&history(&g), &folded[&("g1", 2)]).expect("json");
        let text = stored.to_string();
        assert!(!text.contains("\"golden\":"), "the view is rebuilt from the snapshot, not stored: {text}");
        let parsed: HistoryEntry = serde_json::from_str(&text).expect("still a history entry");
        assert_eq!(parsed, history(&g));
        assert_eq!(events_in_history(&text).expect("events"), vec![created(&g)], "the event comes back whole");
        let plain = serde_json::to_string(&history(&g)).expect("json");
        assert!(events_in_history(&plain).expect("no events").is_empty());
    }

    #[test]
    fn an_event_whose_view_differs_from_the_snapshot_keeps_it() {
        let g = golden("g1", 2);
        let mut entry = created(&g);
        let HubEvent::GoldenRecordCreated(d) = &mut entry.event else { unreachable!() };
        d.golden.status = "other".into();
        let erased = HubEvent::GoldenRecordErased(GoldenErased {
            envelope: Envelope::new(&g, vec![], Cause::Erasure, "c", 1),
            request_id: "r1".into(),
            sources: vec![],
        });
        let erased = OutboxEntry { event_id: erased.event_id(), created_at_ms: 1, event: erased, slim: false };
        let text = history_with_events(&history(&g), &[&entry, &erased]).expect("json").to_string();
        assert_eq!(events_in_history(&text).expect("events"), vec![entry, erased]);
    }
}
