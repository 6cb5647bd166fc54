//! What every route and the worker share: the registry, the store, the configuration, the
//! callback issuer and the worker's wake-up signal.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bk_plugin_core::executor::{Next, StepOutcome};
use bk_plugin_core::{CallbackIssuer, IssueCallbackError, PluginMeta, Registry};
use serde_json::Value;
use tokio::sync::Notify;

use crate::auth::GatewayVerifier;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugin_api::PluginApis;
use crate::store::batch::{BatchError, Batcher};
use crate::store::{FinishedStep, NewWaiting, Store, now_ms};
use crate::token::TokenSigner;

/// The secret that signs callback tokens in dev when none is configured. Never used elsewhere.
const DEV_ONLY_SECRET: &[u8] = b"bk-plugin-framework-rust dev-only callback secret";

/// Shared state of one plugin process.
pub struct AppState {
    /// Every plugin version.
    pub registry: Arc<Registry>,
    /// The schedule database.
    pub store: Store,
    /// The configuration.
    pub config: Arc<Config>,
    /// Plugin-level meta.
    pub meta: Arc<PluginMeta>,
    /// The author's data APIs.
    pub apis: PluginApis,
    /// Issues callback URLs for `prepare_callback`.
    pub issuer: Arc<dyn CallbackIssuer>,
    /// Verifies callback tokens; `None` when no secret is configured outside dev.
    pub signer: Option<TokenSigner>,
    /// Wakes this process's worker when new work is created here.
    pub wake: Arc<Notify>,
    /// Verifies the API gateway's JWTs; `None` when no public key is configured (dev only).
    /// Its key is replaced in place when the gateway's key rotates (`apigw::public_key`).
    pub verifier: Option<GatewayVerifier>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// How long callback tokens issued now live.
    pub token_ttl: Duration,
    /// Trace ids whose `invoke` is running in this process (see [`AppState::may_be_early`]).
    in_flight: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Group-commits new waiting invocations.
    parking: Batcher<NewWaiting, ()>,
    /// Group-commits finished steps.
    recorder: Batcher<FinishedStep, bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("versions", &self.registry.version_names())
            .finish()
    }
}

impl AppState {
    /// Builds the shared state.
    pub fn new(
        registry: Arc<Registry>,
        store: Store,
        config: Arc<Config>,
        meta: Arc<PluginMeta>,
        apis: PluginApis,
        verifier: Option<GatewayVerifier>,
    ) -> Self {
        let signer = signer_for(&config);
        // A token must outlive the longest wait for its callback (the wait starts after the
        // token is issued), so it lasts at least a day longer than any callback timeout.
        let longest_wait = registry
            .versions()
            .iter()
            .filter_map(|v| v.callback_timeout())
            .chain([config.callback_timeout])
            .max()
            .unwrap_or(config.callback_timeout);
        let token_ttl = config
            .callback_token_ttl
            .max(longest_wait + Duration::from_secs(24 * 3600));
        let issuer = Arc::new(ServerIssuer {
            signer: signer.clone(),
            base_url: callback_base_url(&config),
            ttl: token_ttl,
        });
        // SQLite has one writer at a time; the servers take several transactions at once.
        let writers = match store.connection().get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => 1,
            _ => 4,
        };
        let parking = {
            let (store, undo) = (store.clone(), store.clone());
            // A write that hangs (a black-holed connection) is given up after this long, so
            // that the writer serves the items queued behind it.
            let write_limit = config.invoke_db_timeout * 2 + Duration::from_secs(10);
            Batcher::spawn_abandoning(
                writers,
                256,
                move |rows: Vec<NewWaiting>| {
                    let store = store.clone();
                    async move {
                        let count = rows.len();
                        match tokio::time::timeout(write_limit, store.insert_waiting_many(rows))
                            .await
                        {
                            Ok(written) => written.map(|()| vec![(); count]).map_err(Into::into),
                            Err(_) => Err(BatchError::transient(format!(
                                "the database did not answer within {} s",
                                write_limit.as_secs()
                            ))),
                        }
                    }
                },
                move |rows: Vec<NewWaiting>| {
                    let ids = rows.into_iter().map(|row| row.trace_id).collect();
                    undo_unanswered(undo.clone(), ids);
                },
            )
        };
        {
            // Leases and due times follow the database's clock (see `store::now_ms`).
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(crate::store::CLOCK_SYNC_EVERY).await;
                    if let Err(e) = store.sync_clock().await {
                        tracing::warn!(error = %e, "cannot read the database's clock");
                    }
                }
            });
        }
        let recorder = {
            let store = store.clone();
            Batcher::spawn(writers, 256, move |steps: Vec<FinishedStep>| {
                let store = store.clone();
                async move { store.finish_steps(steps).await }
            })
        };
        Self {
            token_ttl,
            in_flight: Default::default(),
            parking,
            recorder,
            registry,
            store,
            config,
            meta,
            apis,
            issuer,
            signer,
            wake: Arc::new(Notify::new()),
            verifier,
            metrics: Metrics::new(),
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
pub fn unix_now() -> u64 {
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

/// A new trace id: a UUID4 as 32 lowercase hex characters.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// When a waiting invocation is due next and, for CALLBACK, when it gives up waiting
/// (milliseconds since the epoch); `None` when `next` is not a wait.
pub fn wait_times(next: &Next, callback_timeout: Duration, now: i64) -> Option<(i64, Option<i64>)> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
    match next {
        Next::Poll(after) => Some((now + ms(*after), None)),
        Next::Callback => {
            let deadline = now + ms(callback_timeout);
            Some((deadline, Some(deadline)))
        }
        _ => None,
    }
}

/// Marks an `invoke` as running in this process until dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    state: &'a AppState,
    trace_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.state.in_flight.lock() {
            running.remove(&self.trace_id);
        }
    }
}

impl AppState {
    /// Marks `trace_id`'s invoke as running here until the guard is dropped.
    pub fn invoke_started(&self, trace_id: &str) -> InFlight<'_> {
        if let Ok(mut running) = self.in_flight.lock() {
            running.insert(trace_id.to_string());
        }
        InFlight {
            state: self,
            trace_id: trace_id.to_string(),
        }
    }

    /// Whether a callback for an invocation that is not stored may have overtaken its own
    /// invocation's insert: the invoke is still running in this process, or the token (valid
    /// until `expires_at`, Unix seconds) was issued less than
    /// `BK_PLUGIN_EARLY_CALLBACK_SECONDS` ago (the invoke may be running in another process).
    pub fn may_be_early(&self, trace_id: &str, expires_at: u32) -> bool {
        let running = self
            .in_flight
            .lock()
            .map(|running| running.contains(trace_id))
            .unwrap_or(false);
        let issued_at = u64::from(expires_at).saturating_sub(self.token_ttl.as_secs());
        running || unix_now() < issued_at.saturating_add(self.config.early_callback.as_secs())
    }

    /// How long invocations of `version` wait for a callback.
    pub fn callback_timeout_of(&self, version: &str) -> Duration {
        self.registry
            .get(version)
            .and_then(|v| v.callback_timeout())
            .unwrap_or(self.config.callback_timeout)
    }

    /// The storage and outputs of a step as JSON text, or the FAIL err when together they are
    /// larger than `BK_PLUGIN_MAX_STATE_BYTES`.
    pub fn state_text(&self, outcome: &StepOutcome) -> Result<(String, String), String> {
        let storage = Value::Object(outcome.storage.clone()).to_string();
        let outputs = Value::Object(outcome.outputs.clone()).to_string();
        let size = storage.len() + outputs.len();
        if size > self.config.max_state_bytes {
            return Err(format!(
                "plugin state too large: storage and outputs take {size} bytes, more than the limit of {} (BK_PLUGIN_MAX_STATE_BYTES)",
                self.config.max_state_bytes
            ));
        }
        Ok((storage, outputs))
    }

    /// Records a finished step (group-committed with the others finishing now); false when the
    /// lease was lost.
    pub async fn record_step(&self, step: FinishedStep) -> Result<bool, BatchError> {
        self.recorder.submit(step).await
    }

    /// Stores a new invocation whose first run asked to wait (group-committed with the others
    /// arriving now), and wakes the local worker.
    pub async fn park(
        &self,
        version: &str,
        trace_id: &str,
        inputs: &Value,
        context: &Value,
        outcome: &StepOutcome,
    ) -> Result<Parked, BatchError> {
        let timeout = self.callback_timeout_of(version);
        let Some((run_at, callback_deadline)) = wait_times(&outcome.next, timeout, now_ms()) else {
            return Ok(Parked::NotWaiting);
        };
        let (storage, outputs) = match self.state_text(outcome) {
            Ok(text) => text,
            Err(err) => return Ok(Parked::Refused(err)),
        };
        let row = NewWaiting {
            trace_id: trace_id.to_string(),
            version: version.to_string(),
            state: outcome.state(),
            inputs: inputs.to_string(),
            context: context.to_string(),
            storage,
            outputs,
            run_at,
            callback_deadline,
        };
        // Bounded: past the limit the caller gets FAIL, and the batch writer then skips or
        // undoes the row, since nobody will be told it is waiting.
        let limit = self.config.invoke_db_timeout;
        match tokio::time::timeout(limit, self.parking.submit(row)).await {
            Ok(Ok(())) => {
                self.wake.notify_one();
                Ok(Parked::Stored)
            }
            Ok(Err(e)) => {
                // The write failed, but a lost connection may have committed it: make sure
                // an invocation answered FAIL is not stored.
                undo_unanswered(self.store.clone(), vec![trace_id.to_string()]);
                Err(e)
            }
            Err(_) => Err(BatchError::transient(format!(
                "the database did not answer within {} s (BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS)",
                limit.as_secs()
            ))),
        }
    }
}

/// Deletes waiting invocations whose invoke was answered FAIL (or whose caller left) although
/// their row may have been written, retrying while the database is unreachable (for up to an
/// hour).
fn undo_unanswered(store: Store, trace_ids: Vec<String>) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(200);
        let give_up = std::time::Instant::now() + Duration::from_secs(3600);
        loop {
            match store.delete_waiting(&trace_ids).await {
                Ok(deleted) => {
                    if deleted > 0 {
                        tracing::warn!(trace_ids = ?trace_ids, deleted, "deleted invocations stored after their invoke had answered FAIL or its caller had left");
                    }
                    return;
                }
                Err(e) if std::time::Instant::now() < give_up => {
                    tracing::warn!(error = %e, "cannot yet delete invocations whose invoke answered FAIL; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(trace_ids = ?trace_ids, error = %e, "cannot delete invocations whose invoke answered FAIL");
                    return;
                }
            }
        }
    });
}

/// What became of a first run's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parked {
    /// It did not ask to wait: nothing is stored.
    NotWaiting,
    /// The waiting invocation is stored.
    Stored,
    /// It asked to wait but cannot be stored: FAIL with this err.
    Refused(String),
}
