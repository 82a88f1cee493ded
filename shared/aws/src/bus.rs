//! EventBridge: publishing hub events in batches of 10, retrying the entries of a partial failure.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use mdm_core::events::{HubEvent, EVENT_SOURCE};
use std::time::Duration;

/// Entries per `PutEvents` call (the API's limit).
pub const PUT_EVENTS_BATCH: usize = 10;
/// Rounds of retries for failed entries.
pub const RETRY_ROUNDS: u32 = 3;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// Event ids delivered.
    pub delivered: Vec<String>,
    /// Event ids that failed after every retry, with the last error code.
    pub failed: Vec<(String, String)>,
    pub calls: u32,
    pub retried_entries: u32,
}

/// One entry to publish: an id for the report, the detail-type and the detail JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: String,
    pub detail_type: String,
    pub detail: String,
}

#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    bus: String,
}

impl EventPublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    /// Publishes `(event id, event)` pairs.
    pub async fn publish(&self, events: &[(String, HubEvent)]) -> PublishReport {
        let entries: Vec<RawEntry> = events
            .iter()
            .map(|(id, e)| RawEntry {
                id: id.clone(),
                detail_type: e.detail_type().to_owned(),
                detail: e.detail().to_string(),
            })
            .collect();
        self.publish_raw(&entries).await
    }

    /// Publishes prepared entries in batches of 10; the entries a response marks as failed are
    /// sent again (up to three more rounds, with back-off). A whole-call failure counts as every
    /// entry of the batch failing and is retried the same way.
    pub async fn publish_raw(&self, entries: &[RawEntry]) -> PublishReport {
        let mut report = PublishReport::default();
        for chunk in entries.chunks(PUT_EVENTS_BATCH) {
            let mut pending: Vec<&RawEntry> = chunk.iter().collect();
            let mut last_error: Vec<String> = vec![String::new(); pending.len()];
            for round in 0..=RETRY_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                if round > 0 {
                    report.retried_entries += pending.len() as u32;
                    tokio::time::sleep(Duration::from_millis(100 << round)).await;
                }
                let entries: Vec<PutEventsRequestEntry> = pending
                    .iter()
                    .map(|e| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus)
                            .source(EVENT_SOURCE)
                            .detail_type(&e.detail_type)
                            .detail(&e.detail)
                            .build()
                    })
                    .collect();
                report.calls += 1;
                let sizes: Vec<usize> =
                    pending.iter().map(|e| EVENT_SOURCE.len() + e.detail_type.len() + e.detail.len()).collect();
                crate::capacity::meter().put_events(&sizes);
                match self.client.put_events().set_entries(Some(entries)).send().await {
                    Ok(out) => {
                        let mut still = Vec::new();
                        let mut errors = Vec::new();
                        for (i, result) in out.entries().iter().enumerate() {
                            match (result.error_code(), pending.get(i)) {
                                (Some(code), Some(p)) => {
                                    still.push(*p);
                                    errors.push(code.to_owned());
                                }
                                (None, Some(p)) => report.delivered.push(p.id.clone()),
                                _ => {}
                            }
                        }
                        // Entries the response did not mention count as failed.
                        for p in pending.iter().skip(out.entries().len()) {
                            still.push(*p);
                            errors.push("MissingResult".into());
                        }
                        pending = still;
                        last_error = errors;
                    }
                    Err(e) => {
                        let code = crate::errors::describe("PutEvents", &e);
                        last_error = vec![code; pending.len()];
                    }
                }
            }
            for (p, code) in pending.iter().zip(last_error) {
                report.failed.push((p.id.clone(), code));
            }
        }
        report
    }
}
