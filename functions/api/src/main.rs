//! Read API Lambda: `GET /v1/golden/…`, `GET /v1/xref/…`, `POST /v1/match`, `POST /v1/enrich`
//! (API Gateway HTTP API, payload v2; also function URLs and `cargo lambda watch`).
#![recursion_limit = "256"]
use lambda_http::{run, service_fn, Error, Request};
use mdm_aws::handlers::{api, Ctx};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mdm_aws::config::init_tracing();
    let ctx = Ctx::from_env("api").await?;
    let ctx = &ctx;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(api::handle(ctx, req).await) })).await
}
