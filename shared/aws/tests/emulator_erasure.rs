//! Erasure end to end on the emulator: the subject's values leave the table, the stream records
//! and every queue; nobody else is touched; late deliveries and re-ingests do not bring them
//! back; repeated, concurrent and interrupted requests end with one receipt.
mod common;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use common::*;
use mdm_aws::handlers::{erasure as erasure_handler, Ctx};
use mdm_aws::local::http_event;
use mdm_core::api::scope;
use mdm_core::erasure::{self, ErasureRequest, ReceiptStatus};
use mdm_core::store::conformance::Faulty;
use mdm_core::{Hub, HubConfig, SchemaRegistry};
use serde_json::{json, Value};
use std::sync::Arc;

/// Ines, from three systems: crm (two versions), webshop, and an erp record with another national
/// id, which the `different_national_id` rule sends to review (a second golden record).
fn ines() -> Vec<Value> {
    let base = json!({"given_name": "Ineslinde", "family_name": "Quarlesworth", "date_of_birth": "1979-03-14",
                      "email": "ineslinde.q@example.org", "phone": "07400 900555", "national_id": "QZ123456A",
                      "street_number": "41", "address_line1": "Lindenwegstrasse", "locality": "Kirkbymoor", "postcode": "KM9 9ZZ"});
    let mut v2 = base.clone();
    v2["address_line1"] = json!("Lindenwegallee");
    let mut web = base.clone();
    web["national_id"] = Value::Null;
    let mut erp = base.clone();
    erp["national_id"] = json!("QZ987654B");
    erp["phone"] = json!("07400 900556");
    vec![
        customer("crm", "c-ines", 1, base),
        customer("crm", "c-ines", 2, v2),
        customer("webshop", "w-ines", 1, web),
        customer("erp", "e-ines", 1, erp),
    ]
}

/// Every value of Ines's records, as sent and as normalised.
const INES_VALUES: [&str; 14] = [
    "ineslinde",
    "quarlesworth",
    "1979-03-14",
    "ineslinde.q@example.org",
    "07400 900555",
    "7400900555",
    "7400900556",
    "qz123456a",
    "qz987654b",
    "lindenwegstrasse",
    "lindenwegallee",
    "kirkbymoor",
    "km9 9zz",
    "km99zz",
];

fn other() -> Value {
    customer(
        "crm",
        "c-olu",
        1,
        json!({"given_name": "Olumide", "family_name": "Adeyemi", "email": "olu@example.net",
                                        "phone": "07400 900123", "date_of_birth": "1990-10-10"}),
    )
}

async fn call(ctx: &Ctx, method: &str, path: &str, body: Option<&Value>, scopes: Option<&[&str]>) -> (u16, Value) {
    let text = body.map(Value::to_string);
    let event = http_event(method, path, "", text.as_deref(), scopes);
    let resp = erasure_handler::handle(ctx, event).await.expect("the erasure handler answers");
    let status = resp["statusCode"].as_u64().unwrap_or(0) as u16;
    let body: Value = resp["body"].as_str().map(|b| serde_json::from_str(b).expect("JSON body")).unwrap_or(Value::Null);
    let headers = resp["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default();
    // Every answer matches the OpenAPI document.
    let template = if method == "POST" { "/v1/erasure" } else { "/v1/erasure/{requestId}" };
    let answer = Answer { status, headers, body };
    conform(&openapi(), template, &method.to_lowercase(), &answer);
    (answer.status, answer.body)
}

/// Every value that is found in `haystack` (case-insensitive).
fn leaks<'a>(haystack: &str, values: &[&'a str]) -> Vec<&'a str> {
    let h = haystack.to_lowercase();
    values.iter().filter(|v| h.contains(&v.to_lowercase())).copied().collect()
}

/// The table's stream records, as the hub keeps them (24 h on AWS).
async fn stream_text(s: &TestStack) -> String {
    let sdk = mdm_aws::config::sdk_config().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let desc = s.ddb.describe_table().table_name(s.table()).send().await.expect("describe");
    let arn = desc.table().and_then(|t| t.latest_stream_arn()).expect("a stream").to_owned();
    let stream = streams.describe_stream().stream_arn(&arn).send().await.expect("stream");
    let mut out = String::new();
    for shard in stream.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let mut it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator;
        for _ in 0..100 {
            let Some(i) = it.take() else { break };
            let r = streams.get_records().shard_iterator(i).send().await.expect("records");
            if r.records().is_empty() {
                break;
            }
            out.push_str(&format!("{:?}", r.records()));
            it = r.next_shard_iterator;
        }
    }
    out
}

/// Every message of every queue of the stack (received and deleted).
async fn queues_text(s: &TestStack) -> String {
    let mut out = String::new();
    for (logical, attrs) in &s.res.resources {
        if attrs.contains_key("QueueUrl") {
            for (body, a) in s.take_all(logical).await {
                out.push_str(&format!("{logical}: {body} {a:?}\n"));
            }
        }
    }
    out
}

fn ctx_without_local_scopes(s: &TestStack, sdk: &aws_config::SdkConfig) -> Ctx {
    let mut settings = s.res.settings().expect("settings");
    settings.local_scopes = None;
    Ctx::new(sdk, settings, "erasure").expect("ctx")
}

#[tokio::test]
async fn erasing_a_person_removes_every_copy_and_keeps_them_out() {
    let feeds = r#"{"customer/partner": {"idColumn": "id", "map": ["mail=email"]}}"#;
    let Some(s) = stack_with("erasure", &[("FileFeeds", feeds)]).await else { return };
    let sdk = mdm_aws::config::sdk_config().await;
    let ctx = &s.runner.handlers().erasure;
    for r in ines() {
        assert_eq!(s.post(vec![r]).await.0, 202);
        s.drain().await;
    }
    s.post(vec![other()]).await;
    s.drain().await;
    let olu_before = s.golden_of(&mdm_core::SourceKey::new("customer", "crm", "c-olu")).await;
    assert_eq!(s.items_with_prefix("REV#customer#").await.len(), 1, "the erp record waits for review");
    assert!(
        s.items_with_prefix("GOLD#").await.iter().any(|i| i["sk"].as_s().is_ok_and(|k| k.starts_with("V#0000000002"))),
        "history versions"
    );
    let stored = leaks(&format!("{:?}", s.scan().await), &INES_VALUES);
    assert!(stored.len() >= 12, "the byte search finds the values while they are stored: {stored:?}");
    // Her names are counted for term-frequency matching, under digests of the values.
    let digests: Vec<String> = [("given_name", "ineslinde"), ("family_name", "quarlesworth")]
        .iter()
        .filter_map(|(a, v)| mdm_core::terms::term_key(a, v).split_once('=').map(|(_, d)| d.to_owned()))
        .collect();
    let digests: Vec<&str> = digests.iter().map(String::as_str).collect();
    assert_eq!(leaks(&format!("{:?}", s.items_with_prefix("TERM#customer#").await), &digests).len(), 2);
    // Subscribers consumed what they were sent (their copies are theirs to erase on the event).
    assert!(!s.subscriber_events().await.is_empty());

    // By e-mail: two golden records (the review pair), so `all` is needed.
    let by_email = json!({"entityType": "customer", "identifiers": {"email": "Ineslinde.Q@example.org"}});
    let (status, body) = call(ctx, "POST", "/v1/erasure", Some(&by_email), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("ambiguous_subject")), "{body}");
    assert_eq!(body["error"]["details"][0]["goldenIds"].as_array().map(Vec::len), Some(2));
    assert!(leaks(&body.to_string(), &INES_VALUES).is_empty(), "a 409 names ids, not values");
    let mut all = by_email.clone();
    all["all"] = json!(true);
    // The same request twice at once: one receipt.
    let ((s1, b1), (s2, b2)) = tokio::join!(
        call(ctx, "POST", "/v1/erasure", Some(&all), None),
        call(ctx, "POST", "/v1/erasure", Some(&all), None)
    );
    assert_eq!((s1, s2), (202, 202), "{b1} {b2}");
    let request_id = b1["requestId"].as_str().expect("request id").to_owned();
    assert_eq!(b2["requestId"].as_str(), Some(request_id.as_str()));
    s.drain().await; // the erasure queue (twice the same id), then publish

    let (status, receipt) = call(ctx, "GET", &format!("/v1/erasure/{request_id}"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(receipt["status"], "completed", "{receipt}");
    assert_eq!(receipt["removed"]["sources"], 3, "{receipt}");
    assert_eq!(receipt["removed"]["goldens"], 2);
    assert_eq!(receipt["removed"]["reviews"], 1);
    assert!(receipt["removed"]["history"].as_u64().unwrap_or(0) >= 4);
    assert!(receipt.get("revision").is_none() && receipt.get("progress").is_none(), "internal fields stay internal");
    let kinds: Vec<&str> =
        receipt["events"].as_array().expect("events").iter().filter_map(|e| e["detailType"].as_str()).collect();
    assert_eq!(kinds, ["GoldenRecordErased", "GoldenRecordErased", "ErasureCompleted"]);
    let (status, again) = call(ctx, "POST", "/v1/erasure", Some(&all), None).await;
    assert_eq!(
        (status, again["requestId"].as_str(), &again["receipt"]["removed"]),
        (202, Some(request_id.as_str()), &receipt["removed"])
    );

    // Subscribers are told, with ids only.
    let told = s.subscriber_events().await;
    let erased: Vec<&Value> = told.iter().filter(|e| e["detail-type"] == "GoldenRecordErased").collect();
    assert_eq!(erased.len(), 2, "{told:?}");
    assert!(leaks(&format!("{told:?}"), &INES_VALUES).is_empty(), "the events hold no values");

    // A late duplicate of an erased record, and the person again from a new source.
    s.send("IngestQueue", &ines()[2].to_string()).await;
    let mut back = ines()[0].clone();
    back["sourceSystem"] = json!("partner");
    s.send("IngestQueue", &back.to_string()).await;
    let (status, answer) = s.post(vec![back.clone()]).await;
    assert_eq!((status, answer["rejected"][0]["code"].as_str()), (202, Some("suppressed")), "{answer}");
    assert!(leaks(&answer.to_string(), &INES_VALUES).is_empty(), "the rejection echoes no data");
    // And in a partner's file: the row is suppressed, the file deleted, its report names no value.
    let late = format!(
        "id,given_name,family_name,mail,date_of_birth,national_id\np-ines,Ineslinde,Quarlesworth,{},1979-03-14,QZ123456A\n",
        "Ineslinde.Q@example.org"
    );
    s.put_file("incoming/customer/partner/late.csv", late.into_bytes()).await;
    assert!(!leaks(&s.bucket_text().await, &INES_VALUES).is_empty(), "the byte search finds her in the dropped file");
    s.drain().await;
    let report: Value = serde_json::from_str(
        &s.object_text("reports/customer/partner/late.csv.json").await.expect("the file's report"),
    )
    .expect("JSON");
    assert_eq!(
        (report["rows"]["suppressed"].as_u64(), report["rows"]["stored"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    assert!(s.items_with_prefix("SRC#customer#partner#").await.is_empty(), "not re-created");

    // Nothing left: table, stream records, queues and DLQs.
    let table = format!("{:?}", s.scan().await);
    assert_eq!(leaks(&table, &INES_VALUES), Vec::<&str>::new(), "the table");
    assert_eq!(leaks(&table, &digests), Vec::<&str>::new(), "her names' term counts");
    assert_eq!(leaks(&stream_text(&s).await, &INES_VALUES), Vec::<&str>::new(), "the stream records");
    let queues = queues_text(&s).await;
    assert_eq!(leaks(&queues, &INES_VALUES), Vec::<&str>::new(), "the queues and DLQs:\n{queues}");
    let bucket = s.bucket_text().await;
    assert_eq!(leaks(&bucket, &INES_VALUES), Vec::<&str>::new(), "the files bucket:\n{bucket}");
    assert!(bucket.contains("reports/customer/partner/late.csv.json"), "the report stays: {bucket}");
    assert!(queues.contains("suppressed"), "the bulk re-ingest was dead-lettered with its reason: {queues}");
    // Tombstones keep the keys and sequences; others are untouched.
    let tomb = s.items_with_prefix("SRC#customer#crm#c-ines").await;
    assert_eq!(
        (tomb[0]["kind"].as_s().ok().map(String::as_str), tomb[0]["source_seq"].as_n().ok().map(String::as_str)),
        (Some("tombstone"), Some("2"))
    );
    assert_eq!(s.golden_of(&mdm_core::SourceKey::new("customer", "crm", "c-olu")).await, olu_before);

    // Scope and body checks.
    let plain = ctx_without_local_scopes(&s, &sdk);
    let (status, body) =
        call(&plain, "POST", "/v1/erasure", Some(&all), Some(&[scope::READ, scope::WRITE, scope::STEWARD])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("missing_scope")));
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(scope::ERASURE)));
    let (status, _) = call(&plain, "GET", &format!("/v1/erasure/{request_id}"), None, Some(&[])).await;
    assert_eq!(status, 403);
    let (status, _) = call(&plain, "GET", &format!("/v1/erasure/{request_id}"), None, Some(&[scope::ERASURE])).await;
    assert_eq!(status, 200, "with the scope from the token");
    for (bad, code) in [
        (Value::String("{not json".into()), "invalid_json"),
        (json!({"entityType": "customer"}), "invalid_subject"),
        (json!({"entityType": "customer", "identifiers": {"given_name": "X"}}), "invalid_identifier"),
    ] {
        let text = match &bad {
            Value::String(t) => t.clone(),
            v => v.to_string(),
        };
        let event = http_event("POST", "/v1/erasure", "", Some(&text), None);
        let resp = erasure_handler::handle(ctx, event).await.expect("answers");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap_or("null")).expect("JSON");
        assert_eq!((resp["statusCode"].as_u64(), body["error"]["code"].as_str()), (Some(400), Some(code)), "{bad}");
        assert!(body["error"]["message"].is_string() && body["error"]["details"].is_array());
    }
    // An unknown subject completes with zero counts.
    let nobody = json!({"entityType": "customer", "identifiers": {"email": "nobody@example.net"}});
    let (_, b) = call(ctx, "POST", "/v1/erasure", Some(&nobody), None).await;
    s.drain().await;
    let (_, r) = call(ctx, "GET", &format!("/v1/erasure/{}", b["requestId"].as_str().unwrap_or("")), None, None).await;
    assert_eq!((r["status"].as_str(), &r["removed"]), (Some("completed"), &json!({})));
}

#[tokio::test]
async fn scope_source_recomputes_from_the_rest_and_an_event_can_request_it() {
    let Some(s) = stack("erasure-src").await else { return };
    let crm = customer(
        "crm",
        "c-ravi",
        1,
        json!({"given_name": "Ravindra", "family_name": "Okonkwo-Lund",
        "email": "ravi.ol@example.com", "date_of_birth": "1985-05-05", "locality": "Amberfield"}),
    );
    let web = customer(
        "webshop",
        "w-ravi",
        1,
        json!({"given_name": "Ravi", "family_name": "Okonkwo-Lund", "date_of_birth": "1985-05-05",
        "email": "ravi.ol@example.com", "phone": "07400 900777", "locality": "Westmarshton"}),
    );
    s.post(vec![crm]).await;
    s.drain().await;
    s.post(vec![web]).await;
    s.drain().await;
    let key = mdm_core::SourceKey::new("customer", "crm", "c-ravi");
    assert_eq!(s.golden_of(&key).await.members.len(), 2);
    // Another system asks, through an ErasureRequested event on the hub's bus; only the sources
    // the template names (ErasureRequestSources, by default privacy.requests) reach the queue.
    let bus = s.res.attr("HubBus", "ref").expect("bus").to_owned();
    let sdk = mdm_aws::config::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let detail =
        json!({"entityType": "customer", "scope": "source", "sourceKey": {"system": "webshop", "sourceId": "w-ravi"}});
    let entry = |source: &str| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&bus)
            .source(source)
            .detail_type("ErasureRequested")
            .detail(detail.to_string())
            .build()
    };
    let out = events.put_events().entries(entry("shop.anyone")).send().await.expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
    assert_eq!(s.queue_depth("ErasureQueue").await, 0, "a source the template does not name is not routed");
    s.drain().await;
    assert_eq!(s.golden_of(&key).await.members.len(), 2, "nothing erased");
    let scans = s.runner.handlers().erasure.hub.store().counts().snapshot()["Scan"];
    let out = events.put_events().entries(entry("privacy.requests")).send().await.expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
    s.drain().await;
    let scanned = s.runner.handlers().erasure.hub.store().counts().snapshot()["Scan"] - scans;
    assert_eq!(scanned, 0, "no Scan on the erasure's path (scope source)");
    let g = s.golden_of(&key).await;
    assert_eq!(*g.members, vec![key.clone()], "recomputed from the crm record");
    let web_only = ["Westmarshton", "westmarshton", "07400 900777", "7400900777", "\"ravi\""];
    let table = format!("{:?}", s.scan().await);
    assert_eq!(leaks(&table, &web_only), Vec::<&str>::new(), "no history version or item holds the webshop values");
    assert!(table.contains("amberfield"), "the crm values stay");
}

/// A stack holding Ines's first three records (one golden record), and a hub on a store over its
/// table that fails on purpose.
async fn ines_on_a_faulty_store(name: &str) -> Option<(TestStack, Hub<Faulty<mdm_aws::dynamo::DynamoStore>>)> {
    let s = stack(name).await?;
    for r in ines().into_iter().take(3) {
        s.post(vec![r]).await;
        s.drain().await;
    }
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let config = HubConfig {
        suppression_secrets: s.res.settings().expect("settings").suppression_secrets,
        ..HubConfig::default()
    };
    let hub = Hub::new(registry, Faulty::new(s.store.clone())).with_config(config);
    Some((s, hub))
}

#[tokio::test]
async fn a_failure_half_way_is_completed_by_the_retry() {
    let Some((s, hub)) = ines_on_a_faulty_store("erasure-fail").await else { return };
    let req = ErasureRequest::parse(
        &hub,
        &json!({"entityType": "customer", "sourceKey": {"system": "webshop", "sourceId": "w-ines"}}),
        "test",
    )
    .expect("request");
    let (r, _) = erasure::accept(&hub, &req).await.expect("accept");
    hub.store().fail_at(3);
    assert!(erasure::process(&hub, &r.request_id).await.is_err(), "the injected failure stops the run");
    let done = erasure::process(&hub, &r.request_id).await.expect("the retry completes");
    assert_eq!(done.status, ReceiptStatus::Completed);
    assert_eq!(done.removed["sources"], 2);
    let again = erasure::process(&hub, &r.request_id).await.expect("repeat");
    assert_eq!(again.removed, done.removed);
    let table = format!("{:?}", s.scan().await);
    assert_eq!(leaks(&table, &INES_VALUES), Vec::<&str>::new());
}

/// The erasure handler's dead letters hold no identifier value, name their reason, and a request
/// that fails on its last receive is dead-lettered by the handler as its id (re-drivable), with
/// the receipt `failed` and the reason.
#[tokio::test]
async fn dead_letters_are_redacted_and_the_last_receive_fails_the_receipt() {
    let Some(s) = stack("erasure-dlq").await else { return };
    let bad = json!({"id": "e-9", "source": "privacy.requests", "detail-type": "ErasureRequested",
        "detail": {"entityType": "customer", "identifiers": {"email": "ineslinde.q@example.org"}, "extra": "07400 900555"}});
    s.send("ErasureQueue", &bad.to_string()).await;
    s.drain().await;
    let dead = s.take_all("ErasureDLQ").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (body, attrs) = &dead[0];
    assert_eq!(leaks(body, &INES_VALUES), Vec::<&str>::new(), "the DLQ body: {body}");
    assert_eq!(attrs.get("mdm-error-code").map(String::as_str), Some("unknown_field"), "{attrs:?}");

    // Accepted, then failing on every receive: on the last, the handler dead-letters it.
    let sdk = mdm_aws::config::sdk_config().await;
    let ctx = Ctx::new(&sdk, s.res.settings().expect("settings"), "erasure").expect("ctx");
    let req = ErasureRequest::parse(&ctx.hub, &json!({"entityType": "customer", "goldenId": "g-none"}), "test")
        .expect("request");
    let (r, _) = erasure::accept(&ctx.hub, &req).await.expect("accept");
    let mut broken = s.res.settings().expect("settings");
    broken.suppression_secrets.clear(); // processing needs the secret: every run fails
    let broken = Ctx::new(&sdk, broken, "erasure").expect("ctx");
    let message = |receives: u32| {
        let mut m = aws_lambda_events::sqs::SqsMessage::default();
        m.message_id = Some(format!("m-{receives}"));
        m.body = Some(json!({"requestId": r.request_id}).to_string());
        m.attributes.insert("ApproximateReceiveCount".into(), receives.to_string());
        let mut e = aws_lambda_events::sqs::SqsEvent::default();
        e.records = vec![m];
        e
    };
    let early = erasure_handler::handle_sqs(&broken, message(1)).await;
    assert_eq!(early.batch_item_failures.len(), 1, "an early failure is retried");
    let last = erasure_handler::handle_sqs(&broken, message(erasure_handler::MAX_RECEIVES)).await;
    assert!(last.batch_item_failures.is_empty(), "the last receive is settled by the handler");
    let dead = s.take_all("ErasureDLQ").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, json!({"requestId": r.request_id}).to_string());
    assert_eq!(dead[0].1.get("mdm-error-code").map(String::as_str), Some("erasure_failed"));
    let receipt = erasure::receipt(ctx.hub.store(), &r.request_id).await.expect("receipt").expect("stored");
    assert_eq!(receipt.status, ReceiptStatus::Failed);
    assert!(receipt.error.is_some_and(|e| !e.is_empty()), "the receipt says why");
}

/// The local-stack race: while the erasure runs, one record of the subject waits in the match
/// queue and another's decision waits in the merge queue. When the pipeline goes on, both are
/// stopped by the markers: the receipt is completed and no active golden record, source record
/// or event published afterwards holds the subject's values.
#[tokio::test]
async fn records_waiting_in_the_match_and_merge_queues_do_not_bring_the_subject_back() {
    let Some(s) = stack("erasure-race").await else { return };
    for r in ines().into_iter().take(3) {
        s.post(vec![r]).await;
        s.drain().await;
    }
    let mut in_merge = ines()[0].clone();
    in_merge["sourceSystem"] = json!("partner");
    in_merge["verified"] = json!(["email"]);
    assert_eq!(s.post(vec![in_merge]).await.0, 202);
    assert_eq!(s.deliver_concurrently("MatchQueue", "match").await, 1, "matched; its decision waits");
    assert_eq!(s.queue_depth("MergeQueue").await, 1);
    let mut in_match = ines()[2].clone();
    in_match["sourceSystem"] = json!("ledger");
    assert_eq!(s.post(vec![in_match]).await.0, 202);
    assert_eq!(s.queue_depth("MatchQueue").await, 1, "stored; waits to be matched");
    s.subscriber_events().await; // what subscribers got before the erasure is theirs to erase

    let ctx = &s.runner.handlers().erasure;
    let scans = ctx.hub.store().counts().snapshot()["Scan"];
    let body = json!({"entityType": "customer", "identifiers": {"email": "ineslinde.q@example.org"}});
    let req = ErasureRequest::parse(&ctx.hub, &body, "test").expect("request");
    let (r, _) = erasure::accept(&ctx.hub, &req).await.expect("accept");
    let done = erasure::process(&ctx.hub, &r.request_id).await.expect("process");
    assert_eq!(done.status, ReceiptStatus::Completed);
    assert_eq!(ctx.hub.store().counts().snapshot()["Scan"], scans, "no Scan on the erasure's path");
    s.drain().await; // match and merge go on, then publish

    let table = s.scan().await;
    let active: Vec<String> = table
        .iter()
        .filter(|i| i["pk"].as_s().is_ok_and(|k| k.starts_with("GOLD#")) && i["sk"].as_s().is_ok_and(|k| k == "META"))
        .map(|i| format!("{i:?}"))
        .filter(|t| t.contains("active"))
        .collect();
    assert_eq!(leaks(&active.join("\n"), &INES_VALUES), Vec::<&str>::new(), "an active golden record holds ines");
    for key in ["SRC#customer#partner#c-ines", "SRC#customer#ledger#w-ines"] {
        let item = s.items_with_prefix(key).await;
        assert_eq!(item[0]["kind"].as_s().ok().map(String::as_str), Some("tombstone"), "{key}: {item:?}");
    }
    assert_eq!(leaks(&format!("{table:?}"), &INES_VALUES), Vec::<&str>::new(), "the table");
    let told = s.subscriber_events().await;
    assert!(!told.iter().any(|e| e["detail-type"] == "GoldenRecordCreated"), "nothing re-created: {told:?}");
    assert_eq!(leaks(&format!("{told:?}"), &INES_VALUES), Vec::<&str>::new(), "events after the erasure");
}

/// A crash at a handler boundary of an erasure on the real store — a store call that fails
/// before it does anything, or after a write with its answer lost — and the queue's retries: the
/// receipt ends completed and the byte search of the table finds none of the subject's values.
/// Six crash points spread over the run (every point runs on the in-process store).
#[tokio::test]
async fn a_crash_at_handler_boundaries_of_an_erasure_leaves_nothing() {
    for (i, (k, lost)) in
        [(2, false), (5, true), (9, false), (14, true), (20, false), (28, true)].into_iter().enumerate()
    {
        let Some((s, hub)) = ines_on_a_faulty_store(&format!("erasure-crash-{i}")).await else { return };
        let body = json!({"entityType": "customer", "sourceKey": {"system": "crm", "sourceId": "c-ines"}});
        let req = ErasureRequest::parse(&hub, &body, "test").expect("request");
        hub.store().crash_at(k, lost);
        let mut done = None;
        for _ in 0..5 {
            let Ok((r, _)) = erasure::accept(&hub, &req).await else { continue };
            if let Ok(d) = erasure::process(&hub, &r.request_id).await {
                done = Some(d);
                break;
            }
        }
        let done = done.expect("completed after the retries");
        assert_eq!(done.status, ReceiptStatus::Completed, "crash at call {k} (lost {lost})");
        assert_eq!(done.removed.get("sources"), Some(&2), "crash at call {k} (lost {lost}): {:?}", done.removed);
        let table = format!("{:?}", s.scan().await);
        assert_eq!(leaks(&table, &INES_VALUES), Vec::<&str>::new(), "crash at call {k} (lost {lost})");
    }
}
