//! Helpers shared by the domain-core integration tests.
#![allow(dead_code)]

use mdm_core::hub::{Hub, MergeReport};
use mdm_core::record::validate;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::SourceWrite;
use mdm_core::{SchemaRegistry, SourceKey};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn hub() -> Hub<MemoryStore> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("built-in schemas"));
    Hub::new(registry, MemoryStore::new())
}

pub fn customer(system: &str, id: &str, seq: u64, attributes: Value) -> Value {
    json!({"entityType": "customer", "sourceSystem": system, "sourceId": id, "sourceSeq": seq,
           "sourceUpdatedAt": format!("2026-01-01T00:00:{:02}Z", seq % 60), "attributes": attributes})
}

/// Validates, stores and (unless stale) matches and merges one record.
pub async fn feed(hub: &Hub<MemoryStore>, input: Value) -> (SourceWrite, Option<MergeReport>) {
    let record = validate(hub.registry(), &input, hub.now_ms()).expect("valid record");
    let write = hub.ingest(&record).await.expect("ingest");
    if write != SourceWrite::Written {
        return (write, None);
    }
    let report = hub.process(&record.key).await.expect("process");
    (write, Some(report))
}

pub fn key(system: &str, id: &str) -> SourceKey {
    SourceKey::new("customer", system, id)
}

pub fn anna_crm() -> Value {
    customer(
        "crm",
        "c-100",
        1,
        json!({
        "given_name": "Anna", "family_name": "Kowalski", "date_of_birth": "1984-07-21",
        "email": "anna.kowalski@example.com", "phone": "07400 900461", "street_number": "12",
        "address_line1": "Harbour Street", "locality": "Leeds", "postcode": "LS1 4AP", "country": "United Kingdom"}),
    )
}

pub fn anna_web() -> Value {
    customer(
        "webshop",
        "w-9",
        1,
        json!({
        "given_name": "Ana", "family_name": "Kowalsky", "date_of_birth": "21/07/1984",
        "email": "Anna.Kowalski@Example.com", "phone": "+44 7400 900461", "street_number": "12",
        "address_line1": "Harbour St", "locality": "LEEDS", "postcode": "ls14ap", "country": "GB"}),
    )
}

pub fn anna_crm_dup() -> Value {
    customer(
        "crm",
        "c-101",
        1,
        json!({
        "given_name": "Anna", "family_name": "Kowalski", "date_of_birth": "1984-07-12",
        "email": "akowalski@mail.example", "phone": "07400900461", "locality": "Leeds", "postcode": "LS1 4AP"}),
    )
}

pub fn bob() -> Value {
    customer(
        "crm",
        "c-200",
        1,
        json!({
        "given_name": "Bob", "family_name": "Okafor", "date_of_birth": "1962-11-03",
        "email": "bob.okafor@example.org", "phone": "07400 900999", "postcode": "M1 1AE", "locality": "Manchester"}),
    )
}

/// Same name and birth date as Anna, but every contact detail differs: a steward should look.
pub fn anna_maybe() -> Value {
    customer(
        "erp",
        "e-7",
        1,
        json!({
        "given_name": "Anna", "family_name": "Kowalski", "date_of_birth": "1984-07-21",
        "email": "kowalski.a@another.example", "phone": "07400 900777", "postcode": "BS1 5TR", "locality": "Bristol"}),
    )
}
