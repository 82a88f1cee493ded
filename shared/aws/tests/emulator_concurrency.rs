//! Concurrent deliveries through the real merge handler on the emulator.
mod common;

use common::*;
use mdm_core::store::GoldenStore;
use mdm_core::SourceKey;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_deliveries_of_one_new_person_make_one_golden_record() {
    let Some(s) = stack("conc-new").await else { return };
    let records = (0..16)
        .map(|i| {
            customer(
                &format!("shop{}", i % 3),
                &format!("t-{i}"),
                1,
                json!({
            "given_name": if i % 2 == 0 { "Tomasz" } else { "Tomas" }, "family_name": "Nowak",
            "date_of_birth": "1977-09-30", "email": "tomasz.nowak@example.net"}),
            )
        })
        .collect();
    let (status, _) = s.post(records).await;
    assert_eq!(status, 202);
    assert_eq!(s.deliver_concurrently("MatchQueue", "match").await, 16);
    // All 16 decisions were made before any golden record existed: each says NEW.
    assert_eq!(s.deliver_concurrently("MergeQueue", "merge").await, 16);
    s.drain().await;
    let golden = s.items_with_prefix("GOLD#").await;
    let active: Vec<_> = golden
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("META"))
        .filter(|i| i.get("status").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("active"))
        .collect();
    assert_eq!(active.len(), 1, "exactly one golden record");
    let g = s.golden_of(&SourceKey::new("customer", "shop0", "t-0")).await;
    assert_eq!(g.members.len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_updates_of_one_golden_record_lose_nothing() {
    let Some(s) = stack("conc-upd").await else { return };
    s.post(vec![customer(
        "crm",
        "base",
        1,
        json!({"given_name": "Ingrid", "family_name": "Solberg",
        "date_of_birth": "1969-04-02", "email": "ingrid.solberg@example.no"}),
    )])
    .await;
    s.drain().await;
    let base = s.golden_of(&SourceKey::new("customer", "crm", "base")).await;
    let records = (0..16)
        .map(|i| {
            customer(
                "webshop",
                &format!("u-{i}"),
                1,
                json!({"given_name": "Ingrid", "family_name": "Solberg",
            "date_of_birth": "1969-04-02", "email": "ingrid.solberg@example.no", "locality": format!("Town{i}")}),
            )
        })
        .collect();
    s.post(records).await;
    s.deliver_concurrently("MatchQueue", "match").await;
    s.deliver_concurrently("MergeQueue", "merge").await;
    s.drain().await;
    let g = s.golden_of(&SourceKey::new("customer", "crm", "base")).await;
    assert_eq!(g.golden_id, base.golden_id);
    assert_eq!(g.members.len(), 17, "no lost update");
    assert_eq!(g.version, 17, "version = effective changes");
    let history = s.store.history("customer", &g.golden_id).await.expect("history");
    assert_eq!(history.len(), 17, "one history version per effective change");
    let events = s.subscriber_events().await;
    assert_eq!(events.len(), 17, "one event per effective change");
    let mut versions: Vec<u64> = events.iter().filter_map(|e| e["detail"]["version"].as_u64()).collect();
    versions.sort();
    assert_eq!(versions, (1..=17).collect::<Vec<_>>());
}

/// Sixteen records of one new person with one verified e-mail, each matched and merged by its
/// own instance of the function (its own overlay of recent writes): one golden record is
/// created, with one `GoldenRecordCreated` event, and never a short-lived second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_separate_instances_create_one_golden_record_and_one_created_event() {
    let Some(s) = stack("conc-inst").await else { return };
    let records: Vec<_> = (0..16)
        .map(|i| {
            let mut r = customer(
                &format!("shop{}", i % 4),
                &format!("p-{i}"),
                1,
                json!({"given_name": if i % 3 == 0 { "Marta" } else { "Martha" }, "family_name": "Kowalczyk",
                       "date_of_birth": "1984-02-11", "email": "marta.k@example.pl"}),
            );
            r["verified"] = json!(["email"]);
            r
        })
        .collect();
    assert_eq!(s.post(records).await.0, 202);
    assert_eq!(s.deliver_as_instances("MatchQueue", "match").await, 16);
    assert_eq!(s.deliver_as_instances("MergeQueue", "merge").await, 16);
    s.drain().await;
    let metas: Vec<_> = s
        .items_with_prefix("GOLD#")
        .await
        .into_iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("META"))
        .collect();
    assert_eq!(metas.len(), 1, "one golden record was ever created (merged ones would still be there)");
    let g = s.golden_of(&SourceKey::new("customer", "shop0", "p-0")).await;
    assert_eq!(g.members.len(), 16);
    let events = s.subscriber_events().await;
    let created = events.iter().filter(|e| e["detail-type"] == "GoldenRecordCreated").count();
    assert_eq!(created, 1, "one Created event");
    assert!(events.iter().all(|e| e["detail-type"] != "GoldenRecordsMerged"), "nothing to merge later");
}
