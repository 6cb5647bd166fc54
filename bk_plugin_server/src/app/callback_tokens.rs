//! Callback URLs: issuing them for `prepare_callback`, verifying the token a callback brings
//! back, and judging whether a callback for an invocation not stored yet may be early.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bk_plugin_core::{CallbackIssuer, IssueCallbackError};

use crate::config::Config;
use crate::token::{CallbackClaims, TokenSigner};

/// The secret that signs callback tokens in dev when none is configured. Never used elsewhere.
const DEV_ONLY_SECRET: &[u8] = b"bk-plugin-framework-rust dev-only callback secret";

/// Issues and verifies callback tokens, and knows which invokes run in this process.
pub(crate) struct CallbackTokens {
    /// Verifies callback tokens; `None` when no secret is configured outside dev.
    signer: Option<TokenSigner>,
    /// Issues callback URLs for `prepare_callback`.
    issuer: Arc<dyn CallbackIssuer>,
    /// How long callback tokens issued now live.
    ttl: Duration,
    /// `BK_PLUGIN_EARLY_CALLBACK_SECONDS`.
    early_window: Duration,
    /// Trace ids whose `invoke` is running in this process (see [`CallbackTokens::may_be_early`]).
    in_flight: Mutex<HashSet<String>>,
}

/// Why a callback token is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenRefused {
    /// No secret is configured, so no token can be ours.
    #[error("invalid token: this deployment has no callback secret configured")]
    NoSecret,
    /// Not ours, tampered with or expired.
    #[error("{0}")]
    Invalid(String),
}

impl std::fmt::Debug for CallbackTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CallbackTokens {
    /// Tokens that outlive `longest_wait` (the longest callback timeout of any version) by a
    /// day, signed with the configured secret, pointing at the configured callback host.
    pub(crate) fn new(config: &Config, longest_wait: Duration) -> Self {
        let signer = signer_for(config);
        // A token must outlive the longest wait for its callback (the wait starts after the
        // token is issued), so it lasts at least a day longer than any callback timeout.
        let ttl = config
            .callback_token_ttl
            .max(longest_wait + Duration::from_secs(24 * 3600));
        let issuer = Arc::new(ServerIssuer {
            signer: signer.clone(),
            base_url: callback_base_url(config),
            ttl,
        });
        Self {
            signer,
            issuer,
            ttl,
            early_window: config.early_callback,
            in_flight: Mutex::default(),
        }
    }

    /// What the executor issues callback URLs with.
    pub(crate) fn issuer(&self) -> Arc<dyn CallbackIssuer> {
        self.issuer.clone()
    }

    /// The claims of a callback token, if it is ours and not expired.
    pub(crate) fn verify(&self, token: &str) -> Result<CallbackClaims, TokenRefused> {
        let signer = self.signer.as_ref().ok_or(TokenRefused::NoSecret)?;
        signer
            .verify(token, unix_now())
            .map_err(|e| TokenRefused::Invalid(e.to_string()))
    }

    /// Marks `trace_id`'s invoke as running here until the guard is dropped.
    pub(crate) fn invoke_started(&self, trace_id: &str) -> InFlight<'_> {
        if let Ok(mut running) = self.in_flight.lock() {
            running.insert(trace_id.to_string());
        }
        InFlight {
            tokens: self,
            trace_id: trace_id.to_string(),
        }
    }

    /// Whether a callback for an invocation that is not stored may have overtaken its own
    /// invocation's insert: the invoke is still running in this process, or the token (valid
    /// until `expires_at`, Unix seconds) was issued less than
    /// `BK_PLUGIN_EARLY_CALLBACK_SECONDS` ago (the invoke may be running in another process).
    pub(crate) fn may_be_early(&self, trace_id: &str, expires_at: u32) -> bool {
        let running = self
            .in_flight
            .lock()
            .map(|running| running.contains(trace_id))
            .unwrap_or(false);
        let issued_at = u64::from(expires_at).saturating_sub(self.ttl.as_secs());
        running || unix_now() < issued_at.saturating_add(self.early_window.as_secs())
    }
}

/// Marks an `invoke` as running in this process until dropped.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    tokens: &'a CallbackTokens,
    trace_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.tokens.in_flight.lock() {
            running.remove(&self.trace_id);
        }
    }
}

fn signer_for(config: &Config) -> Option<TokenSigner> {
    let secret = config
        .callback_secret
        .as_deref()
        .or(config.app_secret.as_deref());
    match secret {
        Some(secret) => Some(TokenSigner::new(secret.as_bytes())),
        None if config.is_dev() => Some(TokenSigner::new(DEV_ONLY_SECRET)),
        None => None,
    }
}

/// `<callback host>/<stage>/callback/` through the gateway, else (dev only) this process
/// directly; outside dev with no callback host, `None`: no unreachable URL is ever handed out.
fn callback_base_url(config: &Config) -> Option<String> {
    match &config.callback_host {
        Some(host) => Some(format!(
            "{}/{}/callback/",
            host.trim_end_matches('/'),
            config.stage_name.trim_matches('/')
        )),
        None if config.is_dev() => Some(format!(
            "http://127.0.0.1:{}/bk_plugin/callback/",
            config.port
        )),
        None => None,
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct ServerIssuer {
    signer: Option<TokenSigner>,
    base_url: Option<String>,
    ttl: Duration,
}

impl CallbackIssuer for ServerIssuer {
    fn issue(&self, trace_id: &str, callback_id: &str) -> Result<String, IssueCallbackError> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            IssueCallbackError(
                "no callback secret: set BK_PLUGIN_CALLBACK_SECRET or BKPAAS_APP_SECRET".into(),
            )
        })?;
        let base_url = self.base_url.as_deref().ok_or_else(|| {
            IssueCallbackError(
                "no callback host: set BK_API_URL_TMPL (PaaS injects it) or BK_PLUGIN_CALLBACK_HOST".into(),
            )
        })?;
        let expires = unix_now().saturating_add(self.ttl.as_secs());
        let expires = u32::try_from(expires).unwrap_or(u32::MAX);
        let token = signer
            .sign(trace_id, callback_id, expires)
            .map_err(|e| IssueCallbackError(e.to_string()))?;
        Ok(format!("{base_url}{token}/"))
    }
}
