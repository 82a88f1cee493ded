//! Data stewardship: the corrections a data steward makes to what the matcher decided — manual
//! merge, split, pinned values, review decisions. Each action names the version of the golden
//! record it was decided on (stale: refused), runs as one conditional transaction like an
//! automatic merge, and writes a history version with its actor and reason and an event with
//! its cause.

mod actions;
mod held;
pub mod regroup;
mod review;
mod rollback;

pub use actions::{Merged, Split};
pub use review::{Decision, Resolved};
pub use rollback::RolledBack;

use crate::events::HubEvent;
use crate::golden::{GoldenRecord, GoldenStatus};
use crate::hub::{Hub, HubError};
use crate::keys::SourceKey;
use crate::record::SourceRecord;
use crate::store::{OutboxEntry, Store, StoreError, WriteOp};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a steward action was refused.
#[derive(Debug, thiserror::Error)]
pub enum StewardError {
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The golden record changed since the version the action names.
    #[error("golden record {golden_id} is at version {current}, not {expected}")]
    Stale { golden_id: String, expected: u64, current: u64 },
    /// A held source record was stored again since the version (`sourceSeq`) the action names.
    #[error("the record is at sourceSeq {current}, not {expected}")]
    StaleRecord { expected: u64, current: u64 },
    /// The action no longer applies to the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String, merged_into: Option<String> },
    #[error("{message}")]
    Invalid { code: &'static str, message: String, field: Option<String> },
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl From<StoreError> for StewardError {
    fn from(e: StoreError) -> Self {
        Self::Hub(e.into())
    }
}

impl StewardError {
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into(), field: Some(field.to_owned()) }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into(), merged_into: None }
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }
}

/// The golden record an action is about, and the version the steward saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub entity: String,
    pub golden_id: String,
    pub version: u64,
}

/// The outbox write of an event.
pub(crate) fn outbox(event: HubEvent, now: i64) -> WriteOp {
    WriteOp::PutOutbox(Box::new(OutboxEntry::new(event.event_id(), now, event)))
}

/// The survivor of two golden records merged: most members, then the oldest, then the smaller
/// id (the rule automatic merges follow).
pub(crate) fn survivor_first<'a>(a: &'a GoldenRecord, b: &'a GoldenRecord) -> (&'a GoldenRecord, &'a GoldenRecord) {
    let a_first = b
        .members
        .len()
        .cmp(&a.members.len())
        .then(a.created_at_ms.cmp(&b.created_at_ms))
        .then(a.golden_id.cmp(&b.golden_id))
        .is_le();
    if a_first {
        (a, b)
    } else {
        (b, a)
    }
}

impl<S: Store> Hub<S> {
    /// The golden record `id` if it is active: 404 when it does not exist or was erased, 409
    /// `merged` (naming the survivor) when it was merged into another.
    pub(crate) async fn active_golden(&self, entity: &str, id: &str) -> Result<GoldenRecord, StewardError> {
        self.schema(entity)?;
        let g = self.store().get_golden(entity, id).await?;
        match g {
            Some(g) if g.is_active() => Ok(g),
            Some(g) => match g.status {
                GoldenStatus::MergedInto { survivor } => {
                    let at = self.final_record(entity, &survivor).await?.map_or(survivor, |f| f.golden_id);
                    Err(StewardError::Conflict {
                        code: "merged",
                        message: format!("golden record {id} was merged into {at}"),
                        merged_into: Some(at),
                    })
                }
                _ => Err(StewardError::not_found("golden_not_found", format!("golden record {id} was erased"))),
            },
            None => Err(StewardError::not_found("golden_not_found", format!("no golden record {id}"))),
        }
    }

    /// The active golden record a target names, at the version it names (412 otherwise).
    pub(crate) async fn target_golden(&self, t: &Target) -> Result<GoldenRecord, StewardError> {
        let g = self.active_golden(&t.entity, &t.golden_id).await?;
        if g.version != t.version {
            return Err(StewardError::Stale { golden_id: g.golden_id, expected: t.version, current: g.version });
        }
        Ok(g)
    }

    /// Member source records by key (held versions are no members).
    pub(crate) async fn member_records(
        &self,
        keys: &[SourceKey],
    ) -> Result<BTreeMap<SourceKey, Arc<SourceRecord>>, StewardError> {
        let read = self.store().get_sources(keys).await?;
        Ok(read.into_iter().filter(|r| !r.held).map(|r| (r.key.clone(), r)).collect())
    }

    /// Current holders of the claim keys of `members` that none of `listed` lists.
    pub(crate) async fn claims_around(
        &self,
        entity: &str,
        members: &[&SourceRecord],
        listed: &[&GoldenRecord],
    ) -> Result<BTreeMap<crate::index_keys::IndexKey, String>, StewardError> {
        let schema = self.schema(entity)?;
        let (_, claim_keys) = crate::blocking::stored_key_lists(schema, members.iter().copied());
        let unknown: Vec<_> = claim_keys.into_iter().filter(|k| !listed.iter().any(|g| g.claims.contains(k))).collect();
        if unknown.is_empty() {
            return Ok(BTreeMap::new());
        }
        Ok(self.store().get_claims(entity, &unknown).await?)
    }

    /// Writes a planned change: the transaction, then its follow-up chunks. `Ok(false)` when a
    /// condition failed (someone changed what was read): the caller reads again.
    pub(crate) async fn commit(&self, main: Vec<WriteOp>, follow_ups: Vec<Vec<WriteOp>>) -> Result<bool, StewardError> {
        match self.store().transact(main).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        for chunk in follow_ups {
            // Idempotent maintenance; `mdm reindex` rewrites index entries should one be lost.
            self.store().transact(chunk).await?;
        }
        Ok(true)
    }
}
