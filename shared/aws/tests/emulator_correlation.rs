//! One id end to end: a record's correlation id travels as an SQS message attribute from ingest
//! through match and merge, is stored with the history version, reaches the event, and every
//! handler's log lines about the record carry it — so an operator follows one record through the
//! pipeline by it. (Its own test binary: it installs the process's log subscriber.)
mod common;

use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the handlers log, as the functions' JSON log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn one_records_correlation_id_is_followed_through_every_handler() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::INFO)
        .init();
    let Some(s) = stack("correlation").await else { return };
    let mut record = customer("crm", "corr-1", 1, serde_json::json!({"given_name": "Ada", "family_name": "Lovelace"}));
    record["correlationId"] = serde_json::json!("order-7781:trace");
    let mut other = customer("crm", "corr-2", 1, serde_json::json!({"given_name": "Alan", "family_name": "Turing"}));
    other["correlationId"] = serde_json::json!("someone-else");
    let (status, _) = s.post(vec![record, other]).await;
    assert_eq!(status, 202);

    // The match message carries the id as a message attribute (peeked: left on the queue).
    let peek = s
        .sqs
        .receive_message()
        .queue_url(s.queue("MatchQueue"))
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive");
    let attrs: Vec<String> = peek
        .messages()
        .iter()
        .filter_map(|m| {
            m.message_attributes()?.get(mdm_aws::sqs::CORRELATION_ATTRIBUTE)?.string_value().map(str::to_owned)
        })
        .collect();
    assert!(attrs.contains(&"order-7781:trace".to_owned()), "the match message's attribute: {attrs:?}");

    s.drain().await;
    let events = s.subscriber_events().await;
    let ours: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["detail"]["correlationId"] == "order-7781:trace").collect();
    assert!(!ours.is_empty(), "the event carries the correlation id: {events:?}");
    let golden = s.golden_of(&mdm_core::SourceKey::new("customer", "crm", "corr-1")).await;
    let history =
        mdm_core::store::GoldenStore::history(&s.store, "customer", &golden.golden_id).await.expect("history");
    assert!(history.iter().any(|h| h.correlation_id == "order-7781:trace"), "the history version stores it");

    // Every handler's lines about the record, found by the id alone.
    let text = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8 logs");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.contains("order-7781:trace"))
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    for step in ["stored", "matched", "merged", "delivered"] {
        assert!(messages.contains(&step), "a '{step}' line carries the id: {messages:?}");
    }
    // The match and merge handlers' spans carry the attribute's id.
    let spanned = lines.iter().filter(|l| l["span"]["correlation_id"] == "order-7781:trace").count();
    assert!(spanned >= 2, "the message spans of match and merge carry it: {spanned}");
    assert!(!text.contains("Lovelace") && !text.to_lowercase().contains("lovelace"), "no attribute value is logged");
    assert!(
        lines.iter().all(|l| !l.to_string().contains("someone-else")),
        "the other record's id is on none of these lines"
    );
}
