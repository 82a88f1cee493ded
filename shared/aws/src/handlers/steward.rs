//! The steward Lambda (`functions/steward`, HTTP API payload v2): reads the event like the read
//! API ([`super::http`]), answers it with [`mdm_core::api::steward::handle`] over the DynamoDB
//! store, and converts the answer back.

use super::http::{serve, HttpMetrics};
use super::Ctx;
use mdm_core::api::steward;
use serde_json::Value;

/// One HTTP API event to the steward routes; the payload-v2 answer.
pub async fn handle_event(ctx: &Ctx, event: Value) -> Value {
    let names = HttpMetrics {
        requests: "StewardRequests",
        client_errors: "StewardClientErrors",
        server_errors: "StewardServerErrors",
    };
    serve(ctx, &event, names, |req| async move { steward::handle(&ctx.hub, &req).await }).await
}
