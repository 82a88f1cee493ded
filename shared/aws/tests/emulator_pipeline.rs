//! The pipeline on the emulator through the real handlers: ingest → match → merge → publish →
//! EventBridge rule → example subscriber queue.
mod common;

use common::*;
use mdm_core::store::{GoldenStore, ReviewStore};
use mdm_core::SourceKey;
use serde_json::json;

fn anna(
    system: &str,
    id: &str,
    given: &str,
    family: &str,
    dob: &str,
    email: &str,
    postcode: &str,
) -> serde_json::Value {
    customer(
        system,
        id,
        1,
        json!({"given_name": given, "family_name": family, "date_of_birth": dob, "email": email,
                                   "phone": "07400 900461", "locality": "Leeds", "postcode": postcode}),
    )
}

#[tokio::test]
async fn records_become_golden_records_with_provenance_and_events_reach_the_subscriber() {
    let Some(s) = stack("pipeline").await else { return };
    let (status, body) = s
        .post(vec![
            anna("crm", "c-100", "Anna", "Kowalski", "1984-07-21", "anna.kowalski@example.com", "LS1 4AP"),
            anna("webshop", "w-9", "Ana", "Kowalsky", "21/07/1984", "Anna.Kowalski@Example.com", "ls14ap"),
        ])
        .await;
    assert_eq!(status, 202, "{body}");
    s.drain().await;
    let (status, _) = s
        .post(vec![
            anna("crm", "c-101", "Anna", "Kowalski", "1984-07-12", "akowalski@mail.example", "LS1 4AP"),
            customer(
                "crm",
                "c-200",
                1,
                json!({"given_name": "Bob", "family_name": "Okafor", "date_of_birth": "1962-11-03",
                                               "email": "bob.okafor@example.org", "postcode": "M1 1AE"}),
            ),
        ])
        .await;
    assert_eq!(status, 202);
    s.drain().await;
    // A mid-score record: same name and birth date, every contact detail different.
    s.post(vec![customer(
        "erp",
        "e-7",
        1,
        json!({"given_name": "Anna", "family_name": "Kowalski",
        "date_of_birth": "1984-07-21", "email": "kowalski.a@another.example", "phone": "07400 900777",
        "postcode": "BS1 5TR", "locality": "Bristol"}),
    )])
    .await;
    s.drain().await;

    let g = s.golden_of(&SourceKey::new("customer", "crm", "c-100")).await;
    assert_eq!(g.members.len(), 3, "three records of Anna, two systems, typos: one golden record");
    for k in [("webshop", "w-9"), ("crm", "c-101")] {
        assert_eq!(s.golden_of(&SourceKey::new("customer", k.0, k.1)).await.golden_id, g.golden_id);
    }
    let given = &g.attributes["given_name"];
    assert_eq!((given.value.as_str(), given.source(), given.source_id()), ("anna", "crm", "c-100"));
    assert_eq!(g.attributes["email"].source_seq, 1);
    for (name, a) in g.attributes.iter() {
        assert!(!a.source().is_empty() && !a.source_id().is_empty(), "{name} has provenance");
    }
    let bob = s.golden_of(&SourceKey::new("customer", "crm", "c-200")).await;
    assert_ne!(bob.golden_id, g.golden_id, "an unrelated person gets another golden record");
    let maybe = s.golden_of(&SourceKey::new("customer", "erp", "e-7")).await;
    assert_ne!(maybe.golden_id, g.golden_id, "a review leaves the record in its own golden record");
    assert_eq!(s.store.history("customer", &g.golden_id).await.expect("history").len() as u64, g.version);

    let events = s.subscriber_events().await;
    for e in &events {
        assert_valid_event(e);
    }
    let of = |t: &str| events.iter().filter(|e| e["detail-type"] == t).collect::<Vec<_>>();
    assert_eq!(of("GoldenRecordCreated").len(), 3, "Anna, Bob, the maybe-Anna");
    assert_eq!(of("GoldenRecordUpdated").len(), 2, "two links into Anna");
    let review = of("ReviewTaskOpened");
    assert_eq!(review.len(), 1);
    assert_eq!(review[0]["detail"]["candidateGoldenIds"], json!([g.golden_id]));
    let task_id = review[0]["detail"]["taskId"].as_str().expect("task id");
    let task = s.store.get_review("customer", task_id).await.expect("get").expect("review task stored");
    assert_eq!(task.golden_id, maybe.golden_id);
    assert!(!task.explanation[0].attributes.is_empty(), "the task explains the score");
    // Nothing is left in the outbox once delivered.
    assert!(s.items_with_prefix("OUT#").await.is_empty(), "delivered events are deleted from the outbox");
    let latest = of("GoldenRecordUpdated").iter().map(|e| e["detail"]["version"].as_u64().unwrap_or(0)).max();
    assert_eq!(latest, Some(g.version));
}

#[tokio::test]
async fn an_older_version_after_a_newer_one_is_dropped_and_a_triple_delivery_is_one_change() {
    let Some(s) = stack("ordering").await else { return };
    let v2 =
        customer("crm", "c-1", 2, json!({"given_name": "Jane", "family_name": "Doe", "email": "jane@new.example"}));
    let v1 =
        customer("crm", "c-1", 1, json!({"given_name": "Jane", "family_name": "Doe", "email": "jane@old.example"}));
    let (_, body) = s.post(vec![v2]).await;
    assert_eq!(body["stored"], 1);
    s.drain().await;
    let (_, body) = s.post(vec![v1]).await;
    assert_eq!((body["stored"].as_u64(), body["stale"].as_u64()), (Some(0), Some(1)), "{body}");
    s.drain().await;
    let key = SourceKey::new("customer", "crm", "c-1");
    let g = s.golden_of(&key).await;
    assert_eq!(g.attributes["email"].value, "jane@new.example", "golden keeps v2");
    assert_eq!(g.version, 1);

    // One bulk message delivered three times.
    let record = customer(
        "webshop",
        "w-5",
        7,
        json!({"given_name": "Ola", "family_name": "Nordmann", "email": "ola@example.no"}),
    );
    for _ in 0..3 {
        s.send("IngestQueue", &record.to_string()).await;
    }
    s.drain().await;
    let g = s.golden_of(&SourceKey::new("customer", "webshop", "w-5")).await;
    assert_eq!(g.version, 1, "one effective change");
    assert_eq!(s.store.history("customer", &g.golden_id).await.expect("history").len(), 1);
    let events = s.subscriber_events().await;
    let about: Vec<_> = events.iter().filter(|e| e["detail"]["goldenId"] == g.golden_id.as_str()).collect();
    assert_eq!(about.len(), 1, "one event: {about:?}");
    let totals = s.runner.handlers().totals();
    assert_eq!(totals.get("ingest.RecordsDuplicate"), Some(&2.0), "{totals:?}");
    assert_eq!(totals.get("ingest.RecordsStale"), Some(&1.0));
}

#[tokio::test]
async fn a_bridging_record_merges_golden_records_and_the_merge_event_validates() {
    let Some(s) = stack("bridge").await else { return };
    s.post(vec![
        customer(
            "crm",
            "p-1",
            1,
            json!({"given_name": "Priya", "family_name": "Raman", "email": "priya.raman@example.com",
                                         "date_of_birth": "1990-02-14"}),
        ),
        customer(
            "webshop",
            "p-2",
            1,
            json!({"given_name": "Priya", "family_name": "Raman", "phone": "07400 900100",
                                             "postcode": "EH1 1YZ"}),
        ),
    ])
    .await;
    s.drain().await;
    let a = s.golden_of(&SourceKey::new("customer", "crm", "p-1")).await;
    let b = s.golden_of(&SourceKey::new("customer", "webshop", "p-2")).await;
    assert_ne!(a.golden_id, b.golden_id);
    s.post(vec![customer("erp", "p-3", 1, json!({"given_name": "Priya", "family_name": "Raman",
        "email": "priya.raman@example.com", "phone": "07400 900100", "date_of_birth": "1990-02-14", "postcode": "EH1 1YZ"}))])
    .await;
    s.drain().await;
    let merged = s.golden_of(&SourceKey::new("customer", "crm", "p-1")).await;
    assert_eq!(merged.members.len(), 3);
    assert_eq!(s.golden_of(&SourceKey::new("customer", "webshop", "p-2")).await.golden_id, merged.golden_id);
    let events = s.subscriber_events().await;
    for e in &events {
        assert_valid_event(e);
    }
    let m: Vec<_> = events.iter().filter(|e| e["detail-type"] == "GoldenRecordsMerged").collect();
    assert_eq!(m.len(), 1, "{events:?}");
    assert_eq!(m[0]["detail"]["goldenId"], merged.golden_id.as_str());
    let loser = if merged.golden_id == a.golden_id { &b.golden_id } else { &a.golden_id };
    assert_eq!(m[0]["detail"]["mergedGoldenIds"], json!([loser]));
    let l = s.store.get_golden("customer", loser).await.expect("get").expect("exists");
    assert_eq!(l.status, mdm_core::GoldenStatus::MergedInto { survivor: merged.golden_id.clone() });
}
