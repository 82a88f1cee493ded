//! The read API on the in-process store: every route, its refusals, and enrichment resolving
//! per line. The same routes run through the Lambda handler on the emulator in mdm-aws's
//! `emulator_api` tests, where responses are also checked against the OpenAPI document.
use mdm_core::api::{self, scope, ApiRequest};
use mdm_core::scenario::{self, Scenario};
use mdm_core::store::memory::MemoryStore;
use mdm_core::{Hub, SchemaRegistry};
use serde_json::{json, Value};
use std::sync::Arc;

async fn seeded(products: u64) -> (Hub<MemoryStore>, Scenario) {
    let hub = Hub::new(Arc::new(SchemaRegistry::built_in().expect("schemas")), MemoryStore::new());
    let s = scenario::seed(&hub, products).await.expect("scenario");
    (hub, s)
}

async fn call(hub: &Hub<MemoryStore>, req: ApiRequest) -> (u16, Value, api::ApiResponse) {
    let r = api::handle(hub, &req.with_scopes([scope::READ])).await;
    (r.status, r.body.clone().unwrap_or(Value::Null), r)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn golden_record_reads_answer_by_status() {
    let (hub, s) = seeded(0).await;
    let (status, body, r) = call(&hub, ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.anna))).await;
    assert_eq!(status, 200);
    assert_eq!(body["goldenId"], json!(s.anna));
    assert_eq!(body["status"], "active");
    assert_eq!(body["attributes"]["family_name"]["source"], "crm", "provenance by default");
    let etag = r.header("etag").expect("etag").to_owned();
    assert_eq!(etag, format!("\"{}\"", body["version"]));

    let (status, body, _) = call(
        &hub,
        ApiRequest::new("GET", &format!("/prod/v1/golden/customer/{}", s.anna)).with_query("provenance", "false"),
    )
    .await;
    assert_eq!(status, 200, "a stage prefix is ignored");
    assert_eq!(body["attributes"]["family_name"], json!({"value": "kowalski"}));

    let (status, body, r) = call(
        &hub,
        ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.anna)).with_header("If-None-Match", &etag),
    )
    .await;
    assert_eq!((status, body), (304, Value::Null));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let (status, _, _) = call(
        &hub,
        ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.anna)).with_header("If-None-Match", "\"999\""),
    )
    .await;
    assert_eq!(status, 200, "a stale ETag gets the record");

    let (status, body, r) = call(&hub, ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.merged))).await;
    assert_eq!(status, 200);
    assert_eq!((body["status"].as_str(), body["mergedInto"].as_str()), (Some("merged"), Some(s.survivor.as_str())));
    assert_eq!(r.header("location"), Some(format!("/v1/golden/customer/{}", s.survivor).as_str()));

    let (status, body, _) = call(&hub, ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.erased))).await;
    assert_eq!((status, code(&body)), (410, "erased"));
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/golden/customer/g000")).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    assert!(body["error"]["message"].is_string() && body["error"]["details"].is_array());
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/golden/planet/g000")).await;
    assert_eq!((status, code(&body)), (404, "unknown_entity_type"));
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/golden/customer/g%zz")).await;
    assert_eq!((status, code(&body)), (400, "invalid_path"));
    let (status, body, _) = call(&hub, ApiRequest::new("DELETE", &format!("/v1/golden/customer/{}", s.anna))).await;
    assert_eq!((status, code(&body)), (405, "method_not_allowed"));
    let (status, body, _) = call(
        &hub,
        ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.anna)).with_query("provenance", "maybe"),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_parameter"));
}

#[tokio::test]
async fn history_pages_follow_the_cursor() {
    let (hub, s) = seeded(0).await;
    let path = format!("/v1/golden/customer/{}/history", s.anna);
    let (status, first, _) = call(&hub, ApiRequest::new("GET", &path).with_query("limit", "1")).await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["items"][0]["version"], 1);
    let cursor = first["nextCursor"].as_str().expect("more pages").to_owned();
    let (_, second, _) =
        call(&hub, ApiRequest::new("GET", &path).with_query("limit", "1").with_query("cursor", &cursor)).await;
    assert_eq!(second["items"][0]["version"], 2);
    assert_eq!(second["nextCursor"], Value::Null, "anna has two versions");
    let (status, body, _) = call(&hub, ApiRequest::new("GET", &path).with_query("limit", "101")).await;
    assert_eq!((status, code(&body)), (400, "invalid_parameter"));
}

#[tokio::test]
async fn xref_resolves_source_keys_to_the_active_golden_record() {
    let (hub, s) = seeded(0).await;
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/xref/customer/CRM/c-100")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["goldenId"], json!(s.anna));
    assert_eq!(body["golden"]["goldenId"], json!(s.anna));
    for system in ["crm/c-1", "webshop/w-1"] {
        let (status, body, _) = call(&hub, ApiRequest::new("GET", &format!("/v1/xref/customer/{system}"))).await;
        assert_eq!((status, body["goldenId"].as_str()), (200, Some(s.survivor.as_str())), "merged sources → survivor");
    }
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/xref/customer/crm/c-900")).await;
    assert_eq!((status, code(&body)), (410, "erased"));
    let (status, body, _) = call(&hub, ApiRequest::new("GET", "/v1/xref/customer/crm/nobody")).await;
    assert_eq!((status, code(&body)), (404, "unknown_source"));
}

#[tokio::test]
async fn match_scores_without_storing() {
    let (hub, s) = seeded(0).await;
    let before = hub.store().counts();
    let probe = json!({"entityType": "customer", "limit": 3, "attributes": {
        "given_name": "Anna", "family_name": "Kowalsky", "email": "ANNA.KOWALSKI@example.com", "date_of_birth": "21/07/1984"}});
    let (status, body, _) = call(&hub, ApiRequest::new("POST", "/v1/match").with_json(&probe)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "link");
    assert_eq!(body["goldenIds"], json!([s.anna]));
    let top = &body["candidates"][0];
    assert_eq!(top["goldenId"], json!(s.anna));
    assert_eq!(top["band"], "link");
    let explained: Vec<&str> =
        top["attributes"].as_array().expect("explanation").iter().filter_map(|a| a["attribute"].as_str()).collect();
    assert!(explained.contains(&"family_name") && explained.contains(&"email"), "{explained:?}");
    assert_eq!(hub.store().counts(), before, "nothing stored");

    let nobody = json!({"entityType": "customer", "attributes": {"given_name": "Zed", "family_name": "Quorn"}});
    let (_, body, _) = call(&hub, ApiRequest::new("POST", "/v1/match").with_json(&nobody)).await;
    assert_eq!((body["decision"].as_str(), body["candidates"].as_array().map(Vec::len)), (Some("new"), Some(0)));

    for (bad, want) in [
        (json!({"entityType": "customer", "attributes": {}, "limit": 21}), "invalid_parameter"),
        (json!({"entityType": "customer"}), "missing_field"),
        (json!({"entityType": "planet", "attributes": {}}), "unknown_entity_type"),
        (json!({"entityType": "customer", "attributes": {"shoe_size": "9"}}), "unknown_attribute"),
        (json!({"entityType": "customer", "attributes": {}, "extra": 1}), "unknown_field"),
        (json!([1, 2]), "invalid_body"),
    ] {
        let (status, body, _) = call(&hub, ApiRequest::new("POST", "/v1/match").with_json(&bad)).await;
        assert_eq!((status, code(&body)), (400, want), "{bad}");
    }
    let mut req = ApiRequest::new("POST", "/v1/match");
    req.body = b"{not json".to_vec();
    let (status, body, _) = call(&hub, req).await;
    assert_eq!((status, code(&body)), (400, "invalid_json"));
}

#[tokio::test]
async fn enrich_resolves_every_line_in_its_place() {
    let (hub, s) = seeded(97).await;
    // 100 lines: 97 known SKUs/GTINs/source keys, 3 unknown SKUs at known positions.
    let mut lines = Vec::new();
    for (i, (sku, gtin, _)) in s.products.iter().enumerate() {
        lines.push(match i % 3 {
            0 => json!({"sku": sku.to_lowercase(), "quantity": 2}),
            1 => json!({"gtin": gtin}),
            _ => json!({"system": "ERP", "sourceId": format!("P-{i}")}),
        });
    }
    for (at, sku) in [(5, "NOPE-1"), (50, "NOPE-2"), (99, "NOPE-3")] {
        lines.insert(at, json!({"sku": sku}));
    }
    assert_eq!(lines.len(), 100);
    let order = json!({"orderId": "o-1", "customer": {"system": "crm", "sourceId": "c-100"}, "lines": lines});
    let (status, body, _) =
        call(&hub, ApiRequest::new("POST", "/v1/enrich").with_json(&order).with_query("fields", "name,gtin,email"))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"], json!({"lines": 100, "resolved": 97, "unresolved": 3}));
    assert_eq!(body["customer"]["goldenId"], json!(s.anna));
    assert_eq!(body["customer"]["attributes"], json!({"email": "anna.kowalski@example.com"}), "fields select");
    let out = body["lines"].as_array().expect("lines");
    let mut product = s.products.iter();
    for (i, line) in out.iter().enumerate() {
        assert_eq!(line["line"], i);
        if [5, 50, 99].contains(&i) {
            assert_eq!(code(line), "unknown_identifier", "line {i}: {line}");
            continue;
        }
        let (_, gtin, id) = product.next().expect("a product");
        assert_eq!(line["goldenId"].as_str(), Some(id.as_str()), "line {i}");
        assert_eq!(line["attributes"]["gtin"].as_str(), Some(format!("0{gtin}").as_str()), "GTIN-14 form");
        assert!(line["attributes"].get("price").is_none(), "not selected");
    }
}

#[tokio::test]
async fn enrich_reports_bad_references_in_place_and_refuses_bad_orders() {
    let (hub, s) = seeded(2).await;
    let lines = json!([
        {"sku": "SKU-000001"},
        {"gtin": "4000000000001"},
        {"sku": "SKU-000000", "gtin": "x"},
        {"system": "erp"},
        "not an object",
        {"sku": 42}
    ]);
    let order = json!({"customer": {"attributes": {"given_name": "Anna", "family_name": "Kowalski",
                        "email": "anna.kowalski@example.com", "date_of_birth": "1984-07-21"}}, "lines": lines});
    let (status, body, _) = call(&hub, ApiRequest::new("POST", "/v1/enrich").with_json(&order)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["goldenId"], json!(s.anna), "matched by attributes");
    let codes: Vec<&str> =
        body["lines"].as_array().expect("lines").iter().map(|l| l["error"]["code"].as_str().unwrap_or("ok")).collect();
    assert_eq!(
        codes,
        [
            "ok",
            "invalid_identifier",
            "invalid_reference",
            "invalid_reference",
            "invalid_reference",
            "invalid_reference"
        ]
    );

    for (customer, want) in [
        (json!({"system": "crm", "sourceId": "c-1"}), Some(s.survivor.as_str())),
        (json!({"system": "crm", "sourceId": "c-900"}), None),
    ] {
        let (_, body, _) =
            call(&hub, ApiRequest::new("POST", "/v1/enrich").with_json(&json!({"customer": customer}))).await;
        match want {
            Some(id) => assert_eq!(body["customer"]["goldenId"].as_str(), Some(id), "merged → survivor"),
            None => assert_eq!(code(&body["customer"]), "erased"),
        }
    }

    let too_many: Vec<Value> = (0..101).map(|_| json!({"sku": "SKU-000001"})).collect();
    for (bad, status_want, want) in [
        (json!({"lines": too_many}), 413, "too_many_lines"),
        (json!({}), 400, "empty_order"),
        (json!({"lines": "x"}), 400, "invalid_field"),
        (json!({"lines": [], "coupon": "x"}), 400, "unknown_field"),
    ] {
        let (status, body, _) = call(&hub, ApiRequest::new("POST", "/v1/enrich").with_json(&bad)).await;
        assert_eq!((status, code(&body)), (status_want, want));
    }
    let (status, body, _) = call(
        &hub,
        ApiRequest::new("POST", "/v1/enrich")
            .with_json(&json!({"lines": [{"sku": "SKU-000001"}]}))
            .with_query("fields", "shoe_size"),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "unknown_field"));
}

#[tokio::test]
async fn every_route_refuses_a_caller_without_its_scope() {
    let (hub, s) = seeded(1).await;
    let requests = [
        ApiRequest::new("GET", &format!("/v1/golden/customer/{}", s.anna)),
        ApiRequest::new("GET", &format!("/v1/golden/customer/{}/history", s.anna)),
        ApiRequest::new("GET", "/v1/xref/customer/crm/c-100"),
        ApiRequest::new("POST", "/v1/match").with_json(&json!({"entityType": "customer", "attributes": {}})),
        ApiRequest::new("POST", "/v1/enrich").with_json(&json!({"lines": [{"sku": "SKU-000000"}]})),
    ];
    for req in requests {
        for granted in [vec![], vec![scope::WRITE, scope::STEWARD, scope::ERASURE]] {
            let r = api::handle(&hub, &req.clone().with_scopes(granted.iter().copied())).await;
            let body = r.body.clone().unwrap_or(Value::Null);
            assert_eq!((r.status, code(&body)), (403, "missing_scope"), "{} {}", req.method, req.path);
            assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("mdm/read")), "names the scope");
        }
        assert_eq!(api::handle(&hub, &req.clone().with_scopes([scope::READ])).await.status, 200, "{}", req.path);
    }
}

/// Versions of a golden record with 1,000 members (the most a version lists) are about 80 KB
/// each: a page of 100 stops before 4 MB of them (Lambda answers at most 6 MB) and the cursor
/// walks the rest. A version of a larger record gives its member count instead of the list.
#[tokio::test]
async fn history_pages_of_a_very_large_golden_record_stay_under_lambdas_answer_limit() {
    use mdm_core::golden::{Cause, HistoryEntry};
    use mdm_core::store::{GoldenStore, Transactor, WriteOp};
    let (hub, s) = seeded(0).await;
    let mut g = hub.store().get_golden("customer", &s.anna).await.expect("get").expect("anna");
    g.members = (0..mdm_core::golden::HISTORY_MEMBERS)
        .map(|i| {
            mdm_core::SourceKey::new(
                "customer",
                "partner-feed",
                format!("partner-feed-member-with-a-long-source-identifier-{i:06}"),
            )
        })
        .collect::<Vec<_>>()
        .into();
    let first = hub.store().history("customer", &s.anna).await.expect("history").len() as u64;
    for version in first + 1..=120 {
        g.version = version;
        let h = HistoryEntry::of(&g, Cause::Ingest, "bulk", 0);
        hub.store().transact(vec![WriteOp::PutHistory(Box::new(h))]).await.expect("history");
    }
    let path = format!("/v1/golden/customer/{}/history", s.anna);
    let mut versions = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    for _ in 0..30 {
        pages += 1;
        let mut req = ApiRequest::new("GET", &path).with_query("limit", "100");
        if let Some(c) = &cursor {
            req = req.with_query("cursor", c);
        }
        let (status, body, _) = call(&hub, req).await;
        assert_eq!(status, 200);
        let bytes = serde_json::to_vec(&body).expect("json").len();
        assert!(bytes < 5 * 1024 * 1024, "a page of {bytes} bytes");
        versions.extend(body["items"].as_array().expect("items").iter().filter_map(|i| i["version"].as_u64()));
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(versions, (1..=120).collect::<Vec<_>>(), "every version once, in order");
    assert!(pages >= 3, "pages of 100 versions are cut by size: {pages} pages");

    g.members = (0..=mdm_core::golden::HISTORY_MEMBERS)
        .map(|i| mdm_core::SourceKey::new("customer", "partner-feed", format!("m-{i}")))
        .collect::<Vec<_>>()
        .into();
    g.version = 121;
    let h = HistoryEntry::of(&g, Cause::Ingest, "bulk", 0);
    assert_eq!(h.member_count, Some(mdm_core::golden::HISTORY_MEMBERS + 1));
    assert!(h.snapshot.members.is_empty());
    assert!(h.mentions(&mdm_core::SourceKey::new("customer", "crm", "c-100")), "anna's values came from c-100");
    hub.store().transact(vec![WriteOp::PutHistory(Box::new(h))]).await.expect("history");
    let (_, body, _) = call(&hub, ApiRequest::new("GET", &path).with_query("cursor", "120")).await;
    assert_eq!(body["items"][0]["memberCount"], mdm_core::golden::HISTORY_MEMBERS + 1);
}

/// The review queue, oldest first: each task with its record, the candidates' current values and
/// the explanation it was opened with; steward scope only; a cursor walks the pages.
#[tokio::test]
async fn the_review_queue_lists_open_tasks_with_their_record_and_candidates() {
    use mdm_core::api::steward;
    let (hub, _) = seeded(0).await;
    // Two more tasks, opened after the scenario's.
    let s = scenario::anna_key();
    for (i, id) in ["t-late-1", "t-late-2"].into_iter().enumerate() {
        let task = mdm_core::ReviewTask {
            entity: "customer".into(),
            task_id: id.into(),
            golden_id: "g-holder".into(),
            source: s.clone(),
            candidate_golden_ids: vec!["g-other".into()],
            score: 9.0,
            explanation: vec![],
            status: mdm_core::golden::ReviewStatus::Open,
            created_at_ms: hub.now_ms() + 1_000 + i as i64,
            resolution: None,
            expires_at: None,
        };
        use mdm_core::store::{Transactor, WriteOp};
        hub.store().transact(vec![WriteOp::PutReview(Box::new(task))]).await.expect("review");
    }
    let call = |req: ApiRequest| {
        let hub = &hub;
        async move {
            let r = steward::handle(hub, &req).await;
            (r.status, r.body.clone().unwrap_or(Value::Null))
        }
    };
    let all =
        call(ApiRequest::new("GET", "/v1/reviews").with_query("entity", "customer").with_scopes([scope::STEWARD]))
            .await;
    assert_eq!(all.0, 200, "{}", all.1);
    let items = all.1["items"].as_array().expect("items").clone();
    assert!(items.len() >= 2, "{}", all.1);
    let opened: Vec<&str> = items.iter().filter_map(|i| i["openedAt"].as_str()).collect();
    let mut sorted = opened.clone();
    sorted.sort();
    assert_eq!(opened, sorted, "oldest first");
    let task = &items[0];
    assert_eq!(task["status"], "open");
    assert!(task["record"]["attributes"]["family_name"].is_string(), "{task}");
    let candidate = &task["candidates"][0];
    // The scenario merged the two golden records the task names since it opened (which one
    // survives depends on their ages): the merged one's current state says where it went.
    let states = [&task["holder"]["golden"], &candidate["golden"]];
    assert_eq!(states.iter().filter(|g| g["status"] == "active").count(), 1, "{task}");
    let merged = states.iter().find(|g| g["status"] == "merged").expect("one was merged");
    assert!(merged["mergedInto"].is_string(), "{task}");
    assert_eq!(candidate["band"], "review");
    let weights: f64 =
        candidate["explanation"].as_array().expect("explanation").iter().filter_map(|a| a["weight"].as_f64()).sum();
    assert!(
        (weights - candidate["score"].as_f64().expect("score")).abs() < 0.01,
        "the explanation adds up to the score"
    );

    // Pages of one, walked with the cursor, give the same tasks in the same order.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut req = ApiRequest::new("GET", "/v1/reviews").with_query("entity", "customer").with_query("limit", "1");
        if let Some(c) = &cursor {
            req = req.with_query("cursor", c);
        }
        let (status, body) = call(req.with_scopes([scope::STEWARD])).await;
        assert_eq!(status, 200);
        walked.extend(body["items"].as_array().expect("items").iter().map(|i| i["taskId"].clone()));
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, items.iter().map(|i| i["taskId"].clone()).collect::<Vec<_>>());

    let refused =
        call(ApiRequest::new("GET", "/v1/reviews").with_query("entity", "customer").with_scopes([scope::READ])).await;
    assert_eq!((refused.0, code(&refused.1)), (403, "missing_scope"));
    for (name, value, status, expected) in [
        ("status", "maybe", 400, "invalid_parameter"),
        ("limit", "101", 400, "invalid_parameter"),
        ("entity", "planet", 404, "unknown_entity_type"),
    ] {
        let mut req = ApiRequest::new("GET", "/v1/reviews").with_query("entity", "customer");
        req = req.with_query(name, value);
        let (got, body) = call(req.with_scopes([scope::STEWARD])).await;
        assert_eq!((got, code(&body)), (status, expected), "{name}={value}");
    }
    let missing = call(ApiRequest::new("GET", "/v1/reviews").with_scopes([scope::STEWARD])).await;
    assert_eq!((missing.0, code(&missing.1)), (400, "invalid_parameter"));
    let wrong = call(ApiRequest::new("POST", "/v1/reviews").with_scopes([scope::STEWARD])).await;
    assert_eq!(wrong.0, 405);
}

#[tokio::test]
async fn a_golden_record_carries_its_data_quality_in_the_api_and_its_events() {
    use mdm_core::store::Outbox;
    let hub = Hub::new(Arc::new(SchemaRegistry::built_in().expect("schemas")), MemoryStore::new());
    let total = hub.registry().get("customer").expect("customer").attributes.len() as f64;
    let send = |id: &str, seq: u64, attributes: Value| json!({"entityType": "customer", "sourceSystem": "crm", "sourceId": id, "sourceSeq": seq, "attributes": attributes});
    // Three values, one of them an impossible date kept raw: 2 valid of the schema's attributes.
    let first = send("c-1", 1, json!({"given_name": "Ola", "family_name": "Nowak", "date_of_birth": "1990-02-31"}));
    let record = mdm_core::record::validate(hub.registry(), &first, hub.now_ms()).expect("valid record");
    hub.ingest(&record).await.expect("ingest");
    let id = hub.process(&record.key).await.expect("process").golden.golden_id;
    let (status, body, _) = call(&hub, ApiRequest::new("GET", &format!("/v1/golden/customer/{id}"))).await;
    assert_eq!(status, 200);
    let quality = |body: &Value| body["quality"].as_f64().expect("quality is a number");
    let expected = |valid: f64| (valid / total * 1000.0).round() / 1000.0;
    assert_eq!(quality(&body), expected(2.0), "{body:#}");
    assert_eq!(body["attributes"]["date_of_birth"]["valid"], json!(false), "the raw value says so");
    assert!(body["attributes"]["given_name"].get("valid").is_none(), "valid values carry no flag");

    // The same record, now with a real date and an e-mail address: 4 valid values.
    let second = send(
        "c-1",
        2,
        json!({"given_name": "Ola", "family_name": "Nowak", "date_of_birth": "1990-02-13", "email": "ola@example.com"}),
    );
    let record = mdm_core::record::validate(hub.registry(), &second, hub.now_ms()).expect("valid record");
    hub.ingest(&record).await.expect("ingest");
    hub.process(&record.key).await.expect("process");
    let (_, body, _) = call(&hub, ApiRequest::new("GET", &format!("/v1/golden/customer/{id}"))).await;
    assert_eq!(quality(&body), expected(4.0));
    assert!(body["attributes"]["date_of_birth"].get("valid").is_none());

    // Each event carries the quality of the version it announces.
    let events = hub.store().pending_events(100).await.expect("outbox");
    let seen: Vec<f64> = events.iter().filter_map(|e| e.event.detail()["golden"]["quality"].as_f64()).collect();
    assert_eq!(seen, vec![expected(2.0), expected(4.0)]);
}
