//! Steward actions end to end on the emulator, through the steward Lambda handler over
//! DynamoDB: split, pins, review decisions and manual merge, with the records fed through the
//! real pipeline; answers checked against `docs/openapi.json`; a full-table invariant check
//! after each test.
mod common;

use common::*;
use mdm_aws::handlers::{api, steward, Ctx};
use mdm_aws::local::http_event;
use mdm_core::api::scope;
use mdm_core::store::{GoldenStore, ReviewStore, SourceStore};
use mdm_core::SourceKey;
use serde_json::{json, Value};

const STEWARD: &str = "steward-7";

/// A person record: name and birth date, contacts, address.
#[allow(clippy::too_many_arguments)]
fn person(
    system: &str,
    id: &str,
    seq: u64,
    given: &str,
    family: &str,
    email: &str,
    phone: &str,
    place: (&str, &str),
) -> Value {
    customer(
        system,
        id,
        seq,
        json!({"given_name": given, "family_name": family, "date_of_birth": "1984-07-21", "email": email,
               "phone": phone, "postcode": place.0, "locality": place.1}),
    )
}

fn anna_crm(seq: u64) -> Value {
    person("crm", "c-100", seq, "Anna", "Kowalski", "anna.kowalski@example.com", "07400 900461", ("LS1 4AP", "Leeds"))
}

fn anna_web(seq: u64) -> Value {
    person(
        "webshop",
        "w-9",
        seq,
        "Ana",
        "Kowalski",
        "Anna.Kowalski@Example.com",
        "+44 7400 900461",
        ("ls14ap", "LEEDS"),
    )
}

/// Same name and birth date as Anna's CRM record, every contact different: a review.
fn anna_maybe(seq: u64) -> Value {
    person("erp", "e-7", seq, "Anna", "Kowalski", "kowalski.a@another.example", "07400 900777", ("BS1 5TR", "Bristol"))
}

/// Erases a subject through the erasure function's handler and lets the queues run.
async fn erase(s: &TestStack, request: Value) {
    let sdk = mdm_aws::config::sdk_config().await;
    let mut settings = s.res.settings().expect("settings");
    settings.local_scopes = None;
    let eraser = Ctx::new(&sdk, settings, "erasure").expect("ctx");
    let e = http_event("POST", "/v1/erasure", "", Some(&request.to_string()), Some(&[scope::ERASURE]));
    let resp = Box::pin(mdm_aws::handlers::erasure::handle(&eraser, e)).await.expect("answers");
    assert_eq!(resp["statusCode"], 202, "{resp}");
    s.drain().await;
}

struct Steward {
    ctx: Ctx,
    doc: Value,
}

impl Steward {
    async fn new(s: &TestStack) -> Self {
        let mut settings = s.res.settings().expect("settings");
        settings.local_scopes = None;
        let sdk = mdm_aws::config::sdk_config().await;
        Self { ctx: Ctx::new(&sdk, settings, "steward").expect("ctx"), doc: openapi() }
    }

    /// One request to the steward handler, as API Gateway would send it; the answer checked
    /// against the OpenAPI document (`route` is its path template).
    async fn call(
        &self,
        method: &str,
        path: &str,
        route: &str,
        body: Value,
        if_match: Option<u64>,
        scopes: &[&str],
    ) -> Answer {
        let text = body.to_string();
        let mut e = http_event(method, path, "", Some(&text), Some(scopes));
        e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(STEWARD);
        if let Some(v) = if_match {
            e["headers"]["if-match"] = json!(format!("\"{v}\""));
        }
        let a = answer(&Box::pin(steward::handle_event(&self.ctx, e)).await);
        conform(&self.doc, route, &method.to_ascii_lowercase(), &a);
        a
    }

    async fn read(&self, path: &str, query: &str) -> Answer {
        let e = http_event("GET", path, query, None, Some(&[scope::READ]));
        answer(&Box::pin(api::handle_event(&self.ctx, e)).await)
    }
}

const SPLIT: &str = "/v1/golden/{entity}/{goldenId}/split";
const PIN: &str = "/v1/golden/{entity}/{goldenId}/pins/{attribute}";
const MERGE: &str = "/v1/golden/{entity}/{goldenId}/merge";
const DECIDE: &str = "/v1/reviews/{taskId}";

/// Split, pins and every refusal, through the handler: the split records equal builds from
/// scratch, stay split when their members are sent again, and a record resembling both joins
/// one and opens a review naming the other; a pin survives three updates, `DELETE` restores
/// survivorship's value, and history shows actor and reason.
#[tokio::test]
async fn split_and_pins_through_the_steward_handler() {
    let Some(s) = stack("stewardsplit").await else { return };
    let st = Steward::new(&s).await;
    s.post(vec![anna_crm(1), anna_web(1)]).await;
    s.drain().await;
    let crm = SourceKey::new("customer", "crm", "c-100");
    let joined = s.golden_of(&crm).await;
    assert_eq!(joined.members.len(), 2, "the webshop record joined Anna");
    let path = format!("/v1/golden/customer/{}/split", joined.golden_id);
    let body = json!({"sources": [{"system": "webshop", "sourceId": "w-9"}], "reason": "different people"});

    // Refusals: scope, If-Match missing or stale, a source that is not a member, no reason.
    let a = st.call("POST", &path, SPLIT, body.clone(), Some(joined.version), &[scope::READ]).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (403, Some("missing_scope")));
    let a = st.call("POST", &path, SPLIT, body.clone(), None, &[scope::STEWARD]).await;
    assert_eq!(a.status, 428, "{}", a.body);
    let a = st.call("POST", &path, SPLIT, body.clone(), Some(joined.version + 1), &[scope::STEWARD]).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (412, Some("version_mismatch")));
    let stranger = json!({"sources": [{"system": "webshop", "sourceId": "nobody"}], "reason": "x"});
    let a = st.call("POST", &path, SPLIT, stranger, Some(joined.version), &[scope::STEWARD]).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("unknown_source")));
    let a = st
        .call("POST", &path, SPLIT, json!({"sources": body["sources"]}), Some(joined.version), &[scope::STEWARD])
        .await;
    assert_eq!((a.status, a.body["error"]["details"][0]["field"].as_str()), (400, Some("reason")));

    let a = st.call("POST", &path, SPLIT, body, Some(joined.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let off = a.body["splitGoldenId"].as_str().expect("split id").to_owned();
    assert_eq!(a.body["golden"]["sources"].as_array().map(Vec::len), Some(1));
    s.audit().await;
    // Both equal a build from scratch of their own sources (values with provenance, members,
    // match values, index keys) on the in-process store.
    for (id, input) in [(&joined.golden_id, anna_crm(1)), (&off, anna_web(1))] {
        let stored = s.store.get_golden("customer", id).await.expect("get").expect("exists");
        let fresh = mdm_core::Hub::new(
            std::sync::Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas")),
            mdm_core::store::memory::MemoryStore::new(),
        );
        let built = mdm_core::scenario::feed(&fresh, &input).await.expect("feed");
        let scratch = fresh.store().get_golden("customer", built.golden_id()).await.expect("get").expect("exists");
        assert_eq!(stored.attributes, scratch.attributes, "{id}");
        assert_eq!((&stored.members, &stored.match_values), (&scratch.members, &scratch.match_values));
        assert_eq!(stored.index_keys, scratch.index_keys);
    }

    // Every member again, with a higher sequence: neither moves; no review proposes the pair.
    s.post(vec![anna_crm(2), anna_web(2)]).await;
    s.drain().await;
    assert_eq!(s.golden_of(&crm).await.golden_id, joined.golden_id);
    assert_eq!(s.golden_of(&SourceKey::new("customer", "webshop", "w-9")).await.golden_id, off);
    let open = s.store.review_queue("customer", true, None, 10).await.expect("queue");
    assert!(open.tasks.is_empty(), "{:?}", open.tasks);
    // A third record resembling both joins one and opens a review naming the other.
    let third = person(
        "partner",
        "p-1",
        1,
        "Anna",
        "Kowalski",
        "anna.kowalski@example.com",
        "+44 7400 900461",
        ("LS1 4AP", "Leeds"),
    );
    s.post(vec![third]).await;
    s.drain().await;
    let with = s.golden_of(&SourceKey::new("customer", "partner", "p-1")).await.golden_id;
    let other = if with == joined.golden_id { off.clone() } else { joined.golden_id.clone() };
    let open = s.store.review_queue("customer", true, None, 10).await.expect("queue");
    assert!(open.tasks.iter().any(|t| t.candidate_golden_ids.contains(&other)), "{:?}", open.tasks);
    s.audit().await;

    // Pins: refusals first.
    let g = s.golden_of(&crm).await;
    let pin = |attr: &str| format!("/v1/golden/customer/{}/pins/{attr}", g.golden_id);
    let a = st
        .call("PUT", &pin("shoe_size"), PIN, json!({"value": "9", "reason": "x"}), Some(g.version), &[scope::STEWARD])
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("unknown_attribute")));
    let a = st
        .call(
            "PUT",
            &pin("email"),
            PIN,
            json!({"value": "no address", "reason": "x"}),
            Some(g.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_value")));
    let a = st
        .call("PUT", &pin("given_name"), PIN, json!({"value": "Annie", "reason": "x"}), None, &[scope::STEWARD])
        .await;
    assert_eq!(a.status, 428);
    let a = st
        .call(
            "PUT",
            &pin("given_name"),
            PIN,
            json!({"value": "Annie", "reason": "x"}),
            Some(g.version),
            &[scope::WRITE],
        )
        .await;
    assert_eq!(a.status, 403);
    let a = st
        .call(
            "PUT",
            &pin("given_name"),
            PIN,
            json!({"value": "Annie", "reason": "prefers Annie"}),
            Some(g.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["golden"]["attributes"]["given_name"]["rule"], "steward_pin");
    assert_eq!(a.body["golden"]["pins"][0]["actor"], STEWARD);
    let pinned_value = a.body["golden"]["attributes"]["given_name"]["value"].clone();
    for seq in 3..=5 {
        let mut v = anna_crm(seq);
        v["attributes"]["given_name"] = json!(format!("Anna{seq}"));
        s.post(vec![v]).await;
        s.drain().await;
        let now = s.golden_of(&crm).await;
        assert_eq!(now.value("given_name"), pinned_value.as_str(), "update {seq}");
    }
    let now = s.golden_of(&crm).await;
    let a = st
        .call(
            "DELETE",
            &pin("given_name"),
            PIN,
            json!({"reason": "source fixed"}),
            Some(now.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["golden"]["attributes"]["given_name"]["value"], "anna5", "survivorship's value is back");
    let a = st
        .call("DELETE", &pin("given_name"), PIN, json!({"reason": "again"}), Some(now.version + 1), &[scope::STEWARD])
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (404, Some("pin_not_found")));

    // The history API shows who did what, and why.
    let h = st.read(&format!("/v1/golden/customer/{}/history", g.golden_id), "limit=100").await;
    conform(&st.doc, "/v1/golden/{entity}/{goldenId}/history", "get", &h);
    let items = h.body["items"].as_array().expect("items");
    let by = |cause: &str| items.iter().filter(|i| i["cause"] == cause).cloned().collect::<Vec<_>>();
    assert_eq!(by("split").len(), 1);
    assert_eq!(by("split")[0]["actor"], STEWARD);
    assert_eq!(by("split")[0]["reason"], "different people");
    assert_eq!(by("pin").len(), 2, "pinned, then removed");
    assert_eq!(by("pin")[1]["reason"], "source fixed");
    s.audit().await;
}

/// Review decisions and a manual merge, through the handler: `distinct` is never proposed
/// again and leaves the open queue for the resolved one (kept with a TTL); `link` merges and
/// publishes `ReviewTaskResolved`; a manual merge answers `mergedInto` with `Location` for the
/// other id, and enrich by its source key resolves to the survivor.
#[tokio::test]
async fn review_decisions_and_manual_merge_through_the_steward_handler() {
    let Some(s) = stack("stewardreview").await else { return };
    let st = Steward::new(&s).await;
    let berta = |system: &str, id: &str, email: &str, phone: &str, place: (&str, &str)| {
        person(system, id, 1, "Berta", "Nowak", email, phone, place)
    };
    s.post(vec![
        anna_crm(1),
        berta("crm", "c-300", "berta.nowak@example.com", "07400 900300", ("M1 1AE", "Manchester")),
    ])
    .await;
    s.drain().await;
    s.post(vec![
        anna_maybe(1),
        berta("erp", "e-30", "nowak.b@another.example", "07400 900333", ("CF10 1AA", "Cardiff")),
    ])
    .await;
    s.drain().await;
    let open = s.store.review_queue("customer", true, None, 10).await.expect("queue");
    assert_eq!(open.tasks.len(), 2, "two possible matches: {:?}", open.tasks);
    let of = |id: &str| open.tasks.iter().find(|t| t.source.source_id == id).cloned().expect("a task");
    let (anna_task, berta_task) = (of("e-7"), of("e-30"));

    // distinct
    let holder = s.golden_of(&anna_task.source).await;
    let path = format!("/v1/reviews/{}", anna_task.task_id);
    let a = st
        .call(
            "POST",
            &path,
            DECIDE,
            json!({"decision": "maybe", "reason": "x"}),
            Some(holder.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!((a.status, a.body["error"]["details"][0]["field"].as_str()), (400, Some("decision")));
    let a = st
        .call(
            "POST",
            &path,
            DECIDE,
            json!({"decision": "distinct", "reason": "different people"}),
            Some(holder.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "rejected");
    assert_eq!(a.body["resolution"]["actor"], STEWARD);
    let a = st
        .call(
            "POST",
            &path,
            DECIDE,
            json!({"decision": "distinct", "reason": "again"}),
            Some(holder.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (409, Some("already_resolved")));
    let queue_items = s.items_with_prefix("REVQ#").await;
    let in_queue = |open: bool| {
        queue_items
            .iter()
            .filter(|i| i["pk"].as_s().is_ok_and(|p| p.ends_with(if open { "#open" } else { "#resolved" })))
            .filter(|i| i["sk"].as_s().is_ok_and(|k| k.ends_with(&anna_task.task_id)))
            .count()
    };
    assert_eq!((in_queue(true), in_queue(false)), (0, 1), "moved from the open queue to the resolved one");
    let resolved_entry =
        queue_items.iter().find(|i| i["pk"].as_s().is_ok_and(|p| p.ends_with("#resolved"))).expect("entry");
    assert!(resolved_entry.get("expiresAt").and_then(|v| v.as_n().ok()).is_some(), "kept for its retention (TTL)");
    // New versions of both records: the pair is never proposed again.
    s.post(vec![anna_maybe(2), anna_crm(2)]).await;
    s.drain().await;
    let open_now = s.store.review_queue("customer", true, None, 10).await.expect("queue");
    assert!(
        open_now.tasks.iter().all(|t| t.source.source_id != "e-7" && t.source.source_id != "c-100"),
        "{:?}",
        open_now.tasks
    );
    s.audit().await;

    // link
    let holder = s.golden_of(&berta_task.source).await;
    let candidate = berta_task.candidate_golden_ids[0].clone();
    let path = format!("/v1/reviews/{}", berta_task.task_id);
    let body = json!({"decision": "link", "goldenId": candidate, "reason": "same person, confirmed"});
    let a = st.call("POST", &path, DECIDE, body, Some(holder.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "merged");
    assert_eq!(a.body["golden"]["sources"].as_array().map(Vec::len), Some(2));
    let task = s.store.get_review("customer", &berta_task.task_id).await.expect("get").expect("task");
    assert_eq!(task.resolution.as_ref().map(|r| r.reason.as_str()), Some("same person, confirmed"));
    s.audit().await;

    // Manual merge of Anna's two golden records (kept apart above: the steward decides again).
    let anna = s.golden_of(&SourceKey::new("customer", "crm", "c-100")).await;
    let maybe = s.golden_of(&anna_task.source).await;
    let path = format!("/v1/golden/customer/{}/merge", anna.golden_id);
    let body = json!({"with": maybe.golden_id, "withVersion": maybe.version, "reason": "one person after all"});
    let a = st.call("POST", &path, MERGE, body.clone(), Some(anna.version), &[scope::READ]).await;
    assert_eq!(a.status, 403);
    let mut stale = body.clone();
    stale["withVersion"] = json!(maybe.version + 5);
    let a = st.call("POST", &path, MERGE, stale, Some(anna.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 412, "{}", a.body);
    let a = st.call("POST", &path, MERGE, body, Some(anna.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let survivor = a.body["goldenId"].as_str().expect("survivor").to_owned();
    let merged = a.body["mergedGoldenId"].as_str().expect("merged").to_owned();
    assert_eq!(a.headers.get("location").map(String::as_str), Some(format!("/v1/golden/customer/{survivor}").as_str()));
    let gone = st.read(&format!("/v1/golden/customer/{merged}"), "").await;
    assert_eq!((gone.status, gone.body["mergedInto"].as_str()), (200, Some(survivor.as_str())));
    assert_eq!(
        gone.headers.get("location").map(String::as_str),
        Some(format!("/v1/golden/customer/{survivor}").as_str())
    );
    let enrich = json!({"orderId": "o-1", "customer": {"system": "erp", "sourceId": "e-7"}, "lines": []});
    let e = http_event("POST", "/v1/enrich", "", Some(&enrich.to_string()), Some(&[scope::READ]));
    let enriched = answer(&Box::pin(api::handle_event(&st.ctx, e)).await);
    assert_eq!(enriched.status, 200, "{}", enriched.body);
    assert!(enriched.body.to_string().contains(&survivor), "{}", enriched.body);
    assert!(s.store.get_source(&anna_task.source).await.expect("get").is_some());

    // Why each member is where it is: an automatic link, a review link, a manual merge.
    const WHY: &str = "/v1/golden/{entity}/{goldenId}/why/{system}/{sourceId}";
    let why = |id: String, system: &'static str, source: &'static str| {
        let st = &st;
        async move {
            let a = st.read(&format!("/v1/golden/customer/{id}/why/{system}/{source}"), "").await;
            conform(&st.doc, WHY, "get", &a);
            a
        }
    };
    let a = why(survivor.clone(), "crm", "c-100").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["how"] == "created" || a.body["how"] == "steward", "{}", a.body);
    let a = why(survivor.clone(), "erp", "e-7").await;
    assert_eq!((a.body["how"].as_str(), a.body["cause"].as_str()), (Some("steward"), Some("merge")), "{}", a.body);
    assert_eq!((a.body["actor"].as_str(), a.body["reason"].as_str()), (Some(STEWARD), Some("one person after all")));
    let berta_golden = s.golden_of(&berta_task.source).await.golden_id;
    let (a, b) = (why(berta_golden.clone(), "erp", "e-30").await, why(berta_golden.clone(), "crm", "c-300").await);
    let review_link = [&a, &b].into_iter().find(|x| x.body["how"] == "steward").expect("one joined by the review");
    assert_eq!(review_link.body["cause"], "review");
    assert_eq!(review_link.body["reason"], "same person, confirmed");
    let a = why(survivor.clone(), "crm", "c-300").await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (404, Some("not_a_member")));
    // An automatic link: the score and its explanation as they were.
    s.post(vec![person(
        "webshop",
        "w-31",
        1,
        "Berta",
        "Nowak",
        "berta.nowak@example.com",
        "07400 900300",
        ("M1 1AE", "Manchester"),
    )])
    .await;
    s.drain().await;
    let a = why(s.golden_of(&SourceKey::new("customer", "webshop", "w-31")).await.golden_id, "webshop", "w-31").await;
    assert!(a.body["how"] == "score" || a.body["how"] == "rule", "{}", a.body);
    assert!(a.body["explanation"].as_array().is_some_and(|e| !e.is_empty()), "{}", a.body);

    // The decisions as labelled pairs, for the matcher's weights.
    let e = http_event("GET", "/v1/labels", "entity=customer&limit=50", None, Some(&[scope::STEWARD]));
    let labels = answer(&Box::pin(steward::handle_event(&st.ctx, e)).await);
    conform(&st.doc, "/v1/labels", "get", &labels);
    let pairs: Vec<(String, String, String)> = labels.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let mut ids = [i["left"]["sourceId"].as_str().unwrap_or(""), i["right"]["sourceId"].as_str().unwrap_or("")];
            ids.sort();
            (i["label"].as_str().unwrap_or("").to_owned(), ids[0].to_owned(), ids[1].to_owned())
        })
        .collect();
    let has =
        |label: &str, a: &str, b: &str| pairs.iter().any(|p| p == &(label.to_owned(), a.to_owned(), b.to_owned()));
    assert!(has("distinct", "c-100", "e-7"), "the distinct review: {pairs:?}");
    assert!(has("link", "c-300", "e-30"), "the review link: {pairs:?}");
    assert!(labels.body["items"][0]["left"]["attributes"]["family_name"].is_string(), "with values");

    // Every change was published; the review decision's event validates against its schema.
    s.drain().await;
    let events = s.subscriber_events().await;
    let resolved: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "ReviewTaskResolved").collect();
    assert_eq!(resolved.len(), 2, "one per decision");
    for e in resolved {
        assert_valid_event(e);
    }
    assert!(events.iter().any(|e| e["detail-type"] == "GoldenRecordsMerged" && e["detail"]["cause"] == "merge"));
    s.audit().await;
}

/// Rollback through the handler: after a bad feed (a partner record joins, then Anna's CRM
/// record is overwritten twice), rolling back to the version before it restores that version's
/// membership and values; a later update applies to what is not pinned; the events show the
/// rollback; a version an erasure removed answers 409 `version_erased`.
#[tokio::test]
async fn rollback_through_the_steward_handler() {
    let Some(s) = stack("stewardrollback").await else { return };
    let st = Steward::new(&s).await;
    s.post(vec![anna_crm(1)]).await;
    s.drain().await;
    s.post(vec![anna_web(1)]).await;
    s.drain().await;
    let crm = SourceKey::new("customer", "crm", "c-100");
    let good = s.golden_of(&crm).await;
    assert_eq!(good.members.len(), 2);
    let partner = person(
        "partner",
        "p-1",
        1,
        "Hanna",
        "Kowalski",
        "anna.kowalski@example.com",
        "07400 900461",
        ("LS1 4AP", "Leeds"),
    );
    s.post(vec![partner]).await;
    s.drain().await;
    for (seq, town) in [(2, "Krakow"), (3, "Gdansk")] {
        let mut bad = anna_crm(seq);
        bad["attributes"]["locality"] = json!(town);
        s.post(vec![bad]).await;
        s.drain().await;
    }
    let now = s.golden_of(&crm).await;
    assert_eq!(now.members.len(), 3, "the partner record joined");
    let path = format!("/v1/golden/customer/{}/rollback", good.golden_id);
    const ROLLBACK: &str = "/v1/golden/{entity}/{goldenId}/rollback";
    let body = json!({"version": good.version, "reason": "bad partner feed"});
    let a = st.call("POST", &path, ROLLBACK, body.clone(), None, &[scope::STEWARD]).await;
    assert_eq!(a.status, 428);
    let a = st
        .call(
            "POST",
            &path,
            ROLLBACK,
            json!({"version": now.version, "reason": "x"}),
            Some(now.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_version")));
    let a = st.call("POST", &path, ROLLBACK, body, Some(now.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let back = s.golden_of(&crm).await;
    assert_eq!(back.members, good.members, "that version's membership");
    assert_eq!(back.values(), good.values(), "that version's values");
    assert!(a.body["pins"].as_array().is_some_and(|p| p.iter().any(|p| p["attribute"] == "locality")), "{}", a.body);
    let off = a.body["splitGoldenId"].as_str().expect("the partner record's golden record");
    assert_eq!(s.golden_of(&SourceKey::new("customer", "partner", "p-1")).await.golden_id, off);
    s.audit().await;

    // A later update applies to unpinned attributes; the pinned town stays.
    let mut later = anna_crm(9);
    later["attributes"]["locality"] = json!("Krakow");
    later["attributes"]["phone"] = json!("07400 900999");
    s.post(vec![later]).await;
    s.drain().await;
    let after = s.golden_of(&crm).await;
    assert_eq!(after.value("locality"), good.value("locality"));
    assert_ne!(after.value("phone"), good.value("phone"), "the phone is not pinned: it follows its source");
    let events = s.subscriber_events().await;
    assert!(
        events.iter().any(|e| e["detail"]["cause"] == "rollback" && e["detail"]["goldenId"] == good.golden_id.as_str()),
        "a rollback event"
    );

    // Erase the webshop record: the versions that listed it go, and rolling back to one is 409.
    erase(
        &s,
        json!({"entityType": "customer", "sourceKey": {"system": "webshop", "sourceId": "w-9"}, "scope": "source"}),
    )
    .await;
    let now = s.golden_of(&crm).await;
    let a = st
        .call(
            "POST",
            &path,
            ROLLBACK,
            json!({"version": good.version, "reason": "x"}),
            Some(now.version),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (409, Some("version_erased")));
    s.audit().await;
}

/// Both sides of a race between a steward action and a merge on the same golden record,
/// forced with a barrier that holds one side's transaction between its reads and its write
/// while the other writes: a steward that loses answers 412 (nothing written); a merge that
/// loses retries and applies its record on top of the steward's change. Nothing is lost.
#[tokio::test]
async fn a_steward_action_racing_a_merge_answers_412_or_the_merge_retries() {
    use mdm_core::store::conformance::Faulty;
    use std::sync::Arc;
    use tokio::sync::Barrier;
    let Some(s) = stack("stewardrace").await else { return };
    let st = Steward::new(&s).await;
    s.post(vec![anna_crm(1), anna_web(1)]).await;
    s.drain().await;
    let crm = SourceKey::new("customer", "crm", "c-100");
    let registry = Arc::new(mdm_core::SchemaRegistry::built_in().expect("schemas"));
    let held_hub = || {
        let store = Faulty::new(mdm_aws::DynamoStore::new(s.ddb.clone(), s.table()));
        mdm_core::Hub::new(Arc::clone(&registry), store)
    };
    // Waits until the held side reached its write, runs `meanwhile`, then lets it go.
    async fn between<F: std::future::Future<Output = ()>>(barrier: &Barrier, meanwhile: F) {
        tokio::time::timeout(std::time::Duration::from_secs(60), barrier.wait())
            .await
            .expect("the held side reached its transaction");
        meanwhile.await;
        barrier.wait().await;
    }

    // 1. The steward's pin is held; a CRM update is merged meanwhile: the steward gets 412.
    let g = s.golden_of(&crm).await;
    let hub = held_hub();
    let barrier = Arc::new(Barrier::new(2));
    hub.store().hold_next_transaction(Arc::clone(&barrier));
    let req = mdm_core::api::ApiRequest::new("PUT", &format!("/v1/golden/customer/{}/pins/locality", g.golden_id))
        .with_json(&json!({"value": "York", "reason": "moved"}))
        .with_header("if-match", &format!("\"{}\"", g.version))
        .with_scopes([scope::STEWARD])
        .with_principal(STEWARD);
    let mut update = anna_crm(2);
    update["attributes"]["phone"] = json!("07400 900555");
    let pin = Box::pin(mdm_core::api::steward::handle(&hub, &req));
    let (answer, ()) = tokio::join!(
        pin,
        between(&barrier, async {
            s.post(vec![update.clone()]).await;
            s.drain().await;
        })
    );
    assert_eq!(answer.status, 412, "{:?}", answer.body);
    let now = s.golden_of(&crm).await;
    assert!(now.pins.is_empty(), "the steward's change was not written");
    assert_eq!(now.members.len(), 2);
    assert_ne!(now.value("phone"), g.value("phone"), "the merged update is there");
    s.audit().await;

    // 2. A merge is held; the steward pins meanwhile (through the Lambda handler): the merge
    // retries and applies the update on top; the pin stays.
    let hub = held_hub();
    let barrier = Arc::new(Barrier::new(2));
    let mut update = anna_crm(3);
    update["attributes"]["phone"] = json!("07400 900666");
    update["attributes"]["locality"] = json!("Leeds City");
    let record = mdm_core::record::validate(hub.registry(), &update, hub.now_ms()).expect("valid");
    hub.ingest(&record).await.expect("ingest");
    hub.store().hold_next_transaction(Arc::clone(&barrier));
    let merge = Box::pin(hub.process(&crm));
    let path = format!("/v1/golden/customer/{}/pins/locality", now.golden_id);
    let (merged, ()) = tokio::join!(
        merge,
        between(&barrier, async {
            let a = st
                .call(
                    "PUT",
                    &path,
                    PIN,
                    json!({"value": "York", "reason": "moved"}),
                    Some(now.version),
                    &[scope::STEWARD],
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
        })
    );
    let merged = merged.expect("the merge retries and succeeds");
    assert!(merged.attempts > 1, "the merge's first transaction lost the race");
    let after = s.golden_of(&crm).await;
    assert_eq!(after.value("locality"), Some("york"), "the pin stays");
    assert_eq!(after.pins.len(), 1);
    assert_ne!(after.value("phone"), now.value("phone"), "the merge's update applied");
    assert_eq!(after.members.len(), 2);
    s.audit().await;
}

/// Records held under suppression mode `hold`, through the handlers: listed for the stewards;
/// released (exempt from the markers from then on: matched and linked at once, and a later
/// version passes ingest in mode `reject`) or erased.
#[tokio::test]
async fn held_records_are_listed_released_and_erased_through_the_steward_handler() {
    let Some(s) = stack("stewardheld").await else { return };
    let st = Steward::new(&s).await;
    s.post(vec![anna_crm(1)]).await;
    s.drain().await;
    let anna = s.golden_of(&SourceKey::new("customer", "crm", "c-100")).await;
    erase(&s, json!({"entityType": "customer", "goldenId": anna.golden_id})).await;
    let sdk = mdm_aws::config::sdk_config().await;
    let mut settings = s.res.settings().expect("settings");
    settings.local_scopes = None;
    // Two records with Anna's e-mail arrive at an ingest in mode `hold`.
    settings.suppression_mode = mdm_core::SuppressionMode::Hold;
    let holding = Ctx::new(&sdk, settings, "ingest").expect("ctx");
    let again = |id: &str| {
        person("webshop", id, 1, "Anna", "Kowalski", "anna.kowalski@example.com", "07400 900461", ("LS1 4AP", "Leeds"))
    };
    let body = json!({"records": [again("w-50"), again("w-51")]}).to_string();
    let e = http_event("POST", "/v1/records", "", Some(&body), Some(&[scope::WRITE, scope::WRITE_ANY_SYSTEM]));
    let a = answer(&Box::pin(mdm_aws::handlers::ingest::handle(&holding, e)).await.expect("answers"));
    assert_eq!((a.status, a.body["held"].as_u64()), (202, Some(2)), "{}", a.body);

    const HELD: &str = "/v1/held/{system}/{sourceId}";
    let list = || {
        let e = http_event("GET", "/v1/held", "entity=customer", None, Some(&[scope::STEWARD]));
        let ctx = &st.ctx;
        async move { answer(&Box::pin(steward::handle_event(ctx, e)).await) }
    };
    let a = list().await;
    conform(&st.doc, "/v1/held", "get", &a);
    let items = a.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.iter().map(|i| i["sourceId"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["w-50", "w-51"]);
    let seq = items[0]["sourceSeq"].as_u64().expect("seq");

    let release = json!({"action": "release", "reason": "a different Anna: checked by phone"});
    let a = st.call("POST", "/v1/held/webshop/w-50", HELD, release.clone(), None, &[scope::STEWARD]).await;
    assert_eq!(a.status, 428);
    let a = st.call("POST", "/v1/held/webshop/w-50", HELD, release.clone(), Some(seq + 1), &[scope::STEWARD]).await;
    assert_eq!(a.status, 412, "{}", a.body);
    let a = st
        .call(
            "POST",
            "/v1/held/webshop/w-50",
            HELD,
            json!({"action": "keep", "reason": "x"}),
            Some(seq),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!(a.status, 400);
    let a = st.call("POST", "/v1/held/webshop/w-50", HELD, release, Some(seq), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let linked = s.golden_of(&SourceKey::new("customer", "webshop", "w-50")).await;
    assert_eq!(a.body["goldenId"].as_str(), Some(linked.golden_id.as_str()), "matched and linked at once");
    let stored =
        s.store.get_source(&SourceKey::new("customer", "webshop", "w-50")).await.expect("get").expect("stored");
    assert_eq!(stored.exempt.as_ref().map(|x| x.actor.as_str()), Some(STEWARD));
    // A later version passes an ingest in mode `reject` and is merged.
    let mut v2 = again("w-50");
    v2["sourceSeq"] = json!(2);
    v2["attributes"]["locality"] = json!("York");
    let (status, summary) = s.post(vec![v2]).await;
    assert_eq!((status, summary["stored"].as_u64()), (202, Some(1)), "{summary}");
    s.drain().await;
    assert_eq!(s.golden_of(&SourceKey::new("customer", "webshop", "w-50")).await.value("locality"), Some("york"));

    let a = st
        .call(
            "POST",
            "/v1/held/webshop/w-51",
            HELD,
            json!({"action": "erase", "reason": "the erased subject"}),
            Some(1),
            &[scope::STEWARD],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(s.store.get_source(&SourceKey::new("customer", "webshop", "w-51")).await.expect("get").is_none());
    let a = list().await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(0), "{}", a.body);
    s.audit().await;
}

/// Every steward action route refuses a token without `mdm/steward` (403), a request without
/// `If-Match` (428) and one naming a stale version (412), each as documented; and erasing the
/// member whose value a pin holds removes the pin and the value's bytes from the table.
#[tokio::test]
async fn every_action_route_refuses_what_it_must_and_erasure_takes_pinned_values() {
    let Some(s) = stack("stewardrefuse").await else { return };
    let st = Steward::new(&s).await;
    let mut web = anna_crm(1);
    web["sourceSystem"] = json!("webshop");
    web["sourceId"] = json!("w-1");
    web["attributes"]["given_name"] = json!("Anoushka");
    s.post(vec![
        anna_crm(1),
        web,
        person("crm", "c-2", 1, "Bob", "Okafor", "bob@example.org", "07400 900999", ("M1 1AE", "Manchester")),
    ])
    .await;
    s.drain().await;
    let g = s.golden_of(&SourceKey::new("customer", "crm", "c-100")).await;
    let bob = s.golden_of(&SourceKey::new("customer", "crm", "c-2")).await;
    assert_eq!(g.members.len(), 2);
    let id = &g.golden_id;
    let routes: Vec<(&str, String, &str, Value)> = vec![
        (
            "POST",
            format!("/v1/golden/customer/{id}/merge"),
            MERGE,
            json!({"with": bob.golden_id, "withVersion": bob.version, "reason": "r"}),
        ),
        (
            "POST",
            format!("/v1/golden/customer/{id}/split"),
            SPLIT,
            json!({"sources": [{"system": "webshop", "sourceId": "w-1"}], "reason": "r"}),
        ),
        ("PUT", format!("/v1/golden/customer/{id}/pins/given_name"), PIN, json!({"value": "Anoushka", "reason": "r"})),
        ("DELETE", format!("/v1/golden/customer/{id}/pins/given_name"), PIN, json!({"reason": "r"})),
        (
            "POST",
            format!("/v1/golden/customer/{id}/rollback"),
            "/v1/golden/{entity}/{goldenId}/rollback",
            json!({"version": 1, "reason": "r"}),
        ),
        (
            "POST",
            "/v1/held/webshop/w-1".to_owned(),
            "/v1/held/{system}/{sourceId}",
            json!({"action": "release", "reason": "r"}),
        ),
        ("POST", "/v1/reviews/r-none".to_owned(), DECIDE, json!({"decision": "distinct", "reason": "r"})),
    ];
    let others: Vec<&str> = scope::ALL.iter().copied().filter(|x| *x != scope::STEWARD).collect();
    for (method, path, template, body) in &routes {
        let a = st.call(method, path, template, body.clone(), Some(g.version), &others).await;
        assert_eq!((a.status, a.body["error"]["code"].as_str()), (403, Some("missing_scope")), "{method} {path}");
        let a = st.call(method, path, template, body.clone(), None, &[scope::STEWARD]).await;
        assert_eq!(a.status, 428, "{method} {path}: {}", a.body);
        let a = st.call(method, path, template, body.clone(), Some(g.version + 7), &[scope::STEWARD]).await;
        assert!(matches!(a.status, 412 | 404 | 409), "{method} {path}: {} {}", a.status, a.body);
        if template.starts_with("/v1/golden") {
            assert_eq!(a.status, 412, "{method} {path}: {}", a.body);
        }
    }

    // The pin holds the webshop record's value; erasing that record takes both.
    let a = st.call("PUT", &routes[2].1, PIN, routes[2].3.clone(), Some(g.version), &[scope::STEWARD]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    erase(
        &s,
        json!({"entityType": "customer", "sourceKey": {"system": "webshop", "sourceId": "w-1"}, "scope": "source"}),
    )
    .await;
    let after = s.golden_of(&SourceKey::new("customer", "crm", "c-100")).await;
    assert!(after.pins.is_empty(), "{:?}", after.pins);
    let table = format!("{:?}", s.scan().await).to_lowercase();
    assert!(!table.contains("anoushka"), "the pinned value's bytes are gone from the table");
    s.audit().await;
}
