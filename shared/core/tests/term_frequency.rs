//! Term-frequency adjustment on the online path: the store counts each record's names when it is
//! first linked, a match weighs an exact agreement by how rare the value is, and an erasure takes
//! the subject's values out of the counts.
mod common;

use common::*;
use mdm_core::erasure::{self, ErasureRequest};
use mdm_core::hub::{Hub, HubConfig};
use mdm_core::matching::CandidateScore;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::TermStore;
use mdm_core::terms::term_key;
use mdm_core::SchemaRegistry;
use serde_json::{json, Value};
use std::sync::Arc;

const GIVEN: [&str; 12] =
    ["james", "mary", "oliver", "grace", "henry", "alice", "jack", "ruby", "leo", "ivy", "noah", "ella"];
const STREETS: [&str; 8] = [
    "harbour street",
    "mill lane",
    "park road",
    "church lane",
    "king street",
    "queens road",
    "station road",
    "high street",
];

fn person(id: usize, given: &str, family: &str) -> Value {
    customer(
        "crm",
        &format!("p-{id}"),
        1,
        json!({
            "given_name": given, "family_name": family,
            "date_of_birth": format!("19{:02}-{:02}-{:02}", 40 + id % 50, 1 + id % 12, 1 + id % 28),
            "street_number": format!("{}", 1 + id % 199), "address_line1": STREETS[id % STREETS.len()],
            "locality": "Leeds", "postcode": format!("LS{} {}AB", 1 + id % 29, id % 10), "country": "GB",
        }),
    )
}

/// A made-up family name of its own per id (letters far apart from every other one's).
fn rare_name(id: usize) -> String {
    let mut n = id.wrapping_mul(2_654_435_761) % 308_915_776; // 26^6
    (0..6)
        .map(|_| {
            let c = char::from(b'a' + (n % 26) as u8);
            n /= 26;
            c
        })
        .collect()
}

/// A store of 3,000 people: 40 % named Smith, the rest with names of their own.
async fn seeded() -> Hub<MemoryStore> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..HubConfig::default() };
    let hub = Hub::new(registry, MemoryStore::new()).with_config(config);
    for id in 0..3000 {
        let family = if id % 5 < 2 { "Smith".to_owned() } else { rare_name(id) };
        feed(&hub, person(id, GIVEN[id % GIVEN.len()], &family)).await.1.expect("merged");
    }
    hub
}

/// The candidate that is the record's duplicate: the one the given person already has.
async fn score_of_duplicate(hub: &Hub<MemoryStore>, of: usize, family: &str) -> CandidateScore {
    let mut dup = person(of, GIVEN[of % GIVEN.len()], family);
    dup["sourceSystem"] = json!("webshop");
    let record = mdm_core::record::validate(hub.registry(), &dup, 0).expect("valid");
    let result = hub.match_record(&record).await.expect("match");
    let target = hub.store().get_link(&key("crm", &format!("p-{of}"))).await.expect("read").expect("linked").golden_id;
    let target = hub.final_record("customer", &target).await.expect("read").expect("exists").golden_id;
    let shown = format!(
        "{target} among {:?} ({:?})",
        result.candidates.iter().map(|c| &c.golden_id).collect::<Vec<_>>(),
        result.blocking
    );
    result.candidates.into_iter().find(|c| c.golden_id == target).expect(&shown)
}

fn tf_line(c: &CandidateScore, attribute: &str) -> Option<f64> {
    c.attributes.iter().find(|a| a.attribute == format!("tf:{attribute}").as_str()).map(|a| a.weight)
}

use mdm_core::store::LookupStore;

#[tokio::test]
async fn a_rare_family_name_that_agrees_scores_above_a_common_one() {
    let hub = seeded().await;
    // Person 2 has a name of its own, person 0 is a Smith; both given names are as common (12
    // in turn).
    let (rare, common) = (score_of_duplicate(&hub, 2, &rare_name(2)).await, score_of_duplicate(&hub, 0, "Smith").await);
    let (tf_rare, tf_common) =
        (tf_line(&rare, "family_name").expect("adjusted"), tf_line(&common, "family_name").expect("adjusted"));
    assert!(tf_rare > 1.0, "a name one other record holds weighs more: {tf_rare}");
    assert!(tf_common < -4.0, "a name 40 % of records hold weighs less: {tf_common}");
    // Everything else about the two pairs is alike: the rare name's pair scores higher by the
    // difference of the adjustments.
    let rest = |c: &CandidateScore| c.score - tf_line(c, "family_name").unwrap_or(0.0);
    assert!((rest(&rare) - rest(&common)).abs() < 0.6, "{rare:?}\n{common:?}");
    assert!(rare.score > common.score + 6.0, "rare {} common {}", rare.score, common.score);
    // The explanation still adds up to the score.
    for c in [&rare, &common] {
        let sum: f64 = c.attributes.iter().map(|a| a.weight).sum();
        assert!((sum - c.score).abs() < 0.01, "{c:?}");
    }
}

#[tokio::test]
async fn names_are_counted_once_per_record_and_erasure_takes_them_out() {
    let hub = seeded().await;
    let keys = [term_key("family_name", "smith"), term_key("family_name", &rare_name(7))];
    let counted = hub.store().term_counts("customer", &keys).await.expect("read");
    assert_eq!((counted.counts.clone(), counted.total), (vec![1200, 1], 3000));
    // A new version of a linked record is not counted again.
    let mut v2 = person(7, GIVEN[7], &rare_name(7));
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("Bradford");
    feed(&hub, v2).await.1.expect("merged");
    assert_eq!(hub.store().term_counts("customer", &keys).await.expect("read"), counted);

    let req = ErasureRequest::parse(
        &hub,
        &json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "p-7"}}),
        "privacy-team",
    )
    .expect("a valid request");
    let (accepted, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &accepted.request_id).await.expect("erase");
    let after = hub.store().term_counts("customer", &keys).await.expect("read");
    assert_eq!((after.counts, after.total), (vec![1200, 0], 2999), "the subject's name is no longer counted");
}
