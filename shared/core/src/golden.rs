//! Golden records: one per real-world entity, with attribute-level provenance and versioned history.

use crate::attributes::AttributeMap;
use crate::keys::SourceKey;
use crate::record::Text;
use crate::survivorship::Rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a golden attribute's value came from, and by which survivorship rule it won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenAttribute {
    pub value: Text,
    /// The source system.
    pub source: Text,
    pub source_id: Text,
    pub source_seq: u64,
    pub rule: Rule,
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
    pub match_values: Shared<AttributeMap<Vec<MatchValue>>>,
    /// Blocking keys this record is indexed under (the union over its members).
    pub index_keys: crate::index_keys::KeySet,
    /// Strong keys this record holds a claim on.
    pub claims: crate::index_keys::KeySet,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl GoldenRecord {
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
}
