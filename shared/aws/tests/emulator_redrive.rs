//! The local event-source mapping on the emulator: a message whose handler keeps failing (the
//! store is unreachable) is reported as a partial batch failure, reappears after the visibility
//! timeout, and after the queue's maxReceiveCount SQS moves it to the DLQ — while the other
//! messages of its batches succeed.
mod common;

use common::*;
use mdm_aws::local::esm::LocalRunner;
use mdm_core::SourceKey;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_message_that_keeps_failing_reaches_the_dlq_after_max_receives() {
    let Some(s) = stack("redrive").await else { return };
    // Store a record, so its match message succeeds on the healthy stack.
    s.post(vec![customer("crm", "ok-1", 1, json!({"given_name": "Ok", "family_name": "Fine"}))]).await;
    // A second stack view whose table does not exist: its match handler fails with a retryable error.
    let mut broken = s.res.clone();
    for f in broken.functions.values_mut() {
        f.env.insert("MDM_TABLE_NAME".into(), "no-such-table".into());
    }
    let sdk = mdm_aws::config::sdk_config().await;
    let mut runner = LocalRunner::new(&sdk, broken).expect("runner");
    runner.visibility_timeout = 1;
    let stats = runner.run_until_idle(Duration::from_secs(90)).await.expect("run");
    assert!(stats.failures_reported >= 5, "reported as a batch item failure on every receive: {stats:?}");
    assert_eq!(s.queue_depth("MatchQueue").await, 0, "gone from the queue");
    let dlq = s.take_all("MatchDLQ").await;
    assert_eq!(dlq.len(), 1, "moved to the DLQ by the redrive policy (maxReceiveCount 5)");
    assert!(dlq[0].0.contains("ok-1"), "the original message");
    // The healthy stack processes new work normally.
    s.post(vec![customer("crm", "ok-2", 1, json!({"given_name": "Also", "family_name": "Fine"}))]).await;
    s.drain().await;
    assert_eq!(s.golden_of(&SourceKey::new("customer", "crm", "ok-2")).await.members.len(), 1);
}
