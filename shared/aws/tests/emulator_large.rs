//! A golden record far past one DynamoDB item: 5,000 members behind one placeholder e-mail.
mod common;

use common::*;
use mdm_aws::parts;
use mdm_core::store::{BlockIndex, GoldenStore, IndexKey, Transactor};
use mdm_core::store::{Expect, WriteOp};
use mdm_core::{SchemaRegistry, SourceKey};
use serde_json::json;
use std::sync::Arc;

const SEEDED: usize = 4_990;
const LINKED: usize = 10;

fn member(id: usize) -> serde_json::Value {
    let mut r = customer(
        "bulk",
        &format!("bulk-import-member-{id:05}"),
        1,
        json!({"given_name": "Pat", "family_name": "Placeholder", "date_of_birth": "1970-01-01",
               "email": "no-reply@example.com", "phone": format!("+47 9{id:07}")}),
    );
    r["verified"] = json!(["email"]);
    r
}

/// 4,990 members written straight into the table through the adapter (sources in bulk, the
/// golden record with its parts), then 10 records through the real handlers: each links, the
/// golden record's own item stays small, and every event is published, slim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_golden_record_of_five_thousand_members_keeps_linking_and_publishing() {
    let Some(s) = stack("large").await else { return };
    let registry = SchemaRegistry::built_in().expect("schemas");
    let schema = registry.get("customer").expect("customer");
    let mut records: Vec<_> =
        (0..SEEDED).map(|i| mdm_core::record::validate(&registry, &member(i), 0).expect("valid")).collect();
    // The golden record the hub would have built: planned for the first member, then given
    // every member, with the index keys and claims they make.
    let hub = mdm_core::Hub::new(Arc::new(registry.clone()), mdm_core::store::memory::MemoryStore::new());
    hub.ingest(&records[0]).await.expect("ingest");
    let first = hub.process(&records[0].key).await.expect("process");
    let golden_id = first.outcome.golden_id().to_owned();
    let mut golden = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("golden");
    let (index_keys, claims) = mdm_core::blocking::stored_key_lists(schema, records.iter());
    golden.members = records.iter().map(|r| r.key.clone()).collect::<Vec<SourceKey>>().into();
    golden.index_keys = index_keys.into_iter().collect();
    golden.claims = claims.into_iter().collect();
    assert!(parts::needs_parts(&golden), "{} keys", golden.index_keys.len());
    for r in &mut records {
        r.golden_id = Some(golden_id.clone());
    }
    s.store.load_sources(&records).await.expect("bulk load");
    s.store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(golden), expect: Expect::Absent }])
        .await
        .expect("golden");
    let email: Vec<IndexKey> = golden_keys_of(schema, &records[0]);
    s.store.add_to_blocks("customer", &email, &golden_id, usize::MAX).await.expect("index");

    let linked: Vec<_> = (SEEDED..SEEDED + LINKED).map(member).collect();
    assert_eq!(s.post(linked).await.0, 202);
    // Each link reads the 5,000 members back for survivorship (50 BatchGetItem of 100 records,
    // ~0.1 s each on moto) and debug builds are slow: over two minutes on a loaded machine.
    s.drain_within(std::time::Duration::from_secs(900)).await;

    let g = s.store.get_golden("customer", &golden_id).await.expect("get").expect("golden");
    assert_eq!(g.members.len(), SEEDED + LINKED, "every record linked");
    assert_eq!(g.version, 1 + LINKED as u64);
    let items = s.items_with_prefix("GOLD#").await;
    let sk = |i: &Item| i.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let meta = items.iter().find(|i| sk(i) == "META").expect("META item");
    for h in items.iter().filter(|i| sk(i).starts_with("V#")) {
        let data = h.get("data").and_then(|v| v.as_s().ok()).expect("data");
        assert!(data.len() < 16 * 1024, "history {} holds {} bytes of JSON", sk(h), data.len());
    }
    let data = meta.get("data").and_then(|v| v.as_s().ok()).expect("data");
    assert!(data.len() < 64 * 1024, "the golden record's own item holds {} bytes of JSON", data.len());
    assert!(meta.contains_key("parts"));
    let events = s.subscriber_events().await;
    let mut versions: Vec<u64> = events
        .iter()
        .filter(|e| e["detail-type"] == "GoldenRecordUpdated")
        .map(|e| {
            assert_eq!(e["detail"]["slim"], true, "an event of 5,000 members is published slim");
            e["detail"]["version"].as_u64().expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=1 + LINKED as u64).collect::<Vec<_>>(), "one event per link");
    assert_eq!(s.queue_depth("MergeDLQ").await, 0);
}

fn golden_keys_of(schema: &mdm_core::EntitySchema, r: &mdm_core::SourceRecord) -> Vec<IndexKey> {
    mdm_core::blocking::keys_of(schema, r).iter().map(IndexKey::from).collect()
}
