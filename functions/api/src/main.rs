//! Read API Lambda: `GET /v1/golden/…`, `GET /v1/xref/…`, `POST /v1/match`, `POST /v1/enrich`
//! (API Gateway HTTP API, payload v2; also function URLs and `cargo lambda watch`). The event is
//! read as JSON, field by field, so no request can fail the function before it answers.
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{api, Ctx};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("api").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(api::handle_event(ctx, event.payload).await)
    }))
    .await
}
