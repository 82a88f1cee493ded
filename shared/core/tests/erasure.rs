//! Erasure on the in-process store: what goes, what stays, what cannot come back, and that a
//! repeated, concurrent or interrupted request ends with one receipt and the same counts.
mod common;

use common::*;
use mdm_core::erasure::{self, ErasureError, ErasureRequest, ReceiptStatus};
use mdm_core::hub::{Hub, HubConfig};
use mdm_core::record::validate;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{GoldenStore, Outbox, SourceStore, SourceWrite};
use mdm_core::{GoldenStatus, SchemaRegistry};
use serde_json::{json, Value};
use std::sync::Arc;

fn erasing_hub() -> Hub<MemoryStore> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..HubConfig::default() };
    Hub::new(registry, MemoryStore::new()).with_config(config)
}

/// A hub in suppression mode `hold`.
fn holding_hub() -> Hub<MemoryStore> {
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig {
        suppression_secrets: vec![b"test-secret".to_vec()],
        suppression_mode: mdm_core::SuppressionMode::Hold,
        ..HubConfig::default()
    };
    Hub::new(registry, MemoryStore::new()).with_config(config)
}

fn request(hub: &Hub<MemoryStore>, body: Value) -> ErasureRequest {
    ErasureRequest::parse(hub, &body, "privacy-team").expect("a valid request")
}

/// Anna from three systems (two versions of one), with a review task of a fourth record.
async fn seed_anna(hub: &Hub<MemoryStore>) -> String {
    let id = feed(hub, anna_crm()).await.1.expect("crm").outcome.golden_id().to_owned();
    feed(hub, anna_web()).await;
    feed(hub, anna_crm_dup()).await;
    let mut v2 = anna_crm();
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("Leeds City");
    feed(hub, v2).await;
    feed(hub, anna_maybe()).await; // a review: possibly Anna
    id
}

#[tokio::test]
async fn erasing_by_email_removes_the_subject_and_nobody_else() {
    let hub = erasing_hub();
    let anna = seed_anna(&hub).await;
    let bob_id = feed(&hub, bob()).await.1.expect("bob").outcome.golden_id().to_owned();
    let bob_before = hub.store().get_golden("customer", &bob_id).await.expect("get").expect("bob");
    assert!(!hub.store().reviews().is_empty(), "a review task mentions anna");

    let req = request(&hub, json!({"entityType": "customer", "identifiers": {"email": "ANNA.kowalski@example.com"}}));
    let (accepted, created) = erasure::accept(&hub, &req).await.expect("accept");
    assert!(created);
    assert_eq!((accepted.status, accepted.golden_ids.clone()), (ReceiptStatus::Accepted, vec![anna.clone()]));
    let done = erasure::process(&hub, &accepted.request_id).await.expect("process");
    assert_eq!(done.status, ReceiptStatus::Completed);
    assert_eq!(done.removed["sources"], 3, "{:?}", done.removed);
    assert_eq!(done.removed["goldens"], 1);
    assert!(done.removed["history"] >= 4 && done.removed["index"] > 0 && done.removed["claims"] > 0);
    assert_eq!(done.removed["reviews"], 1);
    let kinds: Vec<&str> = done.events.iter().map(|e| e.detail_type.as_str()).collect();
    assert_eq!(kinds, ["GoldenRecordErased", "ErasureCompleted"]);

    let g = hub.store().get_golden("customer", &anna).await.expect("get").expect("marker");
    assert_eq!(g.status, GoldenStatus::Erased);
    assert!(g.attributes.is_empty() && g.members.is_empty() && g.match_values.is_empty());
    assert!(hub.store().history("customer", &anna).await.expect("history").is_empty());
    for k in [key("crm", "c-100"), key("webshop", "w-9"), key("crm", "c-101")] {
        assert_eq!(hub.store().get_source(&k).await.expect("get"), None, "{k} is a tombstone");
    }
    assert!(hub.store().reviews().is_empty(), "the review that named anna is gone");
    let events: Vec<String> =
        hub.store().pending_events(1000).await.expect("outbox").iter().map(|o| format!("{:?}", o.event)).collect();
    // (The erp record under review is another "Anna Kowalski"; these values are this Anna's alone.)
    for v in ["anna.kowalski@example.com", "akowalski@mail.example", "+447400900461", "harbour"] {
        assert!(events.iter().all(|e| !e.to_lowercase().contains(v)), "a pending event holds {v}");
    }
    let bob_after = hub.store().get_golden("customer", &bob_id).await.expect("get").expect("bob");
    assert_eq!(bob_after, bob_before, "other people are untouched");
    // The erp record under review is another golden record; its own values stay.
    assert!(hub.store().get_source(&key("erp", "e-7")).await.expect("get").is_some());
}

#[tokio::test]
async fn erased_people_do_not_come_back() {
    let hub = erasing_hub();
    seed_anna(&hub).await;
    let req = request(&hub, json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-100"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");

    // A late duplicate of an erased source record: stale against its tombstone.
    let late = validate(hub.registry(), &anna_web(), 0).expect("valid");
    assert_eq!(hub.ingest(&late).await.expect("ingest"), SourceWrite::Stale { stored_seq: 1 });
    // The same person from another source, or a newer version: suppressed by the markers.
    let mut again = anna_web();
    again["sourceSystem"] = json!("partner");
    let again = validate(hub.registry(), &again, 0).expect("valid");
    assert_eq!(hub.ingest(&again).await.expect("ingest"), SourceWrite::Suppressed);
    let mut newer = anna_crm();
    newer["sourceSeq"] = json!(9);
    assert_eq!(
        hub.ingest(&validate(hub.registry(), &newer, 0).expect("valid")).await.expect("ingest"),
        SourceWrite::Suppressed
    );
    assert_eq!(hub.store().counts().goldens_active, 1, "only the erp record of the review remains");
    // Someone else still gets in.
    let bob = validate(hub.registry(), &bob(), 0).expect("valid");
    assert_eq!(hub.ingest(&bob).await.expect("ingest"), SourceWrite::Written);
}

#[tokio::test]
async fn scope_source_recomputes_the_golden_record_without_the_erased_values() {
    let hub = erasing_hub();
    let anna = seed_anna(&hub).await;
    let req = request(
        &hub,
        json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": "webshop", "sourceId": "w-9"}}),
    );
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    let done = erasure::process(&hub, &r.request_id).await.expect("process");
    assert_eq!(done.removed["sources"], 1);
    let g = hub.store().get_golden("customer", &anna).await.expect("get").expect("golden");
    assert_eq!(g.status, GoldenStatus::Active);
    assert_eq!(g.members.len(), 2, "the crm records remain");
    assert!(g.attributes.values().all(|a| a.source() != "webshop"), "no provenance from the erased record");
    let history = hub.store().history("customer", &anna).await.expect("history");
    assert!(!history.is_empty(), "the recomputed version is kept");
    for h in &history {
        let text = format!("{:?}", h.snapshot).to_lowercase();
        assert!(
            !text.contains("kowalsky") && !text.contains("webshop"),
            "history v{} holds the erased record's values",
            h.version
        );
        assert!(!h.snapshot.members.contains(&key("webshop", "w-9")), "history v{} lists the erased record", h.version);
    }
    assert_eq!(hub.store().get_source(&key("webshop", "w-9")).await.expect("get"), None);
    assert_eq!(done.events[0].detail_type, "GoldenRecordUpdated");
}

#[tokio::test]
async fn repeated_requests_share_one_receipt_and_unknown_subjects_complete_empty() {
    let hub = erasing_hub();
    seed_anna(&hub).await;
    let body = json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}});
    let (a, created_a) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("accept");
    let (b, created_b) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("accept");
    assert!(created_a && !created_b);
    assert_eq!(a.request_id, b.request_id);
    let first = erasure::process(&hub, &a.request_id).await.expect("process");
    let again = erasure::process(&hub, &a.request_id).await.expect("process again");
    assert_eq!(first, again, "a completed request answers with its receipt");
    let (c, _) = erasure::accept(&hub, &request(&hub, body)).await.expect("accept after completion");
    assert_eq!((c.request_id.as_str(), c.status), (a.request_id.as_str(), ReceiptStatus::Completed));

    let unknown = request(&hub, json!({"entityType": "customer", "identifiers": {"email": "nobody@example.net"}}));
    let (u, _) = erasure::accept(&hub, &unknown).await.expect("accept");
    let u = erasure::process(&hub, &u.request_id).await.expect("process");
    assert_eq!(u.status, ReceiptStatus::Completed);
    assert!(u.golden_ids.is_empty() && u.removed.is_empty(), "{:?}", u.removed);
}

#[tokio::test]
async fn identifiers_of_two_people_need_all() {
    let hub = erasing_hub();
    feed(&hub, customer("crm", "p1", 1, json!({"given_name": "Sam", "family_name": "Lee", "phone": "07400 900300"})))
        .await;
    feed(
        &hub,
        customer("crm", "p2", 1, json!({"given_name": "Kim", "family_name": "Park", "email": "kim@example.com"})),
    )
    .await;
    let body = json!({"entityType": "customer", "identifiers": {"phone": "07400900300", "email": "kim@example.com"}});
    match erasure::accept(&hub, &request(&hub, body.clone())).await {
        Err(ErasureError::Ambiguous(ids)) => assert_eq!(ids.len(), 2),
        other => panic!("expected ambiguous, got {other:?}"),
    }
    let mut all = body;
    all["all"] = json!(true);
    let (r, _) = erasure::accept(&hub, &request(&hub, all)).await.expect("accept with all");
    let done = erasure::process(&hub, &r.request_id).await.expect("process");
    assert_eq!(done.removed["goldens"], 2);
    assert_eq!(hub.store().counts().goldens_active, 0);
}

#[tokio::test]
async fn malformed_requests_name_the_problem() {
    let hub = erasing_hub();
    for (body, code) in [
        (json!({"entityType": "customer"}), "invalid_subject"),
        (json!({"entityType": "planet", "goldenId": "g1"}), "unknown_entity_type"),
        (json!({"entityType": "customer", "identifiers": {"given_name": "Anna"}}), "invalid_identifier"),
        (json!({"entityType": "customer", "goldenId": "g1", "scope": "source"}), "invalid_subject"),
        (json!({"entityType": "customer", "goldenId": "g1", "extra": 1}), "unknown_field"),
        (json!({"entityType": "customer", "goldenId": "g1", "all": "yes"}), "invalid_field"),
    ] {
        match ErasureRequest::parse(&hub, &body, "p") {
            Err(ErasureError::Invalid { code: c, .. }) => assert_eq!(c, code, "{body}"),
            other => panic!("{body}: expected {code}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failure_half_way_is_finished_by_the_retry_with_the_same_counts() {
    use mdm_core::store::conformance::Faulty;
    // The same history on two stores; one fails in the middle of the erasure.
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..HubConfig::default() };
    let clean = erasing_hub();
    let flaky = Hub::new(registry, Faulty::new(MemoryStore::new())).with_config(config);
    for input in [anna_crm(), anna_web(), anna_crm_dup(), anna_maybe()] {
        feed(&clean, input.clone()).await;
        let r = validate(flaky.registry(), &input, 0).expect("valid");
        flaky.ingest(&r).await.expect("ingest");
        flaky.process(&r.key).await.expect("process");
    }
    let body = json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}});
    let (r, _) = erasure::accept(&clean, &request(&clean, body.clone())).await.expect("accept");
    let want = erasure::process(&clean, &r.request_id).await.expect("process");

    let req = ErasureRequest::parse(&flaky, &body, "privacy-team").expect("valid");
    let (r, _) = erasure::accept(&flaky, &req).await.expect("accept");
    flaky.store().fail_at(3); // after the markers and the first deletes
    assert!(erasure::process(&flaky, &r.request_id).await.is_err(), "the injected failure stops the run");
    let stuck = erasure::receipt(flaky.store(), &r.request_id).await.expect("receipt").expect("stored");
    assert_eq!(stuck.status, ReceiptStatus::InProgress);
    assert!(stuck.error.is_some() && stuck.lease_until_ms.is_none(), "the failed run says why and frees its lease");
    // Had the queue given up, the receipt says failed; a re-driven message still completes it.
    erasure::mark_failed(flaky.store(), &r.request_id, "gave up").await.expect("mark");
    let failed = erasure::receipt(flaky.store(), &r.request_id).await.expect("receipt").expect("stored");
    assert_eq!(failed.status, ReceiptStatus::Failed);
    let got = erasure::process(&flaky, &r.request_id).await.expect("the retry completes");
    assert_eq!(got.status, ReceiptStatus::Completed);
    assert_eq!(got.removed, want.removed, "the same counts as an uninterrupted run");
    assert_eq!(flaky.store().inner.counts().goldens_active, clean.store().counts().goldens_active);
}

#[tokio::test]
async fn in_hold_mode_a_returning_subject_is_kept_for_review_and_never_matched() {
    let hub = holding_hub();
    seed_anna(&hub).await;
    let req = request(&hub, json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-100"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    let goldens = hub.store().counts().goldens_active;

    let mut again = anna_web();
    again["sourceSystem"] = json!("partner");
    let again = validate(hub.registry(), &again, 0).expect("valid");
    assert_eq!(hub.ingest(&again).await.expect("ingest"), SourceWrite::Held);
    let stored = hub.store().get_source(&again.key).await.expect("get").expect("held record");
    assert!(stored.held && stored.golden_id.is_none());
    assert!(matches!(hub.process(&again.key).await, Err(mdm_core::HubError::Held(_))), "never matched");
    assert_eq!(hub.store().counts().goldens_active, goldens, "no golden record re-created");
}

/// A hub whose store fails on purpose, seeded like [`seed_anna`] plus Bob (a golden record of one).
async fn flaky_anna() -> Hub<mdm_core::store::conformance::Faulty<MemoryStore>> {
    use mdm_core::store::conformance::Faulty;
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..HubConfig::default() };
    let hub = Hub::new(registry, Faulty::new(MemoryStore::new())).with_config(config);
    for input in [anna_crm(), anna_web(), anna_crm_dup(), anna_maybe(), bob()] {
        let r = validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        hub.process(&r.key).await.expect("process");
    }
    hub
}

/// Source-scope erasure with the k-th transaction failing (before it is applied, or after with
/// its answer lost), for every k: the retry must not take
/// the erased record's tombstone for "never linked" and complete with its values still in the
/// golden record (neither with other members left, nor as the golden record's only member).
#[tokio::test]
async fn source_scope_interrupted_at_any_transaction_leaves_no_value_behind() {
    for (system, id, values) in
        [("webshop", "w-9", &["kowalsky", "\"ana\""][..]), ("crm", "c-200", &["okafor", "bob.okafor"][..])]
    {
        for (k, lost) in (1..=12).flat_map(|k| [(k, false), (k, true)]) {
            let hub = flaky_anna().await;
            let body =
                json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": system, "sourceId": id}});
            let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("valid");
            let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
            if lost {
                hub.store().lose_answer_at(k);
            } else {
                hub.store().fail_at(k);
            }
            let first = erasure::process(&hub, &r.request_id).await;
            hub.store().fail_at(-1);
            let done = match first {
                Ok(done) => done,
                Err(_) => erasure::process(&hub, &r.request_id).await.expect("the retry completes"),
            };
            assert_eq!(done.status, ReceiptStatus::Completed, "{id}, failure at transaction {k} (answer lost: {lost})");
            assert_eq!(done.removed.get("sources"), Some(&1), "{id}, failure at {k} ({lost}): {:?}", done.removed);
            let inner = &hub.store().inner;
            for g in inner.active_goldens("customer") {
                let text = format!("{g:?}").to_lowercase();
                for v in values {
                    assert!(
                        !text.contains(v),
                        "{id}, failure at {k} ({lost}): golden record {} still holds {v}",
                        g.golden_id
                    );
                }
            }
        }
    }
}

/// An ingest that stored its record and stopped before it read the suppression markers (a crash
/// in between, on an adapter that checks after writing): the redelivery finds the version stored
/// and must still run the check, not count a duplicate that goes on to be matched.
#[tokio::test]
async fn a_redelivery_after_a_crash_between_write_and_marker_check_is_still_suppressed() {
    let hub = erasing_hub();
    seed_anna(&hub).await;
    let req = request(&hub, json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-100"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    let mut again = anna_web();
    again["sourceSystem"] = json!("partner");
    let again = validate(hub.registry(), &again, 0).expect("valid");
    // The first delivery's write, without the check that a crash cut off.
    assert_eq!(hub.store().put_source(&again, &[]).await.expect("write"), SourceWrite::Written);
    assert_eq!(hub.ingest(&again).await.expect("redelivery"), SourceWrite::Suppressed);
    assert_eq!(hub.store().get_source(&again.key).await.expect("get"), None, "the stored copy is taken back");
    // A duplicate of a record stored and merged long before the erasure is still a duplicate.
    let bob = validate(hub.registry(), &bob(), 0).expect("valid");
    hub.ingest(&bob).await.expect("ingest");
    hub.process(&bob.key).await.expect("merge");
    assert_eq!(hub.ingest(&bob).await.expect("duplicate"), SourceWrite::Stale { stored_seq: 1 });
}

/// Suppression mode `hold`: a newer version of another person's record that carries an erased
/// subject's identifier is held. Its golden record's next merge must not read the held version:
/// the erased identifier would flow into the golden record and its events.
#[tokio::test]
async fn a_held_version_is_never_merged_into_its_golden_record() {
    let hub = holding_hub();
    seed_anna(&hub).await;
    let bob_id = feed(&hub, bob()).await.1.expect("bob").outcome.golden_id().to_owned();
    let req = request(&hub, json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");

    let mut update = bob();
    update["sourceSeq"] = json!(2);
    update["attributes"]["email"] = json!("anna.kowalski@example.com");
    let update = validate(hub.registry(), &update, 0).expect("valid");
    assert_eq!(hub.ingest(&update).await.expect("ingest"), SourceWrite::Held);
    let mut erp = bob();
    erp["sourceSystem"] = json!("erp");
    let (_, report) = feed(&hub, erp).await;
    assert_eq!(report.expect("merged").outcome.golden_id(), bob_id, "bob's erp record joins bob");
    let g = hub.store().get_golden("customer", &bob_id).await.expect("get").expect("bob");
    let text = format!("{g:?}").to_lowercase();
    assert!(!text.contains("anna.kowalski"), "the held version's e-mail reached the golden record: {text}");
    assert!(!g.members.contains(&key("crm", "c-200")), "a held version is no member");
    let held = hub.store().get_source(&key("crm", "c-200")).await.expect("get").expect("held");
    assert!(held.held && held.golden_id.is_none(), "a held version points at no golden record");
    let events = format!("{:?}", hub.store().pending_events(1000).await.expect("outbox")).to_lowercase();
    assert!(!events.contains("anna.kowalski"), "an event carries the held version's e-mail");
}

/// The same request again after its run completed: when the subject is found again (here the
/// source key came back with other identifiers, so no marker stopped it), a new run starts under
/// a new id that names the earlier receipt; when nothing is found, the completed receipt answers.
#[tokio::test]
async fn a_repeated_request_after_completion_runs_again_when_the_subject_is_back() {
    let hub = erasing_hub();
    seed_anna(&hub).await;
    let body = json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-100"}});
    let (first, _) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("accept");
    let first = erasure::process(&hub, &first.request_id).await.expect("process");
    let (same, created) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("nothing back yet");
    assert!(!created && same.request_id == first.request_id, "nothing found again: the completed receipt");

    let back = customer(
        "crm",
        "c-100",
        9,
        json!({"given_name": "Zoe", "family_name": "Quist", "email": "zoe.quist@example.net", "postcode": "EH1 1AA"}),
    );
    assert_eq!(feed(&hub, back).await.0, SourceWrite::Written, "a key that comes back with other identifiers");
    let (second, created) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("accept again");
    assert!(created, "a new run");
    assert_ne!(second.request_id, first.request_id);
    assert_eq!(second.previous_request_id.as_deref(), Some(first.request_id.as_str()));
    assert_eq!(second.status, ReceiptStatus::Accepted);
    let (twice, created) = erasure::accept(&hub, &request(&hub, body.clone())).await.expect("accept a third time");
    assert!(!created && twice.request_id == second.request_id, "the new run is idempotent too");
    let done = erasure::process(&hub, &second.request_id).await.expect("process");
    assert_eq!(done.removed.get("sources"), Some(&1), "{:?}", done.removed);
    assert!(hub.store().get_source(&key("crm", "c-100")).await.expect("get").is_none());
    let earlier = erasure::receipt(hub.store(), &first.request_id).await.expect("receipt").expect("kept");
    assert_eq!(earlier.status, ReceiptStatus::Completed, "the earlier receipt stays as it was");
}

/// A source key that comes back after an erasure names a new golden record: its old golden id
/// stays erased (the API answers 410) instead of blocking the new record's creation for ever.
/// So does a key that created a golden record that stays active after a source-scope erasure.
#[tokio::test]
async fn a_returning_source_key_gets_a_new_golden_id() {
    let hub = erasing_hub();
    let anna = seed_anna(&hub).await;
    let subject = request(&hub, json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-100"}}));
    let (r, _) = erasure::accept(&hub, &subject).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    let back = customer("crm", "c-100", 9, json!({"given_name": "Zoe", "family_name": "Quist", "postcode": "EH1 1AA"}));
    let (_, report) = feed(&hub, back).await;
    let created = report.expect("merged").outcome.golden_id().to_owned();
    assert_ne!(created, anna, "a new golden id");
    let old = hub.store().get_golden("customer", &anna).await.expect("get").expect("marker");
    assert_eq!(old.status, GoldenStatus::Erased, "the erased id stays erased");
    let api = mdm_core::api::golden::get_golden(&hub, "customer", &anna, &Default::default()).await;
    assert_eq!(api.err().map(|e| e.status), Some(410));

    // Bob creates his golden record, a second record of Bob joins it, Bob's first record is
    // erased alone; when it comes back unlike itself, it creates a golden record of its own.
    let bob_id = feed(&hub, bob()).await.1.expect("bob").outcome.golden_id().to_owned();
    let mut erp = bob();
    erp["sourceSystem"] = json!("erp");
    assert_eq!(feed(&hub, erp).await.1.expect("erp").outcome.golden_id(), bob_id);
    let source = request(
        &hub,
        json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": "crm", "sourceId": "c-200"}}),
    );
    let (r, _) = erasure::accept(&hub, &source).await.expect("accept");
    erasure::process(&hub, &r.request_id).await.expect("process");
    let back =
        customer("crm", "c-200", 5, json!({"given_name": "Yan", "family_name": "Ortiz", "postcode": "CF10 1AA"}));
    let (_, report) = feed(&hub, back).await;
    let created = report.expect("merged").outcome.golden_id().to_owned();
    assert_ne!(created, bob_id);
    let bob_g = hub.store().get_golden("customer", &bob_id).await.expect("get").expect("bob");
    assert!(bob_g.is_active() && bob_g.members.len() == 1, "bob's golden record keeps its erp member");
}

/// Records merged into a golden record are listed on it, and erasing it erases them too.
#[tokio::test]
async fn merged_records_are_listed_and_erased_with_their_survivor() {
    let hub = erasing_hub();
    // Two golden records of one person, then a record that links both.
    let a =
        customer("crm", "m-1", 1, json!({"given_name": "Lena", "family_name": "Moss", "email": "lena@example.com"}));
    let b =
        customer("webshop", "m-2", 1, json!({"given_name": "Lena", "family_name": "Moss", "phone": "07400 900123"}));
    let ga = feed(&hub, a).await.1.expect("a").outcome.golden_id().to_owned();
    let gb = feed(&hub, b).await.1.expect("b").outcome.golden_id().to_owned();
    assert_ne!(ga, gb);
    let both = customer(
        "erp",
        "m-3",
        1,
        json!({"given_name": "Lena", "family_name": "Moss", "email": "lena@example.com", "phone": "07400 900123", "date_of_birth": "1990-01-02"}),
    );
    let survivor = feed(&hub, both).await.1.expect("both").outcome.golden_id().to_owned();
    let s = hub.store().get_golden("customer", &survivor).await.expect("get").expect("survivor");
    let loser = if survivor == ga { &gb } else { &ga };
    assert_eq!(s.merged_from, vec![loser.clone()], "the loser is listed on the survivor");
    let req = request(&hub, json!({"entityType": "customer", "goldenId": survivor}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    let done = erasure::process(&hub, &r.request_id).await.expect("process");
    assert_eq!(done.removed["goldens"], 2, "{:?}", done.removed);
    let l = hub.store().get_golden("customer", loser).await.expect("get").expect("loser");
    assert_eq!(l.status, GoldenStatus::Erased);
    assert!(format!("{l:?}").to_lowercase().find("lena").is_none(), "the loser keeps no value");
}

/// What the erasure handler dead-letters holds no identifier value, and an accepted request
/// stays re-drivable by its id.
#[test]
fn dead_lettered_erasure_messages_hold_no_identifier() {
    let event = json!({"id": "e-1", "source": "privacy.requests", "detail-type": "ErasureRequested",
        "detail": {"entityType": "customer", "identifiers": {"email": "anna@example.com", "phone": "07400 900461"},
                   "note": "Anna Kowalski asked on the phone", "all": true}});
    let out = erasure::redacted_message(&event.to_string());
    for v in ["anna@example.com", "07400", "Kowalski"] {
        assert!(!out.contains(v), "{v} in {out}");
    }
    let back: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(back["detail"]["identifiers"]["email"], "[redacted]");
    assert_eq!((back["source"].as_str(), back["detail"]["all"].as_bool()), (Some("privacy.requests"), Some(true)));
    assert_eq!(erasure::redacted_message(r#"{"requestId":"er1","x":"anna@example.com"}"#), r#"{"requestId":"er1"}"#);
    let raw = erasure::redacted_message("anna@example.com is not json");
    assert!(!raw.contains("anna"), "{raw}");
}

/// Values of this Anna's records (as sent and as normalised) that no one else seeded has (the erp
/// record under review is another Anna Kowalski, born the same day).
const ANNA_VALUES: [&str; 5] = ["anna.kowalski@example.com", "kowalsky", "7400900461", "harbour", "ls1 4ap"];

/// Whether an active golden record holds one of `values` (case-insensitive).
fn active_holders(store: &MemoryStore, values: &[&str]) -> Vec<String> {
    store
        .active_goldens("customer")
        .into_iter()
        .filter(|g| {
            let text = format!("{g:?}").to_lowercase();
            values.iter().any(|v| text.contains(v))
        })
        .map(|g| g.golden_id)
        .collect()
}

/// Two records of the subject are in the pipeline while the erasure runs: one stored and
/// matched, its decision waiting in the merge queue; one stored, waiting in the match queue.
/// Both are stopped by the markers when their turn comes: no golden record gets the subject back.
#[tokio::test]
async fn records_waiting_in_the_pipeline_during_an_erasure_are_stopped() {
    let hub = erasing_hub();
    seed_anna(&hub).await;
    let mut partner = anna_web();
    partner["sourceSystem"] = json!("partner");
    partner["verified"] = json!(["email"]);
    let partner = validate(hub.registry(), &partner, 0).expect("valid");
    assert_eq!(hub.ingest(&partner).await.expect("ingest"), SourceWrite::Written);
    let (_, decided) = hub.match_source(&partner.key).await.expect("match");
    let mut erp = anna_crm();
    erp["sourceSystem"] = json!("ledger");
    let erp = validate(hub.registry(), &erp, 0).expect("valid");
    assert_eq!(hub.ingest(&erp).await.expect("ingest"), SourceWrite::Written);

    let req = request(&hub, json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    let done = erasure::process(&hub, &r.request_id).await.expect("process");
    assert_eq!(done.status, ReceiptStatus::Completed);

    let merged = hub.merge_decision(&partner.key, decided, Some(partner.seq), false).await;
    assert!(matches!(merged, Err(mdm_core::HubError::Suppressed(_))), "the merge queue's decision: {merged:?}");
    let matched = hub.process(&erp.key).await;
    assert!(matches!(matched, Err(mdm_core::HubError::Suppressed(_))), "the match queue's record: {matched:?}");
    assert_eq!(active_holders(hub.store(), &ANNA_VALUES), Vec::<String>::new(), "a golden record holds anna again");
    for k in [&partner.key, &erp.key] {
        assert_eq!(hub.store().get_source(k).await.expect("get"), None, "{k} is taken back");
    }
    let events = format!("{:?}", hub.store().pending_events(1000).await.expect("outbox")).to_lowercase();
    assert!(!events.contains("anna.kowalski"), "no event carries the subject again");
}

/// A merge that checked the markers just before the erasure wrote them takes effect after the
/// erasure looked the subject up: the erasure looks again once the markers are settled, and
/// erases the golden record that merge made (here another golden record under the e-mail).
#[tokio::test]
async fn a_golden_record_made_while_the_markers_were_written_is_found() {
    let hub = flaky_anna().await;
    let req = ErasureRequest::parse(
        &hub,
        &json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}, "all": true}),
        "privacy-team",
    )
    .expect("valid");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    // Another Anna with that e-mail (a household member: another name and birth date).
    let zofia = customer(
        "partner",
        "p-4",
        1,
        json!({"given_name": "Zofia", "family_name": "Kowalski", "date_of_birth": "2001-02-03", "email": "anna.kowalski@example.com"}),
    );
    let zofia = validate(hub.registry(), &zofia, 0).expect("valid");
    hub.store().inner.put_source(&zofia, &[]).await.expect("stored before the markers");
    hub.store().skip_suppression_checks_once();
    let report = hub.process(&zofia.key).await.expect("merged, its check before the markers");
    let made = report.outcome.golden_id().to_owned();
    assert!(!r.golden_ids.contains(&made), "not known when the request was accepted");
    let done = erasure::process(&hub, &r.request_id).await.expect("process");
    assert!(done.golden_ids.contains(&made), "found when the erasure looked again: {:?}", done.golden_ids);
    let g = hub.store().get_golden("customer", &made).await.expect("get").expect("marker");
    assert_eq!(g.status, GoldenStatus::Erased);
    assert!(done.public_view().get("lookupKeys").is_none(), "no index key leaves the hub");
    let stored = erasure::receipt(hub.store(), &r.request_id).await.expect("receipt").expect("stored");
    assert!(stored.lookup_keys.is_empty(), "the identifiers' index keys are dropped once used");
}

/// Runs `f` until it succeeds or fails for good (a store error is retried, as a queue redelivers
/// a message; at most 5 times).
async fn until_done<T, E: std::fmt::Debug, F, Fut>(mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last = None;
    for _ in 0..5 {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("five attempts"))
}

/// One scenario on a store that crashes at its `k`-th call: an erasure by e-mail races a record
/// waiting in the merge queue, one waiting in the match queue and one arriving at ingest; every
/// step is retried as its queue would. Returns the store's calls when nothing crashed.
async fn crashing_scenario(k: i64, lost: bool) -> (u64, bool) {
    let hub = flaky_anna().await;
    let mut partner = anna_web();
    partner["sourceSystem"] = json!("partner");
    partner["verified"] = json!(["email"]);
    let partner = validate(hub.registry(), &partner, 0).expect("valid");
    hub.ingest(&partner).await.expect("ingest");
    let (_, decided) = hub.match_source(&partner.key).await.expect("match");
    let mut ledger = anna_crm();
    ledger["sourceSystem"] = json!("ledger");
    let ledger = validate(hub.registry(), &ledger, 0).expect("valid");
    hub.ingest(&ledger).await.expect("ingest");
    let mut late = anna_crm();
    late["sourceSystem"] = json!("late");
    let late = validate(hub.registry(), &late, 0).expect("valid");

    let start = hub.store().calls();
    hub.store().crash_at(k, lost);
    let req = ErasureRequest::parse(
        &hub,
        &json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}}),
        "privacy-team",
    )
    .expect("valid");
    let (r, _) = until_done(|| erasure::accept(&hub, &req)).await.expect("accepted in the end");
    let wrote = until_done(|| hub.ingest(&late)).await.expect("ingest answers in the end");
    let done = until_done(|| erasure::process(&hub, &r.request_id)).await.expect("completed in the end");
    let retryable = |e: &mdm_core::HubError| e.is_retryable();
    let merge = || hub.merge_decision(&partner.key, decided.clone(), Some(partner.seq), false);
    for _ in 0..5 {
        match merge().await {
            Err(e) if retryable(&e) => continue,
            _ => break,
        }
    }
    for key in [&ledger.key, &late.key] {
        if key == &late.key && wrote != SourceWrite::Written {
            continue;
        }
        for _ in 0..5 {
            match hub.process(key).await {
                Err(e) if retryable(&e) => continue,
                _ => break,
            }
        }
    }
    let used = hub.store().calls() - start;
    hub.store().crash_at(-1, false);
    assert_eq!(done.status, ReceiptStatus::Completed, "crash at call {k} (lost {lost})");
    let receipt = erasure::receipt(hub.store(), &r.request_id).await.expect("receipt").expect("stored");
    assert_eq!(receipt.status, ReceiptStatus::Completed);
    let text = hub.store().inner.dump().to_lowercase();
    let left: Vec<&str> = ANNA_VALUES.iter().copied().filter(|v| text.contains(v)).collect();
    assert_eq!(left, Vec::<&str>::new(), "crash at call {k} (lost {lost}): the byte search finds them");
    assert_eq!(active_holders(&hub.store().inner, &ANNA_VALUES), Vec::<String>::new(), "crash at {k} ({lost})");
    (used, used >= k as u64)
}

/// A crash at every store call of an erasure racing the pipeline — before the call, and after
/// a write with its answer lost — and the retries: the receipt ends completed, the byte search
/// finds none of the subject's values, no active golden record holds them.
#[tokio::test]
async fn a_crash_at_every_step_of_an_erasure_racing_the_pipeline_leaves_nothing() {
    let (calls, _) = crashing_scenario(-1, false).await;
    assert!(calls > 30, "a scenario of {calls} calls");
    for k in 1..=calls as i64 {
        for lost in [false, true] {
            let (_, crashed) = crashing_scenario(k, lost).await;
            assert!(crashed, "call {k} was reached");
        }
    }
}

/// The same for a source-scope erasure, at every store call.
#[tokio::test]
async fn a_crash_at_every_step_of_a_source_scope_erasure_leaves_nothing() {
    let run = |k: i64, lost: bool| async move {
        let hub = flaky_anna().await;
        let start = hub.store().calls();
        hub.store().crash_at(k, lost);
        let body =
            json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": "webshop", "sourceId": "w-9"}});
        let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("valid");
        let (r, _) = until_done(|| erasure::accept(&hub, &req)).await.expect("accepted");
        let done = until_done(|| erasure::process(&hub, &r.request_id)).await.expect("completed");
        assert_eq!((done.status, done.removed.get("sources")), (ReceiptStatus::Completed, Some(&1)), "{k} {lost}");
        let text = hub.store().inner.dump().to_lowercase();
        for v in ["kowalsky", "\"ana\""] {
            assert!(!text.contains(v), "crash at call {k} (lost {lost}): {v} is still stored");
        }
        hub.store().calls() - start
    };
    let calls = run(-1, false).await;
    for k in 1..=calls as i64 {
        for lost in [false, true] {
            run(k, lost).await;
        }
    }
}

/// `mdm reindex` read a golden record, an erasure removed it, and then the reindex wrote its
/// index entries and claims again (they carry no condition on the record): it takes them out
/// again, so nothing names the erased subject's identifiers.
#[tokio::test]
async fn a_reindex_racing_an_erasure_leaves_no_entry_behind() {
    use mdm_core::store::{BlockIndex, ClaimStore};
    let hub = erasing_hub();
    let anna = seed_anna(&hub).await;
    let stale = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    let req = request(&hub, json!({"entityType": "customer", "identifiers": {"email": "anna.kowalski@example.com"}}));
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    assert_eq!(erasure::process(&hub, &r.request_id).await.expect("erase").status, ReceiptStatus::Completed);
    hub.reassert_entries(&stale).await.expect("reassert");
    let keys: Vec<_> = stale.index_keys.iter().cloned().collect();
    let hits = hub.store().lookup("customer", &keys, &[usize::MAX / 2]).await.expect("lookup");
    assert!(hits.iter().all(|h| !h.golden_ids.contains(&anna)), "an entry names the erased record");
    let claims: Vec<_> = stale.claims.iter().cloned().collect();
    let held = hub.store().get_claims("customer", &claims).await.expect("claims");
    assert!(held.values().all(|g| *g != anna), "a claim names the erased record");
}
