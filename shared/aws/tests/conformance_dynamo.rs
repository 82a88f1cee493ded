//! The store conformance suite on the DynamoDB adapter, against the emulator over HTTP, on a
//! table created from the SAM template.
use mdm_aws::local::{emulator_for_tests, unique_prefix, Resources};
use mdm_aws::DynamoStore;
use mdm_core::store::conformance;

#[tokio::test]
async fn dynamodb_store_passes_the_conformance_suite() {
    if emulator_for_tests().is_none() {
        return;
    }
    let res = Resources::bootstrap(&unique_prefix("conf")).expect("bootstrap");
    let sdk = mdm_aws::config::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.attr("HubTable", "ref").expect("table"));
    let passed = conformance::run_all(&store, "ddb").await;
    assert_eq!(passed.len(), 15);
    // The large golden record, shrunk back to a few members, is one item again: its parts went.
    let pk = mdm_core::keys::golden_item_key("conf_ddb", "g#large");
    let items = aws_sdk_dynamodb::Client::new(&sdk)
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .send()
        .await
        .expect("query");
    let sks: Vec<String> =
        items.items().iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned()).collect();
    assert!(sks.iter().all(|sk| !sk.starts_with(mdm_aws::parts::PART_PREFIX)), "parts left: {sks:?}");
    orphaned_parts_are_deleted_by_the_next_write(&store, &aws_sdk_dynamodb::Client::new(&sdk)).await;
    history_pages_go_past_a_query_page(&store).await;
    a_deleted_review_leaves_the_queue(&store, &aws_sdk_dynamodb::Client::new(&sdk)).await;
    let passed = conformance::run_lookups(&store, "ddb").await;
    assert_eq!(passed.len(), 3);
    let passed = conformance::run_erasure(&store, "ddb").await;
    assert_eq!(passed.len(), 6);
}

/// A part no `META` item names (left by a transaction that failed after writing it ahead, or by
/// a deletion that failed) is deleted by the next write of its golden record.
async fn orphaned_parts_are_deleted_by_the_next_write(store: &DynamoStore, ddb: &aws_sdk_dynamodb::Client) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    use mdm_core::store::{Expect, GoldenStore, Transactor, WriteOp};
    use std::sync::Arc;
    let (entity, id) = ("conf_ddb", "g#orphans");
    let big = |members: usize, revision: u64| mdm_core::GoldenRecord {
        members: (0..members)
            .map(|i| mdm_core::SourceKey::new(entity, "feed", format!("m-{i}")))
            .collect::<Vec<_>>()
            .into(),
        index_keys: Default::default(),
        ..conformance::golden_record(entity, id, revision)
    };
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(big(600, 1)), expect: Expect::Absent }])
        .await
        .expect("create");
    let pk = mdm_core::keys::golden_item_key(entity, id);
    ddb.put_item()
        .table_name(store.table())
        .item("pk", S(pk.clone()))
        .item("sk", S(format!("{}00000000deadbeef.1", mdm_aws::parts::PART_PREFIX)))
        .item("kind", S("golden_part".into()))
        .item("data", S("{}".into()))
        .send()
        .await
        .expect("an orphan");
    assert_eq!(store.get_golden(entity, id).await.expect("get").expect("exists"), big(600, 1), "the orphan is skipped");
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(big(601, 2)), expect: Expect::Revision(1) }])
        .await
        .expect("grow");
    let out = ddb
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", S(pk))
        .send()
        .await
        .expect("query");
    let sks: Vec<String> =
        out.items().iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned()).collect();
    assert!(!sks.iter().any(|sk| sk.contains("deadbeef")), "the orphan is gone: {sks:?}");
    assert_eq!(
        sks.iter().filter(|sk| sk.starts_with(mdm_aws::parts::PART_PREFIX)).count(),
        1,
        "one part of members: {sks:?}"
    );
}

/// Versions of a large record fill a `Query` page (1 MB) before a history page's limit: the page
/// goes on reading, and every version comes back.
async fn history_pages_go_past_a_query_page(store: &DynamoStore) {
    use mdm_core::golden::{Cause, HistoryEntry, HISTORY_MEMBERS};
    use mdm_core::store::{LookupStore, Transactor, WriteOp};
    use sha2::Digest;
    let (entity, id) = ("conf_ddb", "g#history");
    let mut g = mdm_core::GoldenRecord {
        // Ids that do not deflate: each version holds about 70 KB.
        members: (0..HISTORY_MEMBERS)
            .map(|i| {
                let h = sha2::Sha256::digest(i.to_string().as_bytes());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                mdm_core::SourceKey::new(entity, "feed", hex)
            })
            .collect::<Vec<_>>()
            .into(),
        index_keys: Default::default(),
        ..conformance::golden_record(entity, id, 1)
    };
    for version in 1..=40 {
        g.version = version;
        let h = HistoryEntry::of(&g, Cause::Ingest, "c", 1);
        store.transact(vec![WriteOp::PutHistory(Box::new(h))]).await.expect("history");
    }
    let page = store.history_page(entity, id, 0, 100).await.expect("page");
    assert_eq!(page.iter().map(|h| h.version).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>());
}

/// A review task deleted (by an erasure) takes its review-queue entry with it.
async fn a_deleted_review_leaves_the_queue(store: &DynamoStore, ddb: &aws_sdk_dynamodb::Client) {
    use mdm_core::store::{Transactor, WriteOp};
    // The queue the conformance case `review_queue_pages_oldest_first` left: q#1, q#2, q#3 open.
    let entity = "conf_ddb_queue";
    let entries = || async {
        let out = ddb
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(mdm_core::keys::review_queue_key(entity, true)),
            )
            .send()
            .await
            .expect("query");
        out.items().iter().filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned()).collect::<Vec<_>>()
    };
    assert_eq!(entries().await.len(), 3);
    let delete = WriteOp::DeleteReview { entity: entity.into(), task_id: "q#1".into() };
    store.transact(vec![delete]).await.expect("delete");
    let left = entries().await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|sk| !sk.ends_with("#q#1")));
}
