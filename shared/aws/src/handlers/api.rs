//! The read API Lambda (`functions/api`, HTTP API payload v2): reads the event into the core's
//! [`mdm_core::api::ApiRequest`] field by field ([`super::http`]: an oversized path or query, or
//! a header with a line break, is answered 4xx instead of failing the function), answers it with
//! [`mdm_core::api::handle`] over the DynamoDB store, and converts the answer back.

use super::http::{serve, HttpMetrics};
use super::Ctx;
use mdm_core::api;
use serde_json::Value;

/// One HTTP API event to the read API; the payload-v2 answer.
pub async fn handle_event(ctx: &Ctx, event: Value) -> Value {
    let names = HttpMetrics {
        requests: "ApiRequests",
        client_errors: "ApiClientErrors",
        server_errors: "ApiServerErrors",
        latency: "ApiLatencyMs",
    };
    serve(ctx, &event, names, |req| async move { api::handle(&ctx.hub, &req).await }).await
}
