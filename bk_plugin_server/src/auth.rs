//! Who is calling: the BlueKing API gateway's JWT (`X-Bkapi-JWT`), and `allow_scope`.
//!
//! Outside dev, `invoke`, `callback`, `plugin_api_dispatch` and the author's API groups require a
//! JWT signed by the gateway (RSA only: RS256/384/512 or PS256/384/512, RS512 by default),
//! whose `kid` names our gateway, that has not expired (30 s leeway). Its `app` and `user`
//! claims say who calls. In dev (`BKPAAS_ENVIRONMENT=dev`) no JWT is needed; one that comes
//! and verifies is still used.

use std::collections::HashSet;
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;

/// The header the gateway adds.
pub const JWT_HEADER: &str = "x-bkapi-jwt";
/// The scope headers `allow_scope` checks.
pub const SCOPE_TYPE_HEADER: &str = "bkplugin-scope-type";
/// The scope value header.
pub const SCOPE_VALUE_HEADER: &str = "bkplugin-scope-value";

const LEEWAY_SECONDS: u64 = 30;
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Verifies gateway JWTs with the gateway's public key.
#[derive(Clone)]
pub struct GatewayVerifier {
    key: DecodingKey,
    gateway: String,
}

impl std::fmt::Debug for GatewayVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayVerifier")
            .field("gateway", &self.gateway)
            .finish()
    }
}

/// Why a JWT was refused. The messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `X-Bkapi-JWT` header.
    #[error(
        "authentication required: the request has no X-Bkapi-JWT header (call through the API gateway)"
    )]
    Missing,
    /// The gateway's public key is not configured.
    #[error(
        "the API gateway public key is not configured (APIGW_PUBLIC_KEY or APIGW_PUBLIC_KEY_FILE)"
    )]
    NoKey,
    /// Not a JWT, a non-RSA algorithm, a wrong signature, expired, not yet valid.
    #[error("invalid X-Bkapi-JWT: {0}")]
    Invalid(String),
    /// Signed for another gateway.
    #[error("invalid X-Bkapi-JWT: kid {found:?} is not this plugin's gateway {expected:?}")]
    WrongGateway {
        /// Our gateway.
        expected: String,
        /// The token's kid.
        found: String,
    },
}

/// The caller as the verified JWT says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The calling app (`app.app_code` or `app.bk_app_code`), when verified.
    pub app_code: Option<String>,
    /// The user (`user.username` or `user.bk_username`), when verified.
    pub username: Option<String>,
    /// The raw JWT, to forward to handlers (never logged).
    pub jwt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    app: Option<Party>,
    #[serde(default)]
    user: Option<Party>,
}

#[derive(Debug, Default, Deserialize)]
struct Party {
    #[serde(default)]
    app_code: Option<String>,
    #[serde(default)]
    bk_app_code: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    bk_username: Option<String>,
    #[serde(default)]
    verified: bool,
}

impl GatewayVerifier {
    /// A verifier for `gateway` with the PEM-encoded RSA public key.
    pub fn new(public_key_pem: &str, gateway: &str) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).map_err(|e| {
            format!("the API gateway public key is not an RSA public key in PEM: {e}")
        })?;
        Ok(Self {
            key,
            gateway: gateway.to_string(),
        })
    }

    /// Verifies `token` and extracts the caller.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !RSA_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted (RSA only)",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        if kid != self.gateway {
            return Err(AuthError::WrongGateway {
                expected: self.gateway.clone(),
                found: kid,
            });
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        let data = decode::<Claims>(token, &self.key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let app = data.claims.app.unwrap_or_default();
        let user = data.claims.user.unwrap_or_default();
        Ok(Caller {
            app_code: app
                .verified
                .then(|| app.app_code.or(app.bk_app_code))
                .flatten(),
            username: user
                .verified
                .then(|| user.username.or(user.bk_username))
                .flatten(),
            jwt: Some(token.to_string()),
        })
    }
}

/// Reads `APIGW_PUBLIC_KEY` or the file named by `APIGW_PUBLIC_KEY_FILE`.
pub fn public_key_from_env() -> Result<Option<String>, String> {
    if let Ok(pem) = std::env::var("APIGW_PUBLIC_KEY")
        && !pem.trim().is_empty()
    {
        return Ok(Some(pem.replace("\\n", "\n")));
    }
    match std::env::var("APIGW_PUBLIC_KEY_FILE") {
        Ok(path) if !path.trim().is_empty() => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| format!("APIGW_PUBLIC_KEY_FILE={path}: {e}")),
        _ => Ok(None),
    }
}

/// The caller of a request to a protected route: verified, or refused with 401 outside dev.
pub fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Caller, AuthError> {
    let token = req
        .headers()
        .get(JWT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let verified = match (token, &state.verifier) {
        (Some(token), Some(verifier)) => verifier.verify(token),
        (Some(_), None) => Err(AuthError::NoKey),
        (None, _) => Err(AuthError::Missing),
    };
    match verified {
        Ok(caller) => Ok(caller),
        Err(e) if state.config.is_dev() => {
            tracing::debug!(reason = %e, "dev: gateway JWT not verified; continuing unauthenticated");
            Ok(Caller::default())
        }
        Err(e) => Err(e),
    }
}

/// Applies `allow_scope`: a listed caller app must send a scope type and value it allows.
pub fn check_scope(state: &AppState, caller: &Caller, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(app) = &caller.app_code else {
        return Ok(());
    };
    let Some(rule) = state.meta.allow_scope.get(app) else {
        return Ok(());
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (scope_type, scope_value) = (header(SCOPE_TYPE_HEADER), header(SCOPE_VALUE_HEADER));
    if scope_type == rule.scope_type && rule.values.iter().any(|v| v == scope_value) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "app {app} may only call this plugin within scope type {:?} and values {:?}; the request has {scope_type:?} {scope_value:?}",
        rule.scope_type, rule.values
    )))
}

/// Extractor: the authenticated caller (401 envelope when refused).
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal {
                message: "application state is missing".into(),
                trace_id: None,
            }));
        };
        ready(authenticate(state, req).map_err(|e| ApiError::Unauthorized(e.to_string())))
    }
}

#[cfg(test)]
mod fuzz {
    //! Fuzzing JWT handling: nothing but a gateway-signed RSA token is ever accepted.
    use super::*;
    use proptest::prelude::*;

    const PUBLIC: &str = include_str!("../../tests/fixtures/jwt/gateway.pub");

    proptest! {
        #[test]
        fn arbitrary_strings_are_never_accepted(text in "\\PC{0,200}", dots in 0usize..4) {
            let verifier = GatewayVerifier::new(PUBLIC, "gw").map_err(TestCaseError::fail)?;
            let token = std::iter::repeat_n(text.as_str(), dots + 1).collect::<Vec<_>>().join(".");
            prop_assert!(verifier.verify(&token).is_err());
        }
    }
}
