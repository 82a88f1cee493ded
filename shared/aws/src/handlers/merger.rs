//! Merge: applies a match decision. Survivorship and the merge plan come from the core; the plan's
//! main transaction (golden records, history, cross-reference, claims, review task, outbox) is one
//! `TransactWriteItems`. Concurrent merges are resolved by optimistic locking on the golden
//! record's revision: on a conflict the handler re-reads, re-matches and retries; when it gives up
//! the message is retried later by SQS.

use super::{each_message, reason, Ctx, Settle};
use crate::messages::MergeMessage;
use crate::metrics::Scope;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use mdm_core::HubError;
use tracing::info;

const HANDLER: &str = "merge";

pub async fn handle_sqs(ctx: &Ctx, event: SqsEvent) -> SqsBatchResponse {
    each_message(ctx, event, (&ctx.settings.merge_dlq_url, super::MERGE_MAX_RECEIVES), HANDLER, |ctx, body| {
        Box::pin(async move { one(ctx, &body).await })
    })
    .await
}

async fn one(ctx: &Ctx, body: &str) -> Settle {
    let msg: MergeMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            return Settle::DeadLetter(reason(
                HANDLER,
                "invalid_message",
                format!("not a merge message ({:?} error at line {}, column {})", e.classify(), e.line(), e.column()),
            ))
        }
    };
    // Boxed: the merge future is deep (re-read, re-match, plan, transact) and would otherwise
    // exceed the compiler's layout depth where the handler is nested in the runtime's futures.
    let entity = Scope::entity(&*msg.source.entity);
    match Box::pin(ctx.hub.merge_decision(&msg.source, msg.result, Some(msg.seq), false)).await {
        Ok(report) => {
            info!(
                source = %msg.source,
                correlation_id = %msg.correlation_id,
                outcome = report.outcome.name(),
                golden_id = %report.outcome.golden_id(),
                effective = report.effective,
                attempts = report.attempts,
                events = report.events.len(),
                "merged"
            );
            let outcome = match report.outcome.name() {
                "created" => "GoldenCreated",
                "linked" => "GoldenLinked",
                "merged" => "GoldenMerged",
                "updated" => "GoldenUpdated",
                _ => "GoldenUnchanged",
            };
            ctx.metrics.incr_for(entity.clone(), outcome);
            // The duplicate rate: of the records that arrive (create, link or merge), the share
            // that joined an existing golden record. CloudWatch's average of 0s and 100s is it.
            if matches!(outcome, "GoldenCreated" | "GoldenLinked" | "GoldenMerged") {
                let duplicate = if outcome == "GoldenCreated" { 0.0 } else { 100.0 };
                ctx.metrics.observe_for(entity.clone(), "DuplicateRatePercent", duplicate);
            }
            if report.review_task.is_some() {
                ctx.metrics.incr_for(entity.clone(), "ReviewTasksOpened");
            }
            ctx.metrics.add_for(entity, "MergeConflicts", f64::from(report.attempts.saturating_sub(1)));
            Settle::Done
        }
        Err(HubError::SourceMissing(_) | HubError::Held(_)) => {
            ctx.metrics.incr_for(entity.clone(), "MergeSourceMissing");
            Settle::Done
        }
        Err(HubError::Suppressed(_)) => {
            info!(source = %msg.source, correlation_id = %msg.correlation_id, "not merged: an erased subject's identifier");
            ctx.metrics.incr_for(entity.clone(), "RecordsSuppressed");
            Settle::Done
        }
        Err(HubError::TooManyConflicts(n)) => {
            ctx.metrics.incr_for(entity.clone(), "MergeConflictsExhausted");
            Settle::Retry(format!("{n} conflicting attempts"))
        }
        Err(e) if e.is_retryable() => Settle::Retry(e.to_string()),
        Err(e) => {
            ctx.metrics.incr_for(entity.clone(), "MergeErrors");
            Settle::DeadLetter(reason(HANDLER, "merge_failed", e.to_string()))
        }
    }
}
