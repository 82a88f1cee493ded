//! Small pieces of HTTP: the error body, percent-decoding, ETags, JSON bodies and parameters.

use super::{ApiError, ApiRequest};
use serde_json::{json, Value};

/// Largest request body the read API accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The error body every HTTP error uses: `{"error": {"code", "message", "details"}}`.
pub fn error_body(code: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "details": details}})
}

/// A raw query string's parameters (`+` is a space, `%XX` escapes decoded; the first of a
/// repeated name counts). Longer than [`super::MAX_QUERY_BYTES`]: `414 uri_too_long`.
pub fn parse_query(raw: &str) -> Result<std::collections::BTreeMap<String, String>, super::ApiError> {
    if raw.len() > super::MAX_QUERY_BYTES {
        return Err(super::ApiError::new(
            414,
            "uri_too_long",
            format!("the query string is longer than {} bytes", super::MAX_QUERY_BYTES),
        ));
    }
    let mut out = std::collections::BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                super::ApiError::bad_request("invalid_query", "a query parameter is not valid percent-encoding")
            })
        };
        out.entry(decode(k)?).or_insert(decode(v)?);
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The ETag of a golden record version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Whether an `If-None-Match` header matches the ETag (weak comparison, lists and `*`).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| h.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag))
}

pub fn json_body(req: &ApiRequest) -> Result<Value, ApiError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(413, "payload_too_large", format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_body", "this route needs a JSON body"));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })
}

/// A boolean query parameter (`true` / `false`), or its default.
pub fn bool_param(req: &ApiRequest, name: &'static str, default: bool) -> Result<bool, ApiError> {
    match req.query.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ApiError::bad_request("invalid_parameter", format!("'{name}' must be true or false"))
            .with_detail(json!({"parameter": name}))),
    }
}

/// An integer in `1..=max` from a query parameter or a JSON field, or its default.
pub fn limit(value: Option<&Value>, name: &'static str, default: usize, max: usize) -> Result<usize, ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_parameter", format!("'{name}' must be an integer from 1 to {max}"))
            .with_detail(json!({"parameter": name, "max": max}))
    };
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            n.as_u64().filter(|n| (1..=max as u64).contains(n)).map(|n| n as usize).ok_or_else(bad)
        }
        Some(Value::String(s)) => s.parse::<usize>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
        assert_eq!(percent_decode("%C3%A"), None, "cut escape");
    }

    #[test]
    fn etags() {
        let t = etag(7);
        assert!(none_match(Some("\"7\""), &t));
        assert!(none_match(Some("W/\"7\""), &t));
        assert!(none_match(Some("\"3\", \"7\""), &t));
        assert!(none_match(Some("*"), &t));
        assert!(!none_match(Some("\"8\""), &t));
        assert!(!none_match(None, &t));
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None, "limit", 10, 20), Ok(10));
        assert_eq!(limit(Some(&json!(20)), "limit", 10, 20), Ok(20));
        assert_eq!(limit(Some(&json!("5")), "limit", 10, 20), Ok(5));
        for bad in [json!(0), json!(21), json!(-1), json!(1.5), json!("x"), json!(true)] {
            assert_eq!(limit(Some(&bad), "limit", 10, 20).map_err(|e| e.code), Err("invalid_parameter"), "{bad}");
        }
    }
}
