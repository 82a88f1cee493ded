//! Property tests: random sequences of deliveries (new records, updates, out-of-order and
//! duplicate versions) and erasures on the in-process store, checked after every step against a
//! simple model of what the store must hold and what the golden records may be.
mod common;

use common::*;
use mdm_core::erasure::{self, ErasureRequest, ReceiptStatus};
use mdm_core::hub::{Hub, HubConfig};
use mdm_core::record::validate;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{GoldenStore, SourceStore, SourceWrite};
use mdm_core::{HubError, SchemaRegistry, SourceKey};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Three people, each known to two systems (six source records).
const PEOPLE: [(&str, &str, &str, &str); 3] = [
    ("Anna", "Kowalski", "1984-07-21", "anna.k@example.com"),
    ("Bob", "Okafor", "1962-11-03", "bob.o@example.org"),
    ("Chen", "Wei", "1990-05-17", "chen.wei@example.net"),
];
const SYSTEMS: [&str; 2] = ["crm", "webshop"];

#[derive(Debug, Clone)]
enum Op {
    /// Version `seq` of record `rec` (person `rec / 2`, system `rec % 2`), living in town `town`.
    Deliver { rec: usize, seq: u64, town: usize },
    /// Scope source: erase record `rec` alone.
    EraseRecord { rec: usize },
    /// Erase a person by e-mail (every golden record holding it).
    ErasePerson { person: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..6usize, 1..6u64, 0..3usize).prop_map(|(rec, seq, town)| Op::Deliver { rec, seq, town }),
        1 => (0..6usize).prop_map(|rec| Op::EraseRecord { rec }),
        1 => (0..3usize).prop_map(|person| Op::ErasePerson { person }),
    ]
}

fn key(rec: usize) -> SourceKey {
    SourceKey::new("customer", SYSTEMS[rec % 2], format!("p{}", rec / 2))
}

fn record(rec: usize, seq: u64, town: usize) -> Value {
    let (given, family, born, email) = PEOPLE[rec / 2];
    let town = ["Leeds", "York", "Hull"][town];
    customer(
        SYSTEMS[rec % 2],
        &format!("p{}", rec / 2),
        seq,
        json!({"given_name": given, "family_name": family, "date_of_birth": born, "email": email,
               "locality": town}),
    )
}

/// What the store must hold of each source record: the highest version written since it was
/// last erased, or nothing; and the highest sequence it has seen (a tombstone keeps it).
#[derive(Default)]
struct Model {
    stored: BTreeMap<usize, u64>,
    seen: BTreeMap<usize, u64>,
    erased_people: Vec<usize>,
}

async fn erase(hub: &Hub<MemoryStore>, body: Value) {
    let req = ErasureRequest::parse(hub, &body, "prop").expect("valid request");
    let (r, _) = erasure::accept(hub, &req).await.expect("accept");
    let done = erasure::process(hub, &r.request_id).await.expect("process");
    assert_eq!(done.status, ReceiptStatus::Completed);
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![b"prop-secret".to_vec()], ..HubConfig::default() };
    let hub = Hub::new(registry, MemoryStore::new()).with_config(config);
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Deliver { rec, seq, town } => {
                let r = validate(hub.registry(), &record(rec, seq, town), hub.now_ms()).expect("valid");
                let write = hub.ingest(&r).await.expect("ingest");
                let seen = model.seen.get(&rec).copied().unwrap_or(0);
                match write {
                    SourceWrite::Written => {
                        prop_assert!(seq > seen, "step {step}: version {seq} written over {seen}");
                        prop_assert!(
                            !model.erased_people.contains(&(rec / 2)),
                            "step {step}: an erased person is back"
                        );
                        model.stored.insert(rec, seq);
                        model.seen.insert(rec, seq);
                    }
                    SourceWrite::Stale { stored_seq } => {
                        prop_assert!(seq <= seen && stored_seq == seen, "step {step}: {seq} stale against {stored_seq}")
                    }
                    SourceWrite::Suppressed => {
                        prop_assert!(model.erased_people.contains(&(rec / 2)), "step {step}: suppressed, never erased")
                    }
                    SourceWrite::Held => prop_assert!(false, "step {step}: held in reject mode"),
                }
                match hub.process(&r.key).await {
                    Ok(_) | Err(HubError::SourceMissing(_)) | Err(HubError::Suppressed(_)) => {}
                    Err(e) => prop_assert!(false, "step {step}: {e}"),
                }
            }
            Op::EraseRecord { rec } => {
                let k = key(rec);
                erase(&hub, json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": k.system.as_str(), "sourceId": k.source_id.as_str()}})).await;
                let was_stored = model.stored.remove(&rec).is_some();
                // Identifiers no other member has are suppressed: the person's, unless their
                // other record is stored (it holds the same e-mail).
                if was_stored && !model.stored.contains_key(&(rec ^ 1)) && !model.erased_people.contains(&(rec / 2)) {
                    model.erased_people.push(rec / 2);
                }
            }
            Op::ErasePerson { person } => {
                erase(&hub, json!({"entityType": "customer", "identifiers": {"email": PEOPLE[person].3}, "all": true}))
                    .await;
                for rec in [2 * person, 2 * person + 1] {
                    model.stored.remove(&rec);
                }
                if !model.erased_people.contains(&person) {
                    model.erased_people.push(person);
                }
            }
        }
        check(&hub, &model, step).await?;
    }
    Ok(())
}

/// The invariants, after every step.
async fn check(hub: &Hub<MemoryStore>, model: &Model, step: usize) -> Result<(), TestCaseError> {
    let store = hub.store();
    let goldens = store.active_goldens("customer");
    for rec in 0..6 {
        let stored = store.get_source(&key(rec)).await.expect("get");
        // The store holds exactly the model's version: never an older one, never an erased one.
        prop_assert_eq!(
            stored.as_ref().map(|s| s.seq),
            model.stored.get(&rec).copied(),
            "step {}: record {}",
            step,
            rec
        );
        let holders: Vec<&str> =
            goldens.iter().filter(|g| g.members.contains(&key(rec))).map(|g| g.golden_id.as_str()).collect();
        match stored {
            // A stored record is in one active golden record, which its cross-reference names.
            Some(s) => {
                prop_assert_eq!(holders.len(), 1, "step {}: record {} is in {:?}", step, rec, holders);
                prop_assert_eq!(s.golden_id.as_deref(), Some(holders[0]), "step {}: record {}", step, rec);
            }
            None => prop_assert!(holders.is_empty(), "step {step}: erased record {rec} is a member of {holders:?}"),
        }
    }
    for g in &goldens {
        // Every value is a member's value now (no stale or erased value); its provenance names
        // the version that set it, no later than the one stored.
        for (name, a) in g.attributes.iter() {
            let from = SourceKey::new("customer", a.from.system(), a.from.source_id());
            prop_assert!(g.members.contains(&from), "step {step}: {name} of {} from a non-member", g.golden_id);
            let source = store.get_source(&from).await.expect("get");
            prop_assert!(source.is_some(), "step {step}: {name} of {} from an erased record", g.golden_id);
            let source = source.expect("checked");
            prop_assert_eq!(source.value(name), Some(a.value.as_str()), "step {}: {} of {}", step, name, g.golden_id);
            prop_assert!(a.source_seq <= source.seq, "step {step}: {name} of {} from a future version", g.golden_id);
        }
        for &person in &model.erased_people {
            prop_assert!(
                g.value("email") != Some(PEOPLE[person].3),
                "step {step}: {} holds the e-mail of an erased person",
                g.golden_id
            );
        }
        let stored = store.get_golden("customer", &g.golden_id).await.expect("get");
        prop_assert!(stored.is_some());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_deliveries_and_erasures_keep_the_store_consistent(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(ops))?;
    }
}
