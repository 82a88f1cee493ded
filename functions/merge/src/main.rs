//! Merge Lambda: SQS merge queue → survivorship and one transaction per decision.
#![recursion_limit = "256"]
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{merger, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("merge").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(merger::handle_sqs(ctx, event.payload).await)
    }))
    .await
}
