//! Every event payload the core produces validates against the JSON Schema shipped for its
//! detail-type.
mod common;

use common::*;
use mdm_core::events::*;
use mdm_core::golden::Cause;
use mdm_core::store::Outbox;
use serde_json::json;

fn validator(detail_type: &str) -> jsonschema::Validator {
    let text = detail_schema(detail_type).unwrap_or_else(|| panic!("no schema for {detail_type}"));
    let schema: serde_json::Value = serde_json::from_str(text).expect("schema is JSON");
    jsonschema::options().should_validate_formats(true).build(&schema).expect("schema compiles")
}

fn check(event: &HubEvent) {
    let v = validator(event.detail_type());
    let detail = event.detail();
    let errors: Vec<String> = v.iter_errors(&detail).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{} does not validate: {errors:?}\n{detail:#}", event.detail_type());
}

#[tokio::test]
async fn every_event_the_pipeline_emits_validates() {
    let hub = hub();
    feed(&hub, anna_crm()).await;
    feed(&hub, anna_web()).await;
    feed(&hub, anna_maybe()).await;
    // A bridge for a merge event.
    feed(
        &hub,
        customer("crm", "p1", 1, json!({"given_name": "Priya", "family_name": "Raman", "email": "priya@example.com"})),
    )
    .await;
    feed(
        &hub,
        customer("web", "p2", 1, json!({"given_name": "Priya", "family_name": "Raman", "phone": "07400 900100"})),
    )
    .await;
    feed(&hub, customer("erp", "p3", 1, json!({"given_name": "Priya", "family_name": "Raman", "email": "priya@example.com", "phone": "07400 900100"}))).await;
    let events = hub.store().pending_events(1000).await.expect("outbox");
    let mut kinds: Vec<&str> = events.iter().map(|e| e.event.detail_type()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, vec!["GoldenRecordCreated", "GoldenRecordUpdated", "GoldenRecordsMerged", "ReviewTaskOpened"]);
    for e in &events {
        check(&e.event);
        assert_eq!(e.event_id, e.event.event_id());
        // A change a source record caused says when the hub received it (freshness starts there).
        let detail = e.event.detail();
        if e.event.detail_type().starts_with("GoldenRecord") {
            let received = detail["receivedAt"].as_str().and_then(mdm_core::time::parse_rfc3339);
            let occurred = detail["occurredAt"].as_str().and_then(mdm_core::time::parse_rfc3339);
            assert!(received.is_some() && received <= occurred, "receivedAt no later than occurredAt: {detail:#}");
            let mut broken = detail.clone();
            broken["receivedAt"] = json!("yesterday");
            assert!(!validator(e.event.detail_type()).is_valid(&broken), "receivedAt must be a date-time");
            // The golden record's data quality, 0 to 1.
            if let Some(golden) = detail.get("golden") {
                assert!(golden["quality"].as_f64().is_some_and(|q| (0.0..=1.0).contains(&q)), "{detail:#}");
                let mut broken = detail.clone();
                broken["golden"]["quality"] = json!(1.5);
                assert!(!validator(e.event.detail_type()).is_valid(&broken), "quality is at most 1");
            }
        }
        // The slim form of an event that carries the golden record validates too; a detail
        // with neither the record nor the slim marker does not.
        if let Some(slim) = e.event.slim_detail() {
            let v = validator(e.event.detail_type());
            assert!(v.is_valid(&slim), "{slim:#}");
            assert!(slim["goldenRecordPath"].as_str().is_some_and(|p| p.ends_with(e.event.golden_id().unwrap_or("-"))));
            let mut neither = slim.clone();
            neither.as_object_mut().map(|o| o.remove("slim"));
            assert!(!v.is_valid(&neither), "a detail without the golden record must say it is slim");
        }
    }
}

#[tokio::test]
async fn split_erasure_payloads_validate_and_carry_no_attributes() {
    let hub = hub();
    let report = feed(&hub, anna_crm()).await.1.expect("report");
    let g = report.golden;
    let split = HubEvent::GoldenRecordSplit(GoldenSplit {
        envelope: Envelope::new(&g, vec!["email".into()], Cause::Split, "corr-1", 0),
        split_golden_ids: vec!["g-new".into()],
        golden: GoldenView::of(&g),
    });
    let erased = HubEvent::GoldenRecordErased(GoldenErased {
        envelope: Envelope::new(&g, vec![], Cause::Erasure, "corr-2", 0),
        request_id: "era-1".into(),
        sources: g.members.iter().map(SourceRef::from).collect(),
    });
    let done = HubEvent::ErasureCompleted(ErasureCompleted {
        schema_version: SCHEMA_VERSION.into(),
        request_id: "era-1".into(),
        entity_type: "customer".into(),
        golden_ids: vec![g.golden_id.clone()],
        removed: [("source".to_string(), 1u64), ("history".to_string(), 1)].into_iter().collect(),
        correlation_id: "corr-2".into(),
        occurred_at: mdm_core::time::format_rfc3339(0),
    });
    for e in [&split, &erased, &done] {
        check(e);
    }
    let text = erased.detail().to_string();
    assert!(!text.contains("kowalski") && !text.contains("anna"), "an erasure event carries ids only: {text}");
}

#[test]
fn the_schemas_reject_a_broken_payload() {
    let v = validator("GoldenRecordCreated");
    assert!(!v.is_valid(&json!({"schemaVersion": "1", "entityType": "customer"})), "missing fields");
    assert!(
        !v.is_valid(&json!({"schemaVersion": "2", "entityType": "customer", "goldenId": "g", "version": 1,
        "changedAttributes": [], "cause": "ingest", "correlationId": "c", "occurredAt": "2026-01-01T00:00:00Z",
        "golden": {}})),
        "wrong schema version and empty golden"
    );
    for t in DETAIL_TYPES {
        validator(t);
    }
}
