//! The local event-source mapping on the emulator: a message whose handler keeps failing (the
//! store is unreachable) is reported as a partial batch failure, reappears after the visibility
//! timeout, and on the queue's last receive (its maxReceiveCount) the handler dead-letters it
//! with its reason — while the other messages of its batches succeed.
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
    let last = mdm_aws::handlers::MATCH_MAX_RECEIVES as usize;
    assert_eq!(stats.failures_reported, last - 1, "a batch item failure on every receive but the last: {stats:?}");
    assert_eq!(s.queue_depth("MatchQueue").await, 0, "gone from the queue");
    let dlq = s.take_all("MatchDLQ").await;
    assert_eq!(dlq.len(), 1, "dead-lettered on the last receive");
    assert!(dlq[0].0.contains("ok-1"), "the original message");
    assert_eq!(dlq[0].1.get("mdm-error-code").map(String::as_str), Some("retries_exhausted"), "{:?}", dlq[0].1);
    assert!(dlq[0].1.get("mdm-error-message").is_some_and(|m| !m.is_empty()), "with its reason");
    // The healthy stack processes new work normally.
    s.post(vec![customer("crm", "ok-2", 1, json!({"given_name": "Also", "family_name": "Fine"}))]).await;
    s.drain().await;
    assert_eq!(s.golden_of(&SourceKey::new("customer", "crm", "ok-2")).await.members.len(), 1);
}
