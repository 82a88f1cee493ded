//! Publish: the table's stream (keys only) names outbox items and history items. Events about a
//! golden record version travel in that version's history item (one write fewer per change);
//! others (erasure receipts) in an outbox item of their own. The handler reads each named item,
//! publishes its events to EventBridge (failed entries retried), and deletes the pending-event
//! items of the delivered ones (and delivered outbox items; history items stay). A record whose event
//! could not be delivered is reported as the batch item failure, so Lambda retries from it (and
//! sends it to the on-failure queue after the retries).
//!
//! The sweep (`{"sweep": {"olderThanSeconds": N}}`, on a schedule or by hand) publishes the events
//! whose pending-event items are older than N seconds: events the stream never delivered (records
//! past its retries, an outage longer than its retention).

use super::Ctx;
use crate::metrics::Scope;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use mdm_core::publish::{self, EventItem};
use serde_json::{json, Value};
use tracing::{error, info};

pub use mdm_core::publish::SweepReport;

/// Publishes every event whose pending-event item is older than `older_than_s` seconds (at most
/// 1,000 items a run) and deletes the pending-event items of what it delivered.
pub async fn sweep(ctx: &Ctx, older_than_s: u64) -> Result<SweepReport, mdm_core::store::StoreError> {
    let before = ctx.hub.now_ms() - i64::try_from(older_than_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let report = publish::sweep(ctx.hub.store(), &ctx.bus, before, 1000).await;
    if let Ok(r) = &report {
        ctx.metrics.add("EventsSwept", r.delivered as f64);
        ctx.metrics.add("EventsFailed", r.failed as f64);
        info!(items = r.items, delivered = r.delivered, failed = r.failed, "sweep");
    }
    ctx.metrics.flush();
    report
}

/// One invocation: a stream batch, or `{"sweep": {"olderThanSeconds": N}}`.
pub async fn handle(ctx: &Ctx, payload: Value) -> Result<Value, serde_json::Error> {
    if let Some(sweep_req) = payload.get("sweep") {
        let older = sweep_req.get("olderThanSeconds").and_then(Value::as_u64).unwrap_or(300);
        return Ok(match sweep(ctx, older).await {
            Ok(r) => json!({"items": r.items, "delivered": r.delivered, "failed": r.failed}),
            Err(e) => {
                error!(error = %e, "sweep failed");
                json!({"error": e.to_string()})
            }
        });
    }
    let event: StreamEvent = serde_json::from_value(payload)?;
    serde_json::to_value(handle_stream(ctx, event).await)
}

pub async fn handle_stream(ctx: &Ctx, event: StreamEvent) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    // The items the records name (history versions and outbox items), with their sequence numbers.
    let mut items: Vec<EventItem> = Vec::new();
    let mut seqs: Vec<String> = Vec::new();
    for record in &event.records {
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            continue;
        }
        let key = |k: &str| match record.change.keys.get(k) {
            Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let (Some(pk), Some(sk)) = (key("pk"), key("sk")) else { continue };
        if !pk.starts_with("OUT#") && !sk.starts_with("V#") {
            continue;
        }
        seqs.push(record.change.sequence_number.clone().unwrap_or_default());
        items.push((pk, sk));
    }
    let fail_from = |response: &mut DynamoDbEventResponse, at: usize| {
        // Lambda checkpoints everything before the reported record and retries from it.
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = seqs.get(at).cloned();
        response.batch_item_failures.push(f);
    };
    let published = match publish::publish_items(ctx.hub.store(), &ctx.bus, &items).await {
        Ok(p) => p,
        Err(failed) => {
            error!(error = %failed.error, "reading an outbox item failed");
            fail_from(&mut response, failed.resume_at);
            ctx.metrics.flush();
            return response;
        }
    };
    let report = &published.delivery;
    ctx.metrics.add("OutboxAlreadyDelivered", published.gone as f64);
    ctx.metrics.add("EventsPublished", report.delivered.len() as f64);
    ctx.metrics.add("EventsFailed", report.failed.len() as f64);
    ctx.metrics.add("EventsRetried", f64::from(report.retried_entries));
    let now = ctx.hub.now_ms();
    for e in published.events.iter().filter(|e| report.delivered.contains(&e.event_id)) {
        let detail = e.event.detail();
        info!(
            event_id = %e.event_id,
            detail_type = e.event.detail_type(),
            golden_id = detail["goldenId"].as_str().unwrap_or(""),
            version = detail["version"].as_u64().unwrap_or(0),
            correlation_id = detail["correlationId"].as_str().unwrap_or(""),
            "delivered"
        );
        if let Some(at) = occurred_ms(&detail) {
            let entity = detail["entityType"].as_str().map_or(Scope::Function, Scope::entity);
            ctx.metrics.observe_for(entity, "FreshnessMs", (now - at).max(0) as f64);
        }
    }
    if let Some(e) = &published.unmarked {
        // Delivered but still pending: a later sweep sends it again (at-least-once).
        error!(error = %e, "deleting the pending-event items of delivered events failed");
    }
    if !published.events.is_empty() {
        info!(delivered = report.delivered.len(), failed = report.failed.len(), calls = report.calls, "published");
    }
    if let Some(at) = published.first_failed {
        fail_from(&mut response, at);
    }
    ctx.metrics.flush();
    response
}

/// Where freshness starts: when the hub received the source record that caused the change
/// (`receivedAt`), or, for a change a steward or an erasure made, when it was made (`occurredAt`).
fn occurred_ms(detail: &serde_json::Value) -> Option<i64> {
    let at = detail.get("receivedAt").or_else(|| detail.get("occurredAt"))?;
    mdm_core::time::parse_rfc3339(at.as_str()?)
}
