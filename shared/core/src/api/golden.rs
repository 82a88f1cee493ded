//! `GET /v1/golden/{entity}/{goldenId}`, its history, and `GET /v1/xref/{entity}/{system}/{sourceId}`.

use super::wire::{bool_param, etag, limit, none_match};
use super::{unknown_entity, ApiError, ApiRequest, ApiResponse};
use crate::events::GoldenView;
use crate::golden::{GoldenRecord, GoldenStatus};
use crate::hub::Hub;
use crate::keys::SourceKey;
use crate::store::{LookupStore, Store};
use serde_json::{json, Value};

/// Most history versions per page.
pub const MAX_HISTORY_PAGE: usize = 100;
/// A history page's versions stop before their JSON passes this many bytes (Lambda answers at
/// most 6 MB, headers and encoding included).
pub const MAX_HISTORY_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The golden record as the API shows it: the subscriber view, with provenance per attribute
/// or (`provenance=false`) values only.
pub fn view(g: &GoldenRecord, provenance: bool) -> Value {
    let mut v = json!(GoldenView::of(g));
    if !provenance {
        let plain: serde_json::Map<String, Value> =
            g.attributes.iter().map(|(k, a)| (k.to_string(), json!({"value": a.value}))).collect();
        v["attributes"] = Value::Object(plain);
    }
    if !g.pins.is_empty() {
        v["pins"] = pins_view(&g.pins);
    }
    v
}

/// Pinned values as the API shows them: attribute, value, actor, reason, time.
pub(crate) fn pins_view(pins: &[crate::golden::Pin]) -> Value {
    pins.iter()
        .map(|p| {
            json!({"attribute": p.attribute, "value": p.value, "actor": p.actor, "reason": p.reason,
                   "pinnedAt": crate::time::format_rfc3339(p.at_ms)})
        })
        .collect()
}

fn not_found(entity: &str, id: &str) -> ApiError {
    ApiError::new(404, "not_found", "no golden record with this id")
        .with_detail(json!({"entityType": entity, "goldenId": id}))
}

fn erased(entity: &str, id: &str) -> ApiError {
    ApiError::new(410, "erased", "this golden record was erased")
        .with_detail(json!({"entityType": entity, "goldenId": id}))
}

fn check_entity<S: Store>(hub: &Hub<S>, entity: &str) -> Result<(), ApiError> {
    hub.registry().get(entity).map(|_| ()).ok_or_else(|| unknown_entity(entity))
}

/// The read API path of a golden record.
pub fn location(entity: &str, id: &str) -> String {
    format!("/v1/golden/{entity}/{id}")
}

/// The stored golden record a route reads (404 unknown, 410 erased) and the `provenance` flag.
async fn readable<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    req: &ApiRequest,
) -> Result<(GoldenRecord, bool), ApiError> {
    check_entity(hub, entity)?;
    let provenance = bool_param(req, "provenance", true)?;
    let g = hub.store().get_golden(entity, id).await?.ok_or_else(|| not_found(entity, id))?;
    if g.status == GoldenStatus::Erased {
        return Err(erased(entity, id));
    }
    Ok((g, provenance))
}

/// 200 with the record (merged: `status: merged`, `mergedInto` = the active survivor, and a
/// `Location`), 304 when `If-None-Match` holds its ETag, 410 erased, 404 unknown.
pub async fn get_golden<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let (g, provenance) = readable(hub, entity, id, req).await?;
    let tag = etag(g.version);
    if none_match(req.header("if-none-match"), &tag) {
        return Ok(ApiResponse { status: 304, headers: vec![("etag".into(), tag)], body: None });
    }
    let mut body = view(&g, provenance);
    if !g.merged_from.is_empty() {
        body["mergedFrom"] = json!(g.merged_from);
    }
    let mut response_location = None;
    if let GoldenStatus::MergedInto { survivor } = &g.status {
        let last = hub.final_record(entity, survivor).await?;
        let target = last.as_ref().filter(|s| s.is_active()).map_or(survivor.as_str(), |s| s.golden_id.as_str());
        body["mergedInto"] = json!(target);
        response_location = Some(location(entity, target));
    }
    let mut r = ApiResponse::json(200, body).with_header("etag", tag);
    if let Some(l) = response_location {
        r = r.with_header("location", l);
    }
    Ok(r)
}

/// `GET …/history?limit=&cursor=`: versions oldest first, `nextCursor` while more remain.
pub async fn get_history<S: Store + LookupStore>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let page = limit(req.query.get("limit").map(|s| json!(s)).as_ref(), "limit", 20, MAX_HISTORY_PAGE)?;
    let after = match req.query.get("cursor") {
        None => 0,
        Some(c) => c.parse::<u64>().map_err(|_| {
            ApiError::bad_request("invalid_parameter", "'cursor' must be a value returned as 'nextCursor'")
                .with_detail(json!({"parameter": "cursor"}))
        })?,
    };
    let (_, provenance) = readable(hub, entity, id, req).await?;
    let mut items = hub.store().history_page(entity, id, after, page + 1).await?;
    let mut more = items.len() > page;
    items.truncate(page);
    // Versions of a golden record with thousands of members are large: a page stops before it
    // passes MAX_HISTORY_PAGE_BYTES (at least one version), well inside Lambda's 6 MB answer.
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut bytes = 0;
    let mut last = None;
    for h in &items {
        let mut item = json!({"version": h.version, "cause": h.cause, "correlationId": h.correlation_id,
                          "at": crate::time::format_rfc3339(h.at_ms), "golden": view(&h.snapshot, provenance)});
        if let Some(actor) = &h.actor {
            // A steward action: who, and why.
            item["actor"] = json!(actor);
            item["reason"] = json!(h.reason);
        }
        if let Some(n) = h.member_count {
            // The version left its member list out: the count instead.
            item["memberCount"] = json!(n);
        }
        let size = serde_json::to_vec(&item).map_or(0, |v| v.len());
        if !out.is_empty() && bytes + size > MAX_HISTORY_PAGE_BYTES {
            more = true;
            break;
        }
        bytes += size;
        last = Some(h.version);
        out.push(item);
    }
    let next = if more { last.map(|v| v.to_string()) } else { None };
    Ok(ApiResponse::json(200, json!({"items": out, "nextCursor": next})))
}

/// `GET …/why/{system}/{sourceId}`: why a source record is a member of this golden record —
/// the rule, or the score with its per-attribute explanation as it was when the link was made,
/// or the steward action with actor and reason (stored with the link). `joinedGoldenId` names
/// the record it joined, when that one was merged into this one since.
pub async fn get_why<S: Store + LookupStore>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    system: &str,
    source_id: &str,
) -> Result<ApiResponse, ApiError> {
    check_entity(hub, entity)?;
    let g = hub.final_record(entity, id).await?.ok_or_else(|| not_found(entity, id))?;
    if g.status == GoldenStatus::Erased {
        return Err(erased(entity, id));
    }
    let key = SourceKey::new(entity, system, source_id);
    if !g.members.contains(&key) {
        return Err(ApiError::new(404, "not_a_member", "this source record is not a member of the golden record")
            .with_detail(json!({"goldenId": g.golden_id, "system": system, "sourceId": source_id})));
    }
    let mut body = json!({"goldenId": g.golden_id, "system": system, "sourceId": source_id});
    match hub.store().get_link(&key).await? {
        Some(link) => {
            body["how"] = json!(link.how);
            body["joinedGoldenId"] = json!(link.golden_id);
            body["linkedAt"] = json!(crate::time::format_rfc3339(link.at_ms));
            for (field, value) in [
                ("rule", json!(link.rule)),
                ("score", json!(link.score)),
                ("cause", json!(link.cause)),
                ("actor", json!(link.actor)),
                ("reason", json!(link.reason)),
            ] {
                if !value.is_null() {
                    body[field] = value;
                }
            }
            if !link.explanation.is_empty() {
                body["explanation"] = json!(link.explanation);
            }
        }
        // Linked before reasons were kept.
        None => body["how"] = json!("unrecorded"),
    }
    Ok(ApiResponse::json(200, body).with_header("etag", etag(g.version)))
}

/// The golden record a source record belongs to (merged-into pointers followed).
pub async fn get_xref<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    system: &str,
    source_id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    check_entity(hub, entity)?;
    let provenance = bool_param(req, "provenance", true)?;
    let key = SourceKey::new(entity, system, source_id);
    let source_detail = json!({"entityType": entity, "system": system, "sourceId": source_id});
    let source = hub.store().get_source(&key).await?.ok_or_else(|| {
        ApiError::new(404, "unknown_source", "no source record with this key").with_detail(source_detail.clone())
    })?;
    let golden_id = source.golden_id.clone().ok_or_else(|| {
        ApiError::new(
            404,
            "not_linked",
            "the source record is stored but not linked to a golden record yet; retry shortly",
        )
        .with_detail(source_detail.clone())
    })?;
    let g = hub.final_record(entity, &golden_id).await?.ok_or_else(|| not_found(entity, &golden_id))?;
    if g.status == GoldenStatus::Erased {
        return Err(erased(entity, &g.golden_id));
    }
    let body = json!({"entityType": entity, "system": system, "sourceId": source_id,
                      "goldenId": g.golden_id, "golden": view(&g, provenance)});
    Ok(ApiResponse::json(200, body).with_header("etag", etag(g.version)))
}
