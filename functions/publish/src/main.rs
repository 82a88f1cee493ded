//! Publish Lambda: the table's stream (history versions and outbox items) → EventBridge, and the
//! scheduled sweep (`{"sweep": {"olderThanSeconds": N}}`) of what the stream did not deliver.
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{publisher, Ctx};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("publish").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(publisher::handle(ctx, event.payload).await?)
    }))
    .await
}
