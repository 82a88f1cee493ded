//! HTTP API (payload v2) events read field by field from their JSON, so that nothing a caller can
//! send — a path of 65 KB, a header with a line break, a query too long for a URI — stops the
//! function before it can answer: each becomes a 4xx with the usual error body.

use super::auth::{granted_scopes, principal};
use crate::config::Settings;
use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use base64::Engine;
use mdm_core::api::{self, ApiError, ApiRequest, ApiResponse};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Largest header section read, all names and values together.
const MAX_HEADER_BYTES: usize = 16 * 1024;

fn text<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The core's request from an HTTP API event; a malformed or oversized part is the error the
/// caller gets.
pub fn api_request(settings: &Settings, event: &Value) -> Result<ApiRequest, ApiError> {
    let method = text(event, "/requestContext/http/method").to_ascii_uppercase();
    let path = match text(event, "/rawPath") {
        "" => text(event, "/requestContext/http/path"),
        raw => raw,
    };
    if path.len() > api::MAX_PATH_BYTES {
        return Err(ApiError::new(
            414,
            "uri_too_long",
            format!("the path is longer than {} bytes", api::MAX_PATH_BYTES),
        ));
    }
    let query = api::parse_query(text(event, "/rawQueryString"))?;
    let headers = headers(event.get("headers").and_then(Value::as_object))?;
    let body = match event.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(b) if event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| ApiError::bad_request("invalid_body", "the body is not valid base64"))?
        }
        Some(b) => b.as_bytes().to_vec(),
    };
    // A malformed authorizer context grants nothing (API Gateway writes it, not the caller).
    let authorizer: Option<ApiGatewayRequestAuthorizer> =
        event.pointer("/requestContext/authorizer").and_then(|a| serde_json::from_value(a.clone()).ok());
    Ok(ApiRequest {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
        scopes: granted_scopes(settings, authorizer.as_ref()),
        principal: principal(settings, authorizer.as_ref()),
    })
}

/// Header names lower-cased; a value with a control character (a line break) is refused.
fn headers(raw: Option<&Map<String, Value>>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (name, value) in raw.into_iter().flatten() {
        let Some(value) = value.as_str() else { continue };
        size += name.len() + value.len();
        if size > MAX_HEADER_BYTES {
            return Err(ApiError::new(
                431,
                "headers_too_large",
                format!("the headers exceed {MAX_HEADER_BYTES} bytes"),
            ));
        }
        if name.chars().chain(value.chars()).any(|c| c.is_control() && c != '\t') {
            return Err(ApiError::bad_request(
                "invalid_header",
                format!(
                    "header '{}' holds a control character",
                    name.chars().filter(|c| !c.is_control()).take(64).collect::<String>()
                ),
            ));
        }
        out.insert(name.to_ascii_lowercase(), value.to_owned());
    }
    Ok(out)
}

/// The payload-v2 answer to API Gateway (and function URLs), in the shape Lambda's own types
/// give it.
pub fn response_event(r: &ApiResponse) -> Value {
    use aws_lambda_events::encodings::Body;
    use aws_lambda_events::http::{HeaderName, HeaderValue};
    let mut out = aws_lambda_events::apigw::ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(r.status);
    for (k, v) in &r.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            out.headers.insert(name, value);
        }
    }
    // A text answer (the console's page) is sent as it is; everything else is JSON.
    let json = r.header("content-type").is_none_or(|t| t.starts_with("application/json"));
    out.body = r.body.as_ref().map(|b| match b {
        Value::String(text) if !json => Body::Text(text.clone()),
        other => Body::Text(other.to_string()),
    });
    serde_json::to_value(out).unwrap_or_else(|_| json!({"statusCode": 500}))
}

/// The metric names of one HTTP function: requests, client errors, server errors, latency.
pub struct HttpMetrics {
    pub requests: &'static str,
    pub client_errors: &'static str,
    pub server_errors: &'static str,
    pub latency: &'static str,
}

/// Serves one payload-v2 event: reads it ([`api_request`]), answers it with `answer` (or the
/// refusal of an unreadable request), counts it, and renders the payload-v2 answer.
pub async fn serve<F, Fut>(ctx: &super::Ctx, event: &Value, names: HttpMetrics, answer: F) -> Value
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: std::future::Future<Output = ApiResponse>,
{
    let started = std::time::Instant::now();
    let r = match api_request(&ctx.settings, event) {
        Ok(req) => answer(req).await,
        Err(e) => e.response(),
    };
    // API Gateway's route key names the route template (`GET /v1/golden/{entityType}/{id}`), never
    // an id, so the dimension stays small; a function URL or the local runner sends `$default`.
    let route = crate::metrics::Scope::Route(
        event.get("routeKey").and_then(Value::as_str).filter(|k| !k.is_empty()).unwrap_or("$default").to_owned(),
    );
    ctx.metrics.incr_for(route.clone(), names.requests);
    match r.status {
        400..=499 => ctx.metrics.incr_for(route.clone(), names.client_errors),
        500..=599 => ctx.metrics.incr_for(route.clone(), names.server_errors),
        _ => {}
    }
    ctx.metrics.observe_for(route, names.latency, started.elapsed().as_secs_f64() * 1000.0);
    ctx.metrics.flush();
    response_event(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path: &str, query: &str, headers: Value) -> Value {
        json!({"version": "2.0", "rawPath": path, "rawQueryString": query, "headers": headers,
               "requestContext": {"http": {"method": "get", "path": path},
                                  "authorizer": {"jwt": {"claims": {"scope": "mdm/read"}, "scopes": null}}},
               "isBase64Encoded": false})
    }

    /// Oversized paths and queries are 414, a header with a line break is 400, and a normal
    /// event reads as the core's request with its scopes.
    #[test]
    fn every_event_reads_or_answers_4xx() {
        let settings = Settings::default();
        let long_path = format!("/v1/golden/customer/{}", "g".repeat(65 * 1024));
        let e = api_request(&settings, &event(&long_path, "", json!({}))).expect_err("too long");
        assert_eq!((e.status, e.code), (414, "uri_too_long"));
        let long_query = format!("limit={}", "9".repeat(70 * 1024));
        let e = api_request(&settings, &event("/v1/golden/customer/g1/history", &long_query, json!({})))
            .expect_err("too long");
        assert_eq!((e.status, e.code), (414, "uri_too_long"));
        let e = api_request(&settings, &event("/v1/golden/customer/g1", "", json!({"if-none-match": "\"1\"\r\nx: y"})))
            .expect_err("a line break");
        assert_eq!((e.status, e.code), (400, "invalid_header"));
        let ok = api_request(
            &settings,
            &event("/v1/golden/customer/g1", "provenance=false&x=a+b%21", json!({"If-None-Match": "\"2\""})),
        )
        .expect("reads");
        assert_eq!((ok.method.as_str(), ok.path.as_str()), ("GET", "/v1/golden/customer/g1"));
        assert_eq!(ok.query.get("x").map(String::as_str), Some("a b!"));
        assert_eq!(ok.headers.get("if-none-match").map(String::as_str), Some("\"2\""));
        assert!(ok.scopes.contains("mdm/read"));
    }

    /// The answer reads back as Lambda's own payload-v2 response type (what function URLs and
    /// `cargo lambda watch` expect), with status, headers and body.
    #[test]
    fn the_answer_is_a_payload_v2_response() {
        let r = ApiResponse::json(404, json!({"error": {"code": "not_found"}})).with_header("etag", "\"3\"");
        let v = response_event(&r);
        let back: aws_lambda_events::apigw::ApiGatewayV2httpResponse =
            serde_json::from_value(v.clone()).expect("the type");
        assert_eq!(back.status_code, 404);
        assert_eq!(back.headers.get("etag").and_then(|h| h.to_str().ok()), Some("\"3\""));
        assert_eq!(v["body"].as_str().map(|b| b.contains("not_found")), Some(true));
        let empty = response_event(&ApiResponse { status: 304, headers: vec![], body: None });
        assert!(empty.get("body").is_none_or(Value::is_null));
    }
}
