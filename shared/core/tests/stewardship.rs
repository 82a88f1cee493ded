//! Steward actions on the in-process store: split, manual merge, pins and review decisions
//! give the state a build from scratch would, keep it consistent (audit), and are never undone
//! by later deliveries.
mod common;

use common::*;
use mdm_core::golden::{Attribution, Cause, GoldenRecord, ReviewStatus};
use mdm_core::hub::Hub;
use mdm_core::steward::{Decision, StewardError, Target};
use mdm_core::store::conformance::audit;
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::{GoldenStore, Outbox, ReviewStore, SourceStore};
use serde_json::json;

fn who() -> Attribution {
    Attribution { actor: "steward-7".into(), reason: "checked by phone".into() }
}

fn target(g: &GoldenRecord) -> Target {
    Target { entity: g.entity.clone(), golden_id: g.golden_id.clone(), version: g.version }
}

async fn golden(hub: &Hub<MemoryStore>, id: &str) -> GoldenRecord {
    hub.store().get_golden("customer", id).await.expect("get").expect("exists")
}

async fn consistent(hub: &Hub<MemoryStore>) {
    let problems = audit(hub.store(), &hub.store().active_goldens("customer")).await;
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A hub that can erase (a suppression secret configured).
fn erasable_hub() -> Hub<MemoryStore> {
    let registry = std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let config = mdm_core::HubConfig { suppression_secrets: vec![b"test-secret".to_vec()], ..Default::default() };
    Hub::new(registry, MemoryStore::new()).with_config(config)
}

/// The golden record one set of records makes on a store of its own.
async fn from_scratch(inputs: &[serde_json::Value]) -> GoldenRecord {
    let fresh = hub();
    let mut id = String::new();
    for i in inputs {
        id = feed(&fresh, i.clone()).await.1.expect("merged").outcome.golden_id().to_owned();
    }
    golden(&fresh, &id).await
}

fn same_state(a: &GoldenRecord, b: &GoldenRecord) {
    assert_eq!(a.attributes, b.attributes, "values with provenance");
    assert_eq!(a.members, b.members);
    assert_eq!(a.match_values, b.match_values);
    assert_eq!(a.index_keys, b.index_keys);
}

#[tokio::test]
async fn a_split_equals_a_build_from_scratch_and_later_deliveries_do_not_undo_it() {
    let hub = hub();
    feed(&hub, anna_crm()).await;
    let joined = feed(&hub, anna_web()).await.1.expect("merged").golden;
    assert_eq!(joined.members.len(), 2, "the webshop record joined Anna");
    let split = hub.split_golden(&target(&joined), &[key("webshop", "w-9")], &who()).await.expect("split");
    assert!(!split.reactivated);
    assert_ne!(split.split_off.golden_id, joined.golden_id);
    assert!(!split.split_off.golden_id.contains("w-9"));
    let (crm_alone, web_alone) = (from_scratch(&[anna_crm()]).await, from_scratch(&[anna_web()]).await);
    same_state(&split.golden, &crm_alone);
    same_state(&split.split_off, &web_alone);
    // Claims: each side holds its own strong keys; one both share stays with the record that
    // held it (a claim has one holder).
    assert_eq!(split.golden.claims, crm_alone.claims);
    let (kept, moved) = (split.golden.claims.to_set(), split.split_off.claims.to_set());
    assert!(kept.is_disjoint(&moved));
    let all: std::collections::BTreeSet<_> = kept.union(&moved).cloned().collect();
    assert_eq!(all, crm_alone.claims.to_set().union(&web_alone.claims.to_set()).cloned().collect());
    assert_eq!(split.golden.kept_apart, vec![split.split_off.golden_id.clone()]);
    assert_eq!(split.split_off.kept_apart, vec![joined.golden_id.clone()]);
    consistent(&hub).await;

    // Both histories show the split with its actor and reason; one event names both.
    for id in [&joined.golden_id, &split.split_off.golden_id] {
        let last = hub.store().history("customer", id).await.expect("history").pop().expect("a version");
        assert_eq!((last.cause, last.actor.as_deref()), (Cause::Split, Some("steward-7")));
        assert_eq!(last.reason.as_deref(), Some("checked by phone"));
    }
    let events = hub.store().pending_events(100).await.expect("outbox");
    let named = events.iter().find_map(|e| match &e.event {
        mdm_core::events::HubEvent::GoldenRecordSplit(s) => Some(s),
        _ => None,
    });
    let named = named.expect("a GoldenRecordSplit event");
    assert_eq!(named.envelope.golden_id, joined.golden_id);
    assert_eq!(named.split_golden_ids, vec![split.split_off.golden_id.clone()]);
    // The split as labelled pairs: the member that left with each that stayed, distinct.
    let labels = hub.store().labels("customer", None, 10).await.expect("labels");
    assert_eq!(labels.sets.len(), 1);
    assert_eq!((labels.sets[0].label.as_str(), labels.sets[0].cause), ("distinct", Cause::Split));
    assert_eq!(labels.sets[0].pairs, vec![(key("webshop", "w-9"), key("crm", "c-100"))]);

    // Every member sent again with a higher sequence stays where the steward put it.
    let mut crm = anna_crm();
    crm["sourceSeq"] = json!(5);
    let mut web = anna_web();
    web["sourceSeq"] = json!(5);
    assert_eq!(feed(&hub, crm).await.1.expect("merged").outcome.golden_id(), joined.golden_id);
    assert_eq!(feed(&hub, web).await.1.expect("merged").outcome.golden_id(), split.split_off.golden_id);
    assert!(hub.store().reviews().is_empty(), "neither member proposes the other side for review");
    // A third record resembling both joins one and opens a review naming the other.
    let third = feed(&hub, anna_crm_dup()).await.1.expect("merged");
    let joined_third = third.outcome.golden_id().to_owned();
    let other = if joined_third == joined.golden_id { &split.split_off.golden_id } else { &joined.golden_id };
    let tasks = hub.store().reviews();
    assert!(tasks.iter().any(|t| t.candidate_golden_ids.contains(other)), "{tasks:?}");
    assert_eq!(hub.store().active_goldens("customer").len(), 2);
    consistent(&hub).await;
}

#[tokio::test]
async fn a_member_that_created_a_merged_record_gets_it_back_on_a_split() {
    let hub = hub();
    let a = feed(&hub, anna_crm()).await.1.expect("merged").golden;
    let b = feed(&hub, bob()).await.1.expect("merged").golden;
    let merged = hub.merge_golden(&target(&a), &target(&b), &who(), Cause::Merge, |_| Vec::new()).await.expect("merge");
    let (survivor, gone) = (merged.survivor.golden_id.clone(), merged.merged.clone());
    let loser = golden(&hub, &gone).await;
    assert!(
        matches!(loser.status, mdm_core::GoldenStatus::MergedInto { ref survivor } if *survivor == merged.survivor.golden_id)
    );
    // Enrich-style lookup by the loser's member resolves to the survivor.
    let loser_member = if gone == a.golden_id { key("crm", "c-100") } else { key("crm", "c-200") };
    let xref = hub.store().get_source(&loser_member).await.expect("get").expect("stored").golden_id.clone();
    assert_eq!(
        hub.final_record("customer", &xref.expect("linked")).await.expect("final").map(|g| g.golden_id),
        Some(survivor.clone())
    );
    consistent(&hub).await;

    let now = golden(&hub, &survivor).await;
    let split = hub.split_golden(&target(&now), &[loser_member], &who()).await.expect("split");
    assert!(split.reactivated, "the record its member created comes back");
    assert_eq!(split.split_off.golden_id, gone);
    assert_eq!(split.split_off.version, loser.version + 1);
    assert!(split.split_off.is_active());
    assert!(!split.golden.merged_from.contains(&gone));
    consistent(&hub).await;
}

#[tokio::test]
async fn a_pin_survives_source_updates_until_removed_and_goes_with_an_erasure_of_its_source() {
    let hub = hub();
    let g = feed(&hub, anna_crm()).await.1.expect("merged").golden;
    let pinned = hub.pin_value(&target(&g), "given_name", Some(&json!("  Annie ")), &who()).await.expect("pin");
    let attr = pinned.attributes.get("given_name").expect("pinned");
    // Normalised like a source value (given names are kept in lower case).
    assert_eq!((attr.value.as_str(), attr.source(), attr.source_id()), ("annie", "steward", "steward-7"));
    assert_eq!(serde_json::to_value(attr.rule).expect("rule"), json!("steward_pin"));
    for seq in 2..=4 {
        let mut v = anna_crm();
        v["sourceSeq"] = json!(seq);
        v["attributes"]["given_name"] = json!(format!("Anna{seq}"));
        let after = feed(&hub, v).await.1.expect("merged").golden;
        assert_eq!(after.value("given_name"), Some("annie"), "update {seq}");
    }
    let now = golden(&hub, &g.golden_id).await;
    let unpinned = hub.pin_value(&target(&now), "given_name", None, &who()).await.expect("unpin");
    assert_eq!(unpinned.value("given_name"), Some("anna4"), "survivorship's value is back");
    let e = hub.pin_value(&target(&now), "given_name", None, &who()).await.expect_err("stale");
    assert!(matches!(e, StewardError::Stale { current, .. } if current == unpinned.version), "{e:?}");
    let e = hub.pin_value(&target(&unpinned), "shoe_size", Some(&json!("9")), &who()).await.expect_err("unknown");
    assert!(matches!(e, StewardError::Invalid { code: "unknown_attribute", .. }), "{e:?}");
    let e = hub.pin_value(&target(&unpinned), "email", Some(&json!("not an address")), &who()).await.expect_err("bad");
    assert!(matches!(e, StewardError::Invalid { code: "invalid_value", .. }), "{e:?}");

    consistent(&hub).await;
}

#[tokio::test]
async fn erasing_the_source_of_a_pinned_value_removes_the_pin_and_its_bytes() {
    use mdm_core::erasure::{self, ErasureRequest, ReceiptStatus};
    let hub = erasable_hub();
    feed(&hub, anna_crm()).await;
    // The webshop knows Anna as "Anoushka": only that record holds the value.
    let mut web = anna_crm();
    web["sourceSystem"] = json!("webshop");
    web["sourceId"] = json!("w-1");
    web["attributes"]["given_name"] = json!("Anoushka");
    let joined = feed(&hub, web).await.1.expect("merged").golden;
    assert_eq!(joined.members.len(), 2);
    let pinned = hub.pin_value(&target(&joined), "given_name", Some(&json!("ANOUSHKA")), &who()).await.expect("pin");
    assert_eq!(pinned.pins[0].source.as_ref(), Some(&key("webshop", "w-1")), "the member holding the value");
    assert_eq!(pinned.value("given_name"), Some("anoushka"));
    let body =
        json!({"entityType": "customer", "sourceKey": {"system": "webshop", "sourceId": "w-1"}, "scope": "source"});
    let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    assert_eq!(erasure::process(&hub, &r.request_id).await.expect("erase").status, ReceiptStatus::Completed);
    let after = golden(&hub, &joined.golden_id).await;
    assert!(after.pins.is_empty(), "{:?}", after.pins);
    assert_eq!(after.value("given_name"), Some("anna"));
    assert!(!hub.store().dump().to_lowercase().contains("anoushka"), "the pinned value's bytes are gone");
    consistent(&hub).await;
}

#[tokio::test]
async fn review_decisions_link_or_keep_apart_for_good() {
    // distinct: the pair is never proposed again, even after new versions of both.
    let hub = hub();
    let anna = feed(&hub, anna_crm()).await.1.expect("merged").golden;
    let maybe = feed(&hub, anna_maybe()).await.1.expect("merged");
    let task_id = maybe.review_task.clone().expect("a review opens");
    let holder = golden(&hub, maybe.outcome.golden_id()).await;
    let e = hub
        .resolve_review("customer", &task_id, holder.version + 1, &Decision::Distinct, &who())
        .await
        .expect_err("stale");
    assert!(matches!(e, StewardError::Stale { .. }), "{e:?}");
    let r =
        hub.resolve_review("customer", &task_id, holder.version, &Decision::Distinct, &who()).await.expect("distinct");
    assert_eq!(r.task.status, ReviewStatus::Rejected);
    assert_eq!(r.task.resolution.as_ref().map(|x| x.actor.as_str()), Some("steward-7"));
    assert!(r.task.expires_at.is_some(), "kept for the retention period");
    assert!(golden(&hub, &anna.golden_id).await.kept_apart.contains(&holder.golden_id));
    let e =
        hub.resolve_review("customer", &task_id, holder.version, &Decision::Distinct, &who()).await.expect_err("twice");
    assert!(matches!(e, StewardError::Conflict { code: "already_resolved", .. }), "{e:?}");
    for (input, seq) in [(anna_maybe(), 2), (anna_crm(), 2), (anna_maybe(), 3)] {
        let mut v = input;
        v["sourceSeq"] = json!(seq);
        feed(&hub, v).await;
    }
    let open = hub.store().review_queue("customer", true, None, 10).await.expect("queue");
    assert!(open.tasks.is_empty(), "never proposed again: {:?}", open.tasks);
    let resolved = hub.store().review_queue("customer", false, None, 10).await.expect("queue");
    assert_eq!(resolved.tasks.len(), 1);
    consistent(&hub).await;

    // link: the record's golden record and the candidate become one; the task is resolved in
    // the same change and its event validates.
    let hub = common::hub();
    feed(&hub, anna_crm()).await;
    let maybe = feed(&hub, anna_maybe()).await.1.expect("merged");
    let task_id = maybe.review_task.clone().expect("a review opens");
    let task = hub.store().get_review("customer", &task_id).await.expect("get").expect("task");
    let holder = golden(&hub, maybe.outcome.golden_id()).await;
    let e = hub
        .resolve_review("customer", &task_id, holder.version, &Decision::Link { golden_id: "g-nobody".into() }, &who())
        .await
        .expect_err("not a candidate");
    assert!(matches!(e, StewardError::Invalid { code: "not_a_candidate", .. }), "{e:?}");
    let link = Decision::Link { golden_id: task.candidate_golden_ids[0].clone() };
    let r = hub.resolve_review("customer", &task_id, holder.version, &link, &who()).await.expect("link");
    assert_eq!(r.task.status, ReviewStatus::Merged);
    assert_eq!(r.golden.members.len(), 2);
    assert!(!r.rescored.is_empty(), "the candidates were scored again");
    assert_eq!(hub.store().active_goldens("customer").len(), 1);
    let events = hub.store().pending_events(100).await.expect("outbox");
    let resolved = events.iter().find(|e| e.event.detail_type() == "ReviewTaskResolved").expect("an event");
    let schema: serde_json::Value =
        serde_json::from_str(mdm_core::events::detail_schema("ReviewTaskResolved").expect("schema")).expect("json");
    let v = jsonschema::options().should_validate_formats(true).build(&schema).expect("compiles");
    assert!(v.is_valid(&resolved.event.detail()), "{:#}", resolved.event.detail());
    let mut broken = resolved.event.detail();
    broken.as_object_mut().map(|o| o.remove("linkedGoldenId"));
    assert!(!v.is_valid(&broken), "a link names the candidate linked");
    consistent(&hub).await;
}

#[tokio::test]
async fn rollback_restores_membership_and_values_and_refuses_an_erased_version() {
    use mdm_core::erasure::{self, ErasureRequest};
    let hub = erasable_hub();
    feed(&hub, anna_crm()).await;
    let good = feed(&hub, anna_web()).await.1.expect("merged").golden;
    // A bad feed: a partner record with Anna's e-mail joins, then Anna's CRM record is
    // overwritten with someone else's town twice.
    let mut partner = anna_crm();
    partner["sourceSystem"] = json!("partner");
    partner["sourceId"] = json!("p-1");
    partner["attributes"]["given_name"] = json!("Hanna");
    assert_eq!(feed(&hub, partner).await.1.expect("merged").golden.members.len(), 3);
    for (seq, town) in [(2, "Krakow"), (3, "Gdansk")] {
        let mut bad = anna_crm();
        bad["sourceSeq"] = json!(seq);
        bad["attributes"]["locality"] = json!(town);
        bad["attributes"]["postcode"] = json!("30-001");
        feed(&hub, bad).await;
    }
    let now = golden(&hub, &good.golden_id).await;
    assert!(now.version >= good.version + 3, "v{} after the bad feed", now.version);
    assert_ne!(now.values(), good.values());
    let r = hub.rollback_golden(&target(&now), good.version, &who()).await.expect("rollback");
    assert_eq!(r.golden.members, good.members, "the membership of that version");
    assert_eq!(r.golden.values(), good.values(), "the values of that version");
    let split = r.split_off.expect("the partner record leaves");
    assert_eq!(split.members.iter().map(|k| k.source_id.as_str()).collect::<Vec<_>>(), ["p-1"]);
    assert!(r.pins.iter().all(|p| p.reason == format!("rollback to v{}", good.version)) && !r.pins.is_empty());
    assert!(r.pins.iter().any(|p| p.attribute == "locality"), "{:?}", r.pins);
    let last = hub.store().history("customer", &good.golden_id).await.expect("history").pop().expect("version");
    assert_eq!((last.cause, last.actor.as_deref()), (Cause::Rollback, Some("steward-7")));
    let events = hub.store().pending_events(100).await.expect("outbox");
    assert!(events.iter().any(|e| e.event.detail_type() == "GoldenRecordUpdated"
        && e.event.detail()["cause"] == "rollback"
        && e.event.golden_id() == Some(good.golden_id.as_str())));
    consistent(&hub).await;

    // A later source update applies to what is not pinned.
    let mut later = anna_crm();
    later["sourceSeq"] = json!(9);
    later["attributes"]["locality"] = json!("Krakow");
    later["attributes"]["family_name"] = json!("Kowalska");
    let after = feed(&hub, later).await.1.expect("merged").golden;
    assert_eq!(after.value("locality"), good.value("locality"), "pinned by the rollback");
    assert_eq!(after.members, good.members, "the partner record stays split off");
    let unpinned: Vec<&str> = r.pins.iter().map(|p| p.attribute.as_str()).collect();
    if !unpinned.contains(&"family_name") {
        assert_ne!(after.value("family_name"), good.value("family_name"), "an unpinned attribute follows its source");
    }

    // A version an erasure removed cannot be rolled back to.
    let body =
        json!({"entityType": "customer", "sourceKey": {"system": "webshop", "sourceId": "w-9"}, "scope": "source"});
    let req = ErasureRequest::parse(&hub, &body, "privacy-team").expect("request");
    let (receipt, _) = erasure::accept(&hub, &req).await.expect("accept");
    erasure::process(&hub, &receipt.request_id).await.expect("erase");
    let now = golden(&hub, &good.golden_id).await;
    let e = hub.rollback_golden(&target(&now), good.version, &who()).await.expect_err("erased");
    assert!(matches!(e, StewardError::Conflict { code: "version_erased", .. }), "{e:?}");
    consistent(&hub).await;
}
