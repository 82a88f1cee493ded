//! Files Lambda: S3 `ObjectCreated` notifications of bulk files (CSV or JSON Lines) under
//! `incoming/<entityType>/<system>/`, read as a stream and ingested through the ingest path.
#![recursion_limit = "256"]
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{files, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("files").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = files::Deadline::at_epoch_ms(event.context.deadline);
        Ok::<_, Error>(files::handle(ctx, event.payload, deadline).await?)
    }))
    .await
}
