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
    assert_eq!(passed.len(), 11);
    let passed = conformance::run_lookups(&store, "ddb").await;
    assert_eq!(passed.len(), 3);
    let passed = conformance::run_erasure(&store, "ddb").await;
    assert_eq!(passed.len(), 5);
}
