//! The HTTP API end to end on the emulator: every route through its real Lambda handler (the read
//! API's Lambda handler, ingest's HTTP handler) over DynamoDB, every response checked against
//! `docs/openapi.json`, scopes from the JWT authorizer's request context, DynamoDB requests per
//! enrich counted, and log output searched for the input values.
mod common;

use common::*;
use mdm_aws::handlers::{api, ingest, Ctx};
use mdm_aws::local::http_event;
use mdm_core::api::{scope, Route};
use mdm_core::scenario::{self, Scenario};
use mdm_core::store::SourceStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

struct Api {
    ctx: Ctx,
    doc: Value,
    stack: TestStack,
}

impl Api {
    /// A stack whose handlers take scopes from the request's authorizer only (no local setting).
    async fn new(name: &str) -> Option<Self> {
        let stack = stack(name).await?;
        let mut settings = stack.res.settings().expect("settings");
        settings.local_scopes = None;
        let sdk = mdm_aws::config::sdk_config().await;
        let ctx = Ctx::new(&sdk, settings, "api").expect("ctx");
        Some(Self { ctx, doc: openapi(), stack })
    }

    async fn seed(&self, products: u64) -> Scenario {
        scenario::seed(&self.ctx.hub, products).await.expect("scenario on DynamoDB")
    }

    /// Calls the read API's Lambda handler with an HTTP API event.
    async fn read(&self, method: &str, path: &str, query: &str, body: Option<&Value>, scopes: &[&str]) -> Answer {
        self.read_with(method, path, query, body, scopes, &[]).await
    }

    async fn read_with(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
        scopes: &[&str],
        headers: &[(&str, &str)],
    ) -> Answer {
        let text = body.map(Value::to_string);
        let mut event = http_event(method, path, query, text.as_deref(), Some(scopes));
        for (k, v) in headers {
            event["headers"][*k] = json!(v);
        }
        let resp = api::handle_event(&self.ctx, event).await;
        answer(&resp)
    }

    /// Calls ingest's HTTP handler.
    /// The steward function's raw answer to an unauthenticated `GET` (no authorizer context).
    async fn steward_page(&self, path: &str) -> Value {
        let mut settings = self.stack.res.settings_for("mdm-steward").expect("settings");
        settings.local_scopes = None;
        let sdk = mdm_aws::config::sdk_config().await;
        let ctx = Ctx::new(&sdk, settings, "steward").expect("ctx");
        mdm_aws::handlers::steward::handle_event(&ctx, http_event("GET", path, "", None, None)).await
    }

    async fn ingest(&self, body: &str, scopes: &[&str]) -> Answer {
        let mut event = http_event("POST", "/v1/records", "", Some(body), Some(scopes));
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!("client-7");
        let resp = ingest::handle(&self.ctx, event).await.expect("ingest answers");
        answer(&resp)
    }
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("<none>")
}

const READ: &[&str] = &[scope::READ];
const GOLDEN: &str = "/v1/golden/{entity}/{goldenId}";

/// The 100-line order of the must-show line: 97 known products (by SKU, GTIN and source key) and
/// 3 unknown SKUs at lines 5, 50 and 99.
fn order(s: &Scenario) -> Value {
    let mut lines: Vec<Value> = s
        .products
        .iter()
        .enumerate()
        .map(|(i, (sku, gtin, _))| match i % 3 {
            0 => json!({"sku": sku, "quantity": 1}),
            1 => json!({"gtin": gtin}),
            _ => json!({"system": "erp", "sourceId": format!("P-{i}")}),
        })
        .collect();
    for (at, sku) in [(5, "UNKNOWN-SKU-1"), (50, "UNKNOWN-SKU-2"), (99, "UNKNOWN-SKU-3")] {
        lines.insert(at, json!({ "sku": sku }));
    }
    json!({"orderId": "order-1", "customer": {"system": "crm", "sourceId": "c-100"}, "lines": lines})
}

#[tokio::test]
async fn every_route_answers_end_to_end_as_documented() {
    let Some(t) = Api::new("api-routes").await else { return };
    let s = t.seed(97).await;
    let doc = &t.doc;

    // Golden record: 200 with ETag, 304 on it, merged → survivor, erased → 410, unknown → 404.
    let a = t.read("GET", &format!("/v1/golden/customer/{}", s.anna), "", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!((a.status, a.body["goldenId"].as_str()), (200, Some(s.anna.as_str())));
    assert_eq!(a.body["attributes"]["email"]["source"], "crm");
    let etag = a.headers["etag"].clone();
    let a = t
        .read_with("GET", &format!("/v1/golden/customer/{}", s.anna), "", None, READ, &[("if-none-match", &etag)])
        .await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!(a.status, 304);
    let a = t.read("GET", &format!("/v1/golden/customer/{}", s.anna), "provenance=false", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!(a.body["attributes"]["email"], json!({"value": "anna.kowalski@example.com"}));
    let a = t.read("GET", &format!("/v1/golden/customer/{}", s.merged), "", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!(
        (a.status, a.body["status"].as_str(), a.body["mergedInto"].as_str()),
        (200, Some("merged"), Some(s.survivor.as_str()))
    );
    assert_eq!(a.headers.get("location"), Some(&format!("/v1/golden/customer/{}", s.survivor)));
    let a = t.read("GET", &format!("/v1/golden/customer/{}", s.erased), "", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!((a.status, code(&a)), (410, "erased"));
    let a = t.read("GET", "/v1/golden/customer/gdoesnotexist", "", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!((a.status, code(&a)), (404, "not_found"));
    let a = t.read("POST", "/v1/golden/customer/x", "", None, READ).await;
    conform(doc, GOLDEN, "get", &a);
    assert_eq!(a.status, 405);

    // History, paginated.
    let path = "/v1/golden/{entity}/{goldenId}/history";
    let a = t.read("GET", &format!("/v1/golden/customer/{}/history", s.anna), "limit=1", None, READ).await;
    conform(doc, path, "get", &a);
    let cursor = a.body["nextCursor"].as_str().expect("a second page").to_owned();
    let a = t
        .read(
            "GET",
            &format!("/v1/golden/customer/{}/history", s.anna),
            &format!("limit=1&cursor={cursor}"),
            None,
            READ,
        )
        .await;
    conform(doc, path, "get", &a);
    assert_eq!((a.body["items"][0]["version"].as_u64(), &a.body["nextCursor"]), (Some(2), &Value::Null));

    // Cross-references.
    let path = "/v1/xref/{entity}/{system}/{sourceId}";
    let a = t.read("GET", "/v1/xref/customer/webshop/w-9", "", None, READ).await;
    conform(doc, path, "get", &a);
    assert_eq!(a.body["goldenId"].as_str(), Some(s.anna.as_str()));
    let a = t.read("GET", "/v1/xref/customer/crm/c-1", "", None, READ).await;
    conform(doc, path, "get", &a);
    assert_eq!(a.body["goldenId"].as_str(), Some(s.survivor.as_str()), "a merged record's source → the survivor");
    let a = t.read("GET", "/v1/xref/customer/crm/nobody", "", None, READ).await;
    conform(doc, path, "get", &a);
    assert_eq!((a.status, code(&a)), (404, "unknown_source"));

    // Match.
    let probe = json!({"entityType": "customer", "limit": 5, "attributes": {"given_name": "Anna", "family_name": "Kowalski",
                       "email": "anna.kowalski@example.com", "date_of_birth": "1984-07-21"}});
    let a = t.read("POST", "/v1/match", "", Some(&probe), READ).await;
    conform(doc, "/v1/match", "post", &a);
    assert_eq!(
        (a.body["decision"].as_str(), a.body["candidates"][0]["goldenId"].as_str()),
        (Some("link"), Some(s.anna.as_str()))
    );
    let a = t
        .read("POST", "/v1/match", "", Some(&json!({"entityType": "customer", "attributes": {}, "limit": 50})), READ)
        .await;
    conform(doc, "/v1/match", "post", &a);
    assert_eq!((a.status, code(&a)), (400, "invalid_parameter"));

    // Enrich: 97 resolved, 3 reasons in place, at most 4 DynamoDB requests, all batched.
    let before = t.ctx.hub.store().counts().snapshot();
    let a = t.read("POST", "/v1/enrich", "fields=name,gtin,email", Some(&order(&s)), READ).await;
    let after = t.ctx.hub.store().counts().snapshot();
    conform(doc, "/v1/enrich", "post", &a);
    assert_eq!(a.body["summary"], json!({"lines": 100, "resolved": 97, "unresolved": 3}), "{}", a.body);
    assert_eq!(a.body["customer"]["goldenId"].as_str(), Some(s.anna.as_str()));
    let lines = a.body["lines"].as_array().expect("lines");
    let failed: Vec<(u64, &str)> = lines
        .iter()
        .filter(|l| l.get("error").is_some())
        .map(|l| (l["line"].as_u64().unwrap_or(0), l["error"]["code"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(failed, vec![(5, "unknown_identifier"), (50, "unknown_identifier"), (99, "unknown_identifier")]);
    let used: BTreeMap<&str, u64> = after.iter().map(|(k, v)| (*k, v - before[k])).filter(|(_, v)| *v > 0).collect();
    eprintln!("DynamoDB requests for a 100-line enrich: {used:?}");
    let batch_gets = used.get("BatchGetItem").copied().unwrap_or(0);
    assert!(batch_gets <= 4 && used.len() == 1, "DynamoDB requests for a 100-line enrich: {used:?}");
    let a = t.read("POST", "/v1/enrich", "", Some(&json!({"lines": vec![json!({"sku": "x"}); 101]})), READ).await;
    conform(doc, "/v1/enrich", "post", &a);
    assert_eq!((a.status, code(&a)), (413, "too_many_lines"));

    // Ingest through its own handler, same contract. A token writes only the source systems
    // it is granted; the sender is recorded with the stored version.
    let record = customer("crm", "c-new", 1, json!({"given_name": "Noor", "family_name": "Haddad"}));
    let body = json!({"records": [record, {"entityType": "customer"}]}).to_string();
    for granted in [&[scope::WRITE][..], &[scope::WRITE, "mdm/write:erp"]] {
        let a = t.ingest(&body, granted).await;
        conform(doc, "/v1/records", "post", &a);
        assert_eq!((a.status, code(&a)), (403, "system_not_granted"), "{granted:?}");
    }
    assert!(t.stack.items_with_prefix("SRC#customer#crm#c-new").await.is_empty(), "nothing stored");
    let a = t.ingest(&body, &[scope::WRITE, "mdm/write:crm"]).await;
    conform(doc, "/v1/records", "post", &a);
    let stored = t.stack.store.get_source(&mdm_core::SourceKey::new("customer", "crm", "c-new")).await.expect("get");
    assert_eq!(stored.and_then(|r| r.principal.clone()).as_deref(), Some("client-7"), "who sent it");
    assert_eq!((a.status, a.body["stored"].as_u64()), (202, Some(1)));
    let a = t.ingest("{\"records\": [", &[scope::WRITE, "mdm/write:crm"]).await;
    conform(doc, "/v1/records", "post", &a);
    assert_eq!((a.status, code(&a)), (400, "invalid_json"));
}

#[tokio::test]
async fn every_route_refuses_a_token_without_its_scope() {
    let Some(t) = Api::new("api-scopes").await else { return };
    let s = t.seed(1).await;
    let others = |needed: &str| scope::ALL.iter().copied().filter(|x| *x != needed).collect::<Vec<_>>();
    let order = json!({"lines": [{"sku": "SKU-000000"}]});
    let probe = json!({"entityType": "customer", "attributes": {"given_name": "Anna"}});
    let routes: Vec<(&str, String, Option<&Value>, &str)> = vec![
        ("GET", format!("/v1/golden/customer/{}", s.anna), None, GOLDEN),
        ("GET", format!("/v1/golden/customer/{}/history", s.anna), None, "/v1/golden/{entity}/{goldenId}/history"),
        ("GET", "/v1/xref/customer/crm/c-100".into(), None, "/v1/xref/{entity}/{system}/{sourceId}"),
        (
            "GET",
            format!("/v1/golden/customer/{}/why/crm/c-100", s.anna),
            None,
            "/v1/golden/{entity}/{goldenId}/why/{system}/{sourceId}",
        ),
        ("POST", "/v1/match".into(), Some(&probe), "/v1/match"),
        ("POST", "/v1/enrich".into(), Some(&order), "/v1/enrich"),
    ];
    for (method, path, body, template) in routes {
        for granted in [vec![], others(scope::READ)] {
            let a = t.read(method, &path, "", body, &granted).await;
            conform(&t.doc, template, &method.to_lowercase(), &a);
            assert_eq!((a.status, code(&a)), (403, "missing_scope"), "{method} {path} with {granted:?}");
            assert!(a.body["error"]["message"].as_str().is_some_and(|m| m.contains(scope::READ)), "names the scope");
        }
        assert_eq!(t.read(method, &path, "", body, READ).await.status, 200, "{method} {path} with its scope");
    }
    let record = json!({"records": [customer("crm", "c-x", 1, json!({"given_name": "X"}))]}).to_string();
    for granted in [vec![], others(scope::WRITE)] {
        let a = t.ingest(&record, &granted).await;
        conform(&t.doc, "/v1/records", "post", &a);
        assert_eq!((a.status, code(&a)), (403, "missing_scope"));
        assert!(a.body["error"]["message"].as_str().is_some_and(|m| m.contains(scope::WRITE)));
    }
    assert!(t.stack.items_with_prefix("SRC#customer#crm#c-x").await.is_empty(), "nothing stored without the scope");
    assert_eq!(t.ingest(&record, &[scope::WRITE, scope::WRITE_ANY_SYSTEM]).await.status, 202);

    // The template declares, per route, the scope the handler checks; the document says the same.
    let mut declared = 0;
    let mut consoles = 0;
    for f in t.stack.res.functions.values() {
        for src in &f.event_sources {
            let mdm_aws::local::EventSource::Http { method: Some(m), path: Some(p), scopes, .. } = src else {
                continue;
            };
            let concrete = p.replace('{', "x").replace('}', "");
            if p == "/console" || p.starts_with("/console/") {
                // The one exception: the console's page and files hold no data and need no token.
                assert!(scopes.is_empty(), "{m} {p}: the console needs no scope");
                consoles += 1;
                continue;
            }
            let needed = match p.as_str() {
                "/v1/records" => scope::WRITE,
                e if e.starts_with("/v1/erasure") => scope::ERASURE,
                _ if mdm_core::api::steward::StewardRoute::parse(m, &concrete).is_ok() => scope::STEWARD,
                _ => Route::parse(m, &concrete).expect("a route").scope(),
            };
            assert_eq!(scopes, &vec![needed.to_owned()], "{m} {p} in the template");
            assert_eq!(
                t.doc["paths"][p][m.to_lowercase()]["x-required-scope"],
                json!(needed),
                "{m} {p} in the document"
            );
            declared += 1;
        }
    }
    assert_eq!(declared, 19, "nineteen routes in the template");
    assert_eq!(consoles, 2, "the console's page and its files");
    // Served without a token, with the policy that keeps source values from running as script.
    let page = t.steward_page("/console").await;
    assert_eq!(page["statusCode"], json!(200));
    assert!(page["body"].as_str().is_some_and(|b| b.starts_with("<!doctype html>")), "the page as it is, not JSON");
    assert_eq!(
        page["headers"]["content-security-policy"].as_str(),
        Some(mdm_core::api::console::CONTENT_SECURITY_POLICY)
    );
}

/// A `MakeWriter` that appends log lines to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn enrich_and_match_logs_hold_no_input_values() {
    use tracing::instrument::WithSubscriber;
    let Some(t) = Api::new("api-logs").await else { return };
    let s = t.seed(3).await;
    let capture = Capture::default();
    let writer = capture.clone();
    // The production subscriber at the most verbose level.
    let subscriber = mdm_aws::config::log_subscriber("trace", move || writer.clone());
    let order = json!({"customer": {"attributes": {"given_name": "Anna", "family_name": "Kowalski",
                       "email": "anna.kowalski@example.com", "phone": "07400 900461"}},
                       "lines": [{"sku": "SKU-000001"}, {"gtin": s.products[2].1}, {"system": "erp", "sourceId": "P-0"},
                                 {"sku": "MYSTERY-SKU-77"}]});
    let probe =
        json!({"entityType": "customer", "attributes": {"given_name": "Anna", "email": "anna.kowalski@example.com"}});
    async {
        assert_eq!(t.read("POST", "/v1/enrich", "", Some(&order), READ).await.status, 200);
        assert_eq!(t.read("POST", "/v1/match", "", Some(&probe), READ).await.status, 200);
        assert_eq!(t.read("GET", "/v1/xref/customer/crm/c-100", "", None, READ).await.status, 200);
    }
    .with_subscriber(subscriber)
    .await;
    let logs = String::from_utf8(capture.0.lock().expect("logs").clone()).expect("UTF-8 logs");
    assert!(
        logs.contains("order enriched") && logs.contains("record scored"),
        "the capture works: {}",
        &logs[..logs.len().min(500)]
    );
    let gtin = s.products[2].1.clone();
    let values = [
        "Anna",
        "anna",
        "Kowalski",
        "kowalski",
        "anna.kowalski@example.com",
        "07400 900461",
        "7400900461",
        "SKU-000001",
        "MYSTERY-SKU-77",
        gtin.as_str(),
        "P-0",
        "c-100",
    ];
    for v in values {
        assert!(!logs.contains(v), "the logs hold the input value {v:?}");
    }
}

/// Requests no id fits in: a 65 KB path and a 70 KB query are 414, a header with a line break
/// and a path parameter longer than any id are 400 — each with the usual error body, as
/// documented — instead of a panic, a failed event or a 503 from the store.
#[tokio::test]
async fn oversized_and_malformed_requests_are_answered_4xx() {
    let Some(t) = Api::new("api-limits").await else { return };
    let long_id = "g".repeat(65 * 1024);
    let a = t.read("GET", &format!("/v1/golden/customer/{long_id}"), "", None, READ).await;
    conform(&t.doc, GOLDEN, "get", &a);
    assert_eq!((a.status, code(&a)), (414, "uri_too_long"), "{}", a.body);
    let a =
        t.read("GET", "/v1/golden/customer/g1/history", &format!("limit={}", "9".repeat(70 * 1024)), None, READ).await;
    conform(&t.doc, "/v1/golden/{entity}/{goldenId}/history", "get", &a);
    assert_eq!((a.status, code(&a)), (414, "uri_too_long"), "{}", a.body);
    let a =
        t.read_with("GET", "/v1/golden/customer/g1", "", None, READ, &[("if-none-match", "\"1\"\nx-evil: 1")]).await;
    conform(&t.doc, GOLDEN, "get", &a);
    assert_eq!((a.status, code(&a)), (400, "invalid_header"), "{}", a.body);
    let a = t.read("GET", &format!("/v1/xref/customer/crm/{}", "x".repeat(300)), "", None, READ).await;
    conform(&t.doc, "/v1/xref/{entity}/{system}/{sourceId}", "get", &a);
    assert_eq!((a.status, code(&a)), (400, "invalid_path"), "{}", a.body);
    assert_eq!(
        t.read("GET", "/v1/golden/customer/g1", "", None, READ).await.status,
        404,
        "a normal request still reads"
    );
}
