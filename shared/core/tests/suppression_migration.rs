//! Suppression markers across a change of normaliser (docs/privacy.md, "When a normaliser
//! changes"): phone numbers were read by a hand-written normaliser (v1) and are now read with
//! libphonenumber (v2). A marker is a keyed hash of the normalised value, so a subject erased
//! under v1 has markers of v1 forms. They must keep the subject out after the change, and
//! after `mdm reindex` (here `Hub::reindex_golden`, what it runs per golden record).
mod common;

use common::*;
use mdm_core::blocking::block_keys;
use mdm_core::erasure::{self, marker, ErasureRequest, ReceiptStatus};
use mdm_core::hub::{Hub, HubConfig};
use mdm_core::normalise::legacy_phone_v1;
use mdm_core::record::{validate, SourceRecord};
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{SourceStore, SourceWrite, Transactor, WriteOp};
use mdm_core::SchemaRegistry;
use serde_json::{json, Value};
use std::sync::Arc;

const SECRET: &[u8] = b"test-secret";

fn erasing_hub() -> Hub<MemoryStore> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![SECRET.to_vec()], ..HubConfig::default() };
    Hub::new(registry, MemoryStore::new()).with_config(config)
}

/// A phone number written with the trunk 0 after the country code: v1 kept the 0.
const RAW: &str = "+44 07400 123456";
const V1: &str = "+4407400123456";
const V2: &str = "+447400123456";

fn person(system: &str, id: &str, phone: &str) -> Value {
    customer(system, id, 1, json!({"given_name": "Mara", "family_name": "Quist", "phone": phone}))
}

/// Someone else, with a phone number of their own.
fn other(system: &str, id: &str, phone: &str) -> Value {
    customer(system, id, 1, json!({"given_name": "Tobias", "family_name": "Hale", "phone": phone}))
}

/// The record as the hub stored it before the change: its phone in v1's form.
fn stored_under_v1(hub: &Hub<MemoryStore>, input: &Value) -> SourceRecord {
    let mut r = validate(hub.registry(), input, hub.now_ms()).expect("valid");
    let raw = input["attributes"]["phone"].as_str().expect("a phone");
    r.attributes.insert("phone", legacy_phone_v1(raw, Some("44")).expect("v1 read it").into());
    r.invalid.remove("phone");
    r.superseded = Default::default();
    r.key_cache = Default::default();
    r
}

/// The markers an erasure wrote before the change for a record stored under v1: what
/// `suppression_keys` computed then (the keyed hashes of its single-attribute claim keys).
fn v1_markers(hub: &Hub<MemoryStore>, v1_record: &SourceRecord) -> Vec<String> {
    let schema = hub.registry().get("customer").expect("customer");
    block_keys(schema, v1_record)
        .into_iter()
        .filter(|k| k.claim && !k.name.contains('+'))
        .map(|k| marker(SECRET, "customer", &k.name, &k.value))
        .collect()
}

/// The marker of a phone number in the form given.
fn phone_marker(form: &str) -> String {
    marker(SECRET, "customer", "phone.value", form)
}

async fn suppressed(hub: &Hub<MemoryStore>, form: &str) -> bool {
    hub.store().is_suppressed("customer", &[phone_marker(form)]).await.expect("read")
}

async fn put_markers(hub: &Hub<MemoryStore>, keys: Vec<String>) {
    let ops = keys
        .into_iter()
        .map(|key| WriteOp::PutSuppression {
            entity: "customer".into(),
            key,
            request_id: "er-before-the-change".into(),
        })
        .collect();
    hub.store().transact(ops).await.expect("markers");
}

async fn ingest(hub: &Hub<MemoryStore>, input: Value) -> SourceWrite {
    let r = validate(hub.registry(), &input, hub.now_ms()).expect("valid");
    hub.ingest(&r).await.expect("ingest")
}

async fn reindex_all(hub: &Hub<MemoryStore>) {
    for g in hub.store().active_goldens("customer") {
        hub.reindex_golden("customer", &g.golden_id, false).await.expect("reindex");
    }
}

#[test]
fn the_two_versions_read_the_number_differently() {
    assert_eq!(legacy_phone_v1(RAW, Some("44")).as_deref(), Ok(V1));
    let hub = erasing_hub();
    let r = validate(hub.registry(), &person("crm", "c-1", RAW), 0).expect("valid");
    assert_eq!(r.value("phone"), Some(V2));
    assert_eq!(r.superseded.iter().collect::<Vec<_>>(), vec![("phone", V1)], "validation keeps the v1 form");
    let plain = validate(hub.registry(), &person("crm", "c-1", "07400 123456"), 0).expect("valid");
    assert!(plain.superseded.is_empty(), "both versions agree on most numbers");
    let stored = serde_json::to_string(&r).expect("json");
    assert!(!stored.contains(V1), "the v1 form is never stored: {stored}");
}

/// A subject erased under v1, sent again as it was (v2 reads the number otherwise), stays out;
/// the ingest that stopped it wrote the marker of the v2 form, so from then on another spelling
/// of the number is stopped too, and after the migration step the same holds.
#[tokio::test]
async fn a_subject_erased_under_the_old_phone_normaliser_stays_out() {
    let hub = erasing_hub();
    let before = stored_under_v1(&hub, &person("crm", "c-1", RAW));
    put_markers(&hub, v1_markers(&hub, &before)).await;
    assert!(suppressed(&hub, V1).await && !suppressed(&hub, V2).await, "erased under v1: a marker of the v1 form only");

    // The same spelling again, from another system: v2 reads V2, the v1 form meets the marker.
    assert_eq!(ingest(&hub, person("webshop", "w-1", RAW)).await, SourceWrite::Suppressed);
    assert!(suppressed(&hub, V2).await, "the stopped ingest migrated the marker to the v2 form");
    assert_eq!(hub.store().get_source(&key("webshop", "w-1")).await.expect("get"), None);
    // Another spelling of the same number, which v1 read as V2: stopped by the migrated marker.
    assert_eq!(ingest(&hub, person("erp", "e-1", "07400 123456")).await, SourceWrite::Suppressed);

    // The migration step, then the same records again.
    feed(&hub, other("crm", "c-2", "020 7946 0958")).await;
    reindex_all(&hub).await;
    assert_eq!(ingest(&hub, person("webshop", "w-2", RAW)).await, SourceWrite::Suppressed);
    assert_eq!(ingest(&hub, person("erp", "e-2", "+44 7400 123456")).await, SourceWrite::Suppressed);
    assert_eq!(hub.store().counts().goldens_active, 1, "only the other person has a golden record");
}

/// A number v1 accepted and v2 rejects (Ofcom's range for drama is never assigned): the
/// record keeps it raw and flagged, without a claim key of its own; the v1 form kept by
/// validation still meets the v1 marker. No v2 form exists, so nothing is migrated.
#[tokio::test]
async fn a_number_valid_only_under_the_old_normaliser_stays_suppressed() {
    let hub = erasing_hub();
    let raw = "07700 900461";
    let before = stored_under_v1(&hub, &person("crm", "c-1", raw));
    put_markers(&hub, v1_markers(&hub, &before)).await;
    let again = validate(hub.registry(), &person("webshop", "w-1", raw), 0).expect("valid");
    assert!(again.invalid.contains("phone"), "v2 rejects the number");
    assert_eq!(ingest(&hub, person("webshop", "w-1", raw)).await, SourceWrite::Suppressed);
    reindex_all(&hub).await;
    assert_eq!(ingest(&hub, person("webshop", "w-2", raw)).await, SourceWrite::Suppressed);
}

/// `mdm reindex` migrates the markers of values the hub still holds: a record stored under
/// v1 that stays in a golden record while its number is suppressed (here: a v1 marker written
/// after it was merged, as by an erasure of another golden record holding the same number).
/// A record whose number has no marker gets none.
#[tokio::test]
async fn reindex_migrates_the_markers_of_values_it_holds() {
    let hub = erasing_hub();
    for input in [person("crm", "c-1", RAW), other("crm", "c-2", "+44 020 7946 0958")] {
        let r = stored_under_v1(&hub, &input);
        assert_eq!(hub.ingest(&r).await.expect("ingest"), SourceWrite::Written);
        hub.process(&r.key).await.expect("merge");
    }
    let c1 = hub.store().get_source(&key("crm", "c-1")).await.expect("get").expect("c-1");
    assert_eq!(c1.value("phone"), Some(V1), "stored in v1's form");
    put_markers(&hub, vec![phone_marker(V1)]).await;
    assert!(!suppressed(&hub, V2).await);

    reindex_all(&hub).await;
    assert!(suppressed(&hub, V2).await, "the v2 form of a suppressed stored value");
    assert!(!suppressed(&hub, "+442079460958").await && !suppressed(&hub, "+4402079460958").await);
    assert_eq!(ingest(&hub, person("erp", "e-1", "07400 123456")).await, SourceWrite::Suppressed);
    assert_eq!(ingest(&hub, other("erp", "e-2", "020 7946 0958")).await, SourceWrite::Written);
}

/// An erasure after the change writes the markers of both forms: those of the request's
/// identifiers (v1 and v2 from the raw value), and of a member stored under v1 (its stored
/// form and v2's reading of it). So a record stored before the change and still waiting for
/// its merge is stopped by them, as the v1 hub would have stopped it.
#[tokio::test]
async fn an_erasure_after_the_change_writes_markers_of_both_forms() {
    let hub = erasing_hub();
    let body = json!({"entityType": "customer", "identifiers": {"phone": RAW}});
    let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    assert!(suppressed(&hub, V1).await && suppressed(&hub, V2).await, "markers of both forms");
    assert_eq!(erasure::process(&hub, &r.request_id).await.expect("process").status, ReceiptStatus::Completed);

    // A member stored under v1, erased by golden id after the change.
    let hub = erasing_hub();
    let old = stored_under_v1(&hub, &other("crm", "c-1", "+44 020 7946 0958"));
    hub.ingest(&old).await.expect("ingest");
    let golden = hub.process(&old.key).await.expect("merge").outcome.golden_id().to_owned();
    let body = json!({"entityType": "customer", "goldenId": golden});
    let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    assert!(suppressed(&hub, "+4402079460958").await && suppressed(&hub, "+442079460958").await);
    assert_eq!(ingest(&hub, other("webshop", "w-1", "020 7946 0958")).await, SourceWrite::Suppressed);

    // A record stored under v1 before an erasure by the raw number, waiting for its merge.
    let hub = erasing_hub();
    let waiting = stored_under_v1(&hub, &person("ledger", "l-1", RAW));
    assert_eq!(hub.ingest(&waiting).await.expect("ingest"), SourceWrite::Written);
    let req = ErasureRequest::parse(&hub, &json!({"entityType": "customer", "identifiers": {"phone": RAW}}), "p")
        .expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    let merged = hub.process(&waiting.key).await;
    assert!(matches!(merged, Err(mdm_core::HubError::Suppressed(_))), "{merged:?}");
    assert_eq!(hub.store().counts().goldens_active, 0);
}
