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
/// Writes for one source system: `mdm/write:{system}` (and `mdm/write:*` for every system).
pub const WRITE_SYSTEM_PREFIX: &str = "mdm/write:";
/// Writes for every source system (loaders, the local stack).
pub const WRITE_ANY_SYSTEM: &str = "mdm/write:*";
/// Every scope, for the local stack.
pub const ALL: [&str; 5] = [READ, WRITE, STEWARD, ERASURE, WRITE_ANY_SYSTEM];

/// Whether a caller may write records of `system`: a scope `mdm/write:{system}` or
/// `mdm/write:*`, or a grant of the deployment (`granted`: the systems the template grants the
/// caller's principal).
pub fn may_write(scopes: &BTreeSet<String>, granted: Option<&BTreeSet<String>>, system: &str) -> bool {
    scopes.contains(WRITE_ANY_SYSTEM)
        || scopes.contains(&format!("{WRITE_SYSTEM_PREFIX}{system}"))
        || granted.is_some_and(|g| g.contains(system) || g.contains("*"))
}

/// The deployment's grants (`MDM_SOURCE_GRANTS`, from the template's `SourceGrants`): the
/// source systems each principal may write, as `principal=system|system;principal=system`.
pub fn parse_grants(text: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    text.split(';')
        .filter_map(|entry| entry.split_once('='))
        .map(|(who, systems)| {
            let systems = systems.split('|').map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
            (who.trim().to_owned(), systems)
        })
        .filter(|(who, _)| !who.is_empty())
        .collect()
}

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
    fn a_caller_writes_only_the_systems_it_is_granted() {
        let scopes = from_claim("mdm/write mdm/write:crm");
        assert!(may_write(&scopes, None, "crm"));
        assert!(!may_write(&scopes, None, "erp"), "mdm/write alone names no system");
        assert!(may_write(&from_claim("mdm/write:*"), None, "erp"));
        let grants = parse_grants("client-a = crm|ERP ; client-b=webshop;broken");
        assert_eq!(grants.len(), 2);
        assert!(may_write(&from_claim("mdm/write"), grants.get("client-a"), "erp"));
        assert!(!may_write(&from_claim("mdm/write"), grants.get("client-b"), "erp"));
    }

    #[test]
    fn missing_scope_is_named() {
        let e = require(&from_claim("mdm/write"), READ).expect_err("refused");
        assert_eq!((e.status, e.code), (403, "missing_scope"));
        assert!(e.message.contains(READ));
        assert!(require(&from_claim("mdm/read"), READ).is_ok());
    }
}
