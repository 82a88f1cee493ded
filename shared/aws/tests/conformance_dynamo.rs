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
    assert_eq!(passed.len(), 12);
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
    let passed = conformance::run_lookups(&store, "ddb").await;
    assert_eq!(passed.len(), 3);
    let passed = conformance::run_erasure(&store, "ddb").await;
    assert_eq!(passed.len(), 5);
}
