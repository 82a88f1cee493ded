//! Match Lambda: SQS match queue → candidates, scores, decision → SQS merge queue.
#![recursion_limit = "256"]
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mdm_aws::handlers::{matcher, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("match").await?;
    let ctx = &ctx;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(matcher::handle_sqs(ctx, event.payload).await)
    }))
    .await
}
