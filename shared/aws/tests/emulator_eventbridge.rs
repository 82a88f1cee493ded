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
