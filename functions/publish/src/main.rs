//! Publish Lambda: the table's stream (outbox items) → EventBridge.
#![recursion_limit = "256"]
use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{publisher, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("publish").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(publisher::handle_stream(ctx, event.payload).await)
    }))
    .await
}
