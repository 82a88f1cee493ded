//! A seeded scenario for read-API tests and benchmarks (feature `conformance`): customers linked
//! across systems, two golden records merged by a bridging record, an erased golden record, and
//! products with a SKU and a GTIN each. Generic over the store, so the same scenario runs on the
//! in-process store and on DynamoDB.

use crate::golden::GoldenStatus;
use crate::hub::{Hub, HubError};
use crate::keys::SourceKey;
use crate::plan::MergeOutcome;
use crate::record::validate;
use crate::store::{Expect, Store, StoreError, WriteOp};
use serde_json::{json, Value};

/// What [`seed`] created.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Anna: one golden record from `crm/c-100` and `webshop/w-9`.
    pub anna: String,
    /// Priya's two golden records after a bridging record joined them.
    pub survivor: String,
    pub merged: String,
    /// A golden record marked erased.
    pub erased: String,
    /// Per product: `(sku, gtin, golden id)`.
    pub products: Vec<(String, String, String)>,
}

/// A valid GTIN-13 built from a number.
pub fn gtin13(n: u64) -> String {
    let body = format!("{:012}", 400_000_000_000 + n % 100_000_000_000);
    let sum: u32 =
        body.chars().filter_map(|c| c.to_digit(10)).enumerate().map(|(j, d)| if j % 2 == 1 { d * 3 } else { d }).sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn wire(entity: &str, system: &str, id: &str, attributes: Value) -> Value {
    json!({"entityType": entity, "sourceSystem": system, "sourceId": id, "sourceSeq": 1,
           "sourceUpdatedAt": "2026-01-01T00:00:01Z", "attributes": attributes})
}

/// A product record with a distinct SKU, GTIN and title word.
pub fn product(system: &str, i: u64) -> Value {
    wire(
        "product",
        system,
        &format!("P-{i}"),
        json!({"sku": format!("SKU-{i:06}"), "gtin": gtin13(i), "name": format!("item{i} travel mug 350ml"),
               "brand": format!("brand{}", i % 97), "category": "kitchen", "price": format!("{}.99", 5 + i % 40), "currency": "EUR"}),
    )
}

/// A customer record with distinct names, e-mail and phone.
pub fn customer(system: &str, i: u64) -> Value {
    wire(
        "customer",
        system,
        &format!("C-{i}"),
        json!({"given_name": format!("given{i}"), "family_name": format!("family{i}"),
               "email": format!("person{i}@example.net"), "phone": format!("+4420{:08}", i % 100_000_000),
               "date_of_birth": format!("19{:02}-{:02}-{:02}", 40 + i % 60, 1 + i % 12, 1 + i % 28)}),
    )
}

/// Validates, stores, matches and merges one record; returns its outcome.
pub async fn feed<S: Store>(hub: &Hub<S>, input: &Value) -> Result<MergeOutcome, HubError> {
    let record = validate(hub.registry(), input, hub.now_ms())
        .map_err(|e| HubError::Store(StoreError::Invalid(format!("scenario record: {e}"))))?;
    hub.ingest(&record).await?;
    Ok(hub.process(&record.key).await?.outcome)
}

/// Marks a golden record erased (the erasure handler's job; here only its visible result).
pub async fn mark_erased<S: Store>(hub: &Hub<S>, entity: &str, id: &str) -> Result<(), HubError> {
    let mut g = hub.store().get_golden(entity, id).await?.ok_or_else(|| HubError::SourceMissing(id.to_owned()))?;
    let expect = Expect::Revision(g.revision);
    g.revision += 1;
    g.version += 1;
    g.status = GoldenStatus::Erased;
    g.attributes = Default::default();
    g.match_values = Default::default();
    hub.store().transact(vec![WriteOp::PutGolden { golden: std::sync::Arc::new(g), expect }]).await?;
    Ok(())
}

/// Seeds the scenario with `products` products.
pub async fn seed<S: Store>(hub: &Hub<S>, products: u64) -> Result<Scenario, HubError> {
    let anna = json!({"given_name": "Anna", "family_name": "Kowalski", "date_of_birth": "1984-07-21",
                      "email": "anna.kowalski@example.com", "phone": "07400 900461", "postcode": "LS1 4AP"});
    let anna_id = feed(hub, &wire("customer", "crm", "c-100", anna.clone())).await?.golden_id().to_owned();
    feed(hub, &wire("customer", "webshop", "w-9", anna)).await?;

    // Alike in name and region only: a review, well inside its band (names alone sit at its edge).
    let a = json!({"given_name": "Priya", "family_name": "Raman", "email": "priya.raman@example.com", "date_of_birth": "1990-02-14",
                   "region": "Lothian"});
    let b = json!({"given_name": "Priya", "family_name": "Raman", "phone": "07400 900100", "postcode": "EH1 1YZ",
                   "region": "Lothian"});
    let bridge = json!({"given_name": "Priya", "family_name": "Raman", "email": "priya.raman@example.com",
                        "phone": "07400 900100", "date_of_birth": "1990-02-14", "postcode": "EH1 1YZ"});
    feed(hub, &wire("customer", "crm", "c-1", a)).await?;
    feed(hub, &wire("customer", "webshop", "w-1", b)).await?;
    let (survivor, merged) = match feed(hub, &wire("customer", "erp", "e-1", bridge)).await? {
        MergeOutcome::Merged { golden_id, merged } => (golden_id, merged.first().cloned().unwrap_or_default()),
        other => {
            return Err(HubError::Store(StoreError::Invalid(format!("scenario: the bridge did not merge: {other:?}"))))
        }
    };

    let erin = json!({"given_name": "Erin", "family_name": "Vale", "email": "erin.vale@example.org"});
    let erased = feed(hub, &wire("customer", "crm", "c-900", erin)).await?.golden_id().to_owned();
    mark_erased(hub, "customer", &erased).await?;

    let mut out = Vec::with_capacity(products as usize);
    for i in 0..products {
        let id = feed(hub, &product("erp", i)).await?.golden_id().to_owned();
        out.push((format!("SKU-{i:06}"), gtin13(i), id));
    }
    Ok(Scenario { anna: anna_id, survivor, merged, erased, products: out })
}

/// The source key of the scenario's first Anna record.
pub fn anna_key() -> SourceKey {
    SourceKey::new("customer", "crm", "c-100")
}
