//! `POST /v1/match`: scores a candidate record against the store without storing anything.

use super::wire::limit;
use super::{ApiError, ApiRequest, ApiResponse};
use crate::hub::Hub;
use crate::matching::{MatchDecision, MatchResult};
use crate::record::{validate, RecordError, SourceRecord};
use crate::store::Store;
use serde_json::{json, Value};

/// Most candidates one match answer lists.
pub const MAX_CANDIDATES: usize = 20;
/// The source system a probe record is validated under (never stored).
pub const PROBE_SYSTEM: &str = "api-probe";

fn record_error(e: RecordError) -> ApiError {
    let mut detail = json!({"code": e.code});
    if let Some(f) = &e.field {
        detail["field"] = json!(f);
    }
    ApiError::bad_request(e.code, e.message).with_detail(detail)
}

/// Validates `{entityType, attributes, verified?}` as a source record of the probe system, so a
/// probe is normalised exactly as an ingested record would be.
pub fn probe_record<S: Store>(
    hub: &Hub<S>,
    entity: &Value,
    attributes: &Value,
    verified: Option<&Value>,
) -> Result<SourceRecord, ApiError> {
    let mut wire = json!({"entityType": entity, "sourceSystem": PROBE_SYSTEM, "sourceId": "probe",
                          "sourceSeq": 0, "attributes": attributes});
    if let Some(v) = verified {
        wire["verified"] = v.clone();
    }
    validate(hub.registry(), &wire, hub.now_ms()).map_err(record_error)
}

/// The answer of a match: decision, ranked candidates with band and explanation.
pub fn match_body(result: &MatchResult, limit: usize) -> Value {
    let (decision, ids) = match &result.decision {
        MatchDecision::Link { golden_ids } => ("link", golden_ids.clone()),
        MatchDecision::Review { golden_ids } => ("review", golden_ids.clone()),
        MatchDecision::New => ("new", Vec::new()),
    };
    let candidates: Vec<&crate::matching::CandidateScore> = result.candidates.iter().take(limit).collect();
    json!({"decision": decision, "goldenIds": ids, "candidates": candidates, "blocking": result.blocking})
}

pub async fn match_candidate<S: Store>(hub: &Hub<S>, body: &Value, _req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let obj =
        body.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", "the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !["entityType", "attributes", "verified", "limit"].contains(&k.as_str())) {
        return Err(
            ApiError::bad_request("unknown_field", format!("unknown field '{k}'")).with_detail(json!({"field": k}))
        );
    }
    let entity = obj.get("entityType").ok_or_else(|| {
        ApiError::bad_request("missing_field", "'entityType' is required").with_detail(json!({"field": "entityType"}))
    })?;
    let attributes = obj.get("attributes").filter(|a| a.is_object()).ok_or_else(|| {
        ApiError::bad_request("missing_field", "'attributes' must be an object")
            .with_detail(json!({"field": "attributes"}))
    })?;
    let limit = limit(obj.get("limit"), "limit", 10, MAX_CANDIDATES)?;
    let record = probe_record(hub, entity, attributes, obj.get("verified"))?;
    let result = hub.match_record(&record).await?;
    let mut body = match_body(&result, limit);
    body["entityType"] = json!(record.key.entity);
    body["quality"] = json!(record.quality);
    tracing::info!(
        entity = %record.key.entity,
        candidates = result.candidates.len(),
        decision = body["decision"].as_str().unwrap_or(""),
        "record scored"
    );
    Ok(ApiResponse::json(200, body))
}
