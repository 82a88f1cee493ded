//! Right to erasure (GDPR Art. 17, CCPA): remove a data subject from the hub, prove it with a
//! receipt that holds no personal data, tell subscribers, and keep the subject from coming back.
//!
//! Two steps, both idempotent:
//! * [`accept`] resolves the subject (golden id, source key, or identifiers through the match
//!   index) to golden ids, writes suppression markers for identifiers named in the request, and
//!   stores a receipt (`accepted`). The same request always gets the same id and receipt.
//! * [`process`] takes a lease on the receipt and erases: for each golden record it writes the
//!   suppression markers of every member's identifiers **first**, then deletes history, index
//!   entries, claims, review tasks and pending outbox events, replaces every member source
//!   record by a tombstone that keeps its `source_seq`, and finally marks the golden record (and
//!   the records merged into it) erased, with a `GoldenRecordErased` event (ids only) in the
//!   same transaction. Counts are fixed per golden record before anything is deleted, so a
//!   retry after a crash completes with the same receipt.
//!
//! Scope `source` erases one source record and recomputes its golden record from the others,
//! dropping every history version that listed the erased record.

use crate::blocking::block_keys;
use crate::events::{Envelope, ErasureCompleted, GoldenChanged, GoldenErased, GoldenView, HubEvent, SourceRef};
use crate::golden::{Cause, GoldenRecord, GoldenStatus, HistoryEntry};
use crate::hub::{Hub, HubError};
use crate::index_keys::IndexKey;
use crate::keys::{hmac_hex, SourceKey};
use crate::normalise::{self, NormaliseOptions};
use crate::plan::match_values;
use crate::record::{validate, SourceRecord};
use crate::schema::EntitySchema;
use crate::store::{Expect, OutboxEntry, ReceiptStore, Store, StoreError, WriteOp, MAX_TRANSACTION_ITEMS};
use crate::survivorship::survive;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::info;

/// How long one processing run holds a receipt before another may take over.
pub const LEASE_MS: i64 = 5 * 60 * 1000;

/// Keyed hashes of a record's identifiers (its single-attribute claim keys with valid values),
/// one per identifier, form ([`identifier_forms`]) and secret. No plain value leaves this
/// function.
pub fn suppression_keys(schema: &EntitySchema, record: &SourceRecord, secrets: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    if secrets.is_empty() {
        return out;
    }
    for (name, value) in identifier_forms(schema, record) {
        for secret in secrets {
            out.push(marker(secret, &schema.entity, &name, &value));
        }
    }
    out
}

/// The key of a suppression marker: the keyed hash of one identifier (a claim key's name and
/// value) of an entity type.
pub fn marker(secret: &[u8], entity: &str, key_name: &str, value: &str) -> String {
    hmac_hex(secret, &[entity, key_name, value], 16)
}

/// The request id a marker written by the migration of markers carries ([`migrate_markers`]).
pub const MIGRATED_MARKER: &str = "normaliser-migration";

/// A claim key's name and value: what a marker is the keyed hash of.
type Form = (String, String);

/// The single-attribute claim keys of a record (of `attribute` only, if given).
fn claim_forms(schema: &EntitySchema, record: &SourceRecord, attribute: Option<&str>) -> BTreeSet<Form> {
    block_keys(schema, record)
        .into_iter()
        .filter(|k| k.claim && !k.name.contains('+'))
        // A key's name starts with its attribute's name and a dot (names hold no dot).
        .filter(|k| attribute.is_none_or(|a| k.name.strip_prefix(a).is_some_and(|rest| rest.starts_with('.'))))
        .map(|k| (k.name, k.value))
        .collect()
}

/// `record` with `value` as the valid value of `attribute`.
fn with_value(record: &SourceRecord, attribute: &str, value: &str) -> SourceRecord {
    let mut r = record.clone();
    r.key_cache = Default::default();
    r.attributes.insert(attribute, value.into());
    r.invalid.remove(attribute);
    r
}

/// An identifier attribute whose normaliser had an earlier version, in its forms: the value in
/// the current version's form (if that accepts it) and the other forms markers may have been
/// written for.
struct Versions {
    attribute: String,
    current: Option<String>,
    older: BTreeSet<String>,
}

/// The [`Versions`] of a record's identifiers whose normalisers have a superseded version
/// (`Normaliser::has_superseded_version`), where a value has a form other than the current one:
/// * a record just validated keeps the superseded version's value of the raw input where it
///   differs (`SourceRecord::superseded`): a marker written before the change has that form;
/// * a record stored before the change holds the superseded form itself: its current form is
///   the current version's reading of the stored value.
fn versions(schema: &EntitySchema, record: &SourceRecord) -> Vec<Versions> {
    let mut out = Vec::new();
    for def in &schema.attributes {
        let identifier = def.blocking.iter().any(|b| b.claim && b.with.is_empty());
        if !identifier || !def.normalisers.iter().any(|n| n.has_superseded_version()) {
            continue;
        }
        let stored = record.value(&def.name).filter(|_| record.is_valid(&def.name));
        let opts = NormaliseOptions { default_country_code: def.default_country_code.as_deref() };
        let current: Option<String> =
            stored.and_then(|s| normalise::apply(&def.normalisers, s, opts).ok()).map(String::from);
        let mut older: BTreeSet<String> =
            record.superseded.iter().filter(|(a, _)| *a == def.name).map(|(_, v)| v.to_owned()).collect();
        older.extend(stored.map(str::to_owned));
        if let Some(c) = &current {
            older.remove(c);
        }
        if !older.is_empty() {
            out.push(Versions { attribute: def.name.clone(), current, older });
        }
    }
    out
}

/// Every form of a record's identifiers a suppression marker may have been written for: the
/// values as the record holds them, and for identifiers whose normaliser changed, the other
/// forms ([`versions`]: the form before the change, the form after it). Ingest and merge check
/// the markers of all of them; erasure writes the markers of all of them (docs/privacy.md,
/// "When a normaliser changes").
pub fn identifier_forms(schema: &EntitySchema, record: &SourceRecord) -> BTreeSet<Form> {
    let mut forms = claim_forms(schema, record, None);
    for v in versions(schema, record) {
        for value in v.current.iter().chain(&v.older) {
            forms.extend(claim_forms(schema, &with_value(record, &v.attribute, value), Some(&v.attribute)));
        }
    }
    forms
}

/// The migration of markers written under a superseded normaliser version. A marker is a keyed
/// hash of a value: it cannot be re-keyed to the value's current form without the value. Where
/// the value is at hand (a record of the hub's, or one arriving), the identifier's current form
/// is suppressed next to a suppressed older form: the marker of the current form is written
/// (with the newest secret) if it is not there yet. Returns how many markers were written.
pub async fn migrate_markers<S: Store>(hub: &Hub<S>, record: &SourceRecord) -> Result<usize, StoreError> {
    let secrets = &hub.config().suppression_secrets;
    let (Some(newest), Some(schema)) = (secrets.first(), hub.registry().get(&record.key.entity)) else {
        return Ok(0);
    };
    let entity = &schema.entity;
    let mut written = 0;
    for v in versions(schema, record) {
        let Some(current) = &v.current else { continue };
        let mut older = Vec::new();
        for value in &v.older {
            for (name, value) in claim_forms(schema, &with_value(record, &v.attribute, value), Some(&v.attribute)) {
                older.extend(secrets.iter().map(|s| marker(s, entity, &name, &value)));
            }
        }
        let now: Vec<String> = claim_forms(schema, &with_value(record, &v.attribute, current), Some(&v.attribute))
            .into_iter()
            .map(|(name, value)| marker(newest, entity, &name, &value))
            .collect();
        if now.is_empty() || !hub.store().is_suppressed(entity, &older).await? {
            continue;
        }
        if hub.store().is_suppressed(entity, &now).await? {
            continue;
        }
        let ops: Vec<WriteOp> = now
            .into_iter()
            .map(|key| WriteOp::PutSuppression { entity: entity.clone(), key, request_id: MIGRATED_MARKER.to_owned() })
            .collect();
        written += ops.len();
        hub.store().transact(ops).await?;
    }
    if written > 0 {
        info!(entity = %entity, markers = written, "suppression markers migrated to the current normaliser");
    }
    Ok(written)
}

/// Who is to be erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum Subject {
    GoldenId {
        golden_id: String,
    },
    SourceKey {
        system: String,
        source_id: String,
    },
    /// Identifier attributes (e-mail, phone, national id, …), resolved through the match index.
    Identifiers {
        attributes: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureScope {
    /// The whole golden record and every source linked to it.
    Subject,
    /// One source record; its golden record is recomputed from the rest.
    Source,
}

/// A validated erasure request.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureRequest {
    pub entity: String,
    pub subject: Subject,
    pub scope: ErasureScope,
    /// Erase every golden record the identifiers resolve to (otherwise more than one is a 409).
    pub all: bool,
    /// Who asked (the token's subject or the event's source); kept in the receipt.
    pub principal: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErasureError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("the identifiers resolve to {} golden records; name one, or set all: true", .0.len())]
    Ambiguous(Vec<String>),
    #[error("erasure is not configured: no suppression secret")]
    NotConfigured,
    #[error("another run is processing this request")]
    Busy,
    #[error("no erasure request with this id")]
    UnknownRequest,
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Hub(String),
}

impl ErasureError {
    /// Someone changed what the erasure read: re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_conflict())
    }
}

impl From<HubError> for ErasureError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(s) => Self::Store(s),
            other => Self::Hub(other.to_string()),
        }
    }
}

impl From<StoreError> for ErasureError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn invalid(code: &'static str, message: impl Into<String>) -> ErasureError {
    ErasureError::Invalid { code, message: message.into() }
}

fn text<'a>(obj: &'a serde_json::Map<String, Value>, field: &str) -> Result<Option<&'a str>, ErasureError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 => Ok(Some(s.trim())),
        Some(_) => Err(invalid("invalid_field", format!("'{field}' must be a non-empty string of at most 256 bytes"))),
    }
}

impl ErasureRequest {
    /// Parses `{"entityType", "goldenId" | "sourceKey": {system, sourceId} | "identifiers": {…},
    /// "scope"?: "subject"|"source", "all"?: bool}` (the HTTP body and the `ErasureRequested`
    /// event's detail).
    pub fn parse<S: Store>(hub: &Hub<S>, body: &Value, principal: &str) -> Result<Self, ErasureError> {
        let obj = body.as_object().ok_or_else(|| invalid("invalid_body", "the body must be a JSON object"))?;
        const KNOWN: [&str; 6] = ["entityType", "goldenId", "sourceKey", "identifiers", "scope", "all"];
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(invalid("unknown_field", format!("unknown field '{k}'")));
        }
        let entity = text(obj, "entityType")?.ok_or_else(|| invalid("missing_field", "'entityType' is required"))?;
        let schema =
            hub.registry().get(entity).ok_or_else(|| invalid("unknown_entity_type", "no entity type of this name"))?;
        let mut subjects = Vec::new();
        if let Some(id) = text(obj, "goldenId")? {
            subjects.push(Subject::GoldenId { golden_id: id.to_owned() });
        }
        if let Some(v) = obj.get("sourceKey").filter(|v| !v.is_null()) {
            let o = v.as_object().ok_or_else(|| invalid("invalid_field", "'sourceKey' must be an object"))?;
            match (text(o, "system")?, text(o, "sourceId")?) {
                (Some(system), Some(id)) => {
                    subjects.push(Subject::SourceKey { system: system.to_lowercase(), source_id: id.to_owned() })
                }
                _ => return Err(invalid("invalid_field", "'sourceKey' needs 'system' and 'sourceId'")),
            }
        }
        if let Some(v) = obj.get("identifiers").filter(|v| !v.is_null()) {
            let o = v.as_object().ok_or_else(|| invalid("invalid_field", "'identifiers' must be an object"))?;
            let mut attributes = BTreeMap::new();
            for (name, value) in o {
                let strong =
                    schema.attribute(name).is_some_and(|d| d.blocking.iter().any(|b| b.claim && b.with.is_empty()));
                if !strong {
                    return Err(invalid(
                        "invalid_identifier",
                        format!("'{name}' is not an identifier of {entity} (an attribute with a claim key)"),
                    ));
                }
                let value = value
                    .as_str()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| invalid("invalid_identifier", format!("'{name}' must be a non-empty string")))?;
                attributes.insert(name.clone(), value.to_owned());
            }
            if attributes.is_empty() {
                return Err(invalid("invalid_field", "'identifiers' names no identifier"));
            }
            subjects.push(Subject::Identifiers { attributes });
        }
        let subject = match subjects.len() {
            1 => subjects.remove(0),
            _ => {
                return Err(invalid(
                    "invalid_subject",
                    "name the subject by exactly one of 'goldenId', 'sourceKey' or 'identifiers'",
                ))
            }
        };
        let scope = match text(obj, "scope")? {
            None | Some("subject") => ErasureScope::Subject,
            Some("source") => ErasureScope::Source,
            Some(_) => return Err(invalid("invalid_field", "'scope' must be 'subject' or 'source'")),
        };
        if scope == ErasureScope::Source && !matches!(subject, Subject::SourceKey { .. }) {
            return Err(invalid("invalid_subject", "scope 'source' needs a 'sourceKey'"));
        }
        let all = match obj.get("all") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("invalid_field", "'all' must be true or false")),
        };
        let principal: String = principal.chars().filter(|c| !c.is_control()).take(256).collect();
        Ok(Self { entity: entity.to_owned(), subject, scope, all, principal })
    }

    /// The request id: a keyed hash of what the request names, so a repeated request gets the
    /// same id (and receipt, until its run completed: see [`accept`]) and the id reveals nothing
    /// of the identifiers.
    pub fn request_id(&self, secret: &[u8]) -> String {
        let subject = serde_json::to_string(&self.subject).unwrap_or_default();
        let scope = format!("{:?}", self.scope);
        format!("er{}", hmac_hex(secret, &["erasure", &self.entity, &subject, &scope, &self.all.to_string()], 12))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Accepted,
    InProgress,
    Completed,
    Failed,
}

/// An event the erasure sent to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentEvent {
    pub detail_type: String,
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_id: Option<String>,
}

/// What an erasure request did. Ids, counts and times only: no attribute value, no identifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReceipt {
    pub request_id: String,
    /// The completed run of the same request before this one (a repeated request whose subject
    /// was found again starts a new run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_request_id: Option<String>,
    /// Optimistic-lock counter of the stored receipt.
    pub revision: u64,
    pub status: ReceiptStatus,
    pub entity_type: String,
    pub scope: ErasureScope,
    pub principal: String,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The golden records the subject resolved to.
    pub golden_ids: Vec<String>,
    /// For scope `source`: the source record to erase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Items removed per kind, summed over the golden records.
    pub removed: BTreeMap<String, u64>,
    /// Per golden record: the counts fixed before its deletion started, and whether it is done.
    #[serde(default)]
    pub progress: BTreeMap<String, Progress>,
    pub events: Vec<SentEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long processing took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Identifiers' index keys (digests), kept only until processing looked again: a record
    /// merged while the request's markers were being written is found under them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookup_keys: Vec<String>,
    /// When the request's markers were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers_at_ms: Option<i64>,
    /// The request said `all: true` (every golden record the identifiers name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub counts: BTreeMap<String, u64>,
    pub done: bool,
}

impl ErasureReceipt {
    /// The receipt as the API shows it (no lease, no internal progress).
    pub fn public_view(&self) -> Value {
        let mut v = json!(self);
        if let Some(o) = v.as_object_mut() {
            for internal in ["revision", "progress", "leaseUntilMs", "lookupKeys", "markersAtMs", "all"] {
                o.remove(internal);
            }
        }
        v
    }
}

async fn load<S: ReceiptStore>(store: &S, request_id: &str) -> Result<Option<ErasureReceipt>, ErasureError> {
    match store.get_receipt(request_id).await? {
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            ErasureError::Hub(format!("stored receipt is corrupt at line {}, column {}", e.line(), e.column()))
        }),
        None => Ok(None),
    }
}

async fn save<S: ReceiptStore>(store: &S, r: &mut ErasureReceipt) -> Result<(), StoreError> {
    r.revision += 1;
    let text = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(format!("receipt: line {}", e.line())))?;
    let result = store.put_receipt(&r.request_id, r.revision, &text).await;
    if result.is_err() {
        r.revision -= 1;
    }
    result
}

fn secret<S: Store>(hub: &Hub<S>) -> Result<&[u8], ErasureError> {
    hub.config().suppression_secrets.first().map(Vec::as_slice).ok_or(ErasureError::NotConfigured)
}

/// A record holding only the given attributes, normalised like an ingested one.
fn probe<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<SourceRecord, ErasureError> {
    let wire = json!({"entityType": entity, "sourceSystem": "erasure", "sourceId": "probe", "sourceSeq": 0, "attributes": attributes});
    validate(hub.registry(), &wire, hub.now_ms()).map_err(|e| invalid("invalid_identifier", e.message))
}

/// What a request resolves to when it is accepted.
struct Resolved {
    /// The active golden records (merged-into pointers followed).
    golden_ids: Vec<String>,
    /// The suppression markers of the request's own identifiers.
    markers: Vec<String>,
    /// The index keys of those identifiers, to look again once the markers are settled.
    lookup_keys: Vec<IndexKey>,
}

/// The golden records a subject resolves to, and for identifiers their markers and index keys.
async fn resolve<S: Store>(hub: &Hub<S>, req: &ErasureRequest) -> Result<Resolved, ErasureError> {
    let entity = &req.entity;
    let mut ids = BTreeSet::new();
    let mut markers = Vec::new();
    let mut lookup_keys = Vec::new();
    let mut add = |g: Option<GoldenRecord>| {
        if let Some(g) = g.filter(GoldenRecord::is_active) {
            ids.insert(g.golden_id);
        }
    };
    match &req.subject {
        Subject::GoldenId { golden_id } => add(hub.final_record(entity, golden_id).await?),
        Subject::SourceKey { system, source_id } => {
            let key = SourceKey::new(entity.as_str(), system.as_str(), source_id.as_str());
            if let Some(g) = hub.store().get_source(&key).await?.and_then(|s| s.golden_id.clone()) {
                add(hub.final_record(entity, &g).await?);
            }
        }
        Subject::Identifiers { attributes } => {
            let record = probe(hub, entity, attributes)?;
            let schema =
                hub.registry().get(entity).ok_or_else(|| invalid("unknown_entity_type", "unknown entity type"))?;
            if let Some(bad) = attributes.keys().find(|a| record.invalid.contains(*a)) {
                return Err(invalid("invalid_identifier", format!("'{bad}' is not a valid value of its kind")));
            }
            markers = suppression_keys(
                schema,
                &record,
                &hub.config().suppression_secrets[..1.min(hub.config().suppression_secrets.len())],
            );
            let keys: Vec<IndexKey> = block_keys(schema, &record)
                .iter()
                .filter(|k| k.claim && !k.name.contains('+'))
                .map(|k| IndexKey::parse(&k.key()))
                .collect();
            for id in active_under(hub, entity, &keys).await? {
                ids.insert(id);
            }
            lookup_keys = keys;
        }
    }
    Ok(Resolved { golden_ids: ids.into_iter().collect(), markers, lookup_keys })
}

/// The active golden records listed under index keys (merged-into pointers followed).
async fn active_under<S: Store>(hub: &Hub<S>, entity: &str, keys: &[IndexKey]) -> Result<Vec<String>, ErasureError> {
    let mut out = BTreeSet::new();
    let hits = hub.store().lookup(entity, keys, &[usize::MAX / 2]).await?;
    for id in hits.iter().flat_map(|h| h.golden_ids.iter()).collect::<BTreeSet<_>>() {
        if let Some(g) = hub.final_record(entity, id).await?.filter(GoldenRecord::is_active) {
            out.insert(g.golden_id);
        }
    }
    Ok(out.into_iter().collect())
}

/// The id of the `run`-th run of a request (the first is the request id itself).
fn run_id(base: &str, run: u32) -> String {
    if run <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{run}")
    }
}

/// Accepts a request: same request, same receipt while its run is not completed (`created` says
/// whether this call made it). After the run completed, the same request starts a new run
/// (`{id}-2`, `{id}-3`, … naming the previous one) when the subject is found again, and answers
/// with the completed receipt when it is not. More than one golden record without `all` is
/// [`ErasureError::Ambiguous`] (ids only).
pub async fn accept<S: Store + ReceiptStore>(
    hub: &Hub<S>,
    req: &ErasureRequest,
) -> Result<(ErasureReceipt, bool), ErasureError> {
    let base = req.request_id(secret(hub)?);
    // The runs of this request: `base`, `base-2`, … A run not completed answers for itself.
    let mut run = 1u32;
    let mut previous: Option<ErasureReceipt> = None;
    loop {
        match load(hub.store(), &run_id(&base, run)).await? {
            None => break,
            Some(r) if r.status != ReceiptStatus::Completed => return Ok((r, false)),
            Some(r) => {
                previous = Some(r);
                run += 1;
            }
        }
    }
    let request_id = run_id(&base, run);
    let Resolved { golden_ids, markers, lookup_keys } = resolve(hub, req).await?;
    if let Some(prev) = &previous {
        // The same request after its last run completed: a new run only when the subject is
        // found again (a record that got past the markers, a source key back with other values).
        let source_back = match &req.subject {
            Subject::SourceKey { system, source_id } if req.scope == ErasureScope::Source => {
                let key = SourceKey::new(req.entity.as_str(), system.as_str(), source_id.as_str());
                hub.store().get_source(&key).await?.is_some()
            }
            _ => false,
        };
        if golden_ids.is_empty() && !source_back {
            return Ok((prev.clone(), false));
        }
    }
    if golden_ids.len() > 1 && !req.all {
        return Err(ErasureError::Ambiguous(golden_ids));
    }
    // The request's own identifiers are suppressed first, even when they match nobody yet.
    let ops: Vec<WriteOp> = markers
        .into_iter()
        .map(|key| WriteOp::PutSuppression { entity: req.entity.clone(), key, request_id: request_id.clone() })
        .collect();
    for chunk in ops.chunks(MAX_TRANSACTION_ITEMS) {
        hub.store().transact(chunk.to_vec()).await?;
    }
    let markers_at_ms = (!lookup_keys.is_empty()).then(|| hub.now_ms());
    let source = match &req.subject {
        Subject::SourceKey { system, source_id } if req.scope == ErasureScope::Source => {
            Some(SourceRef { system: system.clone(), source_id: source_id.clone() })
        }
        _ => None,
    };
    let mut receipt = ErasureReceipt {
        request_id: request_id.clone(),
        previous_request_id: previous.map(|p| p.request_id),
        revision: 0,
        status: ReceiptStatus::Accepted,
        entity_type: req.entity.clone(),
        scope: req.scope,
        principal: req.principal.clone(),
        requested_at: crate::time::format_rfc3339(hub.now_ms()),
        started_at: None,
        completed_at: None,
        golden_ids,
        source,
        removed: BTreeMap::new(),
        progress: BTreeMap::new(),
        events: Vec::new(),
        lease_until_ms: None,
        error: None,
        duration_ms: None,
        lookup_keys: lookup_keys.iter().map(IndexKey::to_string).collect(),
        markers_at_ms,
        all: req.all,
    };
    match save(hub.store(), &mut receipt).await {
        Ok(()) => Ok((receipt, true)),
        Err(StoreError::Conflict(_)) => {
            // A concurrent identical request stored it first: answer with that one.
            let existing = load(hub.store(), &request_id).await?.ok_or(ErasureError::UnknownRequest)?;
            Ok((existing, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// A queue message of the erasure handler as its dead-letter queue may keep it: no identifier
/// value. An accepted request is its id (`{"requestId"}`, which can be re-driven); an
/// `ErasureRequested` event keeps its envelope's ids, source and detail-type and the detail's
/// entity type, scope, `all`, golden id and source key, with every identifier value replaced by
/// `"[redacted]"`; anything else is reduced to its size.
pub fn redacted_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return json!({"redacted": true, "bytes": body.len()}).to_string();
    };
    if let Some(id) = v.get("requestId").and_then(Value::as_str) {
        return json!({"requestId": id}).to_string();
    }
    let mut out = serde_json::Map::new();
    for field in ["id", "source", "detail-type", "time", "account", "region"] {
        if let Some(x) = v.get(field).filter(|x| x.is_string()) {
            out.insert(field.to_owned(), x.clone());
        }
    }
    if let Some(detail) = v.get("detail").and_then(Value::as_object) {
        let mut d = serde_json::Map::new();
        for field in ["entityType", "scope", "all", "goldenId"] {
            if let Some(x) = detail.get(field).filter(|x| x.is_string() || x.is_boolean()) {
                d.insert(field.to_owned(), x.clone());
            }
        }
        if let Some(k) = detail.get("sourceKey").and_then(Value::as_object) {
            let keep = |f: &str| k.get(f).filter(|x| x.is_string()).cloned().unwrap_or(Value::Null);
            d.insert("sourceKey".into(), json!({"system": keep("system"), "sourceId": keep("sourceId")}));
        }
        if let Some(ids) = detail.get("identifiers").and_then(Value::as_object) {
            let names: serde_json::Map<String, Value> =
                ids.keys().map(|k| (k.chars().take(64).collect(), json!("[redacted]"))).collect();
            d.insert("identifiers".into(), Value::Object(names));
        }
        out.insert("detail".into(), Value::Object(d));
    }
    if out.is_empty() {
        return json!({"redacted": true, "bytes": body.len()}).to_string();
    }
    Value::Object(out).to_string()
}

/// Marks a request failed for good (its queue gives up on it); a later identical request gets
/// this receipt and can be re-driven from the DLQ.
pub async fn mark_failed<S: ReceiptStore>(store: &S, request_id: &str, why: &str) -> Result<(), ErasureError> {
    for _ in 0..3 {
        let Some(mut r) = load(store, request_id).await? else { return Ok(()) };
        if r.status == ReceiptStatus::Completed {
            return Ok(());
        }
        r.status = ReceiptStatus::Failed;
        r.lease_until_ms = None;
        r.error = Some(why.chars().take(500).collect());
        match save(store, &mut r).await {
            Err(e) if e.is_conflict() => continue,
            other => return other.map_err(Into::into),
        }
    }
    Ok(())
}

/// The receipt of a request.
pub async fn receipt<S: ReceiptStore>(store: &S, request_id: &str) -> Result<Option<ErasureReceipt>, ErasureError> {
    load(store, request_id).await
}

/// Everything of one golden record that an erasure removes, found before anything is deleted.
struct Found {
    golden: GoldenRecord,
    losers: Vec<GoldenRecord>,
    members: Vec<std::sync::Arc<SourceRecord>>,
    markers: BTreeSet<String>,
    deletes: Vec<WriteOp>,
    counts: BTreeMap<String, u64>,
}

async fn gather<S: Store + ReceiptStore>(
    hub: &Hub<S>,
    golden: GoldenRecord,
    secret: &[u8],
) -> Result<Found, ErasureError> {
    let store = hub.store();
    let entity = golden.entity.clone();
    let schema = hub.registry().get(&entity).ok_or_else(|| invalid("unknown_entity_type", "unknown entity type"))?;
    let members = store.get_sources(&golden.members).await?;
    // Records merged into this one (they keep the values they had then) are listed on it.
    let losers: Vec<GoldenRecord> = store
        .get_goldens(&entity, &golden.merged_from)
        .await?
        .into_iter()
        .filter(|g| matches!(g.status, GoldenStatus::MergedInto { .. }))
        .collect();
    let ids: Vec<String> =
        std::iter::once(golden.golden_id.clone()).chain(losers.iter().map(|l| l.golden_id.clone())).collect();

    let mut deletes = Vec::new();
    let count =
        |kind: &str, n: usize, counts: &mut BTreeMap<String, u64>| *counts.entry(kind.into()).or_default() += n as u64;
    let mut counts = BTreeMap::new();
    for id in &ids {
        let versions = store.history(&entity, id).await?;
        count("history", versions.len(), &mut counts);
        deletes.extend(versions.into_iter().map(|h| WriteOp::DeleteHistory {
            entity: entity.clone(),
            golden_id: id.clone(),
            version: h.version,
        }));
    }
    let (mut index, mut claim_keys) = crate::blocking::stored_keys(schema, members.iter().map(|m| &**m));
    index.extend(golden.index_keys.iter().cloned());
    claim_keys.extend(golden.claims.iter().cloned());
    let markers: BTreeSet<String> =
        members.iter().flat_map(|m| suppression_keys(schema, m, &[secret.to_vec()])).collect();
    let present: Vec<IndexKey> = index.iter().cloned().collect();
    let hits = store.lookup(&entity, &present, &[usize::MAX / 2]).await?;
    let index_entries: Vec<WriteOp> = hits
        .iter()
        .flat_map(|h| h.golden_ids.iter().filter(|g| ids.contains(g)).map(|g| (h.key.clone(), g.clone())))
        .map(|(key, golden_id)| WriteOp::DeleteIndex {
            entity: entity.as_str().into(),
            key,
            golden_id: golden_id.into(),
        })
        .collect();
    count("index", index_entries.len(), &mut counts);
    deletes.extend(index_entries);
    let claims = store.get_claims(&entity, &claim_keys.iter().cloned().collect::<Vec<_>>()).await?;
    let held: Vec<WriteOp> = claims
        .into_iter()
        .filter(|(_, holder)| ids.contains(holder))
        .map(|(key, holder)| WriteOp::DeleteClaim { entity: entity.clone(), key, holder })
        .collect();
    count("claims", held.len(), &mut counts);
    deletes.extend(held);
    let reviews = store.reviews_mentioning(&entity, &ids).await?;
    count("reviews", reviews.len(), &mut counts);
    deletes.extend(reviews.into_iter().map(|t| WriteOp::DeleteReview { entity: entity.clone(), task_id: t.task_id }));
    let outbox: Vec<OutboxEntry> = store.pending_events_of(&entity, &ids).await?;
    count("outbox", outbox.len(), &mut counts);
    deletes.extend(outbox.into_iter().map(|o| WriteOp::DeleteOutbox { event_id: o.event_id }));
    count("sources", members.len(), &mut counts);
    count("goldens", ids.len(), &mut counts);
    count("suppressionMarkers", markers.len(), &mut counts);
    Ok(Found { golden, losers, members, markers, deletes, counts })
}

async fn apply_chunks<S: Store>(hub: &Hub<S>, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    for chunk in ops.chunks(MAX_TRANSACTION_ITEMS) {
        hub.store().transact(chunk.to_vec()).await?;
    }
    Ok(())
}

/// A golden record stripped to its ids: status erased, no attributes, members or keys.
fn erased_marker(g: &GoldenRecord, now: i64) -> GoldenRecord {
    let mut m = g.clone();
    m.status = GoldenStatus::Erased;
    m.version += 1;
    m.revision += 1;
    m.updated_at_ms = now;
    m.attributes = Default::default();
    m.members = Default::default();
    m.match_values = Default::default();
    m.index_keys = Default::default();
    m.claims = Default::default();
    m.kept_apart = Default::default();
    m.pins = Default::default();
    m.quality = None;
    m
}

/// Erases one golden record (and the records merged into it). Returns its event.
async fn erase_golden<S: Store + ReceiptStore>(
    hub: &Hub<S>,
    found: Found,
    request_id: &str,
) -> Result<SentEvent, ErasureError> {
    let now = hub.now_ms();
    let entity = found.golden.entity.clone();
    // 1. Suppression first: from here on, no ingest can bring the subject back.
    let markers: Vec<WriteOp> = found
        .markers
        .iter()
        .map(|k| WriteOp::PutSuppression { entity: entity.clone(), key: k.clone(), request_id: request_id.to_owned() })
        .collect();
    apply_chunks(hub, markers).await?;
    // 2. Everything that copies the subject's values or keys.
    apply_chunks(hub, found.deletes).await?;
    // 3. Source records become tombstones that keep their highest source_seq. As many as fit
    //    travel with the golden record's last write (below), so a retry after a failure in
    //    between still finds the record linked: a source-scope retry must not take it for one
    //    that was never in a golden record.
    let mut tombstones: Vec<WriteOp> = found
        .members
        .iter()
        .map(|m| WriteOp::PutTombstone {
            source: m.key.clone(),
            seq: m.seq,
            request_id: request_id.to_owned(),
            unlinked: false,
        })
        .collect();
    let room = MAX_TRANSACTION_ITEMS - (2 + found.losers.len()).min(MAX_TRANSACTION_ITEMS);
    let with_last = tombstones.split_off(tombstones.len().saturating_sub(room));
    apply_chunks(hub, tombstones).await?;
    // 4. The golden record and the records merged into it: erased markers, and the event.
    let marker = erased_marker(&found.golden, now);
    let event = HubEvent::GoldenRecordErased(GoldenErased {
        envelope: Envelope::new(&marker, Vec::new(), Cause::Erasure, request_id, now),
        request_id: request_id.to_owned(),
        sources: found.golden.members.iter().map(SourceRef::from).collect(),
    });
    let sent = SentEvent {
        detail_type: event.detail_type().to_owned(),
        event_id: event.event_id(),
        golden_id: Some(found.golden.golden_id.clone()),
    };
    let mut last =
        vec![WriteOp::PutGolden { golden: Arc::new(marker), expect: Expect::Revision(found.golden.revision) }];
    for l in &found.losers {
        last.push(WriteOp::PutGolden { golden: Arc::new(erased_marker(l, now)), expect: Expect::Revision(l.revision) });
    }
    if hub.config().emit_events {
        last.push(WriteOp::PutOutbox(Box::new(OutboxEntry::new(sent.event_id.clone(), now, event))));
    }
    last.extend(with_last);
    // The members' values leave the term counts before the last write: a retry after it finds
    // the golden record erased and does not take them out twice.
    if let Some(schema) = hub.registry().get(&entity) {
        for m in &found.members {
            uncount(hub, schema, m).await?;
        }
    }
    apply_chunks(hub, last).await?;
    // 5. Keep-apart constraints that name the erased records go from the other side too.
    let erased: Vec<&GoldenRecord> = std::iter::once(&found.golden).chain(found.losers.iter()).collect();
    let others: Vec<String> = erased.iter().flat_map(|g| g.kept_apart.iter().cloned()).collect();
    if !others.is_empty() {
        let names: BTreeSet<&str> = erased.iter().flat_map(|g| g.aliases()).collect();
        hub.drop_constraints_naming(&entity, &others, &names).await?;
    }
    Ok(sent)
}

/// What a source-scope erasure writes, found before anything is written: the counts are fixed
/// in the receipt first, so a resumed run reports the same.
struct SourceErasure {
    counts: BTreeMap<String, u64>,
    markers: Vec<WriteOp>,
    deletes: Vec<WriteOp>,
    /// The tombstone and the recomputed golden record (with its history version and event):
    /// one transaction, so the source record never reads as gone while the golden record still
    /// holds its values.
    last: Vec<WriteOp>,
    sent: SentEvent,
    /// The erased record (its values leave the term counts).
    erased: Option<Arc<SourceRecord>>,
}

/// Plans the erasure of one source record of a golden record with other members: the golden
/// record is recomputed from the rest.
async fn plan_source_erasure<S: Store + ReceiptStore>(
    hub: &Hub<S>,
    golden: GoldenRecord,
    key: &SourceKey,
    request_id: &str,
    secret: &[u8],
) -> Result<SourceErasure, ErasureError> {
    let store = hub.store();
    let now = hub.now_ms();
    let entity = golden.entity.clone();
    let schema = hub.registry().get(&entity).ok_or_else(|| invalid("unknown_entity_type", "unknown entity type"))?;
    let all = store.get_sources(&golden.members).await?;
    let erased = all.iter().find(|m| &m.key == key).cloned();
    let rest: Vec<&SourceRecord> = all.iter().filter(|m| &m.key != key).map(|m| &**m).collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut deletes = Vec::new();
    // Identifiers only the erased record had are suppressed; shared ones belong to the rest too.
    let kept: BTreeSet<String> = rest.iter().flat_map(|m| suppression_keys(schema, m, &[secret.to_vec()])).collect();
    let markers: Vec<String> = erased
        .iter()
        .flat_map(|e| suppression_keys(schema, e, &[secret.to_vec()]))
        .filter(|k| !kept.contains(k))
        .collect();
    counts.insert("suppressionMarkers".into(), markers.len() as u64);
    let markers: Vec<WriteOp> = markers
        .into_iter()
        .map(|k| WriteOp::PutSuppression { entity: entity.clone(), key: k, request_id: request_id.to_owned() })
        .collect();
    // History versions that listed the erased record (they hold its values) go.
    let history = store.history(&entity, &golden.golden_id).await?;
    let stale: Vec<&HistoryEntry> = history.iter().filter(|h| h.mentions(key)).collect();
    counts.insert("history".into(), stale.len() as u64);
    deletes.extend(stale.iter().map(|h| WriteOp::DeleteHistory {
        entity: entity.clone(),
        golden_id: golden.golden_id.clone(),
        version: h.version,
    }));
    // Records merged into this one (listed on it) keep the values they had then, maybe the erased
    // record's: they lose their values (their ids still lead here) and every history version
    // that listed the erased record.
    let mut goldens = 0;
    let mut last = Vec::new();
    let merged = store.get_goldens(&entity, &golden.merged_from).await?;
    for l in merged.into_iter().filter(|g| matches!(g.status, GoldenStatus::MergedInto { .. })) {
        for h in store.history(&entity, &l.golden_id).await?.into_iter().filter(|h| h.mentions(key)) {
            *counts.entry("history".into()).or_default() += 1;
            deletes.push(WriteOp::DeleteHistory {
                entity: entity.clone(),
                golden_id: l.golden_id.clone(),
                version: h.version,
            });
        }
        if !l.attributes.is_empty() || !l.match_values.is_empty() || !l.pins.is_empty() {
            let mut stripped = l.clone();
            stripped.attributes = Default::default();
            stripped.match_values = Default::default();
            stripped.pins.retain(|p| p.source.as_ref() != Some(key));
            stripped.revision += 1;
            stripped.updated_at_ms = now;
            last.push(WriteOp::PutGolden { golden: Arc::new(stripped), expect: Expect::Revision(l.revision) });
            goldens += 1;
        }
    }
    counts.insert("goldens".into(), goldens);
    // Index entries and claims only the erased record supported.
    let keep_keys: BTreeSet<IndexKey> =
        rest.iter().flat_map(|m| block_keys(schema, m)).map(|k| IndexKey::parse(&k.key())).collect();
    let own_keys: BTreeSet<IndexKey> = erased
        .iter()
        .flat_map(|e| block_keys(schema, e))
        .map(|k| IndexKey::parse(&k.key()))
        .chain(golden.index_keys.iter().cloned())
        .collect();
    let gone: Vec<IndexKey> = own_keys.difference(&keep_keys).cloned().collect();
    let index_ops: Vec<WriteOp> = gone
        .iter()
        .map(|k| WriteOp::DeleteIndex {
            entity: entity.as_str().into(),
            key: k.clone(),
            golden_id: golden.golden_id.as_str().into(),
        })
        .collect();
    counts.insert("index".into(), index_ops.len() as u64);
    deletes.extend(index_ops);
    let holders = store.get_claims(&entity, &gone).await?;
    let claim_ops: Vec<WriteOp> = holders
        .into_iter()
        .filter(|(_, h)| *h == golden.golden_id)
        .map(|(key, holder)| WriteOp::DeleteClaim { entity: entity.clone(), key, holder })
        .collect();
    counts.insert("claims".into(), claim_ops.len() as u64);
    deletes.extend(claim_ops);
    let reviews: Vec<WriteOp> = store
        .reviews_mentioning(&entity, std::slice::from_ref(&golden.golden_id))
        .await?
        .into_iter()
        .filter(|t| &t.source == key)
        .map(|t| WriteOp::DeleteReview { entity: entity.clone(), task_id: t.task_id })
        .collect();
    counts.insert("reviews".into(), reviews.len() as u64);
    deletes.extend(reviews);
    // Pending events of this golden record carry the erased values; a new one supersedes them.
    let outbox: Vec<WriteOp> = store
        .pending_events_of(&entity, std::slice::from_ref(&golden.golden_id))
        .await?
        .into_iter()
        .map(|o| WriteOp::DeleteOutbox { event_id: o.event_id })
        .collect();
    counts.insert("outbox".into(), outbox.len() as u64);
    deletes.extend(outbox);
    counts.insert("sources".into(), 1);
    if let Some(e) = &erased {
        last.push(WriteOp::PutTombstone {
            source: key.clone(),
            seq: e.seq,
            request_id: request_id.to_owned(),
            unlinked: false,
        });
    }

    // The golden record, recomputed from the rest.
    let mut g = golden.clone();
    std::sync::Arc::make_mut(&mut g.members).retain(|m| m != key);
    // A pinned value the erased record held goes with it; the other pins stay.
    g.pins.retain(|p| p.source.as_ref() != Some(key));
    let mut attributes = survive(schema, &rest);
    crate::survivorship::apply_pins(&mut attributes, &g.pins);
    g.quality = Some(crate::survivorship::quality(schema, &attributes));
    g.attributes = attributes.into();
    g.match_values = match_values(schema, &rest).into();
    g.index_keys = keep_keys.iter().cloned().collect();
    g.claims = golden.claims.iter().filter(|k| keep_keys.contains(k)).cloned().collect();
    g.version += 1;
    g.revision += 1;
    g.updated_at_ms = now;
    let changed: Vec<String> = g
        .attributes
        .keys()
        .chain(golden.attributes.keys())
        .filter(|a| g.value(a) != golden.value(a))
        .map(|a| a.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let envelope = Envelope::new(&g, changed, Cause::Erasure, request_id, now);
    let event = HubEvent::GoldenRecordUpdated(GoldenChanged { envelope, golden: GoldenView::of(&g) });
    let sent = SentEvent {
        detail_type: event.detail_type().into(),
        event_id: event.event_id(),
        golden_id: Some(g.golden_id.clone()),
    };
    last.push(WriteOp::PutGolden { golden: Arc::new(g.clone()), expect: Expect::Revision(golden.revision) });
    if hub.config().keep_history {
        last.push(WriteOp::PutHistory(Box::new(HistoryEntry::of(&g, Cause::Erasure, request_id, now))));
    }
    if hub.config().emit_events {
        last.push(WriteOp::PutOutbox(Box::new(OutboxEntry::new(sent.event_id.clone(), now, event))));
    }
    Ok(SourceErasure { counts, markers, deletes, last, sent, erased })
}

/// Writes a planned source-scope erasure: markers first, then the copies, then the tombstone
/// with the recomputed golden record.
async fn apply_source_erasure<S: Store>(hub: &Hub<S>, plan: SourceErasure) -> Result<SentEvent, ErasureError> {
    apply_chunks(hub, plan.markers).await?;
    apply_chunks(hub, plan.deletes).await?;
    if let Some(e) = &plan.erased {
        if let Some(schema) = hub.registry().get(&e.key.entity) {
            uncount(hub, schema, e).await?;
        }
    }
    apply_chunks(hub, plan.last).await?;
    Ok(plan.sent)
}

/// Takes an erased, linked record out of the term counts ([`crate::terms`]): a value only the
/// subject held leaves no item behind. Before the write that completes the erasure, so a resumed
/// run may take it out twice (a count too low) but never leaves it in.
async fn uncount<S: Store>(
    hub: &Hub<S>,
    schema: &crate::schema::EntitySchema,
    record: &SourceRecord,
) -> Result<(), StoreError> {
    if record.golden_id.is_none() || !crate::terms::adjusts(schema) {
        return Ok(());
    }
    let keys: Vec<String> = crate::terms::term_keys(schema, record).into_iter().map(|(_, k)| k).collect();
    hub.store().count_terms(&schema.entity, &keys, -1).await
}

/// Fixes a unit's counts in the receipt before its first deletion (a resumed run keeps the
/// counts the first run found).
async fn fix_counts<S: ReceiptStore>(
    store: &S,
    r: &mut ErasureReceipt,
    unit: &str,
    counts: &BTreeMap<String, u64>,
) -> Result<(), ErasureError> {
    if r.progress.contains_key(unit) {
        return Ok(());
    }
    r.progress.insert(unit.to_owned(), Progress { counts: counts.clone(), done: false });
    save(store, r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })
}

/// Processes an accepted request to completion (or resumes one a crash interrupted). A request
/// another run holds a lease on answers [`ErasureError::Busy`]; a completed one, its receipt.
/// A run that fails releases its lease (best effort) so the retry need not wait for it.
pub async fn process<S: Store + ReceiptStore>(hub: &Hub<S>, request_id: &str) -> Result<ErasureReceipt, ErasureError> {
    let result = run(hub, request_id).await;
    if let Err(e) = &result {
        if !matches!(e, ErasureError::Busy | ErasureError::UnknownRequest) {
            if let Ok(Some(mut r)) = load(hub.store(), request_id).await {
                if r.status == ReceiptStatus::InProgress {
                    r.lease_until_ms = None;
                    r.error = Some(e.to_string());
                    let _ = save(hub.store(), &mut r).await;
                }
            }
        }
    }
    result
}

async fn run<S: Store + ReceiptStore>(hub: &Hub<S>, request_id: &str) -> Result<ErasureReceipt, ErasureError> {
    let secret = secret(hub)?.to_vec();
    let store = hub.store();
    let started = hub.now_ms();
    let mut r = load(store, request_id).await?.ok_or(ErasureError::UnknownRequest)?;
    if r.status == ReceiptStatus::Completed {
        return Ok(r);
    }
    if r.status == ReceiptStatus::InProgress && r.lease_until_ms.is_some_and(|l| l > started) {
        return Err(ErasureError::Busy);
    }
    r.status = ReceiptStatus::InProgress;
    r.lease_until_ms = Some(started + LEASE_MS);
    r.started_at.get_or_insert_with(|| crate::time::format_rfc3339(started));
    save(store, &mut r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })?;

    let entity = r.entity_type.clone();
    if !r.lookup_keys.is_empty() {
        // A merge that checked the markers before they were written may have taken effect
        // since: once the store says such merges are done, the identifiers are looked up again.
        store.settle_suppression(r.markers_at_ms.unwrap_or(started), hub.now_ms()).await;
        let keys: Vec<IndexKey> = r.lookup_keys.iter().map(|k| IndexKey::parse(k)).collect();
        for id in active_under(hub, &entity, &keys).await? {
            if !r.golden_ids.contains(&id) && (r.all || r.golden_ids.is_empty()) {
                r.golden_ids.push(id);
            }
        }
        r.lookup_keys.clear();
        save(store, &mut r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })?;
    }
    match (r.scope, r.source.clone()) {
        (ErasureScope::Source, Some(src)) => {
            let key = SourceKey::new(entity.as_str(), src.system.as_str(), src.source_id.as_str());
            let unit = key.item_key();
            if !r.progress.get(&unit).is_some_and(|p| p.done) {
                let mut event = None;
                for attempt in 0..hub.config().max_attempts {
                    let stored = store.get_source(&key).await?;
                    let golden = match stored.as_ref().and_then(|s| s.golden_id.clone()) {
                        Some(g) => hub.final_record(&entity, &g).await?.filter(GoldenRecord::is_active),
                        None => None,
                    };
                    let outcome = match (stored, golden) {
                        (_, Some(g)) if g.members.len() > 1 => {
                            // Boxed: these futures hold the store's, large on DynamoDB.
                            let plan = Box::pin(plan_source_erasure(hub, g, &key, request_id, &secret)).await?;
                            fix_counts(store, &mut r, &unit, &plan.counts).await?;
                            Box::pin(apply_source_erasure(hub, plan)).await.map(Some)
                        }
                        (_, Some(g)) => {
                            let found = Box::pin(gather(hub, g, &secret)).await?;
                            fix_counts(store, &mut r, &unit, &found.counts).await?;
                            Box::pin(erase_golden(hub, found, request_id)).await.map(Some)
                        }
                        // Stored but not in an active golden record: a tombstone is all there is to do.
                        (Some(s), None) => {
                            fix_counts(store, &mut r, &unit, &BTreeMap::from([("sources".to_owned(), 1)])).await?;
                            // Unless a merge links it meanwhile (then the next attempt erases
                            // it with its golden record).
                            let op = WriteOp::PutTombstone {
                                source: key.clone(),
                                seq: s.seq,
                                request_id: request_id.to_owned(),
                                unlinked: s.golden_id.is_none(),
                            };
                            apply_chunks(hub, vec![op]).await.map(|_| None).map_err(Into::into)
                        }
                        // Never stored, or gone with the transaction of an earlier run that lost
                        // its answer: the tombstone travels with the golden record's last write.
                        (None, None) => Ok(None),
                    };
                    match outcome {
                        Ok(e) => {
                            event = e;
                            break;
                        }
                        Err(e) if attempt + 1 < hub.config().max_attempts && e.is_conflict() => continue,
                        Err(e) => return Err(e),
                    }
                }
                r.progress.entry(unit).or_default().done = true;
                if let Some(e) = event {
                    if !r.events.iter().any(|x| x.event_id == e.event_id) {
                        r.events.push(e);
                    }
                }
                save(store, &mut r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })?;
            }
        }
        _ => {
            for gid in r.golden_ids.clone() {
                if r.progress.get(&gid).is_some_and(|p| p.done) {
                    continue;
                }
                let mut event = None;
                for attempt in 0..hub.config().max_attempts {
                    // Merged into another record since the request was accepted: the person now
                    // lives in the survivor.
                    let Some(golden) = hub.final_record(&entity, &gid).await? else { break };
                    if golden.status == GoldenStatus::Erased && !r.progress.contains_key(&gid) {
                        break;
                    }
                    let found = gather(hub, golden, &secret).await?;
                    // Counts are fixed once, before the first deletion, so a resumed run reports the same.
                    if !r.progress.contains_key(&gid) {
                        r.progress.insert(gid.clone(), Progress { counts: found.counts.clone(), done: false });
                        save(store, &mut r).await.map_err(|e| {
                            if e.is_conflict() {
                                ErasureError::Busy
                            } else {
                                e.into()
                            }
                        })?;
                    }
                    if found.golden.status == GoldenStatus::Erased {
                        // A previous run finished the golden record but not the receipt.
                        break;
                    }
                    match erase_golden(hub, found, request_id).await {
                        Ok(e) => {
                            event = Some(e);
                            break;
                        }
                        Err(e) if attempt + 1 < hub.config().max_attempts && e.is_conflict() => continue,
                        Err(e) => return Err(e),
                    }
                }
                let p = r.progress.entry(gid.clone()).or_default();
                p.done = true;
                if let Some(e) = event {
                    if !r.events.iter().any(|x| x.event_id == e.event_id) {
                        r.events.push(e);
                    }
                }
                save(store, &mut r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })?;
            }
        }
    }

    // Done: the totals, the ErasureCompleted event, the receipt.
    let mut removed = BTreeMap::new();
    for p in r.progress.values() {
        for (k, v) in &p.counts {
            *removed.entry(k.clone()).or_default() += v;
        }
    }
    r.removed = removed;
    let now = hub.now_ms();
    let completed = HubEvent::ErasureCompleted(ErasureCompleted {
        schema_version: crate::events::SCHEMA_VERSION.into(),
        request_id: request_id.to_owned(),
        entity_type: entity.clone(),
        golden_ids: r.golden_ids.clone(),
        removed: r.removed.clone(),
        correlation_id: request_id.to_owned(),
        occurred_at: crate::time::format_rfc3339(now),
    });
    let sent =
        SentEvent { detail_type: completed.detail_type().into(), event_id: completed.event_id(), golden_id: None };
    if hub.config().emit_events {
        apply_chunks(hub, vec![WriteOp::PutOutbox(Box::new(OutboxEntry::new(sent.event_id.clone(), now, completed)))])
            .await?;
    }
    if !r.events.iter().any(|e| e.event_id == sent.event_id) {
        r.events.push(sent);
    }
    r.status = ReceiptStatus::Completed;
    r.error = None;
    r.completed_at = Some(crate::time::format_rfc3339(now));
    r.lease_until_ms = None;
    r.duration_ms = Some(now - started);
    save(store, &mut r).await.map_err(|e| if e.is_conflict() { ErasureError::Busy } else { e.into() })?;
    info!(request_id, goldens = r.golden_ids.len(), "erasure completed");
    Ok(r)
}
