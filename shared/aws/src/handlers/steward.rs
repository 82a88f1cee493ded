//! The steward Lambda (`functions/steward`, HTTP API payload v2): reads the event like the read
//! API ([`super::http`]), answers it with [`mdm_core::api::steward::handle`] over the DynamoDB
//! store, and converts the answer back.

use super::Ctx;
use mdm_core::api::steward;
use serde_json::Value;

/// One HTTP API event to the steward routes; the payload-v2 answer.
pub async fn handle_event(ctx: &Ctx, event: Value) -> Value {
    let r = match super::http::api_request(&ctx.settings, &event) {
        Ok(req) => steward::handle(&ctx.hub, &req).await,
        Err(e) => e.response(),
    };
    ctx.metrics.incr("StewardRequests");
    match r.status {
        400..=499 => ctx.metrics.incr("StewardClientErrors"),
        500..=599 => ctx.metrics.incr("StewardServerErrors"),
        _ => {}
    }
    ctx.metrics.flush();
    super::http::response_event(&r)
}
