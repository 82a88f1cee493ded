//! The data stewards' routes (scope `mdm/steward`), served by their own function: the review
//! queue, review decisions, manual merge, split and pins (the actions are in
//! `steward_actions`). The queue, `GET /v1/reviews?entity=&status=open|resolved&limit=&cursor=`, oldest first:
//! each task with the record under review, every candidate golden record with its current
//! values, and the score, band and per-attribute explanation the task was opened with.
//!
//! Reads: one `Query` of the queue index, then the tasks, their records and their golden
//! records in batched reads (`BatchGetItem` of 100 on DynamoDB), never a scan.
//!
//! [`review_backlog`] is the review SLA's measure: open tasks per entity type and the age of the
//! oldest (the steward function emits it as metrics on a schedule).

use super::steward_actions as actions;
use super::wire::limit;
use super::{scope, ApiError, ApiRequest, ApiResponse};
use crate::golden::{GoldenRecord, GoldenStatus, ReviewTask};
use crate::hub::Hub;
use crate::record::SourceRecord;
use crate::store::{LookupStore, ReceiptStore, Store};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Tasks a page holds at most.
pub const MAX_REVIEW_PAGE: usize = 100;

/// The steward routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StewardRoute {
    /// `GET /v1/reviews`
    Reviews,
    /// `POST /v1/reviews/{taskId}`
    Decide { task_id: String },
    /// `POST /v1/golden/{entity}/{id}/merge`
    Merge { entity: String, id: String },
    /// `POST /v1/golden/{entity}/{id}/split`
    Split { entity: String, id: String },
    /// `POST /v1/golden/{entity}/{id}/rollback`
    Rollback { entity: String, id: String },
    /// `GET /v1/labels`
    Labels,
    /// `GET /v1/held`
    Held,
    /// `POST /v1/held/{system}/{sourceId}`
    HeldAction { system: String, source_id: String },
    /// `PUT` or `DELETE /v1/golden/{entity}/{id}/pins/{attribute}`
    Pin { entity: String, id: String, attribute: String },
}

impl StewardRoute {
    /// 404 for an unknown path, 405 for another method.
    pub fn parse(method: &str, raw_path: &str) -> Result<Self, ApiError> {
        let segments = super::path_segments(raw_path)?;
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let (route, allowed): (Self, &[&str]) = match seg.as_slice() {
            ["v1", "reviews"] => (Self::Reviews, &["GET"]),
            ["v1", "reviews", t] => (Self::Decide { task_id: (*t).into() }, &["POST"]),
            ["v1", "held"] => (Self::Held, &["GET"]),
            ["v1", "labels"] => (Self::Labels, &["GET"]),
            ["v1", "held", sys, id] => {
                (Self::HeldAction { system: sys.to_lowercase(), source_id: (*id).into() }, &["POST"])
            }
            ["v1", "golden", e, id, "merge"] => (Self::Merge { entity: (*e).into(), id: (*id).into() }, &["POST"]),
            ["v1", "golden", e, id, "split"] => (Self::Split { entity: (*e).into(), id: (*id).into() }, &["POST"]),
            ["v1", "golden", e, id, "rollback"] => {
                (Self::Rollback { entity: (*e).into(), id: (*id).into() }, &["POST"])
            }
            ["v1", "golden", e, id, "pins", a] => {
                (Self::Pin { entity: (*e).into(), id: (*id).into(), attribute: (*a).into() }, &["PUT", "DELETE"])
            }
            _ => return Err(ApiError::new(404, "unknown_route", "no route matches this path")),
        };
        if !allowed.iter().any(|m| method.eq_ignore_ascii_case(m)) {
            let allowed = allowed.join(" or ");
            return Err(ApiError::new(405, "method_not_allowed", format!("this route accepts {allowed} only")));
        }
        super::check_parameters(&seg)?;
        Ok(route)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Reviews => "list_reviews",
            Self::Decide { .. } => "decide_review",
            Self::Merge { .. } => "merge_golden",
            Self::Split { .. } => "split_golden",
            Self::Rollback { .. } => "rollback_golden",
            Self::Held => "list_held",
            Self::Labels => "export_labels",
            Self::HeldAction { .. } => "held_action",
            Self::Pin { .. } => "pin_value",
        }
    }
}

/// Answers one steward request: route, scope check (`mdm/steward`), handler.
pub async fn handle<S: Store + LookupStore + ReceiptStore>(hub: &Hub<S>, req: &ApiRequest) -> ApiResponse {
    // The console's page and files: no data, no scope (the page calls the routes below).
    if let Some(page) = super::console::serve(req) {
        return page;
    }
    let route = match StewardRoute::parse(&req.method, &req.path) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let handler = async {
        let known = |entity: &str| hub.registry().get(entity).map(|_| ()).ok_or_else(|| super::unknown_entity(entity));
        match &route {
            StewardRoute::Reviews => list_reviews(hub, req).await,
            // Boxed: an action's future holds the store's, which is large on DynamoDB.
            StewardRoute::Decide { task_id } => Box::pin(actions::decide_review(hub, task_id, req)).await,
            StewardRoute::Merge { entity, id } => {
                known(entity)?;
                Box::pin(actions::merge(hub, entity, id, req)).await
            }
            StewardRoute::Split { entity, id } => {
                known(entity)?;
                Box::pin(actions::split(hub, entity, id, req)).await
            }
            StewardRoute::Held => actions::list_held(hub, req).await,
            StewardRoute::Labels => actions::export_labels(hub, req).await,
            StewardRoute::HeldAction { system, source_id } => {
                Box::pin(actions::held_action(hub, system, source_id, req)).await
            }
            StewardRoute::Rollback { entity, id } => {
                known(entity)?;
                Box::pin(actions::rollback(hub, entity, id, req)).await
            }
            StewardRoute::Pin { entity, id, attribute } => {
                known(entity)?;
                Box::pin(actions::pin(hub, entity, id, attribute, req)).await
            }
        }
    };
    super::answer(route.name(), &req.scopes, scope::STEWARD, handler).await
}

/// The parameters of a paged steward list: `entity` (required, configured), `limit` (default
/// and most), `cursor` (a `nextCursor` handed out before: printable ASCII, at most 600 bytes).
pub(super) struct PageParams<'a> {
    pub entity: &'a str,
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

pub(super) fn page_params<'a, S: Store>(
    hub: &Hub<S>,
    req: &'a ApiRequest,
    default: usize,
    most: usize,
) -> Result<PageParams<'a>, ApiError> {
    let entity = req.query.get("entity").ok_or_else(|| parameter_error("entity", "'entity' is required"))?;
    hub.registry().get(entity).ok_or_else(|| super::unknown_entity(entity))?;
    let limit = limit(req.query.get("limit").map(|s| json!(s)).as_ref(), "limit", default, most)?;
    let cursor = req.query.get("cursor").map(String::as_str);
    if cursor.is_some_and(|c| c.len() > 600 || !c.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(parameter_error("cursor", "'cursor' must be a value returned as 'nextCursor'"));
    }
    Ok(PageParams { entity, limit, cursor })
}

fn parameter_error(name: &'static str, message: &str) -> ApiError {
    ApiError::bad_request("invalid_parameter", message.to_owned()).with_detail(json!({"parameter": name}))
}

/// `GET /v1/reviews`: a page of the review queue, oldest first.
pub async fn list_reviews<S: Store + LookupStore>(hub: &Hub<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let p = page_params(hub, req, 20, MAX_REVIEW_PAGE)?;
    let open = match req.query.get("status").map(String::as_str) {
        None | Some("open") => true,
        Some("resolved") => false,
        Some(_) => return Err(parameter_error("status", "'status' must be open or resolved")),
    };
    let queue = hub.store().review_queue(p.entity, open, p.cursor, p.limit).await?;
    // The records under review and every golden record the tasks name, in batched reads.
    let mut sources: Vec<_> = queue.tasks.iter().map(|t| t.source.clone()).collect();
    sources.sort();
    sources.dedup();
    let records: HashMap<_, _> =
        hub.store().get_sources(&sources).await?.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut refs: Vec<(String, String)> = Vec::new();
    for t in &queue.tasks {
        for id in std::iter::once(&t.golden_id).chain(&t.candidate_golden_ids) {
            refs.push((t.entity.clone(), id.clone()));
        }
    }
    let goldens: HashMap<String, GoldenRecord> =
        hub.store().get_golden_refs(&refs).await?.into_iter().map(|g| (g.golden_id.clone(), g)).collect();
    let now = hub.now_ms();
    let items: Vec<Value> =
        queue.tasks.iter().map(|t| task_view(t, records.get(&t.source).map(|r| &**r), &goldens, now)).collect();
    Ok(ApiResponse::json(200, json!({"items": items, "nextCursor": queue.next})))
}

/// A golden record's current state: status, version and values (`mergedInto` for a record
/// merged since the task opened).
fn golden_values(g: Option<&GoldenRecord>) -> Value {
    let Some(g) = g else { return json!({"status": "missing"}) };
    let values: serde_json::Map<String, Value> =
        g.attributes.iter().map(|(k, a)| (k.to_string(), json!(a.value))).collect();
    let mut v = json!({"version": g.version, "attributes": values});
    match &g.status {
        GoldenStatus::Active => v["status"] = json!("active"),
        GoldenStatus::MergedInto { survivor } => {
            v["status"] = json!("merged");
            v["mergedInto"] = json!(survivor);
        }
        GoldenStatus::Erased => v["status"] = json!("erased"),
    }
    v
}

fn task_view(
    t: &ReviewTask,
    record: Option<&SourceRecord>,
    goldens: &HashMap<String, GoldenRecord>,
    now: i64,
) -> Value {
    let candidates: Vec<Value> = t
        .candidate_golden_ids
        .iter()
        .map(|id| {
            let scored = t.explanation.iter().find(|c| &c.golden_id == id);
            let mut c = json!({"goldenId": id, "golden": golden_values(goldens.get(id))});
            if let Some(s) = scored {
                c["score"] = json!(s.score);
                c["band"] = json!(s.band);
                c["explanation"] = json!(s.attributes);
                if let Some(rule) = &s.rule {
                    c["rule"] = json!(rule);
                }
                if let Some(b) = &s.blocked_by {
                    c["blockedBy"] = json!(b);
                }
            }
            c
        })
        .collect();
    let record = match record {
        Some(r) => json!({"system": t.source.system, "sourceId": t.source.source_id, "sourceSeq": r.seq,
                          "attributes": r.attributes}),
        None => json!({"system": t.source.system, "sourceId": t.source.source_id}),
    };
    let mut view = json!({
        "taskId": t.task_id,
        "entityType": t.entity,
        "status": t.status,
        "openedAt": crate::time::format_rfc3339(t.created_at_ms),
        "ageSeconds": ((now - t.created_at_ms).max(0) / 1000),
        "score": t.score,
        "record": record,
        "holder": {"goldenId": t.golden_id, "golden": golden_values(goldens.get(&t.golden_id))},
        "candidates": candidates,
    });
    if let Some(r) = &t.resolution {
        view["resolution"] = json!({"decision": r.decision, "goldenId": r.golden_id, "actor": r.actor,
                                    "reason": r.reason, "resolvedAt": crate::time::format_rfc3339(r.at_ms)});
    }
    view
}

/// The review backlog of one entity type, as the SLA metrics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub entity: String,
    pub open: u64,
    /// Age of the oldest open task (0 without one).
    pub oldest_age_s: i64,
}

/// The open review tasks of every configured entity type and the age of each one's oldest.
pub async fn review_backlog<S: Store>(hub: &Hub<S>) -> Result<Vec<Backlog>, crate::store::StoreError> {
    let now = hub.now_ms();
    let mut out = Vec::new();
    for entity in hub.registry().entities() {
        let b = hub.store().review_backlog(entity).await?;
        let oldest_age_s = b.oldest_opened_ms.map_or(0, |t| (now - t).max(0) / 1000);
        out.push(Backlog { entity: entity.to_owned(), open: b.open, oldest_age_s });
    }
    Ok(out)
}
