//! Who may call an HTTP route: the scopes API Gateway's JWT authorizer passes in the request
//! context, or — on the local stack only — the scopes of the `MDM_LOCAL_SCOPES` setting.

use crate::config::Settings;
use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use std::collections::BTreeSet;

/// The caller's scopes. The local setting wins when present (function URLs carry no JWT); it is
/// never read from the request.
pub fn granted_scopes(settings: &Settings, authorizer: Option<&ApiGatewayRequestAuthorizer>) -> BTreeSet<String> {
    if let Some(local) = &settings.local_scopes {
        return local.clone();
    }
    let Some(jwt) = authorizer.and_then(|a| a.jwt.as_ref()) else { return BTreeSet::new() };
    let mut out: BTreeSet<String> = jwt.scopes.iter().flatten().cloned().collect();
    for claim in ["scope", "scp"] {
        if let Some(text) = jwt.claims.get(claim) {
            out.extend(mdm_core::api::scope::from_claim(text));
        }
    }
    out
}

/// Who the caller is: the token's `sub` (or `client_id` for a client-credentials token); on the
/// local stack, the `MDM_LOCAL_PRINCIPAL` setting.
pub fn principal(settings: &Settings, authorizer: Option<&ApiGatewayRequestAuthorizer>) -> Option<String> {
    if settings.local_scopes.is_some() {
        return settings.local_principal.clone();
    }
    let claims = &authorizer?.jwt.as_ref()?.claims;
    claims.get("sub").or_else(|| claims.get("client_id")).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription;

    fn jwt(claims: &[(&str, &str)], scopes: Option<Vec<&str>>) -> ApiGatewayRequestAuthorizer {
        let mut d = ApiGatewayRequestAuthorizerJwtDescription::default();
        d.claims = claims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        d.scopes = scopes.map(|s| s.into_iter().map(str::to_owned).collect());
        let mut a = ApiGatewayRequestAuthorizer::default();
        a.jwt = Some(d);
        a
    }

    #[test]
    fn scopes_come_from_the_authorizer_or_the_local_setting() {
        let plain = Settings::default();
        assert!(granted_scopes(&plain, None).is_empty(), "no authorizer, no scopes");
        let a = jwt(&[("scope", "mdm/read openid")], None);
        assert!(granted_scopes(&plain, Some(&a)).contains("mdm/read"));
        let a = jwt(&[("scp", "[mdm/write]")], Some(vec!["mdm/steward"]));
        let got = granted_scopes(&plain, Some(&a));
        assert!(got.contains("mdm/write") && got.contains("mdm/steward"), "{got:?}");
        let local = Settings { local_scopes: Some(["mdm/erasure".to_owned()].into()), ..Settings::default() };
        assert_eq!(granted_scopes(&local, Some(&a)).into_iter().collect::<Vec<_>>(), vec!["mdm/erasure"]);
    }

    #[test]
    fn the_principal_is_the_tokens_subject_or_the_local_steward() {
        let plain = Settings::default();
        assert_eq!(principal(&plain, None), None);
        assert_eq!(principal(&plain, Some(&jwt(&[("sub", "u-1"), ("client_id", "c")], None))).as_deref(), Some("u-1"));
        assert_eq!(principal(&plain, Some(&jwt(&[("client_id", "c-7")], None))).as_deref(), Some("c-7"));
        let local = Settings {
            local_scopes: Some(BTreeSet::new()),
            local_principal: Some("steward-1".into()),
            ..Settings::default()
        };
        assert_eq!(principal(&local, Some(&jwt(&[("sub", "u-1")], None))).as_deref(), Some("steward-1"));
    }
}
