//! EventBridge: publishing hub events in batches of at most 10 entries and 256 KB, retrying the
//! entries of a partial failure; an event too large for one entry goes out in its slim form.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use mdm_core::events::{HubEvent, EVENT_SOURCE};
use mdm_core::store::OutboxEntry;
use std::time::Duration;

/// Entries per `PutEvents` call (the API's limit).
pub const PUT_EVENTS_BATCH: usize = 10;
/// Bytes per `PutEvents` call, all entries together, and so per entry (the API's limit: an
/// entry's size is its source, detail-type and detail in UTF-8).
pub const PUT_EVENTS_BYTES: usize = 256 * 1024;
/// Rounds of retries for failed entries.
pub const RETRY_ROUNDS: u32 = 3;

/// What a publish did (delivered and failed event ids, calls, retried entries).
pub use mdm_core::publish::Delivery as PublishReport;

impl mdm_core::publish::EventSink for EventPublisher {
    async fn send(&self, events: &[OutboxEntry]) -> PublishReport {
        self.publish(events).await
    }
}

/// One entry to publish: an id for the report, the detail-type and the detail JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: String,
    pub detail_type: String,
    pub detail: String,
}

impl RawEntry {
    /// The entry's size as EventBridge counts it: source, detail-type and detail in UTF-8.
    pub fn size(&self) -> usize {
        EVENT_SOURCE.len() + self.detail_type.len() + self.detail.len()
    }
}

/// The entry of an event: its full detail, or — when that would exceed [`PUT_EVENTS_BYTES`] — its
/// slim form ([`HubEvent::slim_detail`]: ids, version, changed attributes and the path to read
/// the record).
pub fn entry(id: &str, event: &HubEvent, slim: bool) -> RawEntry {
    let detail_type = event.detail_type().to_owned();
    let full = RawEntry { id: id.to_owned(), detail_type: detail_type.clone(), detail: event.detail().to_string() };
    if full.size() <= PUT_EVENTS_BYTES && !slim {
        return full;
    }
    match event.slim_detail() {
        Some(slim) => RawEntry { id: id.to_owned(), detail_type, detail: slim.to_string() },
        None => full,
    }
}

/// Entries in order, grouped into calls of at most [`PUT_EVENTS_BATCH`] entries and
/// [`PUT_EVENTS_BYTES`] bytes. An entry larger than the limit goes alone (EventBridge refuses it,
/// and the report says so).
pub fn batches(entries: &[RawEntry]) -> Vec<Vec<&RawEntry>> {
    let mut out: Vec<Vec<&RawEntry>> = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let size = e.size();
        match out.last_mut() {
            Some(b) if b.len() < PUT_EVENTS_BATCH && bytes + size <= PUT_EVENTS_BYTES => {
                b.push(e);
                bytes += size;
            }
            _ => {
                out.push(vec![e]);
                bytes = size;
            }
        }
    }
    out
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

    /// Publishes outbox entries (slim when they say so or are too large).
    pub async fn publish(&self, events: &[OutboxEntry]) -> PublishReport {
        let entries: Vec<RawEntry> = events.iter().map(|e| entry(&e.event_id, &e.event, e.slim)).collect();
        self.publish_raw(&entries).await
    }

    /// Publishes prepared entries in batches of at most 10 and 256 KB ([`batches`]); the entries
    /// a response marks as failed are sent again (up to three more rounds, with back-off). A
    /// whole-call failure counts as every entry of the batch failing and is retried the same way.
    pub async fn publish_raw(&self, entries: &[RawEntry]) -> PublishReport {
        let mut report = PublishReport::default();
        for chunk in batches(entries) {
            let mut pending: Vec<&RawEntry> = chunk;
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
                let sizes: Vec<usize> = pending.iter().map(|e| e.size()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, bytes: usize) -> RawEntry {
        RawEntry { id: id.into(), detail_type: "T".into(), detail: "x".repeat(bytes) }
    }

    /// Calls hold at most 10 entries and 256 KB; the order is kept; a lone oversized entry is a
    /// call of its own.
    #[test]
    fn batches_respect_the_count_and_the_size() {
        let small: Vec<RawEntry> = (0..25).map(|i| raw(&i.to_string(), 100)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let big: Vec<RawEntry> = (0..7).map(|i| raw(&i.to_string(), 100 * 1024)).collect();
        let calls = batches(&big);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 1]);
        for c in &calls {
            assert!(c.iter().map(|e| e.size()).sum::<usize>() <= PUT_EVENTS_BYTES);
        }
        let order: Vec<&str> = calls.iter().flatten().map(|e| e.id.as_str()).collect();
        assert_eq!(order, ["0", "1", "2", "3", "4", "5", "6"]);
        let huge = [raw("a", 10), raw("b", PUT_EVENTS_BYTES + 1), raw("c", 10)];
        assert_eq!(batches(&huge).iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1, 1]);
    }
}
