//! Erasure: `POST /v1/erasure` and `GET /v1/erasure/{requestId}` (scope `mdm/erasure`), and the
//! erasure queue, which carries accepted requests and `ErasureRequested` events from other
//! systems (an EventBridge rule on the hub's bus). The logic is `mdm_core::erasure`.

use super::auth::granted_scopes;
use super::ingest::json_response;
use super::{batch_response, reason, settle, Ctx, Settle};
use crate::sqs::Outgoing;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use mdm_core::api::{percent_decode, scope, ApiError};
use mdm_core::erasure::{self, ErasureError, ErasureRequest, ReceiptStatus};
use serde_json::{json, Value};
use tracing::{info, info_span, warn, Instrument};

const HANDLER: &str = "erasure";
/// The detail-type other systems send to request an erasure.
pub const ERASURE_REQUESTED: &str = "ErasureRequested";

fn api_error(e: &ErasureError) -> ApiError {
    match e {
        ErasureError::Invalid { code, message } => ApiError::bad_request(code, message.clone()),
        ErasureError::Ambiguous(ids) => {
            ApiError::new(409, "ambiguous_subject", e.to_string()).with_detail(json!({"goldenIds": ids}))
        }
        ErasureError::UnknownRequest => ApiError::new(404, "not_found", "no erasure request with this id"),
        ErasureError::NotConfigured => {
            ApiError::new(503, "not_configured", "erasure needs MDM_SUPPRESSION_SECRETS; ask the operators")
        }
        ErasureError::Busy | ErasureError::Store(_) | ErasureError::Hub(_) => {
            warn!(error = %e, "erasure store error");
            ApiError::new(503, "unavailable", "the hub could not take the request; retry (it is idempotent)")
        }
    }
}

fn answer(e: ApiError) -> ApiGatewayV2httpResponse {
    let r = e.response();
    let mut out = json_response(r.status, &r.body.unwrap_or_default());
    if r.status == 503 {
        out.headers.insert("retry-after", aws_lambda_events::http::HeaderValue::from_static("2"));
    }
    out
}

/// Queues an accepted request for processing.
async fn enqueue(ctx: &Ctx, request_id: &str) -> Result<(), crate::sqs::QueueError> {
    let body = json!({ "requestId": request_id }).to_string();
    ctx.queues.send_all(&ctx.settings.erasure_queue_url, vec![Outgoing::new(body, request_id)]).await
}

/// `POST /v1/erasure` → 202 with the request id and receipt (the same for a repeated request);
/// `GET /v1/erasure/{requestId}` → the receipt.
pub async fn handle_http(ctx: &Ctx, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let scopes = granted_scopes(&ctx.settings, req.request_context.authorizer.as_ref());
    if let Err(e) = scope::require(&scopes, scope::ERASURE) {
        return answer(e);
    }
    let method = req.request_context.http.method.as_str().to_owned();
    let raw = req.raw_path.clone().unwrap_or_default();
    let path = raw.find("/v1/").map_or(raw.as_str(), |i| &raw[i..]).trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let out = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "erasure"]) => post(ctx, &req).await,
        ("GET", ["v1", "erasure", id]) => match percent_decode(id) {
            Some(id) => get(ctx, &id).await,
            None => answer(ApiError::bad_request("invalid_path", "the request id is not valid percent-encoding")),
        },
        (_, ["v1", "erasure", ..]) => {
            answer(ApiError::new(405, "method_not_allowed", "POST /v1/erasure or GET /v1/erasure/{requestId}"))
        }
        _ => answer(ApiError::new(404, "unknown_route", "no route matches this path")),
    };
    ctx.metrics.flush();
    out
}

/// Who asked: the token's subject, or the local stack.
fn principal(req: &ApiGatewayV2httpRequest) -> String {
    req.request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.claims.get("sub").or_else(|| j.claims.get("client_id")))
        .cloned()
        .unwrap_or_else(|| "local".into())
}

async fn post(ctx: &Ctx, req: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let raw = req.body.as_deref().unwrap_or("");
    let body: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("the body is not valid JSON (line {}, column {})", e.line(), e.column());
            return answer(ApiError::bad_request("invalid_json", msg));
        }
    };
    let request = match ErasureRequest::parse(&ctx.hub, &body, &principal(req)) {
        Ok(r) => r,
        Err(e) => return answer(api_error(&e)),
    };
    let span = info_span!("erasure_request", entity = %request.entity, scope = ?request.scope);
    async {
        match erasure::accept(&ctx.hub, &request).await {
            Ok((receipt, created)) => {
                if receipt.status != ReceiptStatus::Completed {
                    if let Err(e) = enqueue(ctx, &receipt.request_id).await {
                        warn!(error = %e, "queuing the erasure failed");
                        return answer(ApiError::new(503, "unavailable", "the request is recorded but not queued; retry"));
                    }
                }
                info!(request_id = %receipt.request_id, created, goldens = receipt.golden_ids.len(), "erasure accepted");
                ctx.metrics.incr("ErasuresAccepted");
                let body = json!({"requestId": receipt.request_id, "status": receipt.status, "receipt": receipt.public_view()});
                let mut r = json_response(202, &body);
                if let Ok(v) = format!("/v1/erasure/{}", receipt.request_id).parse() {
                    r.headers.insert("location", v);
                }
                r
            }
            Err(e) => answer(api_error(&e)),
        }
    }
    .instrument(span)
    .await
}

async fn get(ctx: &Ctx, request_id: &str) -> ApiGatewayV2httpResponse {
    match erasure::receipt(ctx.hub.store(), request_id).await {
        Ok(Some(r)) => json_response(200, &r.public_view()),
        Ok(None) => answer(api_error(&ErasureError::UnknownRequest)),
        Err(e) => answer(api_error(&e)),
    }
}

/// Receives after which the queue moves a message to the DLQ (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 10;
/// How long the last receive's run may take, well inside the function's timeout (the template's
/// `Timeout`, checked by `tests/template_check.py`), so the handler can still fail the receipt.
pub const LAST_RECEIVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(240);

/// One queue message: `{"requestId"}` (accepted over HTTP) or an EventBridge `ErasureRequested`
/// envelope (accepted here, then processed). Returns the outcome and the body the dead-letter
/// queue keeps if it comes to that: never an identifier value ([`erasure::redacted_message`]),
/// and `{"requestId"}` once the request is accepted, so it can be re-driven. On its last
/// receive, a failure marks the receipt `failed` with its reason and the handler dead-letters
/// the message itself (the queue's redrive would move the raw body, without a reason).
async fn one_message(ctx: &Ctx, body: String, receives: u32) -> (Settle, String) {
    let redacted = erasure::redacted_message(&body);
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("message body is not valid JSON (line {}, column {})", e.line(), e.column());
            return (Settle::DeadLetter(reason(HANDLER, "invalid_json", msg)), redacted);
        }
    };
    let request_id = if let Some(id) = parsed.get("requestId").and_then(Value::as_str) {
        id.to_owned()
    } else if parsed.get("detail-type").and_then(Value::as_str) == Some(ERASURE_REQUESTED) {
        let who = format!("event:{}", parsed.get("source").and_then(Value::as_str).unwrap_or("unknown"));
        let detail = parsed.get("detail").cloned().unwrap_or(Value::Null);
        let request = match ErasureRequest::parse(&ctx.hub, &detail, &who) {
            Ok(r) => r,
            Err(e) => return (Settle::DeadLetter(reason(HANDLER, api_error(&e).code, e.to_string())), redacted),
        };
        match erasure::accept(&ctx.hub, &request).await {
            Ok((r, _)) => r.request_id,
            Err(e @ ErasureError::Ambiguous(_)) => {
                let ids = match &e {
                    ErasureError::Ambiguous(ids) => ids.join(","),
                    _ => String::new(),
                };
                return (Settle::DeadLetter(reason(HANDLER, "ambiguous_subject", format!("{e}: {ids}"))), redacted);
            }
            Err(e) if receives >= MAX_RECEIVES => {
                return (Settle::DeadLetter(reason(HANDLER, "not_accepted", e.to_string())), redacted)
            }
            Err(e) => return (Settle::Retry(e.to_string()), redacted),
        }
    } else {
        let why = "neither a requestId nor an ErasureRequested event";
        return (Settle::DeadLetter(reason(HANDLER, "invalid_message", why)), redacted);
    };
    let keep = json!({ "requestId": request_id }).to_string();
    // The last receive must end in time to mark the receipt: a run cut off by the function's
    // timeout would leave it `in_progress` and the message to the queue's reasonless redrive.
    // Boxed: the erasure future is deep, and the handler runs inside the runtime's own futures.
    let run = Box::pin(erasure::process(&ctx.hub, &request_id));
    let result = if receives >= MAX_RECEIVES {
        match tokio::time::timeout(LAST_RECEIVE_BUDGET, run).await {
            Ok(r) => r,
            Err(_) => Err(ErasureError::Hub(format!(
                "the last attempt did not finish within {} s",
                LAST_RECEIVE_BUDGET.as_secs()
            ))),
        }
    } else {
        run.await
    };
    let outcome = match result {
        Ok(r) => {
            info!(request_id = %r.request_id, goldens = r.golden_ids.len(), removed = ?r.removed, "erasure completed");
            ctx.metrics.incr("ErasuresCompleted");
            if let Some(ms) = r.duration_ms {
                ctx.metrics.observe("ErasureDurationMs", ms as f64);
            }
            Settle::Done
        }
        Err(ErasureError::UnknownRequest) => {
            Settle::DeadLetter(reason(HANDLER, "unknown_request", "no erasure request with this id"))
        }
        Err(e) if receives >= MAX_RECEIVES => {
            if let Err(mark) = erasure::mark_failed(ctx.hub.store(), &request_id, &e.to_string()).await {
                warn!(error = %mark, "marking the erasure failed did not work");
                return (Settle::Retry(e.to_string()), keep);
            }
            ctx.metrics.incr("ErasuresFailed");
            Settle::DeadLetter(reason(HANDLER, "erasure_failed", e.to_string()))
        }
        Err(e) => {
            ctx.metrics.incr("ErasureRetries");
            Settle::Retry(e.to_string())
        }
    };
    (outcome, keep)
}

pub async fn handle_sqs(ctx: &Ctx, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in &event.records {
        let id = msg.message_id.clone().unwrap_or_default();
        let body = msg.body.clone().unwrap_or_default();
        let receives = super::receives(msg);
        let (outcome, keep) =
            one_message(ctx, body, receives).instrument(info_span!("erasure", message_id = %id)).await;
        let mut kept = msg.clone();
        kept.body = Some(keep);
        if let Some(f) = settle(ctx, &kept, outcome, &ctx.settings.erasure_dlq_url).await {
            failures.push(f);
        }
    }
    ctx.metrics.flush();
    batch_response(failures)
}

/// One entry point for both triggers: an SQS event has `Records`, anything else is HTTP.
pub async fn handle(ctx: &Ctx, payload: Value) -> Result<Value, serde_json::Error> {
    match super::trigger(payload)? {
        super::Trigger::Sqs(event) => serde_json::to_value(handle_sqs(ctx, event).await),
        super::Trigger::Http(req) => serde_json::to_value(handle_http(ctx, *req).await),
    }
}
