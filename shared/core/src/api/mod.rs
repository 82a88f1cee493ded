//! The hub's read API, free of any transport: an [`ApiRequest`] (method, path, query, a few
//! headers, body, and the caller's scopes) becomes an [`ApiResponse`]. The Lambda adapter in
//! `mdm-aws` converts API Gateway events to and from these; the in-process latency benchmark
//! calls [`handle`] directly. Routes and bodies are described in `docs/openapi.json`.
//!
//! Nothing here logs attribute values, identifiers from the request, or path parameters: spans
//! carry the route name, the entity type and counts.

pub mod console;
pub mod enrich;
pub mod golden;
pub mod scope;
pub mod scoring;
pub mod steward;
mod steward_actions;
mod wire;

use crate::hub::{Hub, HubError};
use crate::store::{LookupStore, Store, StoreError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn, Instrument};

pub use wire::{error_body, parse_query, percent_decode};

/// An HTTP request as the API sees it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// The raw (percent-encoded) path; anything before `/v1/` (a stage name, a function-URL
    /// prefix) is ignored.
    pub path: String,
    /// Query parameters (decoded; the first value of a repeated name).
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Scopes the caller was granted (from the JWT authorizer, or the local-stack setting).
    pub scopes: BTreeSet<String>,
    /// Who the caller is (the token's `sub`, or the local stack's configured steward): the
    /// actor steward actions record.
    pub principal: Option<String>,
}

impl ApiRequest {
    pub fn new(method: &str, path: &str) -> Self {
        Self { method: method.to_owned(), path: path.to_owned(), ..Self::default() }
    }

    pub fn with_query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.to_owned());
        self
    }

    pub fn with_json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self
    }

    pub fn with_principal(mut self, principal: &str) -> Self {
        self.principal = Some(principal.to_owned());
        self
    }

    pub fn with_scopes<'a>(mut self, scopes: impl IntoIterator<Item = &'a str>) -> Self {
        self.scopes = scopes.into_iter().map(str::to_owned).collect();
        self
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Longest request path the API reads; a longer one is `414 uri_too_long`.
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest query string the API reads; a longer one is `414 uri_too_long`.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Longest path parameter: no golden id, entity type, system or source id is longer
/// ([`crate::record::MAX_SOURCE_ID_LEN`]).
pub const MAX_PARAMETER_BYTES: usize = crate::record::MAX_SOURCE_ID_LEN;

/// An HTTP response: status, headers, and a JSON body (none for 304).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl ApiResponse {
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, headers: vec![("content-type".into(), "application/json".into())], body: Some(body) }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A request the API refuses: status, machine-readable code, human message, details.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Vec::new() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    pub fn response(&self) -> ApiResponse {
        let r =
            ApiResponse::json(self.status, error_body(self.code, &self.message, Value::Array(self.details.clone())));
        if self.status == 503 {
            r.with_header("retry-after", "1")
        } else {
            r
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The store error names an operation and an error code, never data; the caller sees neither.
        warn!(error = %e, "store error");
        Self::new(503, "unavailable", "the hub's store is unavailable; retry shortly")
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(e) => e.into(),
            HubError::UnknownEntity(entity) => unknown_entity(&entity),
            other => {
                warn!(error = %other, "hub error");
                Self::new(503, "unavailable", "the hub could not answer; retry shortly")
            }
        }
    }
}

pub(crate) fn unknown_entity(entity: &str) -> ApiError {
    ApiError::new(404, "unknown_entity_type", "no entity type of this name is configured")
        .with_detail(json!({"entityType": entity}))
}

/// The decoded segments of a request path after its `/v1/` (anything before it is a stage
/// name or a prefix): 414 for a path too long, 400 for a segment that is not valid
/// percent-encoded UTF-8.
pub(crate) fn path_segments(raw_path: &str) -> Result<Vec<String>, ApiError> {
    if raw_path.len() > MAX_PATH_BYTES {
        return Err(ApiError::new(414, "uri_too_long", format!("the path is longer than {MAX_PATH_BYTES} bytes")));
    }
    let path = raw_path.find("/v1/").map_or(raw_path, |i| &raw_path[i..]);
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|s| {
            percent_decode(s)
                .ok_or_else(|| ApiError::bad_request("invalid_path", "a path segment is not valid percent-encoding"))
        })
        .collect()
}

/// 400 for an empty path parameter or one longer than any id.
pub(crate) fn check_parameters(seg: &[&str]) -> Result<(), ApiError> {
    if seg.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad_request("invalid_path", "a path parameter is empty"));
    }
    if seg.iter().any(|s| s.len() > MAX_PARAMETER_BYTES) {
        return Err(ApiError::bad_request(
            "invalid_path",
            format!("a path parameter is longer than {MAX_PARAMETER_BYTES} bytes (no id is)"),
        ));
    }
    Ok(())
}

/// The routes of the read API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/golden/{entity}/{goldenId}`
    Golden { entity: String, id: String },
    /// `GET /v1/golden/{entity}/{goldenId}/history`
    History { entity: String, id: String },
    /// `GET /v1/golden/{entity}/{goldenId}/why/{system}/{sourceId}`
    Why { entity: String, id: String, system: String, source_id: String },
    /// `GET /v1/xref/{entity}/{system}/{sourceId}`
    Xref { entity: String, system: String, source_id: String },
    /// `POST /v1/match`
    Match,
    /// `POST /v1/enrich`
    Enrich,
}

impl Route {
    /// Finds the route of a method and raw path: 404 for an unknown path, 405 for a known path
    /// with another method, 400 for a path segment that is not valid percent-encoded UTF-8.
    pub fn parse(method: &str, raw_path: &str) -> Result<Self, ApiError> {
        let segments = path_segments(raw_path)?;
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let (route, allowed) = match seg.as_slice() {
            ["v1", "golden", e, id] => (Self::Golden { entity: (*e).into(), id: (*id).into() }, "GET"),
            ["v1", "golden", e, id, "history"] => (Self::History { entity: (*e).into(), id: (*id).into() }, "GET"),
            ["v1", "golden", e, id, "why", sys, src] => (
                Self::Why {
                    entity: (*e).into(),
                    id: (*id).into(),
                    system: sys.to_lowercase(),
                    source_id: (*src).into(),
                },
                "GET",
            ),
            ["v1", "xref", e, sys, id] => {
                (Self::Xref { entity: (*e).into(), system: sys.to_lowercase(), source_id: (*id).into() }, "GET")
            }
            ["v1", "match"] => (Self::Match, "POST"),
            ["v1", "enrich"] => (Self::Enrich, "POST"),
            _ => return Err(ApiError::new(404, "unknown_route", "no route matches this path")),
        };
        if !method.eq_ignore_ascii_case(allowed) {
            return Err(ApiError::new(405, "method_not_allowed", format!("this route accepts {allowed} only")));
        }
        check_parameters(&seg)?;
        Ok(route)
    }

    /// The scope a caller needs for this route.
    pub fn scope(&self) -> &'static str {
        scope::READ
    }

    /// A name for logs and metrics (no parameters).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Golden { .. } => "get_golden",
            Self::History { .. } => "get_history",
            Self::Why { .. } => "get_why",
            Self::Xref { .. } => "get_xref",
            Self::Match => "match",
            Self::Enrich => "enrich",
        }
    }
}

/// Answers one request: route, scope check, then the route's handler. Never panics on input;
/// every refusal is an [`ApiError`] rendered with the common error body.
pub async fn handle<S: Store + LookupStore>(hub: &Hub<S>, req: &ApiRequest) -> ApiResponse {
    let route = match Route::parse(&req.method, &req.path) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    answer(route.name(), &req.scopes, route.scope(), dispatch(hub, &route, req)).await
}

/// Checks the route's scope, then runs its handler, in a span naming the route and the status:
/// the answer or the refusal as a response.
pub(crate) async fn answer(
    route: &'static str,
    granted: &BTreeSet<String>,
    needed: &'static str,
    handler: impl std::future::Future<Output = Result<ApiResponse, ApiError>>,
) -> ApiResponse {
    let span = tracing::info_span!("api", route, status = tracing::field::Empty);
    async {
        let result = match scope::require(granted, needed) {
            Ok(()) => handler.await,
            Err(e) => Err(e),
        };
        let response = result.unwrap_or_else(|e| e.response());
        tracing::Span::current().record("status", response.status);
        info!(status = response.status, "request answered");
        response
    }
    .instrument(span)
    .await
}

async fn dispatch<S: Store + LookupStore>(
    hub: &Hub<S>,
    route: &Route,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    match route {
        Route::Golden { entity, id } => golden::get_golden(hub, entity, id, req).await,
        Route::History { entity, id } => golden::get_history(hub, entity, id, req).await,
        Route::Why { entity, id, system, source_id } => golden::get_why(hub, entity, id, system, source_id).await,
        Route::Xref { entity, system, source_id } => golden::get_xref(hub, entity, system, source_id, req).await,
        Route::Match => scoring::match_candidate(hub, &wire::json_body(req)?, req).await,
        Route::Enrich => enrich::enrich(hub, &wire::json_body(req)?, req).await,
    }
}
