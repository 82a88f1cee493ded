//! `mdm local console`: the steward console on the local stack. One loopback origin serves
//! `/console` and routes `/v1/*` to the functions' handlers as API Gateway would (steward routes
//! and the console to the steward function, `POST /v1/records` to ingest, the rest to the read
//! API), under the local scopes (no token needed); the event-source mappings run in the
//! background, so records sent meanwhile are matched and merged.

use mdm_aws::handlers::{api, ingest, steward, Ctx};
use mdm_aws::local::esm::{LocalRunner, RunStats};
use mdm_aws::local::{http_event, Resources};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// Largest request body read (API Gateway's own limit is 10 MB; the routes take far less).
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// The local stack's resources (`infra/local/bootstrap.py` writes them).
    #[arg(long, value_name = "FILE")]
    resources: String,
    /// Sample data to send first: `crm.jsonl`, `erp.jsonl` and `webshop.jsonl` of this folder.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// More records to send first (JSON Lines, ingest records), repeatable.
    #[arg(long, value_name = "FILE.jsonl")]
    records: Vec<PathBuf>,
    /// The loopback port (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8765)]
    port: u16,
}

/// The three functions behind the local origin.
struct Functions {
    api: Ctx,
    steward: Ctx,
    runner: Arc<LocalRunner>,
}

pub async fn run(args: ConsoleArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.resources).map_err(|e| format!("{}: {e}", args.resources))?;
    let res = Resources::from_json(&text).map_err(|e| e.to_string())?;
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = Arc::new(LocalRunner::new(&sdk, res.clone()).map_err(|e| e.to_string())?);
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &args.data {
        files.extend(["crm", "erp", "webshop"].iter().map(|s| dir.join(format!("{s}.jsonl"))));
    }
    files.extend(args.records.iter().cloned());
    let mut sent = 0;
    for file in &files {
        let records = crate::demo::read_jsonl(file)?;
        for chunk in records.chunks(100) {
            let (status, body) = runner.post_records(&json!({ "records": chunk }).to_string()).await;
            if status >= 300 && status != 207 {
                return Err(format!("{}: POST /v1/records answered {status}: {body}", file.display()));
            }
        }
        sent += records.len();
    }
    if sent > 0 {
        runner.run_until_idle(Duration::from_secs(600)).await.map_err(|e| e.to_string())?;
    }
    let settings = |binary: &str| res.settings_for(binary).map_err(|e| e.to_string());
    let functions = Arc::new(Functions {
        api: Ctx::new(&sdk, settings("mdm-api")?, "api").map_err(|e| e.to_string())?,
        steward: Ctx::new(&sdk, settings("mdm-steward")?, "steward").map_err(|e| e.to_string())?,
        runner: runner.clone(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("port {}: {e}", args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{sent} records loaded; steward console at http://{addr}/console (local scopes, no token needed; Ctrl-C stops it)");

    // The event-source mappings, round after round (a pause when there was nothing to do).
    tokio::spawn(async move {
        let mut stats = RunStats::default();
        loop {
            let pause = match runner.round(&mut stats).await {
                Ok(0) => 300,
                Ok(_) => 0,
                Err(e) => {
                    tracing::warn!(error = %e, "a round of the event-source mappings failed");
                    1000
                }
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    });

    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let functions = functions.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let functions = functions.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&functions, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!(error = %e, "a console connection ended with an error");
            }
        });
    }
}

/// Which function serves a request, as the template's routes say.
#[derive(Debug, PartialEq, Eq)]
enum Function {
    Api,
    Steward,
    Ingest,
}

fn route(method: &str, path: &str) -> Function {
    use mdm_core::api::steward::StewardRoute;
    if mdm_core::api::console::is_console_path(path) {
        return Function::Steward;
    }
    if path == "/v1/records" {
        return Function::Ingest;
    }
    match StewardRoute::parse(method, path) {
        Ok(_) => Function::Steward,
        Err(e) if e.status == 405 => Function::Steward,
        Err(_) => Function::Api,
    }
}

/// An HTTP answer with `status` and `body`.
fn response(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// An error answer in the API's error shape (the local server's own: the body could not be read).
fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut r = response(status, json!({"error": {"code": code, "message": message, "details": []}}).to_string());
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

async fn answer(f: &Functions, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_ascii_lowercase(), json!(v));
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(413, "body_too_large", "the body is larger than 1 MB"),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return error(400, "invalid_body", "the body is not UTF-8");
    };
    let mut event = http_event(&method, &path, &query, (!body.is_empty()).then_some(body.as_str()), None);
    event["headers"] = Value::Object(headers);
    let out = match route(&method, &path) {
        Function::Steward => Box::pin(steward::handle_event(&f.steward, event)).await,
        Function::Api => Box::pin(api::handle_event(&f.api, event)).await,
        Function::Ingest => match Box::pin(ingest::handle(&f.runner.handlers().ingest, event)).await {
            Ok(v) => v,
            // The event is built here, so this is the server's fault; the message names no value.
            Err(_) => return error(500, "internal_error", "the ingest handler could not read the request"),
        },
    };
    let status = out["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
    let mut r = response(status, out["body"].as_str().unwrap_or("").to_owned());
    for (name, value) in out["headers"].as_object().into_iter().flatten() {
        if let (Ok(n), Some(Ok(v))) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(hyper::header::HeaderValue::from_str),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_function_the_template_routes_them_to() {
        assert_eq!(route("GET", "/console"), Function::Steward);
        assert_eq!(route("GET", "/console/console.js"), Function::Steward);
        assert_eq!(route("GET", "/v1/reviews"), Function::Steward);
        assert_eq!(route("PUT", "/v1/golden/customer/g1/pins/email"), Function::Steward);
        assert_eq!(route("GET", "/v1/golden/customer/g1/pins/email"), Function::Steward, "405 from its function");
        assert_eq!(route("POST", "/v1/records"), Function::Ingest);
        assert_eq!(route("GET", "/v1/golden/customer/g1"), Function::Api);
        assert_eq!(route("GET", "/v1/xref/customer/crm/c-1"), Function::Api);
        assert_eq!(route("GET", "/v1/nothing"), Function::Api, "the read API answers 404");
    }
}
