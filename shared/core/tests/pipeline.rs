//! The domain core end to end on the in-process store: matching, survivorship, ordering,
//! effective changes, bridging merges.
mod common;

use common::*;
use mdm_core::matching::MatchDecision;
use mdm_core::plan::MergeOutcome;
use mdm_core::store::{BlockIndex, ClaimStore, GoldenStore, IndexKey, ReviewStore, SourceStore, SourceWrite};
use mdm_core::GoldenStatus;
use serde_json::json;

#[tokio::test]
async fn one_person_from_two_systems_becomes_one_golden_record_with_provenance() {
    let hub = hub();
    let (_, a) = feed(&hub, anna_crm()).await;
    let (_, b) = feed(&hub, anna_web()).await;
    let (_, c) = feed(&hub, anna_crm_dup()).await;
    let (a, b, c) = (a.expect("a"), b.expect("b"), c.expect("c"));
    assert!(matches!(a.outcome, MergeOutcome::Created { .. }));
    assert_eq!(b.outcome, MergeOutcome::Linked { golden_id: a.outcome.golden_id().to_owned() }, "typos still link");
    assert_eq!(c.outcome, MergeOutcome::Linked { golden_id: a.outcome.golden_id().to_owned() });

    let g = hub.store().get_golden("customer", a.outcome.golden_id()).await.expect("get").expect("exists");
    assert_eq!(g.members.len(), 3);
    assert_eq!(g.version, 3, "created + two effective links");
    let given = &g.attributes["given_name"];
    assert_eq!((given.value.as_str(), given.source()), ("anna", "crm"), "crm wins by source priority");
    assert_eq!(format!("{:?}", given.rule), "SourcePriority");
    assert_eq!(g.attributes["family_name"].value, "kowalski");
    assert_eq!(g.attributes["date_of_birth"].value, "1984-07-21", "most frequent birth date wins over the typo");
    assert_eq!(g.attributes["country"].value, "GB");
    for (name, attr) in g.attributes.iter() {
        assert!(!attr.source().is_empty() && !attr.source_id().is_empty(), "{name} names its source");
    }
    // Every member points back at the golden record.
    for k in g.members.iter() {
        let s = hub.store().get_source(k).await.expect("get").expect("exists");
        assert_eq!(s.golden_id.as_deref(), Some(g.golden_id.as_str()));
    }
    let history = hub.store().history("customer", &g.golden_id).await.expect("history");
    assert_eq!(history.len(), 3);
    // The latest version is the record as stewards and subscribers see it, without the matching
    // state that follows from its members.
    let latest = &history[2].snapshot;
    assert_eq!((&latest.attributes, &latest.members, latest.version), (&g.attributes, &g.members, g.version));
    assert!(!g.index_keys.is_empty() && !g.match_values.is_empty());
    assert!(latest.index_keys.is_empty() && latest.match_values.is_empty() && latest.claims.is_empty());

    let (_, other) = feed(&hub, bob()).await;
    let other = other.expect("bob");
    assert!(matches!(other.outcome, MergeOutcome::Created { .. }), "an unrelated person gets another golden record");
    assert_ne!(other.outcome.golden_id(), g.golden_id);
}

#[tokio::test]
async fn a_mid_score_pair_opens_a_review_with_an_explanation() {
    let hub = hub();
    let (_, a) = feed(&hub, anna_crm()).await;
    let anna_id = a.expect("a").outcome.golden_id().to_owned();
    let record = mdm_core::record::validate(hub.registry(), &anna_maybe(), 0).expect("valid");
    hub.ingest(&record).await.expect("ingest");
    let (_, result) = hub.match_source(&record.key).await.expect("match");
    assert_eq!(result.decision, MatchDecision::Review { golden_ids: vec![anna_id.clone()] }, "{result:#?}");
    let top = &result.candidates[0];
    let m = &hub.registry().get("customer").expect("schema").matching;
    assert!(top.score >= m.review_threshold && top.score < m.link_threshold, "between the thresholds: {}", top.score);
    let explained: Vec<&str> = top.attributes.iter().map(|a| a.attribute.as_str()).collect();
    for attr in ["given_name", "family_name", "date_of_birth", "email", "phone", "postcode"] {
        assert!(explained.contains(&attr), "{attr} explained in {explained:?}");
    }
    let sum: f64 = top.attributes.iter().map(|a| a.weight).sum();
    assert!((sum - top.score).abs() < 0.01, "the explanation adds up to the score");

    let report = hub.merge_source(&record.key, result).await.expect("merge");
    assert!(matches!(report.outcome, MergeOutcome::Created { .. }), "the record keeps its own golden record");
    let task_id = report.review_task.expect("a review task");
    assert!(report.events.contains(&"ReviewTaskOpened"));
    let task = hub.store().get_review("customer", &task_id).await.expect("get").expect("stored");
    assert_eq!(task.candidate_golden_ids, vec![anna_id]);
    assert!(!task.explanation.is_empty());

    // The same delivery again opens no second task and changes nothing.
    let again = hub.process(&record.key).await.expect("again");
    assert_eq!(again.review_task, None);
    assert!(!again.effective);
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_one() {
    let hub = hub();
    let v2 =
        customer("crm", "c-1", 2, json!({"given_name": "Jane", "family_name": "Doe", "email": "jane@new.example"}));
    let v1 =
        customer("crm", "c-1", 1, json!({"given_name": "Jane", "family_name": "Doe", "email": "jane@old.example"}));
    let (w, r) = feed(&hub, v2).await;
    assert_eq!(w, SourceWrite::Written);
    let golden_id = r.expect("report").outcome.golden_id().to_owned();
    let (w, r) = feed(&hub, v1).await;
    assert_eq!(w, SourceWrite::Stale { stored_seq: 2 }, "v1 after v2 is dropped");
    assert!(r.is_none());
    let stored = hub.store().get_source(&key("crm", "c-1")).await.expect("get").expect("exists");
    assert_eq!(stored.seq, 2);
    let g = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("exists");
    assert_eq!(g.attributes["email"].value, "jane@new.example");
    assert_eq!(g.version, 1);
}

#[tokio::test]
async fn the_same_record_three_times_is_one_effective_change() {
    let hub = hub();
    let rec = anna_crm();
    let (_, first) = feed(&hub, rec.clone()).await;
    let first = first.expect("first");
    assert!(first.effective);
    // Exactly the same delivery twice more: stale.
    for _ in 0..2 {
        let (w, _) = feed(&hub, rec.clone()).await;
        assert_eq!(w, SourceWrite::Stale { stored_seq: 1 });
    }
    // Re-processing the stored record (a redelivered match message) changes nothing either.
    let again = hub.process(&key("crm", "c-100")).await.expect("again");
    assert!(!again.effective);
    assert!(again.events.is_empty());
    assert!(matches!(again.outcome, MergeOutcome::Unchanged { .. }));
    // Same content with a higher sequence number: stored, but not an effective change.
    let mut later = rec.clone();
    later["sourceSeq"] = json!(5);
    later["sourceUpdatedAt"] = json!("2026-01-01T00:00:01Z");
    let (w, r) = feed(&hub, later).await;
    assert_eq!(w, SourceWrite::Written);
    let r = r.expect("report");
    assert!(!r.effective, "{:?}", r.outcome);
    let g = hub.store().get_golden("customer", first.outcome.golden_id()).await.expect("get").expect("exists");
    assert_eq!(g.version, 1);
    assert_eq!(hub.store().history("customer", &g.golden_id).await.expect("history").len(), 1);
    assert_eq!(hub.store().counts().outbox, 1, "one event in all");
}

#[tokio::test]
async fn a_bridging_record_merges_two_golden_records() {
    let hub = hub();
    // Two records of one person that share nothing strong: two golden records.
    let a = customer(
        "crm",
        "c-1",
        1,
        json!({"given_name": "Priya", "family_name": "Raman", "email": "priya.raman@example.com",
                                             "date_of_birth": "1990-02-14"}),
    );
    let b = customer(
        "webshop",
        "w-1",
        1,
        json!({"given_name": "Priya", "family_name": "Raman", "phone": "07400 900100",
                                                 "postcode": "EH1 1YZ"}),
    );
    let ga = feed(&hub, a).await.1.expect("a").outcome.golden_id().to_owned();
    let gb = feed(&hub, b).await.1.expect("b").outcome.golden_id().to_owned();
    assert_ne!(ga, gb, "not enough evidence to link yet");
    // A record with the e-mail of one and the phone of the other bridges them.
    let bridge = customer(
        "erp",
        "e-1",
        1,
        json!({"given_name": "Priya", "family_name": "Raman", "email": "priya.raman@example.com",
                                                  "phone": "07400 900100", "date_of_birth": "1990-02-14", "postcode": "EH1 1YZ"}),
    );
    let report = feed(&hub, bridge).await.1.expect("bridge");
    let MergeOutcome::Merged { golden_id: survivor, merged } = &report.outcome else {
        panic!("expected a merge, got {:?}", report.outcome)
    };
    assert_eq!(merged.len(), 1);
    let loser = &merged[0];
    assert!([&ga, &gb].contains(&survivor) && [&ga, &gb].contains(&loser) && survivor != loser);
    assert!(report.events.contains(&"GoldenRecordsMerged"));

    let l = hub.store().get_golden("customer", loser).await.expect("get").expect("exists");
    assert_eq!(l.status, GoldenStatus::MergedInto { survivor: survivor.clone() }, "the loser points to the survivor");
    let s = hub.store().get_golden("customer", survivor).await.expect("get").expect("exists");
    assert_eq!(s.members.len(), 3, "no member is lost");
    for k in [key("crm", "c-1"), key("webshop", "w-1"), key("erp", "e-1")] {
        assert!(s.members.contains(&k), "{k} is a member");
        let src = hub.store().get_source(&k).await.expect("get").expect("exists");
        assert_eq!(src.golden_id.as_ref(), Some(survivor), "{k} is re-pointed");
    }
    // The loser's index entries now lead to the survivor.
    let probe =
        customer("crm", "c-9", 1, json!({"given_name": "Priya", "family_name": "Raman", "phone": "07400 900100"}));
    let rec = mdm_core::record::validate(hub.registry(), &probe, 0).expect("valid");
    let m = hub.match_record(&rec).await.expect("match");
    assert!(m.candidates.iter().all(|c| &c.golden_id == survivor), "{:?}", m.candidates);
}

#[tokio::test]
async fn an_over_full_blocking_key_is_skipped_and_counted() {
    let registry = std::sync::Arc::new(
        mdm_core::SchemaRegistry::from_texts([(
            "c.toml".to_string(),
            include_str!("../entities/customer.toml").replace("max_block_size = 100", "max_block_size = 3"),
        )])
        .expect("schema"),
    );
    let hub = mdm_core::Hub::new(registry, mdm_core::store::memory::MemoryStore::new());
    for (i, name) in ["Alice", "Bogdan", "Carol", "Dmitri", "Erin"].iter().enumerate() {
        let r = customer(
            "crm",
            &format!("s{i}"),
            1,
            json!({"given_name": name, "family_name": "Smith",
                                                            "date_of_birth": format!("1980-0{}-1{i}", i + 1)}),
        );
        let rec = mdm_core::record::validate(hub.registry(), &r, 0).expect("valid");
        hub.ingest(&rec).await.expect("ingest");
        hub.process(&rec.key).await.expect("process");
    }
    let probe =
        customer("crm", "p", 1, json!({"given_name": "X", "family_name": "Smith", "date_of_birth": "1980-05-05"}));
    let rec = mdm_core::record::validate(hub.registry(), &probe, 0).expect("valid");
    let m = hub.match_record(&rec).await.expect("match");
    assert_eq!(m.blocking.too_common, vec!["family_name.soundex+date_of_birth.year".to_string()]);
    assert_eq!(m.blocking.candidates, 0);
}

#[tokio::test]
async fn decisions_made_before_either_merge_still_make_one_golden_record() {
    // The match queue can run ahead of the merge queue: both records are decided NEW before
    // either is merged. The second merge must notice that a golden record now holds its strong
    // keys, decide again, and link.
    let hub = hub();
    let a = mdm_core::record::validate(hub.registry(), &anna_crm(), 0).expect("valid");
    let b = mdm_core::record::validate(hub.registry(), &anna_web(), 0).expect("valid");
    hub.ingest(&a).await.expect("ingest");
    hub.ingest(&b).await.expect("ingest");
    let (_, ra) = hub.match_source(&a.key).await.expect("match");
    let (_, rb) = hub.match_source(&b.key).await.expect("match");
    assert_eq!((ra.decision.clone(), rb.decision.clone()), (MatchDecision::New, MatchDecision::New));
    let first = hub.merge_source(&a.key, ra).await.expect("merge a");
    let second = hub.merge_source(&b.key, rb).await.expect("merge b");
    assert_eq!(second.outcome, MergeOutcome::Linked { golden_id: first.outcome.golden_id().to_owned() });
    assert_eq!(hub.store().counts().goldens_active, 1);
}

#[tokio::test]
async fn two_different_valid_gtins_never_link_automatically() {
    let hub = hub();
    let product = |id: &str, gtin: &str| {
        json!({"entityType": "product", "sourceSystem": "erp", "sourceId": id, "sourceSeq": 1, "attributes": {
            "gtin": gtin, "name": "Nordic Oak Espresso Beans", "brand": "Nordic Oak", "category": "grocery",
            "size": "500 g", "price": "11.99", "currency": "GBP"}})
    };
    let a = feed(&hub, product("P1", "4006381333931")).await.1.expect("a");
    let b = feed(&hub, product("P2", "5000000000012")).await.1.expect("b");
    assert_ne!(a.outcome.golden_id(), b.outcome.golden_id(), "different GTINs are different products");
    assert!(b.review_task.is_some(), "but alike enough for a steward to look");
    let c = feed(&hub, product("P3", "4006381333931")).await.1.expect("c");
    assert_eq!(c.outcome.golden_id(), a.outcome.golden_id(), "the same GTIN links");
    // A record without a GTIN resembles both: it joins one of them and does not merge the two.
    let mut bridge = product("P4", "");
    bridge["attributes"].as_object_mut().expect("attributes").remove("gtin");
    let d = feed(&hub, bridge).await.1.expect("d");
    assert!(matches!(d.outcome, MergeOutcome::Linked { .. }), "{:?}", d.outcome);
    assert!([a.outcome.golden_id(), b.outcome.golden_id()].contains(&d.outcome.golden_id()));
    assert_eq!(hub.store().counts().goldens_active, 2, "two products, still");
}

#[tokio::test]
async fn fuzzy_duplicates_decided_before_either_merge_still_link() {
    // No strong key in common (no e-mail, phone or id): only blocking keys. Both decided NEW
    // before either merged; the second merge sees a golden record it did not consider under its
    // blocking keys, decides again and links.
    let hub = hub();
    let a = mdm_core::record::validate(
        hub.registry(),
        &customer(
            "crm",
            "f1",
            1,
            json!({"given_name": "Jonathan",
        "family_name": "Smith", "date_of_birth": "1971-03-09", "postcode": "YO1 7HH", "locality": "York",
        "address_line1": "Kings Road", "street_number": "14"}),
        ),
        0,
    )
    .expect("valid");
    let b = mdm_core::record::validate(
        hub.registry(),
        &customer(
            "erp",
            "f2",
            1,
            json!({"given_name": "Jonathon",
        "family_name": "Smyth", "date_of_birth": "1971-03-09", "postcode": "YO17HH", "locality": "York",
        "address_line1": "Kings Rd", "street_number": "14"}),
        ),
        0,
    )
    .expect("valid");
    for r in [&a, &b] {
        hub.ingest(r).await.expect("ingest");
    }
    let (_, ra) = hub.match_source(&a.key).await.expect("match");
    let (_, rb) = hub.match_source(&b.key).await.expect("match");
    assert_eq!(rb.decision, MatchDecision::New);
    let first = hub.merge_source(&a.key, ra).await.expect("merge a");
    let second = hub.merge_source(&b.key, rb).await.expect("merge b");
    assert_eq!(second.outcome, MergeOutcome::Linked { golden_id: first.outcome.golden_id().to_owned() });
}

#[tokio::test]
async fn a_decision_for_an_older_version_is_made_again() {
    let hub = hub();
    let anna = feed(&hub, anna_crm()).await.1.expect("anna");
    // v1 of a web-shop record looks like Anna; its decision is queued ...
    let v1 = mdm_core::record::validate(hub.registry(), &anna_web(), 0).expect("valid");
    hub.ingest(&v1).await.expect("ingest");
    let (_, decided_for_v1) = hub.match_source(&v1.key).await.expect("match");
    assert!(matches!(decided_for_v1.decision, MatchDecision::Link { .. }));
    // ... but v2, someone else entirely, is stored before the merge runs.
    let mut v2 = customer(
        "webshop",
        "w-9",
        2,
        json!({"given_name": "Bob", "family_name": "Okafor",
        "date_of_birth": "1962-11-03", "email": "bob.okafor@example.org"}),
    );
    v2["sourceUpdatedAt"] = json!("2026-02-01T00:00:00Z");
    let v2 = mdm_core::record::validate(hub.registry(), &v2, 0).expect("valid");
    hub.ingest(&v2).await.expect("ingest");
    let report = hub.merge_decision(&v1.key, decided_for_v1, Some(1), false).await.expect("merge");
    assert!(matches!(report.outcome, MergeOutcome::Created { .. }), "{:?}", report.outcome);
    assert_ne!(report.outcome.golden_id(), anna.outcome.golden_id(), "v2 is not linked to Anna on v1's decision");
}

/// The merge handler reads the queued record from a replica first: a cross-reference the replica
/// missed, or one a steward has changed since, is caught by the plan and read again.
#[tokio::test]
async fn a_stale_cross_reference_from_a_replica_is_read_again() {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let mut ids = Vec::new();
    for input in [anna_crm(), bob()] {
        let r = mdm_core::record::validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        ids.push(hub.process(&r.key).await.expect("process").outcome.golden_id().to_owned());
    }
    let (anna, bob_id) = (ids[0].clone(), ids[1].clone());
    let web = mdm_core::record::validate(hub.registry(), &anna_web(), 0).expect("valid");
    hub.ingest(&web).await.expect("ingest");
    let (_, decided) = hub.match_source(&web.key).await.expect("match");
    let first = hub.merge_decision(&web.key, decided.clone(), Some(web.seq), false).await.expect("merge");
    assert_eq!(first.outcome, MergeOutcome::Linked { golden_id: anna.clone() });
    assert_eq!(first.attempts, 1);

    // A duplicate delivery reads a replica that has not seen the cross-reference yet.
    hub.store().stale_xref(None);
    let again = hub.merge_decision(&web.key, decided.clone(), Some(web.seq), false).await.expect("merge");
    assert_eq!(again.attempts, 2, "the stale read is noticed and the record read again");
    assert_eq!(again.outcome, MergeOutcome::Unchanged { golden_id: anna.clone() });

    // A replica still naming a golden record that no longer lists the record.
    hub.store().stale_xref(Some(&bob_id));
    let third = hub.merge_decision(&web.key, decided, Some(web.seq), false).await.expect("merge");
    assert_eq!(third.attempts, 2);
    assert_eq!(third.outcome, MergeOutcome::Unchanged { golden_id: anna.clone() });
    let bob_golden = hub.store().get_golden("customer", &bob_id).await.expect("get").expect("bob");
    assert_eq!(bob_golden.status, GoldenStatus::Active, "Bob's golden record is not merged into Anna's");
    assert_eq!(bob_golden.members.len(), 1);
    let anna_golden = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    assert_eq!(anna_golden.members.len(), 2);
}

/// An adapter that writes cross-references after its transaction can lose one in a crash; the
/// queue's next delivery finds the golden record that lists the record and writes it.
#[tokio::test]
async fn a_lost_cross_reference_is_written_by_the_retry() {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    // A sparse record: matched against its own golden record it would not link, so the retry
    // cannot rely on a re-match.
    for (input, full) in [
        (customer("crm", "sparse-1", 1, json!({"given_name": "Ola", "family_name": "Berg"})), false),
        (anna_crm(), true),
    ] {
        let r = mdm_core::record::validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        let (_, decided) = hub.match_source(&r.key).await.expect("match");
        assert_eq!(decided.decision, MatchDecision::New);
        hub.store().lose_xrefs_once();
        assert!(hub.merge_decision(&r.key, decided.clone(), Some(r.seq), false).await.is_err(), "the crash");
        let stored = hub.store().get_source(&r.key).await.expect("get").expect("stored");
        assert_eq!(stored.golden_id, None, "the cross-reference was lost");
        let again = hub.merge_decision(&r.key, decided, Some(r.seq), false).await.expect("redelivery");
        let golden_id = mdm_core::keys::golden_id_for(&r.key, stored.first_seq);
        assert_eq!(again.outcome.golden_id(), golden_id, "full record: {full}");
        let stored = hub.store().get_source(&r.key).await.expect("get").expect("stored");
        assert_eq!(stored.golden_id.as_deref(), Some(golden_id.as_str()), "the cross-reference is written");
        let golden = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("golden");
        assert_eq!(golden.members.len(), 1);
    }
}

/// A new record takes its claims without reading them first; one held by another golden record
/// (a shared family phone) fails the transaction, and the retry leaves that claim alone.
#[tokio::test]
async fn a_new_record_sharing_a_held_identifier_leaves_that_claim_alone() {
    let hub = hub();
    let anna = feed(&hub, anna_crm()).await.1.expect("anna").outcome.golden_id().to_owned();
    let piotr = mdm_core::record::validate(
        hub.registry(),
        &customer(
            "crm",
            "c-200",
            1,
            json!({"given_name": "Piotr", "family_name": "Nowak", "date_of_birth": "1951-02-03",
                   "email": "piotr.nowak@example.org", "phone": "07400 900461"}),
        ),
        0,
    )
    .expect("valid");
    hub.ingest(&piotr).await.expect("ingest");
    let (_, decided) = hub.match_source(&piotr.key).await.expect("match");
    assert_eq!(decided.decision, MatchDecision::New);
    let report = hub.merge_decision(&piotr.key, decided, Some(piotr.seq), false).await.expect("merge");
    let created = report.outcome.golden_id().to_owned();
    assert_ne!(created, anna);
    assert_eq!(report.attempts, 2, "the claim held by Anna's golden record fails the first transaction");
    let claims = hub
        .store()
        .get_claims("customer", &report.golden.claims.iter().cloned().collect::<Vec<_>>())
        .await
        .expect("claims");
    assert!(claims.values().all(|g| *g == created), "Piotr's golden record holds only its own claims");
    let anna_golden = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    let phone: Vec<IndexKey> = anna_golden.claims.iter().filter(|k| k.name().starts_with("phone")).cloned().collect();
    assert_eq!(phone.len(), 1);
    let held = hub.store().get_claims("customer", &phone).await.expect("claims");
    assert_eq!(held.get(&phone[0]), Some(&anna), "the phone stays claimed by Anna's golden record");
    assert!(!report.golden.claims.texts().any(|k| k.starts_with("phone")), "Piotr's golden record does not claim it");
}

/// A claim written ahead of a transaction that then failed names a golden record that does not
/// exist. While it is young another merge waits for that transaction (a conflict, retried);
/// once it is older than the lease the claim is taken over.
#[tokio::test]
async fn a_claim_left_by_a_failed_transaction_is_taken_over_after_the_lease() {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    use mdm_core::store::{Transactor, WriteOp};
    // The claim keys Anna's record gives (from a hub of its own).
    let other = hub();
    let keys: Vec<IndexKey> = feed(&other, anna_crm()).await.1.expect("anna").golden.claims.iter().cloned().collect();
    let email = keys.iter().find(|k| k.name().starts_with("email")).expect("an e-mail claim").clone();

    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let ghost =
        WriteOp::PutClaim { entity: "customer".into(), key: email.clone(), golden_id: "g-ghost".into(), from: None };
    hub.store().transact(vec![ghost]).await.expect("a claim left behind");
    let anna = mdm_core::record::validate(hub.registry(), &anna_crm(), 0).expect("valid");
    hub.ingest(&anna).await.expect("ingest");
    let (_, decided) = hub.match_source(&anna.key).await.expect("match");
    let own = mdm_core::keys::golden_id_for(&anna.key, anna.seq);

    hub.store().claims_taken_at([(email.to_string(), hub.now_ms())].into());
    let young = hub.merge_decision(&anna.key, decided.clone(), Some(anna.seq), false).await;
    assert!(matches!(young, Err(mdm_core::hub::HubError::TooManyConflicts(_))), "{young:?}");
    assert_eq!(hub.store().get_golden("customer", &own).await.expect("get"), None, "nothing created meanwhile");

    hub.store().claims_taken_at([(email.to_string(), hub.now_ms() - 10 * 60 * 1000)].into());
    let report = hub.merge_decision(&anna.key, decided, Some(anna.seq), false).await.expect("after the lease");
    assert_eq!(report.outcome, MergeOutcome::Created { golden_id: own.clone() });
    let held = hub.store().get_claims("customer", &keys).await.expect("claims");
    assert_eq!(held.len(), keys.len());
    assert!(held.values().all(|g| *g == own), "every claim is Anna's golden record's: {held:?}");
}

#[tokio::test]
async fn a_traced_merge_names_the_blocks_and_golden_records_it_wrote() {
    use mdm_core::hub::Touched;
    use mdm_core::HubConfig;
    let traced = {
        let config = HubConfig { trace_writes: true, ..HubConfig::default() };
        hub().with_config(config)
    };
    let (_, created) = feed(&traced, anna_crm()).await;
    let created = created.expect("merged");
    let golden = &created.golden;
    assert!(created.touched.contains(&Touched::golden("customer", &golden.golden_id)));
    for k in golden.index_keys.iter() {
        assert!(created.touched.contains(&Touched::block("customer", k)), "block {k}");
        assert!(!created.touched.contains(&Touched::full_block("customer", k)), "added to, not taken from: {k}");
    }
    assert_eq!(created.touched.len(), golden.index_keys.len() + 1, "one golden record and its blocks");

    let (_, linked) = feed(&traced, anna_web()).await;
    let linked = linked.expect("merged");
    assert_eq!(linked.golden.golden_id, golden.golden_id);
    assert!(linked.touched.contains(&Touched::golden("customer", &golden.golden_id)));
    let added: Vec<&IndexKey> = linked.golden.index_keys.iter().filter(|k| !golden.index_keys.contains(k)).collect();
    assert!(!added.is_empty(), "the second record brings keys of its own");
    for k in &added {
        assert!(linked.touched.contains(&Touched::block("customer", k)), "new block {k}");
    }

    let (_, untraced) = feed(&hub(), anna_crm()).await;
    assert!(untraced.expect("merged").touched.is_empty(), "traced only when asked");
}

/// The merge of an older message reads a replica that is behind the latest version (but not
/// behind the message): the plan must not prefer that copy over the newer one it reads strongly
/// as a member, or the golden record rolls back to the older values.
#[tokio::test]
async fn a_replica_behind_the_latest_version_does_not_roll_the_golden_record_back() {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let mut versions = Vec::new();
    for (seq, locality) in [(1, "Leeds"), (2, "York"), (3, "Hull")] {
        let mut v = anna_crm();
        v["sourceSeq"] = json!(seq);
        v["sourceUpdatedAt"] = json!(format!("2026-01-0{seq}T00:00:00Z"));
        v["attributes"]["locality"] = json!(locality);
        let r = mdm_core::record::validate(hub.registry(), &v, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        hub.process(&r.key).await.expect("process");
        versions.push(r);
    }
    let golden_id = hub.store().get_source(&versions[0].key).await.expect("get").expect("stored").golden_id.clone();
    let golden_id = golden_id.expect("linked");
    // A late message of version 1; the replica still holds version 2.
    hub.store().stale_version(versions[1].clone());
    let (_, decided) = hub.match_source(&versions[0].key).await.expect("match");
    hub.merge_decision(&versions[0].key, decided, Some(1), false).await.expect("merge");
    let g = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("golden");
    assert_eq!(g.value("locality"), Some("hull"), "the golden record keeps the latest version's values");
}

/// A NEW merge that finds another golden record appeared under its keys meanwhile decides again;
/// the block entries it wrote ahead for the golden record it did not create are taken out (they
/// would count toward weak keys' caps and switch those keys off for the real record).
#[tokio::test]
async fn a_new_merge_that_decides_again_leaves_no_block_entries_behind() {
    let hub = hub();
    let a = mdm_core::record::validate(hub.registry(), &anna_crm(), 0).expect("valid");
    hub.ingest(&a).await.expect("ingest");
    let (_, decided) = hub.match_source(&a.key).await.expect("match");
    assert_eq!(decided.decision, MatchDecision::New);
    feed(&hub, anna_web()).await; // created meanwhile
    let report = hub.merge_decision(&a.key, decided, Some(a.seq), false).await.expect("merge");
    assert!(matches!(report.outcome, MergeOutcome::Linked { .. }), "{:?}", report.outcome);
    let never = mdm_core::keys::golden_id_for(&a.key, a.seq);
    let schema = hub.registry().get("customer").expect("schema");
    let keys: Vec<IndexKey> = mdm_core::blocking::keys_of(schema, &a).iter().map(IndexKey::from).collect();
    let hits = hub.store().lookup("customer", &keys, &[usize::MAX / 2]).await.expect("lookup");
    let left: Vec<String> = hits.iter().filter(|h| h.golden_ids.contains(&never)).map(|h| h.key.to_string()).collect();
    assert_eq!(left, Vec::<String>::new(), "entries naming a golden record that never existed");
}

/// The records of a small scenario, through ingest and match + merge, on a store that crashes
/// at its `k`-th call (before it, or after a write with its answer lost); every step is
/// retried as its queue would. Returns the golden records' member sets and the store's calls.
async fn crashing_pipeline(k: i64, lost: bool) -> (Vec<Vec<String>>, u64) {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    use mdm_core::store::Outbox;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let mut v2 = anna_crm();
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("York");
    let inputs = [anna_crm(), bob(), anna_web(), v2, anna_crm_dup(), anna_maybe(), anna_crm()];
    let records: Vec<_> =
        inputs.iter().map(|i| mdm_core::record::validate(hub.registry(), i, 0).expect("valid")).collect();
    hub.store().crash_at(k, lost);
    for r in &records {
        let mut written = None;
        for _ in 0..5 {
            if let Ok(w) = hub.ingest(r).await {
                written = Some(w);
                break;
            }
        }
        // A duplicate or stale delivery is matched again too (a lost queue send is resent so).
        assert!(written.is_some(), "crash at {k} ({lost}): ingest never answered");
        for _ in 0..5 {
            match hub.process(&r.key).await {
                Err(e) if e.is_retryable() => continue,
                Err(e) => panic!("crash at {k} ({lost}): {e}"),
                Ok(_) => break,
            }
        }
    }
    let calls = hub.store().calls();
    hub.store().crash_at(-1, false);
    let store = &hub.store().inner;
    let goldens = store.active_goldens("customer");
    // Every record is in exactly one active golden record, which its cross-reference names.
    for r in &records {
        let holders: Vec<&str> =
            goldens.iter().filter(|g| g.members.contains(&r.key)).map(|g| g.golden_id.as_str()).collect();
        assert_eq!(holders.len(), 1, "crash at {k} ({lost}): {} is in {holders:?}", r.key);
        let xref = store.get_source(&r.key).await.expect("get").and_then(|s| s.golden_id.clone());
        assert_eq!(xref.as_deref(), Some(holders[0]), "crash at {k} ({lost}): the cross-reference of {}", r.key);
    }
    // No block entry names a golden record that does not exist.
    let schema = hub.registry().get("customer").expect("schema");
    for r in &records {
        let keys: Vec<IndexKey> = mdm_core::blocking::keys_of(schema, r).iter().map(IndexKey::from).collect();
        for hit in store.lookup("customer", &keys, &[usize::MAX / 2]).await.expect("lookup") {
            for id in &hit.golden_ids {
                assert!(
                    store.get_golden("customer", id).await.expect("get").is_some(),
                    "crash at {k} ({lost}): block {} names {id}, which does not exist",
                    hit.key
                );
            }
        }
    }
    // Every effective change has its event: one per history version, the last one the golden
    // record's version.
    let events = store.pending_events(10_000).await.expect("outbox");
    for g in &goldens {
        let mut event_versions: Vec<u64> = events
            .iter()
            .filter_map(|e| e.event.golden_version())
            .filter(|(id, _)| *id == g.golden_id)
            .map(|(_, v)| v)
            .collect();
        event_versions.sort_unstable();
        event_versions.dedup();
        let history: Vec<u64> =
            store.history("customer", &g.golden_id).await.expect("history").iter().map(|h| h.version).collect();
        assert_eq!(event_versions, history, "crash at {k} ({lost}): events of {}", g.golden_id);
        assert_eq!(history.last(), Some(&g.version), "crash at {k} ({lost})");
    }
    let mut members: Vec<Vec<String>> =
        goldens.iter().map(|g| g.members.iter().map(|m| m.to_string()).collect::<Vec<_>>()).collect();
    for m in &mut members {
        m.sort();
    }
    members.sort();
    (members, calls)
}

/// A crash at every store call of ingest, match and merge, both ways, and the retries: the same
/// golden records as a run without a crash, every record in one, no block entry naming a golden
/// record that does not exist, and every effective change with its event.
#[tokio::test]
async fn a_crash_at_every_step_of_the_pipeline_changes_nothing_in_the_end() {
    let (want, calls) = crashing_pipeline(-1, false).await;
    assert!(want.len() >= 3 && calls > 50, "{want:?} in {calls} calls");
    for k in 1..=calls as i64 {
        for lost in [false, true] {
            let (got, _) = crashing_pipeline(k, lost).await;
            assert_eq!(got, want, "crash at call {k} (answer lost: {lost})");
        }
    }
}

/// Two records of one new person with one verified e-mail, merged by two Lambda instances: the
/// second one's index reads come from a replica that has not seen the first one's golden record
/// (and its own overlay of recent writes does not have it). Its claim on the e-mail fails and it
/// decides again; the claim's holder is scored then, so it links instead of creating a second
/// golden record without the claim.
#[tokio::test]
async fn a_claim_held_by_a_golden_record_the_decision_never_saw_is_scored_before_creating() {
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let person = |id: &str, given: &str| {
        let mut r = customer(
            "shop",
            id,
            1,
            json!({"given_name": given, "family_name": "Kowalczyk", "date_of_birth": "1984-02-11",
                   "email": "marta.k@example.pl"}),
        );
        r["verified"] = json!(["email"]);
        mdm_core::record::validate(hub.registry(), &r, 0).expect("valid")
    };
    let (a, b) = (person("p-1", "Marta"), person("p-2", "Martha"));
    hub.ingest(&a).await.expect("ingest");
    hub.ingest(&b).await.expect("ingest");
    // Both decisions were made before either golden record existed.
    let (_, decided_a) = hub.match_source(&a.key).await.expect("match");
    let (_, decided_b) = hub.match_source(&b.key).await.expect("match");
    assert_eq!(decided_b.decision, MatchDecision::New);
    let first = hub.merge_decision(&a.key, decided_a, Some(a.seq), false).await.expect("merge a");
    let golden_id = first.outcome.golden_id().to_owned();
    hub.store().blind_lookups(true);
    let second = hub.merge_decision(&b.key, decided_b, Some(b.seq), false).await.expect("merge b");
    assert_eq!(second.outcome, MergeOutcome::Linked { golden_id: golden_id.clone() }, "no second golden record");
    let own = mdm_core::keys::golden_id_for(&b.key, b.seq);
    assert!(hub.store().get_golden("customer", &own).await.expect("get").is_none());
    let golden = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("golden");
    assert_eq!(golden.members.len(), 2);
}

/// `mdm reindex` on one golden record: a lost index entry and a lost claim are written back
/// from its members, and a second run changes nothing.
#[tokio::test]
async fn reindexing_a_golden_record_restores_lost_entries_and_is_idempotent() {
    use mdm_core::hub::Reindexed;
    use mdm_core::store::{BlockIndex, ClaimStore, GoldenStore, Transactor, WriteOp};
    let hub = hub();
    let (_, anna) = feed(&hub, anna_crm()).await;
    feed(&hub, anna_web()).await;
    feed(&hub, bob()).await;
    let anna = anna.expect("merged").outcome.golden_id().to_owned();
    let golden = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    let claim = golden.claims.iter().next().expect("a claim").clone();
    let entry = golden.index_keys.iter().find(|k| **k != claim).expect("an entry").clone();
    let (entity, id): (std::sync::Arc<str>, std::sync::Arc<str>) = ("customer".into(), anna.as_str().into());
    hub.store()
        .transact(vec![
            WriteOp::DeleteIndex { entity: entity.clone(), key: entry.clone(), golden_id: id.clone() },
            WriteOp::DeleteClaim { entity: "customer".into(), key: claim.clone(), holder: anna.clone() },
        ])
        .await
        .expect("lose them");
    let found = |hits: Vec<mdm_core::store::BlockHit>| hits.iter().any(|h| h.golden_ids.contains(&anna));
    assert!(!found(hub.store().lookup("customer", std::slice::from_ref(&entry), &[]).await.expect("lookup")));
    assert_eq!(hub.reindex_golden("customer", &anna, false).await.expect("reindex"), Reindexed::Current);
    assert!(found(hub.store().lookup("customer", std::slice::from_ref(&entry), &[]).await.expect("lookup")));
    let holders = hub.store().get_claims("customer", std::slice::from_ref(&claim)).await.expect("claims");
    assert_eq!(holders.get(&claim), Some(&anna), "the claim is back");
    let before = hub.store().dump();
    assert_eq!(hub.reindex_golden("customer", &anna, false).await.expect("again"), Reindexed::Current);
    assert_eq!(hub.store().dump(), before, "a second run changes nothing");
    assert_eq!(hub.reindex_golden("customer", "g-none", false).await.expect("absent"), Reindexed::Skipped);
}

/// A golden record stored before it kept its data quality gets it from `mdm reindex`, without a
/// new version (nothing a reader sees as a value changed).
#[tokio::test]
async fn reindexing_gives_a_record_stored_without_its_quality_one() {
    use mdm_core::hub::Reindexed;
    use mdm_core::store::{Expect, GoldenStore, Transactor, WriteOp};
    let hub = hub();
    let (_, anna) = feed(&hub, anna_crm()).await;
    let anna = anna.expect("merged").outcome.golden_id().to_owned();
    let golden = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    let quality = golden.quality.expect("a new record has its quality");
    let mut old = golden.clone();
    old.quality = None;
    old.revision += 1;
    let expect = Expect::Revision(golden.revision);
    hub.store().transact(vec![WriteOp::PutGolden { golden: std::sync::Arc::new(old), expect }]).await.expect("put");
    assert_eq!(hub.reindex_golden("customer", &anna, false).await.expect("reindex"), Reindexed::Rebuilt);
    let after = hub.store().get_golden("customer", &anna).await.expect("get").expect("anna");
    assert_eq!((after.quality, after.version), (Some(quality), golden.version));
}

/// A bus for the publish tests: keeps what it was sent, and fails the `n`-th send from now
/// (1 = the next) as a whole: before anything is delivered, or — `lost` — after delivering
/// everything, with the answer lost.
#[derive(Default)]
struct TestBus {
    received: std::sync::Mutex<Vec<mdm_core::store::OutboxEntry>>,
    countdown: std::sync::atomic::AtomicI64,
    lost: std::sync::atomic::AtomicBool,
}

impl TestBus {
    fn fail_at(&self, n: i64, lost: bool) {
        self.lost.store(lost, std::sync::atomic::Ordering::SeqCst);
        self.countdown.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl mdm_core::publish::EventSink for TestBus {
    async fn send(&self, events: &[mdm_core::store::OutboxEntry]) -> mdm_core::publish::Delivery {
        let ids = || events.iter().map(|e| e.event_id.clone());
        if self.countdown.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
                self.received.lock().expect("bus").extend(events.iter().cloned());
            }
            return mdm_core::publish::Delivery {
                failed: ids().map(|id| (id, "injected".into())).collect(),
                ..Default::default()
            };
        }
        self.received.lock().expect("bus").extend(events.iter().cloned());
        mdm_core::publish::Delivery { delivered: ids().collect(), calls: 1, ..Default::default() }
    }
}

/// The pipeline's events published by sweeps while the store crashes at its `k`-th call (before
/// it, or after a write with the answer lost) or the bus at its `k`-th send (before delivering,
/// or after with the answer lost); sweeps repeat as the schedule would. Returns the store's
/// calls of a clean publish.
async fn crashing_publish(k: i64, lost: bool, bus_fails: bool) -> u64 {
    use mdm_core::publish::{sweep, EventItems};
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    use mdm_core::store::Outbox;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    let mut v2 = anna_crm();
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("York");
    for input in [anna_crm(), bob(), anna_web(), v2, anna_maybe()] {
        let r = mdm_core::record::validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        hub.process(&r.key).await.expect("merge");
    }
    let store = hub.store();
    let waiting = store.inner.pending_events(10_000).await.expect("outbox");
    assert!(waiting.len() >= 5, "{} events", waiting.len());
    let bus = TestBus::default();
    let before = store.calls();
    if bus_fails {
        bus.fail_at(k, lost);
    } else {
        store.crash_at(k, lost);
    }
    for _ in 0..6 {
        let _ = sweep(store, &bus, i64::MAX, 1000).await;
    }
    let calls = store.calls() - before;
    store.crash_at(-1, false);
    let left = store.inner.unpublished(i64::MAX, 1000).await.expect("unpublished");
    assert_eq!(left, Vec::<(String, String)>::new(), "crash at {k} ({lost}, bus {bus_fails}): events left");
    let received = bus.received.lock().expect("bus").clone();
    for w in &waiting {
        let copies: Vec<_> = received.iter().filter(|r| r.event_id == w.event_id).collect();
        assert!(!copies.is_empty(), "crash at {k} ({lost}, bus {bus_fails}): {} never delivered", w.event_id);
        assert!(copies.iter().all(|c| c.event == w.event), "a repeat is the same event");
    }
    // Per golden record, every version of its history was published.
    for g in store.inner.active_goldens("customer") {
        let mut versions: Vec<u64> = received
            .iter()
            .filter_map(|r| r.event.golden_version())
            .filter(|(id, _)| *id == g.golden_id)
            .map(|(_, v)| v)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        let history: Vec<u64> =
            store.inner.history("customer", &g.golden_id).await.expect("history").iter().map(|h| h.version).collect();
        assert_eq!(versions, history, "crash at {k} ({lost}, bus {bus_fails}): versions of {}", g.golden_id);
    }
    calls
}

/// A crash at every store call of publishing and a failure at every bus send, both before the
/// call and after it with the answer lost: after the sweeps every event was delivered at least
/// once (a repeat is the same event), every version of every golden record was published, and
/// nothing is left waiting.
#[tokio::test]
async fn a_crash_at_every_step_of_publishing_loses_no_event() {
    let calls = crashing_publish(-1, false, false).await;
    assert!(calls >= 7, "{calls} calls");
    for k in 1..=calls as i64 {
        for lost in [false, true] {
            crashing_publish(k, lost, false).await;
        }
    }
    for k in 1..=3 {
        for lost in [false, true] {
            crashing_publish(k, lost, true).await;
        }
    }
}

/// A sweep passes over an item it cannot read: the others are published by the same sweep.
#[tokio::test]
async fn an_unreadable_item_does_not_hold_back_a_sweep() {
    use mdm_core::publish::{sweep, EventItems};
    use mdm_core::store::conformance::Faulty;
    use mdm_core::store::memory::MemoryStore;
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let hub = mdm_core::hub::Hub::new(registry, Faulty::new(MemoryStore::new()));
    for input in [anna_crm(), bob(), anna_web()] {
        let r = mdm_core::record::validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&r).await.expect("ingest");
        hub.process(&r.key).await.expect("merge");
    }
    let store = hub.store();
    let waiting = store.inner.unpublished(i64::MAX, 100).await.expect("unpublished").len();
    assert!(waiting >= 3);
    let bus = TestBus::default();
    store.crash_at(2, false); // the first item's read (after the list of unpublished items)
    let report = sweep(store, &bus, i64::MAX, 1000).await.expect("sweep");
    assert_eq!((report.items, report.delivered, report.failed), (waiting, waiting - 1, 1));
    assert_eq!(store.inner.unpublished(i64::MAX, 100).await.expect("unpublished").len(), 1, "left for the next sweep");
}
