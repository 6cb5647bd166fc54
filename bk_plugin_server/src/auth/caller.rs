//! Who calls, as a verified gateway JWT says, and why a JWT is refused.

/// Why a JWT was refused. The messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No `X-Bkapi-JWT` header.
    #[error(
        "authentication required: the request has no X-Bkapi-JWT header (call through the API gateway)"
    )]
    Missing,
    /// The gateway's public key is not configured.
    #[error(
        "the API gateway public key is not configured (APIGW_PUBLIC_KEY, APIGW_PUBLIC_KEY_FILE, or `fetch-apigw-public-key`)"
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

/// The caller as the verified JWT says. Its `Debug` hides the JWT.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The calling app (`app.app_code` or `app.bk_app_code`), when verified.
    pub app_code: Option<String>,
    /// The user (`user.username` or `user.bk_username`), when verified.
    pub username: Option<String>,
    /// The raw JWT, to forward to handlers (never logged).
    pub jwt: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("app_code", &self.app_code)
            .field("username", &self.username)
            .field("jwt", &self.jwt.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}
