//! Hub-internal queue messages. They carry keys and decisions, never attribute values.

use mdm_core::matching::MatchResult;
use mdm_core::SourceKey;
use serde::{Deserialize, Serialize};

/// ingest → match: "this source record changed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchMessage {
    pub source: SourceKey,
    pub seq: u64,
    pub correlation_id: String,
}

/// match → merge: the decision for a source record, with its explanation (scores and levels only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeMessage {
    pub source: SourceKey,
    pub seq: u64,
    pub correlation_id: String,
    pub result: MatchResult,
}
