//! Match: reads the source record a message names, finds and scores candidate golden records,
//! and sends the decision (with its explanation, no attribute values) to the merge queue.

use super::{each_message, reason, Ctx, Settle};
use crate::messages::{MatchMessage, MergeMessage};
use crate::metrics::Scope;
use crate::sqs::Outgoing;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use mdm_core::matching::MatchDecision;
use mdm_core::HubError;
use tracing::info;

const HANDLER: &str = "match";

pub async fn handle_sqs(ctx: &Ctx, event: SqsEvent) -> SqsBatchResponse {
    each_message(ctx, event, (&ctx.settings.match_dlq_url, super::MATCH_MAX_RECEIVES), HANDLER, |ctx, body| {
        Box::pin(async move { one(ctx, &body).await })
    })
    .await
}

async fn one(ctx: &Ctx, body: &str) -> Settle {
    let msg: MatchMessage = match serde_json::from_str(body) {
        Ok(m) => m,
        Err(e) => {
            return Settle::DeadLetter(reason(
                HANDLER,
                "invalid_message",
                format!("not a match message ({:?} error at line {}, column {})", e.classify(), e.line(), e.column()),
            ))
        }
    };
    let started = std::time::Instant::now();
    match ctx.hub.match_source_at(&msg.source, Some(msg.seq)).await {
        Ok((_, result)) => {
            let decision = match &result.decision {
                MatchDecision::Link { golden_ids } if golden_ids.len() > 1 => "bridge",
                MatchDecision::Link { .. } => "link",
                MatchDecision::Review { .. } => "review",
                MatchDecision::New => "new",
            };
            info!(
                source = %msg.source,
                correlation_id = %msg.correlation_id,
                decision,
                candidates = result.blocking.candidates,
                too_common = ?result.blocking.too_common,
                "matched"
            );
            let entity = Scope::entity(&*msg.source.entity);
            ctx.metrics.incr_for(entity.clone(), "RecordsMatched");
            ctx.metrics.add_for(entity.clone(), "CandidatesScored", result.blocking.candidates as f64);
            ctx.metrics.add_for(entity.clone(), "BlockingKeysTooCommon", result.blocking.too_common.len() as f64);
            ctx.metrics.observe_for(entity, "MatchLatencyMs", started.elapsed().as_secs_f64() * 1000.0);
            let correlation_id = msg.correlation_id.clone();
            let out = MergeMessage { source: msg.source, seq: msg.seq, correlation_id: msg.correlation_id, result };
            let body = match serde_json::to_string(&out) {
                Ok(b) => b,
                Err(e) => return Settle::Retry(e.to_string()),
            };
            match ctx.queues.send(&ctx.settings.merge_queue_url, Outgoing::new(body, correlation_id)).await {
                Ok(()) => Settle::Done,
                Err(e) => Settle::Retry(e.to_string()),
            }
        }
        Err(HubError::SourceMissing(_) | HubError::Held(_)) => {
            // Erased, never stored, or held for review: nothing to match.
            ctx.metrics.incr("MatchSourceMissing");
            Settle::Done
        }
        Err(e) if e.is_retryable() => Settle::Retry(e.to_string()),
        Err(e) => Settle::DeadLetter(reason(HANDLER, "match_failed", e.to_string())),
    }
}
