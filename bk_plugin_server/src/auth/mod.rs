//! Who is calling: the BlueKing API gateway's JWT (`X-Bkapi-JWT`, see [`gateway`]), and
//! `allow_scope`.
//!
//! Outside dev, `invoke`, `callback`, `plugin_api_dispatch` and the author's API groups require a
//! JWT signed by the gateway. Its `app` and `user` claims say who calls. In dev
//! (`BKPAAS_ENVIRONMENT=dev`, or stag with `BK_APIGW_REQUIRE_EXEMPT`) no JWT is needed; one that
//! comes and verifies is still used. The routes ask the [`AuthPolicy`], registered as its own
//! application data, and nothing else of the process's state.

mod caller;
mod gateway;
mod jwt_cache;

pub(crate) use caller::{AuthError, Caller};
pub(crate) use gateway::GatewayVerifier;

use std::collections::BTreeMap;
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, web};
use bk_plugin_core::ScopeRule;

use crate::error::ApiError;

/// The header the gateway adds.
pub(crate) const JWT_HEADER: &str = "x-bkapi-jwt";
/// The scope headers `allow_scope` checks.
pub(crate) const SCOPE_TYPE_HEADER: &str = "bkplugin-scope-type";
/// The scope value header.
pub(crate) const SCOPE_VALUE_HEADER: &str = "bkplugin-scope-value";

/// How the protected routes decide who calls and whether they may.
#[derive(Debug, Clone)]
pub(crate) struct AuthPolicy {
    verifier: Option<GatewayVerifier>,
    jwt_optional: bool,
    allow_scope: BTreeMap<String, ScopeRule>,
}

impl AuthPolicy {
    /// A policy verifying with `verifier` (`None`: no gateway key configured), letting requests
    /// without a valid JWT through when `jwt_optional`, and applying `allow_scope`.
    pub(crate) fn new(
        verifier: Option<GatewayVerifier>,
        jwt_optional: bool,
        allow_scope: BTreeMap<String, ScopeRule>,
    ) -> Self {
        Self {
            verifier,
            jwt_optional,
            allow_scope,
        }
    }

    /// The caller of a request to a protected route: verified, or refused outside dev.
    pub(crate) fn authenticate(&self, req: &HttpRequest) -> Result<Caller, AuthError> {
        let token = req
            .headers()
            .get(JWT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let verified = match (token, &self.verifier) {
            (Some(token), Some(verifier)) => verifier.verify(token),
            (Some(_), None) => Err(AuthError::NoKey),
            (None, _) => Err(AuthError::Missing),
        };
        match verified {
            Ok(caller) => Ok(caller),
            Err(e) if self.jwt_optional => {
                tracing::debug!(reason = %e, "dev (or stag with BK_APIGW_REQUIRE_EXEMPT): gateway JWT not verified; continuing unauthenticated");
                Ok(Caller::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Applies `allow_scope`: a listed caller app must send a scope type and value it allows.
    pub(crate) fn check_scope(&self, caller: &Caller, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(app) = &caller.app_code else {
            return Ok(());
        };
        let Some(rule) = self.allow_scope.get(app) else {
            return Ok(());
        };
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (sent_type, sent_value) = (header(SCOPE_TYPE_HEADER), header(SCOPE_VALUE_HEADER));
        if sent_type == rule.scope_type && rule.values.contains(&sent_value) {
            return Ok(());
        }
        Err(ApiError::OutOfScope {
            app: app.clone(),
            scope_type: rule.scope_type.clone(),
            values: rule.values.clone(),
            sent_type,
            sent_value,
        })
    }
}

/// Extractor: the authenticated caller (401 envelope when refused).
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(policy) = req.app_data::<web::Data<AuthPolicy>>() else {
            return ready(Err(ApiError::StateMissing));
        };
        ready(
            policy
                .authenticate(req)
                .map_err(|e| ApiError::Unauthorized(e.to_string())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Caller;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl";

    #[test]
    fn debug_of_a_caller_hides_its_jwt() {
        let caller = Caller {
            app_code: Some("bk_sops".into()),
            username: Some("admin".into()),
            jwt: Some(JWT.into()),
        };
        let text = format!("{caller:?}");
        assert!(!text.contains(JWT), "{text}");
        assert!(
            text.contains("bk_sops") && text.contains("<hidden>"),
            "{text}"
        );
    }
}
