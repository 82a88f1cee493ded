//! Steward Lambda: the data stewards' routes (scope `mdm/steward`; today `GET /v1/reviews`), API
//! Gateway HTTP API payload v2, and the review SLA metrics on a schedule. The event is read as
//! JSON, field by field, so no request can fail the function before it answers.
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{steward, Ctx};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("steward").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(steward::handle(ctx, event.payload).await)
    }))
    .await
}
