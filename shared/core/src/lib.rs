//! # mdm-core
//!
//! The domain core of the MDM hub: entity schemas, validation and normalisation, blocking,
//! comparators and Fellegi-Sunter scoring, match decisions, survivorship with attribute-level
//! provenance, merge plans, event payloads, and the store port with an in-process adapter.
//!
//! Pure Rust with no AWS dependency: the AWS adapters live in `mdm-aws`.

pub mod api;
pub mod attributes;
pub mod blocking;
pub mod compare;
pub mod erasure;
pub mod events;
pub mod files;
pub mod golden;
pub mod hub;
pub mod index_keys;
pub mod keys;
pub mod matching;
pub mod names;
pub mod normalise;
pub mod plan;
pub mod publish;
pub mod record;
#[cfg(feature = "conformance")]
pub mod scenario;
pub mod schema;
#[cfg(test)]
mod seeded;
pub mod steward;
pub mod store;
pub mod survivorship;
pub mod terms;
pub mod time;
pub mod training;

pub use attributes::AttributeMap;
pub use golden::{GoldenRecord, GoldenStatus, HistoryEntry, ReviewTask};
pub use hub::{Hub, HubConfig, HubError, MergeReport, SuppressionMode};
pub use keys::SourceKey;
pub use matching::{MatchDecision, MatchResult};
pub use record::{RecordError, SourceRecord, Text};
pub use schema::{EntitySchema, SchemaRegistry};
