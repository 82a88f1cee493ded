//! The steward actions over HTTP: review decisions, manual merge, split, pins. Each needs
//! `If-Match: <version>` of the golden record it names (428 without, 412 when stale), a
//! `reason`, and a caller with a subject (the actor history records).

use super::golden::{location, view};
use super::wire::{etag, json_body};
use super::{ApiError, ApiRequest, ApiResponse};
use crate::golden::Attribution;
use crate::hub::Hub;
use crate::keys::SourceKey;
use crate::steward::{Decision, StewardError, Target};
use crate::store::{ReceiptStore, Store};
use serde_json::{json, Map, Value};

/// Longest `reason` accepted.
pub const MAX_REASON_CHARS: usize = 1000;
/// Most source records one split names.
pub const MAX_SPLIT_SOURCES: usize = 100;

impl From<StewardError> for ApiError {
    fn from(e: StewardError) -> Self {
        match e {
            StewardError::NotFound { code, message } => ApiError::new(404, code, message),
            StewardError::Stale { golden_id, expected, current } => ApiError::new(
                412,
                "version_mismatch",
                format!("golden record {golden_id} is at version {current}; the action named version {expected}"),
            )
            .with_detail(json!({"goldenId": golden_id, "currentVersion": current})),
            StewardError::StaleRecord { expected, current } => ApiError::new(
                412,
                "version_mismatch",
                format!("the record is at sourceSeq {current}; the action named {expected}"),
            )
            .with_detail(json!({"currentSourceSeq": current})),
            StewardError::Conflict { code, message, merged_into } => {
                let e = ApiError::new(409, code, message);
                match merged_into {
                    Some(m) => e.with_detail(json!({"mergedInto": m})),
                    None => e,
                }
            }
            StewardError::Invalid { code, message, field } => {
                let e = ApiError::bad_request(code, message);
                match field {
                    Some(f) => e.with_detail(json!({"field": f})),
                    None => e,
                }
            }
            StewardError::Hub(e) => e.into(),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_body", message).with_detail(json!({"field": field}))
}

/// The JSON object body.
fn object(req: &ApiRequest) -> Result<Map<String, Value>, ApiError> {
    match json_body(req)? {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::bad_request("invalid_body", "the body must be a JSON object")),
    }
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(field, format!("'{field}' must be a non-empty string"))),
    }
}

/// Who acts and why: the caller's subject and the body's `reason`.
fn attribution(req: &ApiRequest, body: &Map<String, Value>) -> Result<Attribution, ApiError> {
    let actor = req.principal.clone().filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        ApiError::new(403, "no_principal", "the token names no subject ('sub'): steward actions record who made them")
    })?;
    let reason = text(body, "reason")?.ok_or_else(|| invalid("reason", "'reason' is required"))?;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(invalid("reason", format!("'reason' is longer than {MAX_REASON_CHARS} characters")));
    }
    let actor: String = actor.chars().filter(|c| !c.is_control()).take(256).collect();
    Ok(Attribution { actor, reason: reason.to_owned() })
}

/// The version `If-Match` names (`"3"`, `W/"3"` or `3`): 428 without the header, 400 when it
/// names no version.
fn if_match(req: &ApiRequest) -> Result<u64, ApiError> {
    let raw = req.header("if-match").ok_or_else(|| {
        ApiError::new(
            428,
            "precondition_required",
            "steward actions need If-Match with the version of the golden record they were decided on",
        )
    })?;
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_header", "If-Match must hold a golden record version, like \"3\""))
}

fn version_field(body: &Map<String, Value>, field: &str) -> Result<u64, ApiError> {
    body.get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(field, format!("'{field}' must be the version of that golden record")))
}

/// `POST /v1/reviews/{taskId}`: `{"decision": "link", "goldenId", "reason"}` or
/// `{"decision": "distinct", "reason"}`. `If-Match` names the version of the golden record that
/// holds the record under review.
pub async fn decide_review<S: Store>(hub: &Hub<S>, task_id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let version = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let decision = match text(&body, "decision")? {
        Some("link") => Decision::Link {
            golden_id: text(&body, "goldenId")?
                .ok_or_else(|| invalid("goldenId", "'goldenId' names the candidate to link"))?
                .to_owned(),
        },
        Some("distinct") => Decision::Distinct,
        _ => return Err(invalid("decision", "'decision' must be link or distinct")),
    };
    // Task ids are unique per entity type: the one named (`entity`), or each configured type.
    let entities: Vec<String> = match req.query.get("entity") {
        Some(e) => {
            hub.registry().get(e).ok_or_else(|| super::unknown_entity(e))?;
            vec![e.clone()]
        }
        None => hub.registry().entities().map(str::to_owned).collect(),
    };
    let mut entity = None;
    for e in entities {
        if hub.store().get_review(&e, task_id).await?.is_some() {
            entity = Some(e);
            break;
        }
    }
    let entity = entity.ok_or_else(|| ApiError::new(404, "review_not_found", "no review task with this id"))?;
    let r = hub.resolve_review(&entity, task_id, version, &decision, &who).await?;
    let rescored: Vec<Value> = r
        .rescored
        .iter()
        .filter(|c| r.task.candidate_golden_ids.contains(&c.golden_id))
        .map(|c| json!({"goldenId": c.golden_id, "score": c.score, "band": c.band}))
        .collect();
    let mut out = json!({
        "taskId": r.task.task_id,
        "status": r.task.status,
        "resolution": r.task.resolution,
        "goldenId": r.golden.golden_id,
        "golden": view(&r.golden, true),
        "rescored": rescored,
    });
    if let Some(m) = &r.merged {
        out["mergedGoldenId"] = json!(m);
    }
    Ok(ApiResponse::json(200, out).with_header("etag", etag(r.golden.version)))
}

/// `POST /v1/golden/{entity}/{id}/merge`: `{"with", "withVersion", "reason"}`.
pub async fn merge<S: Store>(hub: &Hub<S>, entity: &str, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let version = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let with = text(&body, "with")?.ok_or_else(|| invalid("with", "'with' names the golden record to merge with"))?;
    let with_version = version_field(&body, "withVersion")?;
    let a = Target { entity: entity.to_owned(), golden_id: id.to_owned(), version };
    let b = Target { entity: entity.to_owned(), golden_id: with.to_owned(), version: with_version };
    let m = hub.merge_golden(&a, &b, &who, crate::golden::Cause::Merge, |_| Vec::new()).await?;
    let body = json!({"goldenId": m.survivor.golden_id, "version": m.survivor.version,
                      "mergedGoldenId": m.merged, "golden": view(&m.survivor, true)});
    Ok(ApiResponse::json(200, body)
        .with_header("etag", etag(m.survivor.version))
        .with_header("location", location(entity, &m.survivor.golden_id)))
}

/// `POST /v1/golden/{entity}/{id}/split`: `{"sources": [{"system", "sourceId"}], "reason"}`.
pub async fn split<S: Store>(hub: &Hub<S>, entity: &str, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let version = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let listed = body.get("sources").and_then(Value::as_array).filter(|a| !a.is_empty()).ok_or_else(|| {
        invalid("sources", "'sources' lists the source records to split off: [{\"system\", \"sourceId\"}]")
    })?;
    if listed.len() > MAX_SPLIT_SOURCES {
        return Err(invalid("sources", format!("a split names at most {MAX_SPLIT_SOURCES} source records")));
    }
    let mut leaving = Vec::with_capacity(listed.len());
    for s in listed {
        let field = |f: &str| s.get(f).and_then(Value::as_str).filter(|v| !v.is_empty() && v.len() <= 256);
        let (Some(system), Some(source_id)) = (field("system"), field("sourceId")) else {
            return Err(invalid("sources", "each source names 'system' and 'sourceId'"));
        };
        let key = SourceKey::new(entity, system.to_lowercase(), source_id);
        if !leaving.contains(&key) {
            leaving.push(key);
        }
    }
    let t = Target { entity: entity.to_owned(), golden_id: id.to_owned(), version };
    let s = hub.split_golden(&t, &leaving, &who).await?;
    let body = json!({"goldenId": s.golden.golden_id, "version": s.golden.version, "golden": view(&s.golden, true),
                      "splitGoldenId": s.split_off.golden_id, "splitOff": view(&s.split_off, true),
                      "reactivated": s.reactivated});
    Ok(ApiResponse::json(200, body).with_header("etag", etag(s.golden.version)))
}

/// `POST /v1/golden/{entity}/{id}/rollback`: `{"version", "reason"}`.
pub async fn rollback<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let version = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let to = version_field(&body, "version")?;
    let t = Target { entity: entity.to_owned(), golden_id: id.to_owned(), version };
    let r = hub.rollback_golden(&t, to, &who).await?;
    let pins = super::golden::pins_view(&r.pins);
    let mut body = json!({"goldenId": r.golden.golden_id, "version": r.golden.version, "golden": view(&r.golden, true),
                          "rolledBackTo": to, "pins": pins, "donorGoldenIds": r.donors});
    if let Some(off) = &r.split_off {
        body["splitGoldenId"] = json!(off.golden_id);
        body["splitOff"] = view(off, true);
    }
    Ok(ApiResponse::json(200, body).with_header("etag", etag(r.golden.version)))
}

/// `PUT /v1/golden/{entity}/{id}/pins/{attribute}` `{"value", "reason"}`, and `DELETE` (body
/// `{"reason"}`): pins a value, or removes the pin.
pub async fn pin<S: Store>(
    hub: &Hub<S>,
    entity: &str,
    id: &str,
    attribute: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let version = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let put = req.method.eq_ignore_ascii_case("PUT");
    let value = if put {
        Some(body.get("value").filter(|v| !v.is_null()).ok_or_else(|| invalid("value", "'value' is required"))?)
    } else {
        None
    };
    let t = Target { entity: entity.to_owned(), golden_id: id.to_owned(), version };
    let g = hub.pin_value(&t, attribute, value, &who).await?;
    let body = json!({"goldenId": g.golden_id, "version": g.version, "golden": view(&g, true)});
    Ok(ApiResponse::json(200, body).with_header("etag", etag(g.version)))
}

/// The entity type a request names (`entity`), or every configured one.
fn entity_types<S: Store>(hub: &Hub<S>, req: &ApiRequest) -> Result<Vec<String>, ApiError> {
    match req.query.get("entity") {
        Some(e) => {
            hub.registry().get(e).ok_or_else(|| super::unknown_entity(e))?;
            Ok(vec![e.clone()])
        }
        None => Ok(hub.registry().entities().map(str::to_owned).collect()),
    }
}

/// `GET /v1/held?entity=&limit=&cursor=`: records held under suppression mode `hold`, by
/// source key. Values are shown: a steward decides whether the record is the erased subject.
pub async fn list_held<S: Store>(hub: &Hub<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let p = super::steward::page_params(hub, req, 20, 100)?;
    let held = hub.store().held_records(p.entity, p.cursor, p.limit).await?;
    let items: Vec<Value> = held
        .records
        .iter()
        .map(|r| {
            json!({"entityType": r.key.entity.as_str(), "system": r.key.system.as_str(), "sourceId": r.key.source_id.as_str(),
                   "sourceSeq": r.seq, "receivedAt": crate::time::format_rfc3339(r.received_at_ms),
                   "attributes": r.attributes})
        })
        .collect();
    Ok(ApiResponse::json(200, json!({"items": items, "nextCursor": held.next})))
}

/// `POST /v1/held/{system}/{sourceId}` `{"action": "release" | "erase", "reason"}`; `If-Match`
/// names the held version's `sourceSeq`.
pub async fn held_action<S: Store + ReceiptStore>(
    hub: &Hub<S>,
    system: &str,
    source_id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let seq = if_match(req)?;
    let body = object(req)?;
    let who = attribution(req, &body)?;
    let action = text(&body, "action")?;
    if !matches!(action, Some("release" | "erase")) {
        return Err(invalid("action", "'action' must be release or erase"));
    }
    let mut key = None;
    for e in entity_types(hub, req)? {
        let k = SourceKey::new(&e, system, source_id);
        if hub.store().get_source(&k).await?.is_some() {
            key = Some(k);
            break;
        }
    }
    let key = key.ok_or_else(|| ApiError::new(404, "held_not_found", "no stored record with this key"))?;
    let out = if action == Some("release") {
        let report = hub.release_held(&key, seq, &who).await?;
        json!({"action": "release", "system": system, "sourceId": source_id,
               "goldenId": report.outcome.golden_id(), "outcome": report.outcome.name()})
    } else {
        let receipt = hub.erase_held(&key, seq, &who).await?;
        json!({"action": "erase", "system": system, "sourceId": source_id,
               "requestId": receipt.request_id, "status": receipt.status})
    };
    Ok(ApiResponse::json(200, out))
}

/// `GET /v1/labels?entity=&limit=&cursor=`: steward decisions as labelled record pairs
/// (`link`: one entity, `distinct`: two), oldest decision first, each record with its current
/// values: the matcher's training data. A pair whose record was erased since is left out.
pub async fn export_labels<S: Store>(hub: &Hub<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let p = super::steward::page_params(hub, req, 10, 50)?;
    let sets = hub.store().labels(p.entity, p.cursor, p.limit).await?;
    let mut keys: Vec<SourceKey> =
        sets.sets.iter().flat_map(|l| l.pairs.iter().flat_map(|(a, b)| [a.clone(), b.clone()])).collect();
    keys.sort();
    keys.dedup();
    let records: std::collections::HashMap<SourceKey, _> =
        hub.store().get_sources(&keys).await?.into_iter().map(|r| (r.key.clone(), r)).collect();
    let side = |k: &SourceKey| {
        records
            .get(k)
            .map(|r| json!({"system": k.system.as_str(), "sourceId": k.source_id.as_str(), "attributes": r.attributes}))
    };
    let mut items = Vec::new();
    for l in &sets.sets {
        for (a, b) in &l.pairs {
            let (Some(left), Some(right)) = (side(a), side(b)) else { continue };
            items.push(json!({"label": l.label, "cause": l.cause, "decisionId": l.id,
                              "decidedAt": crate::time::format_rfc3339(l.at_ms), "left": left, "right": right}));
        }
    }
    Ok(ApiResponse::json(200, json!({"items": items, "nextCursor": sets.next})))
}
