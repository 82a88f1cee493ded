//! Bad input on the emulator: clear answers, nothing stored for rejects, the bad SQS message alone
//! in the DLQ with its reason, no panic.
mod common;

use common::*;
use mdm_core::store::SourceStore;
use mdm_core::SourceKey;
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["details"].is_array(), "{body}");
}

#[tokio::test]
async fn whole_body_problems_are_4xx_with_the_error_body() {
    let Some(s) = stack("bad-body").await else { return };
    let (st, body) = s.post_raw("{\"records\": [ {\"entityType\": ").await;
    assert_error(st, &body, 400, "invalid_json");
    let (st, body) = s.post_raw("[1, 2]").await;
    assert_error(st, &body, 400, "invalid_body");
    let (st, body) = s.post_raw("{\"records\": []}").await;
    assert_error(st, &body, 400, "no_records");

    // One byte over 1 MB, as valid JSON.
    let mut big =
        json!({"records": [customer("crm", "big", 1, json!({"given_name": "X"}))], "padding": ""}).to_string();
    let pad = 1024 * 1024 + 1 - big.len();
    big = big.replace("\"padding\":\"\"", &format!("\"padding\":\"{}\"", "x".repeat(pad)));
    assert_eq!(big.len(), 1024 * 1024 + 1);
    let (st, body) = s.post_raw(&big).await;
    assert_error(st, &body, 413, "payload_too_large");

    let many: Vec<Value> = (0..501).map(|i| customer("crm", &format!("m{i}"), 1, json!({"given_name": "X"}))).collect();
    let (st, body) = s.post(many).await;
    assert_error(st, &body, 413, "too_many_records");

    assert!(s.items_with_prefix("SRC#").await.is_empty(), "nothing stored for a rejected body");
    assert_eq!(s.queue_depth("MatchQueue").await, 0, "nothing queued");
}

#[tokio::test]
async fn single_record_problems_are_reported_in_place_and_not_stored() {
    let Some(s) = stack("bad-rec").await else { return };
    let mut records: Vec<Value> = (0..500)
        .map(|i| {
            customer("crm", &format!("ok-{i}"), 1, json!({"given_name": format!("Person{i}"), "family_name": "Test"}))
        })
        .collect();
    records[7] =
        json!({"entityType": "planet", "sourceSystem": "crm", "sourceId": "bad-7", "sourceSeq": 1, "attributes": {}});
    records[250] =
        json!({"entityType": "customer", "sourceSystem": "crm", "sourceSeq": 1, "attributes": {"given_name": "No id"}});
    records[499] = customer("crm", "bad-499", 1, json!({"given_name": {"first": "Wrong", "type": true}}));
    let (st, body) = s.post(records).await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["accepted"], 497);
    assert_eq!(body["stored"], 497);
    let rejected = body["rejected"].as_array().expect("rejected list");
    let got: Vec<(u64, &str, Option<&str>)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap_or(0), r["code"].as_str().unwrap_or(""), r["field"].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (7, "unknown_entity_type", Some("entityType")),
            (250, "missing_field", Some("sourceId")),
            (499, "invalid_type", Some("attributes.given_name")),
        ]
    );
    for r in rejected {
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty() && !m.contains("Wrong")), "no value echoed: {r}");
    }
    let sources = s.items_with_prefix("SRC#").await;
    assert_eq!(sources.len(), 497);
    for bad in ["bad-7", "bad-499"] {
        assert!(
            s.store.get_source(&SourceKey::new("customer", "crm", bad)).await.expect("get").is_none(),
            "{bad} not stored"
        );
    }
    assert_eq!(s.queue_depth("MatchQueue").await, 497, "one match message per stored record");
}

#[tokio::test]
async fn a_bad_bulk_message_alone_reaches_the_dlq_with_its_reason() {
    let Some(s) = stack("bad-sqs").await else { return };
    s.send(
        "IngestQueue",
        &customer("crm", "good-1", 1, json!({"given_name": "Good", "family_name": "One"})).to_string(),
    )
    .await;
    s.send("IngestQueue", "{not json").await;
    s.send(
        "IngestQueue",
        &json!({"entityType": "customer", "sourceSystem": "crm", "sourceSeq": 1, "attributes": {}}).to_string(),
    )
    .await;
    s.send(
        "IngestQueue",
        &json!({"records": [
            customer("crm", "good-2", 1, json!({"given_name": "Good", "family_name": "Two"})),
            customer("crm", "bad-3", 1, json!({"email": ["not", "a", "string"]}))
        ]})
        .to_string(),
    )
    .await;
    s.drain().await;
    let mut dlq = s.take_all("IngestDLQ").await;
    dlq.sort_by(|a, b| a.1["mdm-error-code"].cmp(&b.1["mdm-error-code"]));
    let codes: Vec<&str> = dlq.iter().map(|(_, a)| a["mdm-error-code"].as_str()).collect();
    assert_eq!(codes, vec!["invalid_json", "invalid_type", "missing_field"], "{dlq:?}");
    for (body, attrs) in &dlq {
        assert_eq!(attrs["mdm-handler"], "ingest");
        assert!(!attrs["mdm-error-message"].is_empty());
        assert!(!body.contains("good-2"), "only the bad record goes to the DLQ");
    }
    assert!(dlq[1].0.contains("bad-3"), "the bad record of a multi-record message, alone");
    for good in ["good-1", "good-2"] {
        let g = s.golden_of(&SourceKey::new("customer", "crm", good)).await;
        assert_eq!(g.members.len(), 1);
    }
    assert!(s.store.get_source(&SourceKey::new("customer", "crm", "bad-3")).await.expect("get").is_none());
    assert_eq!(s.queue_depth("IngestQueue").await, 0, "nothing left blocking the queue");
    for dlq in ["MatchDLQ", "MergeDLQ", "PublishDLQ"] {
        assert_eq!(s.queue_depth(dlq).await, 0, "{dlq} is empty");
    }
}

#[tokio::test]
async fn a_malformed_internal_message_is_dead_lettered_with_its_reason() {
    let Some(s) = stack("bad-int").await else { return };
    s.send("MatchQueue", "{\"source\": 42}").await;
    s.send("MergeQueue", "not json at all").await;
    s.drain().await;
    let m = s.take_all("MatchDLQ").await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1["mdm-error-code"], "invalid_message");
    let g = s.take_all("MergeDLQ").await;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].1["mdm-handler"], "merge");
}
