//! Change events the hub publishes on its EventBridge bus (`source: mdm.hub`). Each detail-type
//! has a JSON Schema under `shared/core/schemas/events/`; the schema version changes only when a
//! change is not additive.

use crate::golden::{Cause, GoldenRecord, GoldenStatus};
use crate::keys::{digest_hex, SourceKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const EVENT_SOURCE: &str = "mdm.hub";
pub const SCHEMA_VERSION: &str = "1";

/// The golden record as subscribers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenView {
    pub entity_type: String,
    pub golden_id: String,
    pub version: u64,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    pub attributes: crate::attributes::AttributeMap<crate::golden::GoldenAttribute>,
    pub sources: Vec<SourceRef>,
    pub updated_at: String,
    /// Data quality, 0 to 1: the share of the entity type's attributes the record holds a
    /// valid value for (absent on erased records and on records stored without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub system: String,
    pub source_id: String,
}

impl From<&SourceKey> for SourceRef {
    fn from(k: &SourceKey) -> Self {
        Self { system: k.system.to_string(), source_id: k.source_id.to_string() }
    }
}

impl GoldenView {
    pub fn of(g: &GoldenRecord) -> Self {
        let (status, merged_into) = match &g.status {
            GoldenStatus::Active => ("active", None),
            GoldenStatus::MergedInto { survivor } => ("merged", Some(survivor.clone())),
            GoldenStatus::Erased => ("erased", None),
        };
        Self {
            entity_type: g.entity.clone(),
            golden_id: g.golden_id.clone(),
            version: g.version,
            status: status.into(),
            merged_into,
            attributes: (*g.attributes).clone(),
            sources: g.members.iter().map(SourceRef::from).collect(),
            updated_at: crate::time::format_rfc3339(g.updated_at_ms),
            quality: g.quality.map(|q| f64::from(q) / 1000.0),
        }
    }
}

/// Fields every golden-record event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub schema_version: String,
    pub entity_type: String,
    pub golden_id: String,
    /// Subscribers drop an event whose version is not newer than what they hold.
    pub version: u64,
    pub changed_attributes: Vec<String>,
    pub cause: Cause,
    pub correlation_id: String,
    pub occurred_at: String,
    /// When the hub received the source record whose change this is (absent for changes a
    /// steward or an erasure made): `receivedAt` → the event on the bus is the hub's freshness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
}

impl Envelope {
    pub fn new(g: &GoldenRecord, changed: Vec<String>, cause: Cause, correlation_id: &str, at_ms: i64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION.into(),
            entity_type: g.entity.clone(),
            golden_id: g.golden_id.clone(),
            version: g.version,
            changed_attributes: changed,
            cause,
            correlation_id: correlation_id.into(),
            occurred_at: crate::time::format_rfc3339(at_ms),
            received_at: None,
        }
    }

    /// The event of a change a source record caused, received by the hub at `received_ms`.
    pub fn received(mut self, received_ms: i64) -> Self {
        self.received_at = Some(crate::time::format_rfc3339(received_ms));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenChanged {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub golden: GoldenView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenMerged {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The golden records that now point to `goldenId`.
    pub merged_golden_ids: Vec<String>,
    pub golden: GoldenView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenSplit {
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Golden records created from the members split off.
    pub split_golden_ids: Vec<String>,
    pub golden: GoldenView,
}

/// Ids only: an erased subject's attributes never travel in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenErased {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub request_id: String,
    pub sources: Vec<SourceRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOpened {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub task_id: String,
    pub candidate_golden_ids: Vec<String>,
    pub score: f64,
}

/// A data steward decided a review task. No values: ids, the decision and the cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResolved {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub task_id: String,
    /// `link` or `distinct`.
    pub decision: String,
    pub candidate_golden_ids: Vec<String>,
    /// For `link`: the candidate the record's golden record was merged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_golden_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureCompleted {
    pub schema_version: String,
    pub request_id: String,
    pub entity_type: String,
    pub golden_ids: Vec<String>,
    /// Removed items per kind (source, golden, history, index, claim, review, outbox, ...).
    pub removed: BTreeMap<String, u64>,
    pub correlation_id: String,
    pub occurred_at: String,
}

/// A hub event: its detail-type and its detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detailType", content = "detail")]
pub enum HubEvent {
    GoldenRecordCreated(GoldenChanged),
    GoldenRecordUpdated(GoldenChanged),
    GoldenRecordsMerged(GoldenMerged),
    GoldenRecordSplit(GoldenSplit),
    GoldenRecordErased(GoldenErased),
    ReviewTaskOpened(ReviewOpened),
    ErasureCompleted(ErasureCompleted),
    ReviewTaskResolved(ReviewResolved),
}

pub const DETAIL_TYPES: [&str; 8] = [
    "GoldenRecordCreated",
    "GoldenRecordUpdated",
    "GoldenRecordsMerged",
    "GoldenRecordSplit",
    "GoldenRecordErased",
    "ReviewTaskOpened",
    "ErasureCompleted",
    "ReviewTaskResolved",
];

/// The JSON Schema (draft 2020-12) of a detail-type's `detail`, as shipped in the repo.
pub fn detail_schema(detail_type: &str) -> Option<&'static str> {
    Some(match detail_type {
        "GoldenRecordCreated" => include_str!("../schemas/events/GoldenRecordCreated.json"),
        "GoldenRecordUpdated" => include_str!("../schemas/events/GoldenRecordUpdated.json"),
        "GoldenRecordsMerged" => include_str!("../schemas/events/GoldenRecordsMerged.json"),
        "GoldenRecordSplit" => include_str!("../schemas/events/GoldenRecordSplit.json"),
        "GoldenRecordErased" => include_str!("../schemas/events/GoldenRecordErased.json"),
        "ReviewTaskOpened" => include_str!("../schemas/events/ReviewTaskOpened.json"),
        "ErasureCompleted" => include_str!("../schemas/events/ErasureCompleted.json"),
        "ReviewTaskResolved" => include_str!("../schemas/events/ReviewTaskResolved.json"),
        // Not a golden-record event: the files function publishes it itself (docs/files.md).
        "FileIngested" => include_str!("../schemas/events/FileIngested.json"),
        _ => return None,
    })
}

impl HubEvent {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::GoldenRecordCreated(_) => DETAIL_TYPES[0],
            Self::GoldenRecordUpdated(_) => DETAIL_TYPES[1],
            Self::GoldenRecordsMerged(_) => DETAIL_TYPES[2],
            Self::GoldenRecordSplit(_) => DETAIL_TYPES[3],
            Self::GoldenRecordErased(_) => DETAIL_TYPES[4],
            Self::ReviewTaskOpened(_) => DETAIL_TYPES[5],
            Self::ErasureCompleted(_) => DETAIL_TYPES[6],
            Self::ReviewTaskResolved(_) => DETAIL_TYPES[7],
        }
    }

    /// The `detail` object as JSON.
    pub fn detail(&self) -> serde_json::Value {
        let v = match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => serde_json::to_value(d),
            Self::GoldenRecordsMerged(d) => serde_json::to_value(d),
            Self::GoldenRecordSplit(d) => serde_json::to_value(d),
            Self::GoldenRecordErased(d) => serde_json::to_value(d),
            Self::ReviewTaskOpened(d) => serde_json::to_value(d),
            Self::ErasureCompleted(d) => serde_json::to_value(d),
            Self::ReviewTaskResolved(d) => serde_json::to_value(d),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    /// The slim form of an event that carries the golden record (created, updated, merged,
    /// split): the same detail without `golden`, with `slim: true` and the API path to read the
    /// record (`goldenRecordPath`). Sent when the full event exceeds EventBridge's entry limit.
    /// `None` for the other detail-types, which hold ids only.
    pub fn slim_detail(&self) -> Option<serde_json::Value> {
        if !matches!(
            self,
            Self::GoldenRecordCreated(_)
                | Self::GoldenRecordUpdated(_)
                | Self::GoldenRecordsMerged(_)
                | Self::GoldenRecordSplit(_)
        ) {
            return None;
        }
        let e = self.envelope()?;
        let mut v = self.detail();
        let o = v.as_object_mut()?;
        o.remove("golden");
        o.insert("slim".into(), serde_json::Value::Bool(true));
        o.insert(
            "goldenRecordPath".into(),
            serde_json::Value::String(crate::api::golden::location(&e.entity_type, &e.golden_id)),
        );
        Some(v)
    }

    /// How many members the golden record this event carries has (0 for events without one).
    pub fn golden_members(&self) -> usize {
        match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => d.golden.sources.len(),
            Self::GoldenRecordsMerged(d) => d.golden.sources.len(),
            Self::GoldenRecordSplit(d) => d.golden.sources.len(),
            _ => 0,
        }
    }

    /// The golden record a golden-record event is about (`None` for `ErasureCompleted`).
    pub fn golden_id(&self) -> Option<&str> {
        match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => Some(&d.envelope.golden_id),
            Self::GoldenRecordsMerged(d) => Some(&d.envelope.golden_id),
            Self::GoldenRecordSplit(d) => Some(&d.envelope.golden_id),
            Self::GoldenRecordErased(d) => Some(&d.envelope.golden_id),
            Self::ReviewTaskOpened(d) => Some(&d.envelope.golden_id),
            Self::ReviewTaskResolved(d) => Some(&d.envelope.golden_id),
            Self::ErasureCompleted(_) => None,
        }
    }

    /// The entity type of the golden record a golden-record event is about.
    pub fn entity_type(&self) -> Option<&str> {
        self.envelope().map(|e| e.entity_type.as_str())
    }

    fn envelope(&self) -> Option<&Envelope> {
        match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => Some(&d.envelope),
            Self::GoldenRecordsMerged(d) => Some(&d.envelope),
            Self::GoldenRecordSplit(d) => Some(&d.envelope),
            Self::GoldenRecordErased(d) => Some(&d.envelope),
            Self::ReviewTaskOpened(d) => Some(&d.envelope),
            Self::ReviewTaskResolved(d) => Some(&d.envelope),
            Self::ErasureCompleted(_) => None,
        }
    }

    /// The golden record and version a golden-record event is about (`None` for
    /// `ErasureCompleted`).
    pub fn golden_version(&self) -> Option<(&str, u64)> {
        let e = match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => &d.envelope,
            Self::GoldenRecordsMerged(d) => &d.envelope,
            Self::GoldenRecordSplit(d) => &d.envelope,
            Self::GoldenRecordErased(d) => &d.envelope,
            Self::ReviewTaskOpened(d) => &d.envelope,
            Self::ReviewTaskResolved(d) => &d.envelope,
            Self::ErasureCompleted(_) => return None,
        };
        Some((&e.golden_id, e.version))
    }

    fn id_parts(&self) -> (String, String) {
        match self {
            Self::GoldenRecordCreated(d) | Self::GoldenRecordUpdated(d) => {
                (d.envelope.golden_id.clone(), d.envelope.version.to_string())
            }
            Self::GoldenRecordsMerged(d) => (d.envelope.golden_id.clone(), d.envelope.version.to_string()),
            Self::GoldenRecordSplit(d) => (d.envelope.golden_id.clone(), d.envelope.version.to_string()),
            Self::GoldenRecordErased(d) => (d.envelope.golden_id.clone(), d.request_id.clone()),
            Self::ReviewTaskOpened(d) => (d.envelope.golden_id.clone(), d.task_id.clone()),
            Self::ReviewTaskResolved(d) => (d.envelope.golden_id.clone(), d.task_id.clone()),
            Self::ErasureCompleted(d) => (d.request_id.clone(), String::new()),
        }
    }

    /// A stable id: the same change always yields the same id, so subscribers and the outbox can
    /// de-duplicate redeliveries.
    pub fn event_id(&self) -> String {
        let (a, b) = self.id_parts();
        digest_hex(&[self.detail_type(), &a, &b], 16)
    }
}
