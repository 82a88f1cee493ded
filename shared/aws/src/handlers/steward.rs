//! The steward Lambda (`functions/steward`): HTTP API events (payload v2) read like the read
//! API's ([`super::http`]) and answered by [`mdm_core::api::steward::handle`] over the DynamoDB
//! store; and, on a schedule, `{"reviewBacklog": {}}`: the review SLA metrics.

use super::http::{serve, HttpMetrics};
use super::Ctx;
use mdm_core::api::steward;
use serde_json::{json, Value};

/// One HTTP API event to the steward routes; the payload-v2 answer.
pub async fn handle_event(ctx: &Ctx, event: Value) -> Value {
    let names = HttpMetrics {
        requests: "StewardRequests",
        client_errors: "StewardClientErrors",
        server_errors: "StewardServerErrors",
        latency: "StewardLatencyMs",
    };
    serve(ctx, &event, names, |req| async move { steward::handle(&ctx.hub, &req).await }).await
}

/// One invocation: the schedule's `{"reviewBacklog": {}}`, or an HTTP API event.
pub async fn handle(ctx: &Ctx, payload: Value) -> Value {
    if payload.get("reviewBacklog").is_some() {
        return review_backlog(ctx).await;
    }
    handle_event(ctx, payload).await
}

/// Emits `OpenReviews` and `OldestReviewAgeSeconds` per entity type (EMF, dimensions
/// `Function` + `EntityType` and `Function`) and answers them.
pub async fn review_backlog(ctx: &Ctx) -> Value {
    match steward::review_backlog(&ctx.hub).await {
        Ok(all) => {
            let mut out = Vec::with_capacity(all.len());
            for b in all {
                ctx.metrics.emit_for_entity(
                    &b.entity,
                    &[
                        ("OpenReviews", "Count", b.open as f64),
                        ("OldestReviewAgeSeconds", "Seconds", b.oldest_age_s as f64),
                    ],
                );
                out.push(json!({"entityType": b.entity, "openReviews": b.open, "oldestAgeSeconds": b.oldest_age_s}));
            }
            json!({"entities": out})
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the review backlog failed");
            json!({"error": e.to_string()})
        }
    }
}
