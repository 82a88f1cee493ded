//! Merge plans as pure functions: chunking within the transaction limit, and idempotent follow-ups.
mod common;

use mdm_core::matching::{BlockingStats, MatchDecision, MatchResult};
use mdm_core::plan::{plan_merge, GoldenState, MergeInput, MergeOutcome, MergePlan};
use mdm_core::record::validate;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{
    BlockIndex, ClaimStore, GoldenStore, IndexKey, SourceStore, Transactor, WriteOp, MAX_TRANSACTION_ITEMS,
};
use mdm_core::GoldenStatus;
use mdm_core::{Hub, SourceKey};
use serde_json::json;
use std::collections::BTreeMap;

/// One group of records of one person, fed through the pipeline into one golden record.
struct Group {
    system: &'static str,
    given: &'static str,
    family: &'static str,
    email: &'static str,
    /// Give every record its own phone number (more blocking keys per member).
    phones: Option<u32>,
}

/// Builds a golden record per group (`members` records each), then plans the merge of all of
/// them by a bridging record carrying `bridge_email`. Returns the plan, the golden ids and the
/// bridging record's key.
async fn wide_bridge(
    hub: &Hub<MemoryStore>,
    groups: &[Group],
    members: usize,
    bridge_email: &str,
) -> (MergePlan, Vec<String>, SourceKey) {
    let schema = hub.registry().get("customer").expect("schema").clone();
    let mut goldens = Vec::new();
    for g in groups {
        for i in 0..members {
            let mut attrs = json!({"given_name": g.given, "family_name": g.family, "email": g.email,
                                   "street_number": format!("{i}")});
            if let Some(p) = g.phones {
                attrs["phone"] = json!(format!("07400 9{p}{i:04}"));
            }
            let input = common::customer(g.system, &format!("{}{i}", g.system), 1, attrs);
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
        assert_eq!(golden.members.len(), members, "each group is one golden record");
        let records = hub.store().get_sources(&golden.members).await.expect("members");
        states.push(GoldenState { golden, members: records });
    }
    let input = common::customer(
        "erp",
        "bridge",
        1,
        json!({"given_name": groups[0].given,
        "family_name": groups[0].family, "email": bridge_email}),
    );
    let bridge = validate(hub.registry(), &input, 0).expect("valid");
    hub.ingest(&bridge).await.expect("ingest");
    let result = MatchResult {
        decision: MatchDecision::Link { golden_ids: goldens.clone() },
        candidates: vec![],
        blocking: BlockingStats::default(),
    };
    let mut keys: Vec<IndexKey> = states.iter().flat_map(|s| s.golden.claims.iter().cloned()).collect();
    keys.extend(
        mdm_core::blocking::block_keys(&schema, &bridge)
            .into_iter()
            .filter(|k| k.claim)
            .map(|k| IndexKey::parse(&k.key())),
    );
    let claims: BTreeMap<IndexKey, String> = hub.store().get_claims("customer", &keys).await.expect("claims");
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
        free_holders: &Default::default(),
        reserved: 0,
    });
    (plan, goldens, bridge.key)
}

/// Hundreds of records share one name here, which term-frequency adjustment would rightly call
/// common; these tests are about the size of the golden records, so names are not counted.
fn untallied_hub() -> mdm_core::Hub<mdm_core::store::memory::MemoryStore> {
    let config = mdm_core::HubConfig { count_terms: false, ..mdm_core::HubConfig::default() };
    common::hub().with_config(config)
}

#[tokio::test]
async fn a_bridge_with_hundreds_of_members_is_chunked_and_loses_no_member() {
    let hub = untallied_hub();
    let group = |system, email| Group { system, given: "Wide", family: "Merge", email, phones: None };
    let groups = [group("sysa", "wide.one@example.com"), group("sysb", "wide.two@example.com")];
    let (plan, goldens, _) = wide_bridge(&hub, &groups, 150, "wide.one@example.com").await;
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
    for k in s.members.iter() {
        let r = hub.store().get_source(k).await.expect("get").expect("exists");
        assert_eq!(r.golden_id.as_ref(), Some(&survivor), "{k}");
    }
    let loser = goldens.iter().find(|g| **g != survivor).expect("loser");
    let l = hub.store().get_golden("customer", loser).await.expect("get").expect("exists");
    assert_eq!(l.status, GoldenStatus::MergedInto { survivor: survivor.clone() });
}

#[tokio::test]
async fn lost_follow_up_chunks_are_written_by_the_next_plan() {
    let hub = untallied_hub();
    let groups = [
        Group { system: "sysa", given: "Heal", family: "Chunks", email: "heal.one@example.com", phones: Some(1) },
        Group { system: "sysb", given: "Mend", family: "Parts", email: "mend.two@example.com", phones: Some(2) },
    ];
    let (plan, _, bridge) = wide_bridge(&hub, &groups, 120, "heal.one@example.com").await;
    assert!(!plan.follow_ups.is_empty(), "240 members do not fit one transaction");
    // The main transaction commits; every follow-up chunk is lost.
    hub.store().transact(plan.writes.clone()).await.expect("main");
    let survivor = plan.golden.golden_id.clone();
    // The next change to the golden record (here: the same record again) heals it.
    hub.process(&bridge).await.expect("again");
    let s = hub.store().get_golden("customer", &survivor).await.expect("get").expect("exists");
    assert_eq!(s.members.len(), 241);
    for k in s.members.iter() {
        let r = hub.store().get_source(k).await.expect("get").expect("exists");
        assert_eq!(r.golden_id.as_ref(), Some(&survivor), "{k} re-pointed");
    }
    let all: Vec<IndexKey> = s.index_keys.iter().cloned().collect();
    // The e-mails, the names, and members' phones and names with house number, each written
    // to the index below.
    assert!(all.len() > 2 + 2 + 240, "a key per member at least: {}", all.len());
    let hits = hub.store().lookup("customer", &all, &[1000]).await.expect("lookup");
    for h in &hits {
        assert!(h.golden_ids.contains(&survivor), "index entry {} written", h.key);
    }
    let held = hub.store().get_claims("customer", &s.claims.iter().cloned().collect::<Vec<_>>()).await.expect("claims");
    assert!(held.values().all(|g| g == &survivor), "claims moved to the survivor");
}
