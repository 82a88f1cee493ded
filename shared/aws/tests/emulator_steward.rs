//! The steward function end to end on the emulator: its Lambda handler over DynamoDB, responses
//! checked against `docs/openapi.json`, scopes from the JWT authorizer's request context, and the
//! DynamoDB requests a page of the review queue takes.
mod common;

use common::*;
use mdm_aws::handlers::{steward, Ctx};
use mdm_aws::local::http_event;
use mdm_core::api::scope;
use mdm_core::golden::{ReviewStatus, ReviewTask};
use mdm_core::store::{Transactor, WriteOp};

/// A page of 50 open reviews: oldest first, as documented, in one `Query` of the queue index
/// and three `BatchGetItem`s (the tasks; then their records, and the golden records they name),
/// never a `Scan`. Other scopes are refused. The scheduled review-SLA invocation counts the same
/// open tasks and the age of the oldest.
#[tokio::test]
async fn a_page_of_fifty_reviews_is_one_query_and_batched_reads() {
    let Some(s) = stack("steward").await else { return };
    let mut settings = s.res.settings().expect("settings");
    settings.local_scopes = None;
    let sdk = mdm_aws::config::sdk_config().await;
    let ctx = Ctx::new(&sdk, settings, "steward").expect("ctx");
    let seeded = mdm_core::scenario::seed(&ctx.hub, 0).await.expect("scenario");
    let now = ctx.hub.now_ms();
    let tasks: Vec<WriteOp> = (0..50)
        .map(|i| {
            WriteOp::PutReview(Box::new(ReviewTask {
                entity: "customer".into(),
                task_id: format!("t-{i:02}"),
                golden_id: seeded.anna.clone(),
                source: mdm_core::scenario::anna_key(),
                candidate_golden_ids: vec![seeded.survivor.clone()],
                score: 9.0,
                explanation: vec![],
                status: ReviewStatus::Open,
                // Opened in reverse order of their ids: the queue sorts by age.
                created_at_ms: now - 1_000 * (i as i64 + 10),
                resolution: None,
                expires_at: None,
            }))
        })
        .collect();
    ctx.hub.store().transact(tasks).await.expect("tasks");
    let doc = openapi();
    let call = |query: &str, scopes: &[&str]| {
        let event = http_event("GET", "/v1/reviews", query, None, Some(scopes));
        let ctx = &ctx;
        async move { answer(&steward::handle_event(ctx, event).await) }
    };
    let before = ctx.hub.store().counts().snapshot();
    let a = call("entity=customer&limit=50", &[scope::STEWARD]).await;
    let after = ctx.hub.store().counts().snapshot();
    conform(&doc, "/v1/reviews", "get", &a);
    assert_eq!(a.status, 200, "{}", a.body);
    let items = a.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["taskId"], "t-49", "oldest first");
    assert_eq!(items[0]["record"]["attributes"]["family_name"], "kowalski");
    assert_eq!(items[0]["candidates"][0]["golden"]["status"], "active");
    let used = |op: &str| after[op] - before[op];
    assert_eq!((used("Query"), used("Scan")), (1, 0), "one Query, no Scan");
    assert_eq!(used("BatchGetItem"), 3, "the tasks, then their records and golden records");
    assert_eq!(used("GetItem"), 0);

    // The review SLA: the schedule's invocation measures the backlog of every entity type.
    let backlog = steward::handle(&ctx, serde_json::json!({"reviewBacklog": {}})).await;
    let of = |entity: &str| {
        backlog["entities"].as_array().expect("entities").iter().find(|e| e["entityType"] == entity).cloned()
    };
    let customers = of("customer").expect("customer");
    let listed =
        call("entity=customer&limit=100", &[scope::STEWARD]).await.body["items"].as_array().map_or(0, Vec::len);
    assert_eq!(customers["openReviews"].as_u64(), Some(listed as u64), "{backlog}");
    assert!(customers["oldestAgeSeconds"].as_i64().is_some_and(|a| a >= 59), "{backlog}");
    let products = of("product").expect("product");
    assert_eq!((products["openReviews"].as_u64(), products["oldestAgeSeconds"].as_i64()), (Some(0), Some(0)));

    let refused = call("entity=customer", &[scope::READ]).await;
    conform(&doc, "/v1/reviews", "get", &refused);
    assert_eq!(refused.status, 403);
    let bad = call("entity=customer&status=maybe", &[scope::STEWARD]).await;
    conform(&doc, "/v1/reviews", "get", &bad);
    assert_eq!(bad.status, 400);
}
