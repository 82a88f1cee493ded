//! OAuth scopes of the hub's HTTP API. API Gateway's JWT authorizer checks them per route; the
//! handlers check again (defence in depth) and name the missing scope in a 403.

use super::ApiError;
use serde_json::json;
use std::collections::BTreeSet;

/// Reads: golden records, cross-references, match, enrich.
pub const READ: &str = "mdm/read";
/// Ingest: `POST /v1/records`.
pub const WRITE: &str = "mdm/write";
/// Data stewards: reviews, merge, split, pin, rollback.
pub const STEWARD: &str = "mdm/steward";
/// Privacy teams: erasure requests and receipts.
pub const ERASURE: &str = "mdm/erasure";
/// Every scope, for the local stack.
pub const ALL: [&str; 4] = [READ, WRITE, STEWARD, ERASURE];

/// 403 naming the scope unless the caller holds it.
pub fn require(granted: &BTreeSet<String>, scope: &'static str) -> Result<(), ApiError> {
    if granted.contains(scope) {
        Ok(())
    } else {
        Err(ApiError::new(403, "missing_scope", format!("this route needs the scope '{scope}'"))
            .with_detail(json!({"requiredScope": scope})))
    }
}

/// Scopes from a JWT's claims: the standard space-separated `scope` claim, or an `scp` list
/// (which API Gateway passes as `[a b]` text).
pub fn from_claim(text: &str) -> BTreeSet<String> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_both_forms() {
        assert_eq!(from_claim("mdm/read mdm/write"), from_claim("[mdm/read mdm/write]"));
        assert!(from_claim("openid").len() == 1 && !from_claim("openid").contains(READ));
    }

    #[test]
    fn missing_scope_is_named() {
        let e = require(&from_claim("mdm/write"), READ).expect_err("refused");
        assert_eq!((e.status, e.code), (403, "missing_scope"));
        assert!(e.message.contains(READ));
        assert!(require(&from_claim("mdm/read"), READ).is_ok());
    }
}
