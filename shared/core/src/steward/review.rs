//! Review decisions: a steward links the record under review with one candidate (a manual
//! merge of its golden record and that candidate) or keeps it apart from every candidate
//! (keep-apart constraints). Either way the task is resolved with actor, time and reason in
//! the same transaction, and `ReviewTaskResolved` is published.

use super::{outbox, StewardError, Target};
use crate::events::{Envelope, HubEvent, ReviewResolved};
use crate::golden::{
    Attribution, Cause, GoldenRecord, Resolution, ReviewStatus, ReviewTask, RESOLVED_REVIEW_RETENTION_S,
};
use crate::hub::{Hub, HubError};
use crate::matching::CandidateScore;
use crate::store::{Expect, Store, WriteOp};
use std::sync::Arc;

/// A steward's decision on a review task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The record's golden record and this candidate are one entity.
    Link { golden_id: String },
    /// The record's golden record is none of the candidates.
    Distinct,
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Link { .. } => "link",
            Self::Distinct => "distinct",
        }
    }
}

/// What a review decision did.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub task: ReviewTask,
    /// The record's golden record after the decision.
    pub golden: GoldenRecord,
    /// For `link`: the golden record merged away.
    pub merged: Option<String>,
    /// The task's candidates scored again against the current state.
    pub rescored: Vec<CandidateScore>,
}

fn resolved_task(
    task: &ReviewTask,
    decision: &Decision,
    linked: Option<String>,
    who: &Attribution,
    now: i64,
) -> ReviewTask {
    let mut t = task.clone();
    t.status = match decision {
        Decision::Link { .. } => ReviewStatus::Merged,
        Decision::Distinct => ReviewStatus::Rejected,
    };
    t.resolution = Some(Resolution {
        decision: decision.name().to_owned(),
        golden_id: linked,
        actor: who.actor.clone(),
        reason: who.reason.clone(),
        at_ms: now,
    });
    t.expires_at = Some(now / 1000 + RESOLVED_REVIEW_RETENTION_S);
    t
}

/// The task resolved and its event, as writes.
fn resolution_writes(
    task: &ReviewTask,
    decision: &Decision,
    linked: Option<String>,
    golden: &GoldenRecord,
    who: &Attribution,
    now: i64,
    emit: bool,
) -> Vec<WriteOp> {
    let t = resolved_task(task, decision, linked.clone(), who, now);
    let mut out = vec![WriteOp::PutReview(Box::new(t))];
    if emit {
        let event = HubEvent::ReviewTaskResolved(ReviewResolved {
            envelope: Envelope::new(golden, Vec::new(), Cause::Review, &format!("review-{}", task.task_id), now),
            task_id: task.task_id.clone(),
            decision: decision.name().to_owned(),
            candidate_golden_ids: task.candidate_golden_ids.clone(),
            linked_golden_id: linked,
        });
        out.push(outbox(event, now));
    }
    out
}

impl<S: Store> Hub<S> {
    /// Decides an open review task. `version` is the version of the golden record that holds
    /// the record under review now (412 when it changed). The task's candidates are scored
    /// again first; a decision that no longer applies (record or candidate gone, already
    /// linked) is a 409 naming why.
    pub async fn resolve_review(
        &self,
        entity: &str,
        task_id: &str,
        version: u64,
        decision: &Decision,
        who: &Attribution,
    ) -> Result<Resolved, StewardError> {
        self.schema(entity)?;
        for _ in 0..self.config().max_attempts {
            let task = self.store().get_review(entity, task_id).await?.ok_or_else(|| StewardError::NotFound {
                code: "review_not_found",
                message: format!("no review task {task_id}"),
            })?;
            if task.status != ReviewStatus::Open {
                return Err(StewardError::conflict("already_resolved", "the review task was resolved already"));
            }
            let source = self.store().get_source(&task.source).await?.filter(|s| !s.held);
            let Some(source) = source else {
                return Err(StewardError::conflict("record_gone", "the record under review was erased or is held"));
            };
            let holder_id = source.golden_id.clone().unwrap_or_else(|| task.golden_id.clone());
            let Some(holder) = self.final_record(entity, &holder_id).await?.filter(GoldenRecord::is_active) else {
                return Err(StewardError::conflict("record_gone", "the record under review is in no golden record"));
            };
            if holder.version != version {
                return Err(StewardError::Stale {
                    golden_id: holder.golden_id,
                    expected: version,
                    current: holder.version,
                });
            }
            let rescored = self.match_record(&source).await?.candidates;
            let now = self.now_ms();
            let emit = self.config().emit_events;
            match decision {
                Decision::Link { golden_id } => {
                    if !task.candidate_golden_ids.contains(golden_id) {
                        return Err(StewardError::invalid(
                            "not_a_candidate",
                            "goldenId",
                            "goldenId must be one of the task's candidates",
                        ));
                    }
                    let Some(candidate) = self.final_record(entity, golden_id).await?.filter(GoldenRecord::is_active)
                    else {
                        return Err(StewardError::conflict("candidate_gone", "the candidate golden record was erased"));
                    };
                    if candidate.golden_id == holder.golden_id {
                        return Err(StewardError::conflict(
                            "already_linked",
                            "the record is in that golden record already",
                        ));
                    }
                    let a = Target { entity: entity.to_owned(), golden_id: holder.golden_id.clone(), version };
                    let b = Target {
                        entity: entity.to_owned(),
                        golden_id: candidate.golden_id.clone(),
                        version: candidate.version,
                    };
                    let linked = Some(candidate.golden_id.clone());
                    let extra = |after: &GoldenRecord| {
                        resolution_writes(&task, decision, linked.clone(), after, who, now, emit)
                    };
                    match self.merge_golden(&a, &b, who, Cause::Review, extra).await {
                        Ok(m) => {
                            let task = self.store().get_review(entity, task_id).await?.unwrap_or(task);
                            return Ok(Resolved { task, golden: m.survivor, merged: Some(m.merged), rescored });
                        }
                        // The candidate changed meanwhile: read again (the holder's version is
                        // checked again there).
                        Err(StewardError::Stale { golden_id, .. }) if golden_id == candidate.golden_id => continue,
                        Err(e) => return Err(e),
                    }
                }
                Decision::Distinct => {
                    let found = self.resolve(entity, &task.candidate_golden_ids).await?;
                    let mut others: Vec<Arc<GoldenRecord>> = Vec::new();
                    for g in found.into_values() {
                        if g.golden_id != holder.golden_id && !others.iter().any(|o| o.golden_id == g.golden_id) {
                            others.push(g);
                        }
                    }
                    let mut ops = Vec::new();
                    let mut kept = holder.clone();
                    for o in &others {
                        if kept.kept_apart_from(o) {
                            continue;
                        }
                        kept.kept_apart.push(o.golden_id.clone());
                        let mut other = GoldenRecord::clone(o);
                        other.kept_apart.push(holder.golden_id.clone());
                        other.revision += 1;
                        other.updated_at_ms = now;
                        ops.push(WriteOp::PutGolden { golden: Arc::new(other), expect: Expect::Revision(o.revision) });
                    }
                    kept.revision += 1;
                    kept.updated_at_ms = now;
                    ops.push(WriteOp::PutGolden {
                        golden: Arc::new(kept.clone()),
                        expect: Expect::Revision(holder.revision),
                    });
                    ops.extend(resolution_writes(&task, decision, None, &kept, who, now, emit));
                    let members: Vec<crate::keys::SourceKey> =
                        others.iter().flat_map(|o| o.members.iter().cloned()).collect();
                    let labels = crate::golden::LabelSet::across(
                        entity,
                        format!("review-{task_id}"),
                        "distinct",
                        Cause::Review,
                        now,
                        std::slice::from_ref(&task.source),
                        &members,
                    );
                    ops.push(WriteOp::PutLabels(Box::new(labels)));
                    if ops.len() > crate::store::MAX_TRANSACTION_ITEMS {
                        return Err(StewardError::conflict(
                            "change_too_large",
                            "too many candidates for one transaction",
                        ));
                    }
                    if self.commit(ops, Vec::new()).await? {
                        let task = resolved_task(&task, decision, None, who, now);
                        return Ok(Resolved { task, golden: kept, merged: None, rescored });
                    }
                }
            }
        }
        Err(HubError::TooManyConflicts(self.config().max_attempts).into())
    }
}
