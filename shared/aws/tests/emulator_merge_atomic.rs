//! A merge transaction made to fail leaves no partial item (DynamoDB `TransactWriteItems` on the
//! emulator).
mod common;

use common::*;
use mdm_core::plan::{plan_merge, GoldenState, MergeInput};
use mdm_core::store::{ClaimStore, Expect, GoldenStore, Outbox, SourceStore, StoreError, Transactor, WriteOp};
use mdm_core::{MatchDecision, SourceKey};
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn a_failed_merge_transaction_leaves_no_partial_item() {
    let Some(s) = stack("atomic").await else { return };
    s.post(vec![customer(
        "crm",
        "a-1",
        1,
        json!({"given_name": "Mia", "family_name": "Larsen",
        "date_of_birth": "1991-05-06", "email": "mia.larsen@example.dk"}),
    )])
    .await;
    s.drain().await;
    let golden = s.golden_of(&SourceKey::new("customer", "crm", "a-1")).await;
    // A second record, stored and matched, but not merged yet.
    s.post(vec![customer(
        "webshop",
        "w-1",
        1,
        json!({"given_name": "Mia", "family_name": "Larsen",
        "date_of_birth": "1991-05-06", "email": "mia.larsen@example.dk", "phone": "+45 20 12 34 56"}),
    )])
    .await;
    let key = SourceKey::new("customer", "webshop", "w-1");
    let hub = &s.runner.handlers().merger.hub;
    let (source, result) = hub.match_source(&key).await.expect("match");
    assert_eq!(result.decision, MatchDecision::Link { golden_ids: vec![golden.golden_id.clone()] });
    let members = s.store.get_sources(&golden.members).await.expect("members");
    let schema = hub.registry().get("customer").expect("schema");
    let claims = s.store.get_claims("customer", &[]).await.expect("claims");
    let state = GoldenState { golden: golden.clone(), members };
    let plan = plan_merge(&MergeInput {
        schema,
        source: &source,
        current: None,
        targets: std::slice::from_ref(&state),
        result: &result,
        claims: &claims,
        review_exists: false,
        now_ms: 1,
        keep_history: true,
        emit_events: true,
        merged_holders: &BTreeMap::new(),
        free_holders: &Default::default(),
        reserved: 0,
    });
    assert!(plan.writes.len() >= 5, "golden, history, xref, outbox, index/claims: {}", plan.writes.len());

    // Another writer changes the golden record between read and write.
    let mut concurrent = golden.clone();
    concurrent.revision += 1;
    s.store
        .transact(vec![WriteOp::PutGolden {
            golden: std::sync::Arc::new(concurrent.clone()),
            expect: Expect::Revision(golden.revision),
        }])
        .await
        .expect("concurrent write");
    let key_of = |i: &Item| (i["pk"].as_s().cloned().unwrap_or_default(), i["sk"].as_s().cloned().unwrap_or_default());
    let ids = |i: Option<&Item>| -> Vec<String> {
        i.and_then(|i| i.get("g")).and_then(|g| g.as_ss().ok()).cloned().unwrap_or_default()
    };
    let before: std::collections::BTreeMap<(String, String), Item> =
        s.scan().await.into_iter().map(|i| (key_of(&i), i)).collect();
    match s.store.transact(plan.writes.clone()).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Index entries and new claims are written ahead of the transaction (at half its write
    // units); they can only name the golden record the plan was for, and lookups resolve them
    // like any other. So is the pending-event item of the history version (ids only; the sweep
    // deletes it when it finds no such version).
    let changed: Vec<Item> = s.scan().await.into_iter().filter(|i| before.get(&key_of(i)) != Some(i)).collect();
    for item in &changed {
        if item["kind"].as_s().is_ok_and(|k| k == "pending") {
            let named = item["sk"].as_s().map(String::as_str).unwrap_or("");
            assert!(
                named.contains(&golden.golden_id),
                "a pending item names only this golden record's version: {item:?}"
            );
            continue;
        }
        assert!(item["kind"].as_s().is_ok_and(|k| k == "index"), "only block items change: {item:?}");
        let old = ids(before.get(&key_of(item)));
        assert!(
            ids(Some(item)).iter().all(|g| old.contains(g) || *g == golden.golden_id),
            "a block gains only this golden record's id: {item:?}"
        );
        let claim = item.get("golden_id").and_then(|g| g.as_s().ok());
        assert!(claim.is_none_or(|g| *g == golden.golden_id), "a claim names only this golden record: {item:?}");
    }
    let stored = s.store.get_golden("customer", &golden.golden_id).await.expect("get").expect("exists");
    assert_eq!(stored, concurrent, "the golden record is the concurrent writer's");
    assert_eq!(
        s.store.history("customer", &golden.golden_id).await.expect("history").len(),
        1,
        "no new history version"
    );
    assert_eq!(
        s.store.get_source(&key).await.expect("get").and_then(|r| r.golden_id.clone()),
        None,
        "no cross-reference"
    );
    let held =
        s.store.get_claims("customer", &plan.golden.claims.iter().cloned().collect::<Vec<_>>()).await.expect("claims");
    assert!(held.values().all(|g| g == &golden.golden_id), "no claim moved or taken");
    let pending = s.store.pending_events(100).await.expect("outbox");
    assert!(plan.events.iter().all(|e| !pending.iter().any(|p| p.event_id == e.event_id())), "no outbox item");
    // The handler, re-reading, then succeeds.
    s.drain().await;
    assert_eq!(s.golden_of(&key).await.golden_id, golden.golden_id);
}
