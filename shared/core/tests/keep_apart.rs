//! Keep-apart constraints: two golden records a data steward separated are never linked or
//! merged automatically again.
mod common;

use common::*;
use mdm_core::plan::MergeOutcome;
use mdm_core::store::{GoldenStore, SourceStore};
use mdm_core::{MatchDecision, SourceKey};
use serde_json::json;

#[tokio::test]
async fn golden_records_kept_apart_are_never_joined_again() {
    let hub = hub();
    let g1 = feed(&hub, anna_crm()).await.1.expect("merged").outcome.golden_id().to_owned();
    // The webshop record would join Anna; here it was kept as a golden record of its own.
    let web = mdm_core::record::validate(hub.registry(), &anna_web(), 0).expect("valid");
    hub.ingest(&web).await.expect("ingest");
    let (_, mut decided) = hub.match_source(&web.key).await.expect("match");
    assert_eq!(decided.decision, MatchDecision::Link { golden_ids: vec![g1.clone()] });
    decided.decision = MatchDecision::New;
    let g2 = hub.merge_decision(&web.key, decided, None, true).await.expect("merge").outcome.golden_id().to_owned();
    assert_ne!(g1, g2);
    // A third record resembling both, decided before the constraint exists.
    let dup = mdm_core::record::validate(hub.registry(), &anna_crm_dup(), 0).expect("valid");
    hub.ingest(&dup).await.expect("ingest");
    let (_, before) = hub.match_source(&dup.key).await.expect("match");

    hub.keep_apart("customer", &g1, &g2).await.expect("keep apart");
    hub.keep_apart("customer", &g2, &g1).await.expect("idempotent");

    // A new version of the webshop record resembles Anna's record as much as before: it stays.
    let mut v2 = anna_web();
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("Leeds");
    let report = feed(&hub, v2).await.1.expect("merged");
    assert_eq!(report.outcome.golden_id(), g2, "{:?}", report.outcome);
    let (_, again) = hub.match_source(&web.key).await.expect("match");
    let held = again.candidates.iter().find(|c| c.golden_id == g1).expect("Anna is still a candidate");
    assert_eq!(held.blocked_by.as_deref(), Some(mdm_core::matching::KEEP_APART));
    assert_eq!(again.decision, MatchDecision::New, "its own golden record is kept apart: not even a review");
    assert!(hub.store().reviews().is_empty(), "no review proposes the pair again");

    // The third record's old decision is made again: it joins one side, and a review names the other.
    let joined = hub.merge_decision(&dup.key, before, Some(dup.seq), false).await.expect("merge");
    let joined_id = joined.outcome.golden_id().to_owned();
    assert!(!matches!(joined.outcome, MergeOutcome::Merged { .. }), "{:?}", joined.outcome);
    let other = if joined_id == g1 { g2.clone() } else { g1.clone() };
    assert!(joined_id == g1 || joined_id == g2, "joined {joined_id}");
    let tasks = hub.store().reviews();
    assert!(
        tasks.iter().any(|t| t.golden_id == joined_id && t.candidate_golden_ids.contains(&other)),
        "a review names the other side: {tasks:?}"
    );
    for id in [&g1, &g2] {
        let g = hub.store().get_golden("customer", id).await.expect("get").expect("exists");
        assert!(g.is_active(), "{id} was merged");
    }
    let web_golden = hub.store().get_source(&SourceKey::new("customer", "webshop", "w-9")).await.expect("get");
    assert_eq!(web_golden.and_then(|s| s.golden_id.clone()), Some(g2));
}

/// Erasing one side of a keep-apart constraint takes the constraint off the other side too.
#[tokio::test]
async fn erasing_one_side_removes_the_constraint_from_the_other() {
    use mdm_core::erasure::{self, ErasureRequest, ReceiptStatus};
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let config = mdm_core::HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..Default::default() };
    let hub = mdm_core::Hub::new(registry, mdm_core::store::memory::MemoryStore::new()).with_config(config);
    let g1 = feed(&hub, anna_crm()).await.1.expect("merged").outcome.golden_id().to_owned();
    let g2 = feed(&hub, bob()).await.1.expect("merged").outcome.golden_id().to_owned();
    hub.keep_apart("customer", &g1, &g2).await.expect("keep apart");
    let before = hub.store().get_golden("customer", &g1).await.expect("get").expect("g1");
    assert_eq!(before.kept_apart, vec![g2.clone()]);
    let body = json!({"entityType": "customer", "goldenId": g2});
    let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    assert_eq!(erasure::process(&hub, &r.request_id).await.expect("erase").status, ReceiptStatus::Completed);
    let after = hub.store().get_golden("customer", &g1).await.expect("get").expect("g1");
    assert!(after.kept_apart.is_empty(), "{:?}", after.kept_apart);
    assert_eq!(after.version, before.version, "not an effective change");
}
