//! Golden records: one per real-world entity, with attribute-level provenance and versioned history.

use crate::attributes::AttributeMap;
use crate::keys::SourceKey;
use crate::record::Text;
use crate::survivorship::Rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a golden attribute's value came from, and by which survivorship rule it won.
/// Serialised as `{"value", "source", "sourceId", "sourceSeq", "rule"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "AttributeWire")]
pub struct GoldenAttribute {
    pub value: Text,
    /// The member source record the value came from.
    pub from: Origin,
    pub source_seq: u64,
    pub rule: Rule,
    /// The value passed its normalisers (or a steward pinned it). False only when no member
    /// holds a valid value for the attribute and a raw one survived; serialised as
    /// `"valid": false` then, and left out otherwise.
    pub valid: bool,
}

impl GoldenAttribute {
    /// The source system the value came from.
    pub fn source(&self) -> &str {
        self.from.system()
    }

    /// The id of the source record the value came from.
    pub fn source_id(&self) -> &str {
        self.from.source_id()
    }
}

/// A source record's system and id, shared by the golden attributes that record supplies: a
/// golden record names each member once instead of once per attribute (8 bytes an attribute
/// rather than the 48 of two owned strings; most of a large batch run's memory is golden records).
#[derive(Debug, Clone, Eq)]
pub struct Origin(std::sync::Arc<(Text, Text)>);

impl Origin {
    pub fn new(system: &str, source_id: &str) -> Self {
        Self(std::sync::Arc::new((system.into(), source_id.into())))
    }

    pub fn of(key: &SourceKey) -> Self {
        Self::new(&key.system, &key.source_id)
    }

    pub fn system(&self) -> &str {
        &self.0 .0
    }

    pub fn source_id(&self) -> &str {
        &self.0 .1
    }
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributeWire {
    value: Text,
    source: Text,
    source_id: Text,
    source_seq: u64,
    rule: Rule,
    #[serde(default = "valid_by_default")]
    valid: bool,
}

fn valid_by_default() -> bool {
    true
}

impl From<AttributeWire> for GoldenAttribute {
    fn from(w: AttributeWire) -> Self {
        Self {
            value: w.value,
            from: Origin(std::sync::Arc::new((w.source, w.source_id))),
            source_seq: w.source_seq,
            rule: w.rule,
            valid: w.valid,
        }
    }
}

impl Serialize for GoldenAttribute {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("GoldenAttribute", 5 + usize::from(!self.valid))?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("source", self.source())?;
        s.serialize_field("sourceId", self.source_id())?;
        s.serialize_field("sourceSeq", &self.source_seq)?;
        s.serialize_field("rule", &self.rule)?;
        if self.valid {
            s.skip_field("valid")?;
        } else {
            s.serialize_field("valid", &false)?;
        }
        s.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum GoldenStatus {
    Active,
    /// Joined into another golden record by a bridging record; a pointer to the survivor.
    MergedInto {
        survivor: String,
    },
    Erased,
}

/// One value some member source record holds, kept for matching (every linked source's values
/// count, not only the surviving ones).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MatchValue {
    pub value: Text,
    /// Normalised (true) or kept raw (false).
    pub valid: bool,
    /// Some member marks this value as verified.
    pub verified: bool,
}

/// The values one attribute holds across a golden record's members, in join order. Most golden
/// records hold one value per attribute: it is kept inline, without an allocation of its own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MatchValues(Values);

#[derive(Clone, Default, PartialEq, Eq)]
enum Values {
    #[default]
    None,
    One(MatchValue),
    Many(Vec<MatchValue>),
}

impl MatchValues {
    pub fn as_slice(&self) -> &[MatchValue] {
        match &self.0 {
            Values::None => &[],
            Values::One(v) => std::slice::from_ref(v),
            Values::Many(v) => v,
        }
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, MatchValue> {
        match &mut self.0 {
            Values::None => [].iter_mut(),
            Values::One(v) => std::slice::from_mut(v).iter_mut(),
            Values::Many(v) => v.iter_mut(),
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn push(&mut self, value: MatchValue) {
        self.0 = match std::mem::take(&mut self.0) {
            Values::None => Values::One(value),
            Values::One(first) => Values::Many(vec![first, value]),
            Values::Many(mut v) => {
                v.push(value);
                Values::Many(v)
            }
        };
    }

    /// Drops spare capacity (the values are kept for the golden record's lifetime).
    pub fn shrink_to_fit(&mut self) {
        if let Values::Many(v) = &mut self.0 {
            v.shrink_to_fit();
        }
    }
}

impl FromIterator<MatchValue> for MatchValues {
    fn from_iter<I: IntoIterator<Item = MatchValue>>(iter: I) -> Self {
        let mut out = Self::default();
        iter.into_iter().for_each(|v| out.push(v));
        out.shrink_to_fit();
        out
    }
}

impl std::fmt::Debug for MatchValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for MatchValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for MatchValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<MatchValue>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// A golden record's collections are shared between its copies (reads take copies of golden
/// records all the time: candidates, merge plans, history snapshots) and copied on write
/// (`Arc::make_mut`). Serialised as the collection itself.
pub type Shared<T> = std::sync::Arc<T>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenRecord {
    pub entity: String,
    pub golden_id: String,
    /// Public version: counts effective changes (attribute values or member sources).
    pub version: u64,
    /// Internal optimistic-lock counter: bumps on every write, effective or not.
    pub revision: u64,
    pub status: GoldenStatus,
    pub attributes: Shared<AttributeMap<GoldenAttribute>>,
    /// Member source records, in the order they joined.
    pub members: Shared<Vec<SourceKey>>,
    pub match_values: Shared<AttributeMap<MatchValues>>,
    /// Blocking keys this record is indexed under (the union over its members).
    pub index_keys: crate::index_keys::KeySet,
    /// Strong keys this record holds a claim on.
    pub claims: crate::index_keys::KeySet,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Golden records merged into this one, directly or through records merged into them: the
    /// ids whose pointers lead here, and what an erasure of this record erases with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// Golden records a data steward decided are other entities (keep-apart constraints): never
    /// linked or merged with this one automatically. Listed on both records; a merge moves the
    /// losers' constraints to the survivor, whose `merged_from` then names the records merged
    /// into it, so a constraint naming one of those still holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_apart: Vec<String>,
    /// Values a data steward pinned: each wins survivorship for its attribute until it is
    /// removed, whatever the members send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<Pin>,
    /// Data quality: the share of the entity type's attributes this record holds a valid value
    /// for, in thousandths (`survivorship::quality`), set wherever survivorship runs; `None` on
    /// records stored without it (`mdm reindex` recomputes it) and on erased records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u16>,
}

/// The provenance `source` of a pinned value (its `sourceId` is the steward who pinned it).
pub const PIN_SOURCE: &str = "steward";

/// A value a data steward pinned on a golden record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub attribute: String,
    /// Normalised like a source value.
    pub value: Text,
    pub actor: String,
    pub reason: String,
    pub at_ms: i64,
    /// The member source record that held this value when it was pinned, if one did: erasing
    /// that record (or the whole subject) removes the pin with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceKey>,
}

/// How a source record came to be a member of the golden record it joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// It created the golden record.
    Created,
    /// A deterministic rule linked it.
    Rule,
    /// Its Fellegi-Sunter score was in the link band.
    Score,
    /// A data steward put it there (review decision, manual merge, split, rollback).
    Steward,
}

/// Why a source record is a member: stored with its cross-reference when the link is made, as
/// it was then (no attribute values: comparator levels and weights only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub how: LinkKind,
    /// The golden record it joined (it may have been merged into another since).
    pub golden_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<crate::matching::AttributeExplanation>,
    /// For a steward's link: the action, who, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at_ms: i64,
}

impl Link {
    /// A link a steward action made.
    pub fn by_steward(golden_id: &str, cause: Cause, who: &Attribution, at_ms: i64) -> Self {
        Self {
            how: LinkKind::Steward,
            golden_id: golden_id.to_owned(),
            rule: None,
            score: None,
            explanation: Vec::new(),
            cause: Some(cause),
            actor: Some(who.actor.clone()),
            reason: Some(who.reason.clone()),
            at_ms,
        }
    }
}

/// A data steward's release of a record held under suppression mode `hold`: its source key is
/// exempt from the erased subject's suppression markers from then on (ingest, match and merge
/// honour it), until the record is erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    pub actor: String,
    pub reason: String,
    pub at_ms: i64,
}

/// Record pairs a steward decision labels `link` (one entity) or `distinct` (two): kept for
/// training the matcher's weights (`GET /v1/labels`). Keys only, no values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSet {
    pub entity: String,
    /// The decision's id (stable: a retried decision writes the same set).
    pub id: String,
    /// `link` or `distinct`.
    pub label: String,
    pub cause: Cause,
    pub at_ms: i64,
    pub pairs: Vec<(SourceKey, SourceKey)>,
}

/// Pairs one decision labels, at most.
pub const MAX_LABEL_PAIRS: usize = 100;

impl LabelSet {
    /// Every pair of a record of `left` with one of `right`, up to [`MAX_LABEL_PAIRS`].
    pub fn across(
        entity: &str,
        id: String,
        label: &str,
        cause: Cause,
        at_ms: i64,
        left: &[SourceKey],
        right: &[SourceKey],
    ) -> Self {
        let pairs =
            left.iter().flat_map(|a| right.iter().map(move |b| (a.clone(), b.clone()))).take(MAX_LABEL_PAIRS).collect();
        Self { entity: entity.to_owned(), id, label: label.to_owned(), cause, at_ms, pairs }
    }

    /// Its place in the list of labels (`labels`' cursor): time, then id.
    pub fn position(&self) -> String {
        format!("{:013}#{}", self.at_ms.max(0), self.id)
    }
}

/// Who asked for a steward action, and why: kept with the change in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    pub actor: String,
    pub reason: String,
}

impl GoldenRecord {
    /// An active golden record without members yet (a plan fills them in).
    pub fn empty(entity: &str, golden_id: &str, now_ms: i64) -> Self {
        Self {
            entity: entity.to_owned(),
            golden_id: golden_id.to_owned(),
            version: 1,
            revision: 1,
            status: GoldenStatus::Active,
            attributes: Default::default(),
            members: Default::default(),
            match_values: Default::default(),
            index_keys: Default::default(),
            claims: Default::default(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            merged_from: Vec::new(),
            kept_apart: Vec::new(),
            pins: Vec::new(),
            quality: None,
        }
    }

    /// This record merged into `survivor`: a pointer at the next version, without members,
    /// index keys or claims (they are the survivor's now).
    pub fn merged_into(&self, survivor: &str, now_ms: i64) -> Self {
        let mut merged = self.clone();
        merged.status = GoldenStatus::MergedInto { survivor: survivor.to_owned() };
        merged.version += 1;
        merged.revision += 1;
        merged.updated_at_ms = now_ms;
        merged.members = Default::default();
        merged.index_keys = Default::default();
        merged.claims = Default::default();
        merged
    }

    /// The ids that name this record: its own and those of the records merged into it.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.golden_id.as_str()).chain(self.merged_from.iter().map(String::as_str))
    }

    /// Whether a keep-apart constraint stands between this record and `other` (either side
    /// names the other or a record merged into it).
    pub fn kept_apart_from(&self, other: &GoldenRecord) -> bool {
        let names = |list: &[String], g: &GoldenRecord| g.aliases().any(|a| list.iter().any(|k| k == a));
        names(&self.kept_apart, other) || names(&other.kept_apart, self)
    }

    pub fn is_active(&self) -> bool {
        self.status == GoldenStatus::Active
    }

    pub fn value(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute).map(|a| a.value.as_str())
    }

    /// Attribute values only, for comparing two states.
    pub fn values(&self) -> BTreeMap<&str, &str> {
        self.attributes.iter().map(|(k, v)| (k.as_str(), v.value.as_str())).collect()
    }

    /// The record as a history version keeps it: what stewards and subscribers see (attributes
    /// with provenance, members, status, times). The matching state (match values, index keys,
    /// claims) follows from the members and is left out: on DynamoDB it is most of a history
    /// item's bytes (index keys are digests, which do not compress), and history is written on
    /// every change.
    pub fn history_snapshot(&self) -> GoldenRecord {
        GoldenRecord {
            match_values: Default::default(),
            index_keys: Default::default(),
            claims: Default::default(),
            ..self.clone()
        }
    }
}

/// Why a golden record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Ingest,
    Merge,
    Split,
    Pin,
    Rollback,
    Erasure,
    /// A data steward decided a review task.
    Review,
}

/// History versions list the members of a golden record up to this many. A version of a larger
/// record keeps its member count instead ([`HistoryEntry::member_count`]), so a history item stays
/// far below DynamoDB's 400 KB item limit however many members the record gathers.
pub const HISTORY_MEMBERS: usize = 1_000;

impl HistoryEntry {
    /// The history version of a golden record as written now: its [`GoldenRecord::history_snapshot`],
    /// without the member list past [`HISTORY_MEMBERS`] members.
    pub fn of(golden: &GoldenRecord, cause: Cause, correlation_id: &str, at_ms: i64) -> Self {
        let mut snapshot = golden.history_snapshot();
        let member_count = (snapshot.members.len() > HISTORY_MEMBERS).then(|| snapshot.members.len());
        if member_count.is_some() {
            snapshot.members = Default::default();
        }
        Self {
            entity: golden.entity.clone(),
            golden_id: golden.golden_id.clone(),
            version: golden.version,
            cause,
            correlation_id: correlation_id.to_owned(),
            at_ms,
            snapshot,
            member_count,
            actor: None,
            reason: None,
        }
    }

    /// The version as a steward action writes it: with its actor and reason.
    pub fn by(mut self, who: &Attribution) -> Self {
        self.actor = Some(who.actor.clone());
        self.reason = Some(who.reason.clone());
        self
    }

    /// Whether this version holds anything of a source record: it lists it as a member, or one
    /// of its attribute values came from it (a version without its member list holds only that).
    pub fn mentions(&self, key: &SourceKey) -> bool {
        self.snapshot.members.contains(key)
            || self.snapshot.pins.iter().any(|p| p.source.as_ref() == Some(key))
            || self
                .snapshot
                .attributes
                .values()
                .any(|a| a.source() == key.system.as_str() && a.source_id() == key.source_id.as_str())
    }
}

/// A snapshot of a golden record at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub entity: String,
    pub golden_id: String,
    pub version: u64,
    pub cause: Cause,
    pub correlation_id: String,
    pub at_ms: i64,
    pub snapshot: GoldenRecord,
    /// Set when the snapshot leaves its member list out (more than [`HISTORY_MEMBERS`]): how
    /// many members the record had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<usize>,
    /// The data steward whose action made this version (none for automatic changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    Merged,
    Rejected,
}

/// A possible match for a data steward to decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewTask {
    pub entity: String,
    pub task_id: String,
    /// The golden record that holds the record under review.
    pub golden_id: String,
    pub source: SourceKey,
    pub candidate_golden_ids: Vec<String>,
    pub score: f64,
    pub explanation: Vec<crate::matching::CandidateScore>,
    pub status: ReviewStatus,
    pub created_at_ms: i64,
    /// A steward's decision, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// A resolved task is kept until then (epoch seconds; DynamoDB's TTL attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// How long a resolved review task stays listable.
pub const RESOLVED_REVIEW_RETENTION_S: i64 = 90 * 24 * 3600;

/// A data steward's decision on a review task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    /// `link` or `distinct`.
    pub decision: String,
    /// For `link`: the candidate the record's golden record was merged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_id: Option<String>,
    pub actor: String,
    pub reason: String,
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MatchValue {
        MatchValue { value: s.into(), valid: true, verified: false }
    }

    fn record(id: &str, merged_from: &[&str], kept_apart: &[&str]) -> GoldenRecord {
        GoldenRecord {
            merged_from: merged_from.iter().map(|s| (*s).to_owned()).collect(),
            kept_apart: kept_apart.iter().map(|s| (*s).to_owned()).collect(),
            ..GoldenRecord::empty("customer", id, 0)
        }
    }

    #[test]
    fn a_constraint_holds_against_a_record_merged_into_another_and_either_side_names_it() {
        let a = record("g-a", &[], &["g-b"]);
        let survivor = record("g-s", &["g-b"], &[]);
        assert!(a.kept_apart_from(&survivor), "g-b was merged into g-s");
        assert!(survivor.kept_apart_from(&a), "either side");
        assert!(!a.kept_apart_from(&record("g-c", &[], &[])));
        let json = serde_json::to_value(record("g-c", &[], &[])).expect("json");
        assert!(json.get("keptApart").is_none(), "no constraints, no field");
    }

    #[test]
    fn golden_attributes_serialise_their_origin_as_source_fields() {
        let from = Origin::new("crm", "c-1");
        let a = GoldenAttribute {
            value: "anna".into(),
            from: from.clone(),
            source_seq: 3,
            rule: Rule::SourcePriority,
            valid: true,
        };
        let json = serde_json::to_value(&a).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"value": "anna", "source": "crm", "sourceId": "c-1", "sourceSeq": 3, "rule": "source_priority"})
        );
        let back: GoldenAttribute = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, a, "equal origins compare equal whether shared or not");
        assert_eq!((back.source(), back.source_id()), ("crm", "c-1"));
        let other = GoldenAttribute { from: Origin::new("crm", "c-2"), ..a.clone() };
        assert_ne!(other, a);
        // A raw value that survived because no member held a valid one says so.
        let raw = GoldenAttribute { valid: false, ..a.clone() };
        let json = serde_json::to_value(&raw).expect("serialise");
        assert_eq!(json["valid"], serde_json::json!(false));
        assert_eq!(serde_json::from_value::<GoldenAttribute>(json).expect("deserialise"), raw);
    }

    #[test]
    fn match_values_grow_from_one_inline_value_and_serialise_as_a_list() {
        let mut m = MatchValues::default();
        assert!(m.is_empty());
        m.push(v("a"));
        assert_eq!(m.as_slice(), [v("a")]);
        m.push(v("b"));
        m.push(v("c"));
        m.iter_mut().for_each(|x| x.verified = true);
        assert_eq!(m.len(), 3);
        assert!(m.as_slice().iter().all(|x| x.verified));
        let as_vec: Vec<MatchValue> = m.as_slice().to_vec();
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(json, serde_json::to_string(&as_vec).expect("json"));
        let back: MatchValues = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, m);
        let one: MatchValues = serde_json::from_str(r#"[{"value":"x","valid":false,"verified":true}]"#).expect("one");
        assert_eq!(one.as_slice(), [MatchValue { value: "x".into(), valid: false, verified: true }]);
        assert!(std::mem::size_of::<MatchValues>() <= 32, "one value fits without an allocation");
    }
}
