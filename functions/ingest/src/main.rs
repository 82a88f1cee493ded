//! Ingest Lambda: `POST /v1/records` (API Gateway HTTP API) and the bulk SQS queue.
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{ingest, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("ingest").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(ingest::handle(ctx, event.payload).await?)
    }))
    .await
}
