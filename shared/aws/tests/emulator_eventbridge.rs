//! EventBridge publishing on the emulator: batches of 10, only the failed entries retried, nothing
//! delivered twice.
mod common;

use common::*;
use mdm_aws::bus::{EventPublisher, RawEntry, RETRY_ROUNDS};

#[tokio::test]
async fn failed_entries_of_a_partial_failure_are_retried_alone() {
    let Some(s) = stack("bus").await else { return };
    let sdk = mdm_aws::config::sdk_config().await;
    let bus = EventPublisher::new(aws_sdk_eventbridge::Client::new(&sdk), s.res.attr("HubBus", "ref").expect("bus"));
    let entries: Vec<RawEntry> = (0..12)
        .map(|i| RawEntry {
            id: format!("e{i}"),
            detail_type: "GoldenRecordUpdated".into(),
            // Entries 3 and 7 are malformed: EventBridge rejects them alone.
            detail: if i == 3 || i == 7 { "{not json".into() } else { format!("{{\"n\": {i}}}") },
        })
        .collect();
    let report = bus.publish_raw(&entries).await;
    assert_eq!(report.delivered.len(), 10);
    let failed: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(failed, vec!["e3", "e7"]);
    assert!(report.failed.iter().all(|(_, code)| code == "MalformedDetail"), "{:?}", report.failed);
    assert_eq!(report.calls, 2 + RETRY_ROUNDS, "two batches (10 + 2), then retry rounds for the two failures only");
    assert_eq!(report.retried_entries, 2 * RETRY_ROUNDS);
    let received = s.subscriber_events().await;
    let mut ns: Vec<i64> = received.iter().filter_map(|e| e["detail"]["n"].as_i64()).collect();
    ns.sort();
    assert_eq!(ns, vec![0, 1, 2, 4, 5, 6, 8, 9, 10, 11], "each good entry delivered once");
}

/// A golden record too large for one EventBridge entry (8,000 members) is published in its slim
/// form, which its JSON Schema accepts; a batch of large events is split by size, and each
/// arrives once.
#[tokio::test]
async fn large_events_are_batched_by_size_and_slim_when_they_must_be() {
    use mdm_core::events::{Envelope, GoldenChanged, GoldenView, HubEvent};
    let Some(s) = stack("bus-size").await else { return };
    let sdk = mdm_aws::config::sdk_config().await;
    let bus = EventPublisher::new(aws_sdk_eventbridge::Client::new(&sdk), s.res.attr("HubBus", "ref").expect("bus"));
    let golden = |id: &str, members: usize| -> mdm_core::GoldenRecord {
        let members: Vec<serde_json::Value> = (0..members)
            .map(|i| serde_json::json!({"entity": "customer", "system": "partner", "sourceId": format!("p-{i:06}")}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "entity": "customer", "goldenId": id, "version": 3, "revision": 3, "status": {"state": "active"},
            "attributes": {}, "members": members, "matchValues": {}, "indexKeys": [], "claims": [],
            "createdAtMs": 1, "updatedAtMs": 2
        }))
        .expect("a golden record")
    };
    let event = |g: &mdm_core::GoldenRecord| {
        let envelope = Envelope::new(g, vec![], mdm_core::golden::Cause::Ingest, "c-1", 2);
        HubEvent::GoldenRecordUpdated(GoldenChanged { envelope, golden: GoldenView::of(g) })
    };
    let huge = golden("g-huge", 8_000);
    let mut events = vec![("e-huge".to_owned(), event(&huge))];
    for i in 0..4 {
        events.push((format!("e-big-{i}"), event(&golden(&format!("g-big-{i}"), 2_000))));
    }
    let report = bus.publish(&events).await;
    assert_eq!(report.delivered.len(), 5, "{:?}", report.failed);
    // Four events of about 86 KB and a slim one: two calls (ten entries a call would be one, of
    // about 350 KB, which EventBridge refuses whole).
    assert_eq!(report.calls, 2, "split by size");
    let received = s.subscriber_events().await;
    assert_eq!(received.len(), 5);
    for e in &received {
        assert_valid_event(e);
    }
    let slim = received.iter().find(|e| e["detail"]["goldenId"] == "g-huge").expect("the huge event");
    assert_eq!(slim["detail"]["slim"], true);
    assert_eq!(slim["detail"]["goldenRecordPath"], "/v1/golden/customer/g-huge");
    assert!(slim["detail"].get("golden").is_none());
    let full = received.iter().find(|e| e["detail"]["goldenId"] == "g-big-0").expect("a big event");
    assert_eq!(full["detail"]["golden"]["sources"].as_array().map(Vec::len), Some(2_000), "sent whole");
}

/// Events the stream never delivered (its records lost: retries exhausted, or an outage longer
/// than its retention) wait in the `unpublished` index; the sweep publishes them and empties it,
/// and delivered events leave the index whichever way they went.
#[tokio::test]
async fn the_sweep_publishes_what_the_stream_did_not() {
    use mdm_aws::handlers::publisher;
    let Some(s) = stack("sweep").await else { return };
    s.post(vec![customer("crm", "sw-1", 1, serde_json::json!({"given_name": "Ada", "family_name": "Lind"}))]).await;
    s.drain().await;
    assert_eq!(s.store.unpublished_items(i64::MAX, 100).await.expect("index"), vec![], "delivered by the stream");
    s.subscriber_events().await;
    // A change made while nothing reads the stream (the runner is not drained).
    let hub = &s.runner.handlers().merger.hub;
    let r = mdm_core::record::validate(
        hub.registry(),
        &customer("crm", "sw-2", 1, serde_json::json!({"given_name": "Bea", "family_name": "Moor"})),
        hub.now_ms(),
    )
    .expect("valid");
    hub.ingest(&r).await.expect("ingest");
    let created = hub.process(&r.key).await.expect("merge").outcome.golden_id().to_owned();
    assert_eq!(s.store.unpublished_items(i64::MAX, 100).await.expect("index").len(), 1, "waits in the index");
    let ctx = &s.runner.handlers().publisher;
    let young = publisher::handle(ctx, serde_json::json!({"sweep": {"olderThanSeconds": 3600}})).await.expect("answer");
    assert_eq!(young["items"], 0, "younger than the sweep's age: left to the stream");
    let swept = publisher::handle(ctx, serde_json::json!({"sweep": {"olderThanSeconds": 0}})).await.expect("answer");
    assert_eq!(
        (swept["items"].as_u64(), swept["delivered"].as_u64(), swept["failed"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    let told = s.subscriber_events().await;
    assert!(
        told.iter().any(|e| e["detail-type"] == "GoldenRecordCreated" && e["detail"]["goldenId"] == created.as_str()),
        "{told:?}"
    );
    assert_eq!(s.store.unpublished_items(i64::MAX, 100).await.expect("index"), vec![], "the index is empty");
    let again = publisher::handle(ctx, serde_json::json!({"sweep": {"olderThanSeconds": 0}})).await.expect("answer");
    assert_eq!(again["delivered"], 0, "nothing twice");
}
