//! Publish: the table's stream (keys only) names outbox items and history items. Events about a
//! golden record version travel in that version's history item (one write fewer per change);
//! others (erasure receipts) in an outbox item of their own. The handler reads each named item,
//! publishes its events to EventBridge in batches of 10 (failed entries retried), and deletes the
//! delivered outbox items; history items stay. A record whose event could not be delivered is
//! reported as the batch item failure, so Lambda retries from it (and sends it to the on-failure
//! queue after the retries).

use super::Ctx;
use crate::dynamo::DynamoStore;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use mdm_core::events::HubEvent;
use mdm_core::store::Outbox;
use tracing::{error, info};

pub async fn handle_stream(ctx: &Ctx, event: StreamEvent) -> DynamoDbEventResponse {
    let store: &DynamoStore = ctx.hub.store();
    let mut response = DynamoDbEventResponse::default();
    // (sequence number, event id, event) for each event named, in stream order.
    let mut batch: Vec<(String, String, HubEvent)> = Vec::new();
    // Events with an outbox item of their own, deleted once delivered.
    let mut standalone: Vec<String> = Vec::new();
    for record in &event.records {
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            continue;
        }
        let key = |k: &str| match record.change.keys.get(k) {
            Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let (Some(pk), Some(sk)) = (key("pk"), key("sk")) else { continue };
        let outbox_item = pk.starts_with("OUT#");
        if !outbox_item && !sk.starts_with("V#") {
            continue;
        }
        let seq = record.change.sequence_number.clone().unwrap_or_default();
        match store.stream_events(&pk, &sk).await {
            Ok(Some(entries)) => {
                for entry in entries {
                    if outbox_item {
                        standalone.push(entry.event_id.clone());
                    }
                    batch.push((seq.clone(), entry.event_id, entry.event));
                }
            }
            Ok(None) => ctx.metrics.incr("OutboxAlreadyDelivered"),
            Err(e) => {
                // Retry from the first record not yet published: those read before it are not
                // published either, and Lambda checkpoints everything before the reported one.
                error!(error = %e, "reading an outbox item failed");
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(batch.first().map_or(seq, |(first, _, _)| first.clone()));
                response.batch_item_failures.push(f);
                ctx.metrics.flush();
                return response;
            }
        }
    }
    if batch.is_empty() {
        ctx.metrics.flush();
        return response;
    }
    let events: Vec<(String, HubEvent)> = batch.iter().map(|(_, id, e)| (id.clone(), e.clone())).collect();
    let report = ctx.bus.publish(&events).await;
    ctx.metrics.add("EventsPublished", report.delivered.len() as f64);
    ctx.metrics.add("EventsFailed", report.failed.len() as f64);
    ctx.metrics.add("EventsRetried", f64::from(report.retried_entries));
    let now = ctx.hub.now_ms();
    for (_, _, e) in batch.iter().filter(|(_, id, _)| report.delivered.contains(id)) {
        if let Some(at) = occurred_ms(e) {
            ctx.metrics.add("FreshnessMs", (now - at).max(0) as f64);
        }
    }
    let delete: Vec<String> = report.delivered.iter().filter(|id| standalone.contains(id)).cloned().collect();
    if let Err(e) = store.delete_events(&delete).await {
        // Delivered but not deleted: a later sweep or redelivery sends it again (at-least-once).
        error!(error = %e, "deleting delivered outbox items failed");
    }
    info!(delivered = report.delivered.len(), failed = report.failed.len(), calls = report.calls, "published");
    if let Some((seq, _, _)) = batch.iter().find(|(_, id, _)| report.failed.iter().any(|(f, _)| f == id)) {
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some(seq.clone());
        response.batch_item_failures.push(f);
    }
    ctx.metrics.flush();
    response
}

fn occurred_ms(e: &HubEvent) -> Option<i64> {
    let detail = e.detail();
    mdm_core::time::parse_rfc3339(detail.get("occurredAt")?.as_str()?)
}
