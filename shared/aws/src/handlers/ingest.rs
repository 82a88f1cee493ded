//! Ingest: `POST /v1/records` (API Gateway HTTP API) and the bulk SQS queue.
//!
//! Validates and normalises each record (reject structure, keep values), stores it conditionally
//! on its `sourceSeq`, and queues a match message (keys only). Duplicates (same `sourceSeq`) are
//! queued again, harmlessly, so a crash between storing and queuing is healed by the retry;
//! older versions are dropped and counted.

use super::{batch_response, reason, settle, Ctx, Settle};
use crate::messages::MatchMessage;
use crate::metrics::Scope;
use crate::sqs::Outgoing;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;
use mdm_core::record::{validate, RecordError};
use mdm_core::store::{SourceWrite, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, info_span, Instrument};

/// Largest request body we accept (bytes, after base64 decoding).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most records in one request.
pub const MAX_RECORDS: usize = 500;
const HANDLER: &str = "ingest";
/// The principal recorded for records that came through the bulk queue.
pub const BULK_QUEUE_PRINCIPAL: &str = "queue:ingest";
/// The rejection code of a record that matches an erased subject's suppression marker.
pub const SUPPRESSED: &str = "suppressed";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What happened to a batch of records.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IngestSummary {
    /// Records that passed validation.
    pub accepted: usize,
    /// Written (new, or newer than the stored version).
    pub stored: usize,
    /// Same `sourceSeq` as stored: nothing written, matched again (idempotent).
    pub duplicates: usize,
    /// Older than the stored version: dropped.
    pub stale: usize,
    /// Matched an erased subject and stored for a steward's review, not matched (suppression
    /// mode `hold`; in mode `reject` such records are listed in `rejected` as `suppressed`).
    pub held: usize,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] crate::sqs::QueueError),
}

/// The data-quality indicator of a stored record, and its source lag: the share of its entity type's attributes it
/// holds a valid value for (present, and passed its normalisers), per entity type and source
/// system. CloudWatch's average of the values is the share over the records.
fn observe_quality(ctx: &Ctx, record: &mdm_core::SourceRecord) {
    let Some(schema) = ctx.hub.registry().get(&record.key.entity) else { return };
    if schema.attributes.is_empty() {
        return;
    }
    let valid = record.attributes.len().saturating_sub(record.invalid.len());
    let scope = Scope::Source { entity: record.key.entity.to_string(), system: record.key.system.to_string() };
    ctx.metrics.observe_for(scope.clone(), "DataQualityPercent", 100.0 * valid as f64 / schema.attributes.len() as f64);
    // How long after the source's own change (its `sourceUpdatedAt`, set by the client and so
    // never alarmed on) the hub received the record.
    if let Some(updated) = record.updated_at_ms {
        ctx.metrics.observe_for(scope, "SourceLagMs", (record.received_at_ms - updated).max(0) as f64);
    }
}

/// Validates, stores and queues records. Per-record problems are reported in the summary;
/// an `Err` means the store or queue failed (the caller retries; every step is idempotent).
/// `principal` is who sent them (recorded with each stored version).
pub async fn ingest_records(ctx: &Ctx, records: &[Value], principal: &str) -> Result<IngestSummary, IngestError> {
    let mut summary = IngestSummary::default();
    let mut messages = Vec::new();
    let now = ctx.hub.now_ms();
    let sender: std::sync::Arc<str> = principal.into();
    let mut valid = Vec::with_capacity(records.len());
    let mut indexes = Vec::with_capacity(records.len());
    for (index, input) in records.iter().enumerate() {
        match validate(ctx.hub.registry(), input, now) {
            Ok(mut r) => {
                r.principal = Some(sender.clone());
                ctx.metrics.incr_for(Scope::entity(&*r.key.entity), "RecordsAccepted");
                valid.push(r);
                indexes.push(index);
            }
            Err(RecordError { code, message, field }) => {
                summary.rejected.push(Rejected { index, code, message, field })
            }
        }
    }
    summary.accepted = valid.len();
    // Written together, their suppression markers read in one round (`Hub::ingest_many`).
    let writes = ctx.hub.ingest_many(&valid).await;
    for ((index, record), write) in indexes.into_iter().zip(valid).zip(writes) {
        let queue = match write {
            Ok(SourceWrite::Written) => {
                summary.stored += 1;
                ctx.metrics.incr_for(Scope::entity(&*record.key.entity), "RecordsStored");
                observe_quality(ctx, &record);
                true
            }
            Ok(SourceWrite::Stale { stored_seq }) if stored_seq == record.seq => {
                summary.duplicates += 1;
                ctx.metrics.incr_for(Scope::entity(&*record.key.entity), "RecordsDuplicate");
                true
            }
            Ok(SourceWrite::Stale { .. }) => {
                summary.stale += 1;
                ctx.metrics.incr_for(Scope::entity(&*record.key.entity), "RecordsStale");
                false
            }
            Ok(SourceWrite::Held) => {
                summary.held += 1;
                ctx.metrics.incr_for(Scope::entity(&*record.key.entity), "RecordsHeld");
                false
            }
            Ok(SourceWrite::Suppressed) => {
                summary.rejected.push(Rejected {
                    index,
                    code: SUPPRESSED,
                    message: "the record matches a data subject erased earlier; it was not stored".into(),
                    field: None,
                });
                continue;
            }
            Err(mdm_core::HubError::Store(e)) => return Err(e.into()),
            Err(e) => {
                summary.rejected.push(Rejected {
                    index,
                    code: "unknown_entity_type",
                    message: e.to_string(),
                    field: None,
                });
                continue;
            }
        };
        if queue {
            info!(source = %record.key, seq = record.seq, correlation_id = %record.correlation_id, "stored");
            let correlation_id = record.correlation_id.clone();
            let msg =
                MatchMessage { source: record.key.clone(), seq: record.seq, correlation_id: record.correlation_id };
            let body = serde_json::to_string(&msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            messages.push(Outgoing::new(body, correlation_id));
        }
    }
    ctx.queues.send_all(&ctx.settings.match_queue_url, messages).await?;
    summary.rejected.sort_by_key(|r| r.index);
    ctx.metrics.add("RecordsRejected", summary.rejected.len() as f64);
    Ok(summary)
}

pub fn json_response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = i64::from(status);
    r.headers = headers;
    r.body = Some(Body::Text(body.to_string()));
    r
}

fn http_error(status: u16, code: &str, message: &str) -> ApiGatewayV2httpResponse {
    json_response(status, &mdm_core::api::error_body(code, message, json!([])))
}

/// `POST /v1/records` with `{"records": [ ... ]}` (1 to 500 records, at most 1 MB).
/// Needs the scope `mdm/write`.
pub async fn handle_http(ctx: &Ctx, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let scopes = super::auth::granted_scopes(&ctx.settings, req.request_context.authorizer.as_ref());
    let principal = super::auth::principal(&ctx.settings, req.request_context.authorizer.as_ref());
    if let Err(e) = mdm_core::api::scope::require(&scopes, mdm_core::api::scope::WRITE) {
        ctx.metrics.incr("IngestForbidden");
        ctx.metrics.flush();
        let r = e.response();
        return json_response(r.status, &r.body.unwrap_or_default());
    }
    let raw = req.body.unwrap_or_default();
    let bytes = if req.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(raw.as_bytes()) {
            Ok(b) => b,
            Err(_) => return http_error(400, "invalid_body", "the body is marked base64 but is not valid base64"),
        }
    } else {
        raw.into_bytes()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return http_error(413, "payload_too_large", &format!("the body is larger than {MAX_BODY_BYTES} bytes"));
    }
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("the body is not valid JSON (line {}, column {})", e.line(), e.column());
            return http_error(400, "invalid_json", &msg);
        }
    };
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return http_error(400, "invalid_body", "the body must be an object with a 'records' array");
    };
    if records.is_empty() {
        return http_error(400, "no_records", "'records' must hold at least one record");
    }
    if records.len() > MAX_RECORDS {
        return http_error(
            413,
            "too_many_records",
            &format!("at most {MAX_RECORDS} records per request; got {}", records.len()),
        );
    }
    // A caller writes only the source systems it is granted (scope `mdm/write:{system}`, or the
    // deployment's grant for its principal).
    let grants = principal.as_ref().and_then(|p| ctx.settings.source_grants.get(p));
    for r in records {
        let Some(system) = r.get("sourceSystem").and_then(Value::as_str) else { continue };
        let system = system.trim().to_lowercase();
        if !mdm_core::api::scope::may_write(&scopes, grants, &system) {
            ctx.metrics.incr("IngestForbidden");
            ctx.metrics.flush();
            let e = mdm_core::api::ApiError::new(
                403,
                "system_not_granted",
                format!("this token may not write records of source system '{system}'"),
            )
            .with_detail(json!({"sourceSystem": system}));
            let r = e.response();
            return json_response(r.status, &r.body.unwrap_or_default());
        }
    }
    let sender = principal.unwrap_or_else(|| "unknown".into());
    let span = info_span!("ingest_http", records = records.len());
    match ingest_records(ctx, records, &sender).instrument(span).await {
        Ok(summary) => {
            info!(
                accepted = summary.accepted,
                stored = summary.stored,
                duplicates = summary.duplicates,
                stale = summary.stale,
                rejected = summary.rejected.len(),
                "records ingested"
            );
            ctx.metrics.flush();
            json_response(202, &json!(summary))
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            ctx.metrics.incr("IngestErrors");
            ctx.metrics.flush();
            let mut r =
                http_error(503, "unavailable", "the hub could not store the records; retry (ingest is idempotent)");
            r.headers.insert("retry-after", HeaderValue::from_static("2"));
            r
        }
    }
}

/// The bulk queue: each message holds one record or `{"records": [...]}`. A message that is not
/// JSON, or a record that fails validation, goes to the ingest DLQ alone with its reason.
pub async fn handle_sqs(ctx: &Ctx, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in &event.records {
        let id = msg.message_id.clone().unwrap_or_default();
        let outcome =
            one_message(ctx, msg.body.as_deref().unwrap_or("")).instrument(info_span!("bulk", message_id = %id)).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(bad_records) => {
                // Some records of a multi-record message were invalid: each goes to the DLQ alone.
                let mut failed = false;
                for (record, why) in bad_records {
                    let mut single = msg.clone();
                    single.body = Some(record.to_string());
                    failed |=
                        settle(ctx, &single, Settle::DeadLetter(why), &ctx.settings.ingest_dlq_url).await.is_some();
                }
                if failed {
                    Settle::Retry("dead-lettering failed".into())
                } else {
                    Settle::Done
                }
            }
        };
        let outcome = super::on_last_receive(outcome, super::receives(msg), super::INGEST_MAX_RECEIVES, "ingest");
        if let Some(f) = settle(ctx, msg, outcome, &ctx.settings.ingest_dlq_url).await {
            failures.push(f);
        }
    }
    ctx.metrics.flush();
    batch_response(failures)
}

type BadRecords = Vec<(Value, crate::sqs::DeadLetterReason)>;

/// A record of an erased subject goes to the DLQ without its attribute values: keys only.
fn redacted(record: &Value) -> Value {
    let keep = ["entityType", "sourceSystem", "sourceId", "sourceSeq", "correlationId"];
    let fields: serde_json::Map<String, Value> =
        keep.iter().filter_map(|k| record.get(*k).map(|v| ((*k).to_owned(), v.clone()))).collect();
    let mut out = Value::Object(fields);
    out["redacted"] = json!("attribute values removed: the record matches an erased data subject");
    out
}

async fn one_message(ctx: &Ctx, body: &str) -> Result<Settle, BadRecords> {
    let parsed: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("message body is not valid JSON (line {}, column {})", e.line(), e.column());
            return Ok(Settle::DeadLetter(reason(HANDLER, "invalid_json", msg)));
        }
    };
    let (records, single) = match parsed.get("records").and_then(Value::as_array) {
        Some(list) if list.len() > MAX_RECORDS => {
            let msg = format!("at most {MAX_RECORDS} records per message");
            return Ok(Settle::DeadLetter(reason(HANDLER, "too_many_records", msg)));
        }
        Some(list) => (list.clone(), false),
        None => (vec![parsed], true),
    };
    // The bulk queue is trusted by IAM (who may send to it); its records name it as sender.
    match ingest_records(ctx, &records, BULK_QUEUE_PRINCIPAL).await {
        Ok(summary) if summary.rejected.is_empty() => Ok(Settle::Done),
        Ok(summary) if single && summary.rejected[0].code == SUPPRESSED => {
            let r = &summary.rejected[0];
            Err(vec![(redacted(&records[0]), reason(HANDLER, r.code, r.message.clone()))])
        }
        Ok(summary) if single => {
            let r = &summary.rejected[0];
            let field = r.field.as_deref().map(|f| format!(" (field {f})")).unwrap_or_default();
            Ok(Settle::DeadLetter(reason(HANDLER, r.code, format!("{}{field}", r.message))))
        }
        Ok(summary) => Err(summary
            .rejected
            .iter()
            .map(|r| {
                let field = r.field.as_deref().map(|f| format!(" (field {f})")).unwrap_or_default();
                let body = if r.code == SUPPRESSED { redacted(&records[r.index]) } else { records[r.index].clone() };
                (body, reason(HANDLER, r.code, format!("{}{field}", r.message)))
            })
            .collect()),
        Err(e) => Ok(Settle::Retry(e.to_string())),
    }
}

/// One entry point for both triggers: an SQS event has `Records`, anything else is HTTP.
pub async fn handle(ctx: &Ctx, payload: Value) -> Result<Value, serde_json::Error> {
    match super::trigger(payload)? {
        super::Trigger::Sqs(event) => serde_json::to_value(handle_sqs(ctx, event).await),
        super::Trigger::Http(req) => serde_json::to_value(handle_http(ctx, *req).await),
    }
}
