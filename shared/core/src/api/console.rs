//! The steward console: one static page (HTML, CSS and JavaScript embedded in the binary) served
//! by the steward function at `GET /console`. It serves no data and needs no token — the page
//! calls the documented routes with the steward's bearer token — so it is the one route without
//! an authorizer. Source values are attacker-controlled: the script inserts them as text only,
//! and the Content-Security-Policy lets nothing but the page's own script and style run.

use super::{ApiRequest, ApiResponse};
use serde_json::Value;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// What the page may load and where it may connect: its own origin only, no inline script or
/// style, no frames, no forms posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's path after an optional stage prefix (`/console`, `/prod/console/console.js`):
/// the part after `console`, or `None` for another path.
fn console_part(path: &str) -> Option<&str> {
    let trimmed = path.strip_prefix('/')?;
    let rest = match trimmed.split_once('/') {
        Some(("console", rest)) => return Some(rest),
        Some((_stage, rest)) => rest,
        None => return (trimmed == "console").then_some(""),
    };
    match rest.split_once('/') {
        Some(("console", part)) => Some(part),
        None if rest == "console" => Some(""),
        _ => None,
    }
}

/// Whether `path` is the console's page or one of its files (after an optional stage prefix).
pub fn is_console_path(path: &str) -> bool {
    console_part(path).is_some()
}

/// The console's answer to `req`, or `None` when the path is not the console's.
pub fn serve(req: &ApiRequest) -> Option<ApiResponse> {
    let part = console_part(&req.path)?;
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Some(super::ApiError::new(405, "method_not_allowed", "the console accepts GET only").response());
    }
    if part.is_empty() && req.path.ends_with('/') {
        // The page links its files relative to `…/console`.
        return Some(ApiResponse { status: 301, headers: vec![("location".into(), "../console".into())], body: None });
    }
    let (body, kind) = match part {
        "" => (INDEX, "text/html; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Some(super::ApiError::new(404, "unknown_route", "the console has no such file").response()),
    };
    Some(ApiResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), kind.into()),
            ("content-security-policy".into(), CONTENT_SECURITY_POLICY.into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: Some(Value::String(body.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_with_a_strict_policy_and_nothing_else_is() {
        for path in ["/console", "/prod/console", "/console/console.js", "/prod/console/console.css"] {
            let r = serve(&ApiRequest::new("GET", path)).expect(path);
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
        assert!(serve(&ApiRequest::new("GET", "/console")).and_then(|r| r.body).is_some_and(|b| b
            .as_str()
            .is_some_and(|html| html.contains("console/console.js") && !html.contains("<script>"))));
        assert_eq!(serve(&ApiRequest::new("GET", "/console/secrets")).map(|r| r.status), Some(404));
        let slash = serve(&ApiRequest::new("GET", "/console/")).expect("console/");
        assert_eq!((slash.status, slash.header("location")), (301, Some("../console")));
        assert_eq!(serve(&ApiRequest::new("POST", "/console")).map(|r| r.status), Some(405));
        for other in ["/v1/reviews", "/consoles", "/a/b/console", "/"] {
            assert!(serve(&ApiRequest::new("GET", other)).is_none(), "{other}");
            assert!(!is_console_path(other), "{other}");
        }
        assert!(is_console_path("/prod/console/console.js"));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self'"));
    }

    #[test]
    fn the_script_never_writes_markup() {
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!SCRIPT.contains(banned), "console.js uses {banned}");
        }
    }
}
