//! The read API Lambda (`functions/api`, HTTP API payload v2): reads the event into the core's
//! [`mdm_core::api::ApiRequest`] field by field ([`super::http`]: an oversized path or query, or
//! a header with a line break, is answered 4xx instead of failing the function), answers it with
//! [`mdm_core::api::handle`] over the DynamoDB store, and converts the answer back.

use super::Ctx;
use mdm_core::api;
use serde_json::Value;

/// One HTTP API event to the read API; the payload-v2 answer.
pub async fn handle_event(ctx: &Ctx, event: Value) -> Value {
    let r = match super::http::api_request(&ctx.settings, &event) {
        Ok(req) => api::handle(&ctx.hub, &req).await,
        Err(e) => e.response(),
    };
    ctx.metrics.incr("ApiRequests");
    match r.status {
        400..=499 => ctx.metrics.incr("ApiClientErrors"),
        500..=599 => ctx.metrics.incr("ApiServerErrors"),
        _ => {}
    }
    ctx.metrics.flush();
    super::http::response_event(&r)
}
