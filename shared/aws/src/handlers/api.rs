//! The read API Lambda (`functions/api`, lambda_http, HTTP API payload v2): converts the HTTP
//! request to the core's [`ApiRequest`], answers it with [`mdm_core::api::handle`] over the
//! DynamoDB store, and converts the answer back.

use super::auth::granted_scopes;
use super::Ctx;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use mdm_core::api::{self, ApiRequest, ApiResponse};

/// Builds the transport-free request; the scopes come from the authorizer (or the local setting).
pub fn to_api_request(ctx: &Ctx, req: &Request) -> ApiRequest {
    let authorizer = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref(),
        _ => None,
    };
    let path = match req.raw_http_path() {
        "" => req.uri().path().to_owned(),
        raw => raw.to_owned(),
    };
    let mut query = std::collections::BTreeMap::new();
    if let Some(q) = req.query_string_parameters_ref() {
        for (k, v) in q.iter() {
            query.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
    }
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    ApiRequest {
        method: req.method().as_str().to_owned(),
        path,
        query,
        headers,
        body: req.body().to_vec(),
        scopes: granted_scopes(&ctx.settings, authorizer),
    }
}

pub fn to_http_response(r: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = r.body.map_or(Body::Empty, |b| Body::Text(b.to_string()));
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Text(
            api::error_body("internal", "the response could not be built", serde_json::json!([])).to_string(),
        ));
        *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// One HTTP request to the read API.
pub async fn handle(ctx: &Ctx, req: Request) -> Response<Body> {
    let r = api::handle(&ctx.hub, &to_api_request(ctx, &req)).await;
    ctx.metrics.incr("ApiRequests");
    match r.status {
        400..=499 => ctx.metrics.incr("ApiClientErrors"),
        500..=599 => ctx.metrics.incr("ApiServerErrors"),
        _ => {}
    }
    ctx.metrics.flush();
    to_http_response(r)
}
