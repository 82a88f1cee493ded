//! Erasure Lambda: `POST /v1/erasure`, `GET /v1/erasure/{requestId}` (API Gateway HTTP API) and
//! the erasure queue (accepted requests and `ErasureRequested` events).
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{erasure, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("erasure").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(erasure::handle(ctx, event.payload).await?)
    }))
    .await
}
