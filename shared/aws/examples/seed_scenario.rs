//! Seeds the read-API scenario (`mdm_core::scenario`) into the hub table of a local stack and
//! prints what it created as JSON, for `bench/api-e2e.sh`.
//!
//!     cargo run -p mdm-aws --features local --example seed_scenario -- RESOURCES.json PRODUCTS
use mdm_aws::local::Resources;
use mdm_aws::DynamoStore;
use mdm_core::{scenario, Hub, SchemaRegistry};
use serde_json::json;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(resources), Some(products)) = (args.next(), args.next()) else {
        return Err("usage: seed_scenario RESOURCES.json PRODUCTS".into());
    };
    let res = Resources::from_json(&std::fs::read_to_string(&resources)?)?;
    let table = res.attr("HubTable", "ref").ok_or("no HubTable in the resources")?;
    let sdk = mdm_aws::config::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let hub = Hub::new(Arc::new(SchemaRegistry::built_in()?), store);
    let s = scenario::seed(&hub, products.parse()?).await?;
    let out =
        json!({"anna": s.anna, "survivor": s.survivor, "merged": s.merged, "erased": s.erased, "products": s.products});
    println!("{out}");
    Ok(())
}
