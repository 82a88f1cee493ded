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
    // Sized for the test: published slim only where over the entry limit.
    let events: Vec<mdm_core::store::OutboxEntry> = events
        .into_iter()
        .map(|(event_id, event)| mdm_core::store::OutboxEntry { event_id, created_at_ms: 0, event, slim: false })
        .collect();
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

/// Publishing crashed at its handler boundaries, on the real store and bus: the bus refuses
/// every call while the stream delivers (the stream gives up on them), the sweep publishes them,
/// and then the stream delivers every history version again, as after a publisher whose answer
/// was lost after `PutEvents`. Every effective change reaches the subscriber at least once, a
/// repeat carries the same event id, the versions of each golden record are all there, and
/// nothing is left waiting.
#[tokio::test]
async fn a_crash_at_handler_boundaries_of_publishing_loses_no_event() {
    use mdm_aws::handlers::publisher;
    use mdm_aws::local::esm::LocalRunner;
    let Some(s) = stack("publish-crash").await else { return };
    let mut broken = s.res.clone();
    for f in broken.functions.values_mut().filter(|f| f.binary == "mdm-publish") {
        f.env.insert("MDM_EVENT_BUS_NAME".into(), format!("{}-gone", s.res.prefix));
    }
    let sdk = mdm_aws::config::sdk_config().await;
    let down = LocalRunner::new(&sdk, broken).expect("runner");
    let person = |id: &str, seq: u64, locality: &str| {
        let given = if id == "pc-1" { "Ola" } else { "Kari" };
        customer("crm", id, seq, serde_json::json!({"given_name": given, "family_name": "Dahl", "locality": locality}))
    };
    down.post_records(
        &serde_json::json!({"records": [person("pc-1", 1, "Oslo"), person("pc-2", 1, "Bergen")]}).to_string(),
    )
    .await;
    down.run_until_idle(std::time::Duration::from_secs(120)).await.expect("run");
    down.post_records(&serde_json::json!({"records": [person("pc-1", 2, "Trondheim")]}).to_string()).await;
    down.run_until_idle(std::time::Duration::from_secs(120)).await.expect("run");
    assert_eq!(s.subscriber_events().await, Vec::<serde_json::Value>::new(), "the bus was down");
    let waiting = s.store.unpublished_items(i64::MAX, 100).await.expect("index").len();
    assert!(waiting >= 2, "the changes wait in the index: {waiting}");

    let ctx = &s.runner.handlers().publisher;
    let swept = publisher::handle(ctx, serde_json::json!({"sweep": {"olderThanSeconds": 0}})).await.expect("answer");
    assert_eq!(swept["failed"], 0);
    s.drain().await; // the stream from its start: every history version once more
    let told = s.subscriber_events().await;
    // One change is one (golden id, version, detail-type); a repeat carries the same detail (subscribers
    // drop what they have by version).
    let mut by_id: std::collections::BTreeMap<String, (String, u64)> = std::collections::BTreeMap::new();
    for e in &told {
        let (golden, version) =
            (e["detail"]["goldenId"].as_str().unwrap_or(""), e["detail"]["version"].as_u64().unwrap_or(0));
        let detail = e["detail"].to_string();
        let kind = e["detail-type"].as_str().unwrap_or("");
        if let Some(seen) = by_id.insert(format!("{golden}/{version}/{kind}"), (detail.clone(), version)) {
            assert_eq!(seen.0, detail, "a repeat of one change is the same event");
        }
    }
    assert!(told.len() > by_id.len(), "the stream delivered again what the sweep had published");
    for source in ["pc-1", "pc-2"] {
        let g = s.golden_of(&mdm_core::SourceKey::new("customer", "crm", source)).await;
        let mut versions: Vec<u64> =
            by_id.iter().filter(|(k, _)| k.starts_with(&format!("{}/", g.golden_id))).map(|(_, (_, v))| *v).collect();
        versions.dedup();
        assert_eq!(versions, (1..=g.version).collect::<Vec<_>>(), "every version of {source}'s golden record");
    }
    assert_eq!(s.store.unpublished_items(i64::MAX, 100).await.expect("index"), vec![], "nothing left waiting");
}
