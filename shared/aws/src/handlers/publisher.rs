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
use crate::dynamo::DynamoStore;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use mdm_core::events::HubEvent;
use mdm_core::store::OutboxEntry;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tracing::{error, info};

/// Items (pk, sk) all of whose events were delivered.
fn delivered_items(named: &[((String, String), String)], delivered: &[String]) -> Vec<(String, String)> {
    let items: BTreeSet<&(String, String)> = named.iter().map(|(item, _)| item).collect();
    items
        .into_iter()
        .filter(|item| named.iter().filter(|(i, _)| i == *item).all(|(_, id)| delivered.contains(id)))
        .cloned()
        .collect()
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub items: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// Publishes every event whose pending-event item is older than `older_than_s` seconds (at most
/// 1,000 items a run) and deletes the pending-event items of what it delivered.
pub async fn sweep(ctx: &Ctx, older_than_s: u64) -> Result<SweepReport, mdm_core::store::StoreError> {
    let store: &DynamoStore = ctx.hub.store();
    let before = ctx.hub.now_ms() - i64::try_from(older_than_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let items = store.unpublished_items(before, 1000).await?;
    let mut named: Vec<((String, String), String)> = Vec::new();
    let mut events: Vec<OutboxEntry> = Vec::new();
    // Items gone (erased, or never written: their transaction failed) have nothing to send.
    let mut done: Vec<(String, String)> = Vec::new();
    for (pk, sk) in &items {
        match store.stream_events(pk, sk).await? {
            Some(entries) => {
                for entry in entries {
                    named.push(((pk.clone(), sk.clone()), entry.event_id.clone()));
                    events.push(entry);
                }
            }
            None => done.push((pk.clone(), sk.clone())),
        }
    }
    let report = ctx.bus.publish(&events).await;
    done.extend(delivered_items(&named, &report.delivered));
    store.mark_delivered(&done).await?;
    ctx.metrics.add("EventsSwept", report.delivered.len() as f64);
    ctx.metrics.add("EventsFailed", report.failed.len() as f64);
    ctx.metrics.flush();
    info!(items = items.len(), delivered = report.delivered.len(), failed = report.failed.len(), "sweep");
    Ok(SweepReport { items: items.len(), delivered: report.delivered.len(), failed: report.failed.len() })
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
    let store: &DynamoStore = ctx.hub.store();
    let mut response = DynamoDbEventResponse::default();
    // (sequence number, event id, event) for each event named, in stream order.
    let mut batch: Vec<(String, OutboxEntry)> = Vec::new();
    // The item each event came from, taken out of the `unpublished` index once delivered.
    let mut named: Vec<((String, String), String)> = Vec::new();
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
                    named.push(((pk.clone(), sk.clone()), entry.event_id.clone()));
                    batch.push((seq.clone(), entry));
                }
            }
            Ok(None) => ctx.metrics.incr("OutboxAlreadyDelivered"),
            Err(e) => {
                // Retry from the first record not yet published: those read before it are not
                // published either, and Lambda checkpoints everything before the reported one.
                error!(error = %e, "reading an outbox item failed");
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(batch.first().map_or(seq, |(first, _)| first.clone()));
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
    let events: Vec<OutboxEntry> = batch.iter().map(|(_, e)| e.clone()).collect();
    let report = ctx.bus.publish(&events).await;
    ctx.metrics.add("EventsPublished", report.delivered.len() as f64);
    ctx.metrics.add("EventsFailed", report.failed.len() as f64);
    ctx.metrics.add("EventsRetried", f64::from(report.retried_entries));
    let now = ctx.hub.now_ms();
    for (_, e) in batch.iter().filter(|(_, e)| report.delivered.contains(&e.event_id)) {
        if let Some(at) = occurred_ms(&e.event) {
            ctx.metrics.add("FreshnessMs", (now - at).max(0) as f64);
        }
    }
    if let Err(e) = store.mark_delivered(&delivered_items(&named, &report.delivered)).await {
        // Delivered but still pending: a later sweep sends it again (at-least-once).
        error!(error = %e, "deleting the pending-event items of delivered events failed");
    }
    info!(delivered = report.delivered.len(), failed = report.failed.len(), calls = report.calls, "published");
    if let Some((seq, _)) = batch.iter().find(|(_, e)| report.failed.iter().any(|(f, _)| *f == e.event_id)) {
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
