//! Merge plans as pure functions: chunking within the transaction limit, and idempotent follow-ups.
mod common;

use mdm_core::matching::{BlockingStats, MatchDecision, MatchResult};
use mdm_core::plan::{plan_merge, GoldenState, MergeInput, MergeOutcome};
use mdm_core::record::validate;
use mdm_core::store::{BlockIndex, ClaimStore, GoldenStore, SourceStore, Transactor, WriteOp, MAX_TRANSACTION_ITEMS};
use mdm_core::GoldenStatus;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn a_bridge_with_hundreds_of_members_is_chunked_and_loses_no_member() {
    let hub = common::hub();
    let schema = hub.registry().get("customer").expect("schema").clone();
    // Two golden records of 150 members each, built through the real pipeline (same person).
    let mut goldens = Vec::new();
    for (g, email) in [("a", "wide.one@example.com"), ("b", "wide.two@example.com")] {
        for i in 0..150 {
            let input = common::customer(
                &format!("sys{g}"),
                &format!("{g}{i}"),
                1,
                json!({
                "given_name": "Wide", "family_name": "Merge", "email": email, "street_number": format!("{i}")}),
            );
            let r = validate(hub.registry(), &input, 0).expect("valid");
            hub.ingest(&r).await.expect("ingest");
            let report = hub.process(&r.key).await.expect("process");
            if i == 0 {
                goldens.push(report.outcome.golden_id().to_owned());
            }
        }
    }
    let mut states = Vec::new();
    for id in &goldens {
        let golden = hub.store().get_golden("customer", id).await.expect("get").expect("exists");
        assert_eq!(golden.members.len(), 150);
        let members = hub.store().get_sources(&golden.members).await.expect("members");
        states.push(GoldenState { golden, members });
    }
    let bridge = validate(
        hub.registry(),
        &common::customer(
            "erp",
            "bridge",
            1,
            json!({
        "given_name": "Wide", "family_name": "Merge", "email": "wide.one@example.com"}),
        ),
        0,
    )
    .expect("valid");
    hub.ingest(&bridge).await.expect("ingest");
    let result = MatchResult {
        decision: MatchDecision::Link { golden_ids: goldens.clone() },
        candidates: vec![],
        blocking: BlockingStats::default(),
    };
    let mut keys: Vec<String> = states.iter().flat_map(|s| s.golden.claims.iter().cloned()).collect();
    keys.extend(mdm_core::blocking::block_keys(&schema, &bridge).into_iter().filter(|k| k.claim).map(|k| k.key()));
    let claims: BTreeMap<String, String> = hub.store().get_claims("customer", &keys).await.expect("claims");
    let plan = plan_merge(&MergeInput {
        schema: &schema,
        source: &bridge,
        current: None,
        targets: &states,
        result: &result,
        claims: &claims,
        review_exists: false,
        now_ms: 5,
        keep_history: true,
        emit_events: true,
        merged_holders: &BTreeMap::new(),
    });
    assert!(matches!(plan.outcome, MergeOutcome::Merged { .. }));
    assert!(plan.writes.len() <= MAX_TRANSACTION_ITEMS);
    assert!(!plan.follow_ups.is_empty(), "150 members to re-point do not fit one transaction");
    assert!(plan.follow_ups.iter().all(|c| c.len() <= MAX_TRANSACTION_ITEMS && !c.is_empty()));
    let repointed: usize = std::iter::once(&plan.writes)
        .chain(plan.follow_ups.iter())
        .flatten()
        .filter(|op| matches!(op, WriteOp::SetXref { .. }))
        .count();
    assert_eq!(repointed, 151, "the loser's 150 members and the bridging record");
    // Applied (main transaction, then the chunks), twice: the chunks are idempotent.
    hub.store().transact(plan.writes.clone()).await.expect("main");
    for _ in 0..2 {
        for chunk in &plan.follow_ups {
            hub.store().transact(chunk.clone()).await.expect("chunk");
        }
    }
    let survivor = plan.golden.golden_id.clone();
    let s = hub.store().get_golden("customer", &survivor).await.expect("get").expect("exists");
    assert_eq!(s.members.len(), 301, "no member lost");
    for k in &s.members {
        let r = hub.store().get_source(k).await.expect("get").expect("exists");
        assert_eq!(r.golden_id.as_ref(), Some(&survivor), "{k}");
    }
    let loser = goldens.iter().find(|g| **g != survivor).expect("loser");
    let l = hub.store().get_golden("customer", loser).await.expect("get").expect("exists");
    assert_eq!(l.status, GoldenStatus::MergedInto { survivor: survivor.clone() });
}

#[tokio::test]
async fn lost_follow_up_chunks_are_written_by_the_next_plan() {
    let hub = common::hub();
    let mut first_ids = Vec::new();
    for (g, given, family, email) in
        [("a", "Heal", "Chunks", "heal.one@example.com"), ("b", "Mend", "Parts", "mend.two@example.com")]
    {
        for i in 0..120 {
            let phone = format!("07700 9{}{i:04}", if g == "a" { 1 } else { 2 });
            let input = common::customer(
                &format!("sys{g}"),
                &format!("{g}{i}"),
                1,
                json!({
                "given_name": given, "family_name": family, "email": email, "phone": phone}),
            );
            let r = validate(hub.registry(), &input, 0).expect("valid");
            hub.ingest(&r).await.expect("ingest");
            let report = hub.process(&r.key).await.expect("process");
            if i == 0 {
                first_ids.push(report.outcome.golden_id().to_owned());
            }
        }
    }
    let schema = hub.registry().get("customer").expect("schema").clone();
    let mut states = Vec::new();
    for id in &first_ids {
        let golden = hub.store().get_golden("customer", id).await.expect("get").expect("exists");
        let members = hub.store().get_sources(&golden.members).await.expect("members");
        states.push(GoldenState { golden, members });
    }
    let bridge = validate(
        hub.registry(),
        &common::customer(
            "erp",
            "bridge",
            1,
            json!({
        "given_name": "Heal", "family_name": "Chunks", "email": "heal.one@example.com"}),
        ),
        0,
    )
    .expect("valid");
    hub.ingest(&bridge).await.expect("ingest");
    let mut keys: Vec<String> = states.iter().flat_map(|s| s.golden.claims.iter().cloned()).collect();
    keys.extend(mdm_core::blocking::block_keys(&schema, &bridge).into_iter().filter(|k| k.claim).map(|k| k.key()));
    let claims = hub.store().get_claims("customer", &keys).await.expect("claims");
    let result = MatchResult {
        decision: MatchDecision::Link { golden_ids: first_ids.clone() },
        candidates: vec![],
        blocking: BlockingStats::default(),
    };
    let plan = plan_merge(&MergeInput {
        schema: &schema,
        source: &bridge,
        current: None,
        targets: &states,
        result: &result,
        claims: &claims,
        review_exists: false,
        now_ms: 5,
        keep_history: true,
        emit_events: true,
        merged_holders: &BTreeMap::new(),
    });
    assert!(
        !plan.follow_ups.is_empty(),
        "{:?} {} {:?}",
        plan.outcome,
        plan.writes.len(),
        states.iter().map(|s| s.golden.members.len()).collect::<Vec<_>>()
    );
    // The main transaction commits; every follow-up chunk is lost.
    hub.store().transact(plan.writes.clone()).await.expect("main");
    let survivor = plan.golden.golden_id.clone();
    // The next change to the golden record (here: the same record again) heals it.
    hub.process(&bridge.key).await.expect("again");
    let s = hub.store().get_golden("customer", &survivor).await.expect("get").expect("exists");
    assert_eq!(s.members.len(), 241);
    for k in &s.members {
        let r = hub.store().get_source(k).await.expect("get").expect("exists");
        assert_eq!(r.golden_id.as_ref(), Some(&survivor), "{k} re-pointed");
    }
    let all: Vec<String> = s.index_keys.iter().cloned().collect();
    assert_eq!(all.len(), 2 + 240, "both e-mails and every phone (no birth date or postcode keys)");
    let hits = hub.store().lookup("customer", &all, 1000).await.expect("lookup");
    for h in &hits {
        assert!(h.golden_ids.contains(&survivor), "index entry {} written", h.key);
    }
    let held = hub.store().get_claims("customer", &s.claims.iter().cloned().collect::<Vec<_>>()).await.expect("claims");
    assert!(held.values().all(|g| g == &survivor), "claims moved to the survivor");
}
