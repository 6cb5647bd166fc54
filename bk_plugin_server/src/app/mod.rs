//! What every route and the worker share, as a few services with private fields: the
//! registry, the store, the configuration, the plugin's meta and data APIs, the metrics, the
//! callback tokens ([`CallbackTokens`]), the waiting invocations ([`Invocations`]) and the BK API
//! client. Who calls
//! and whether they may is not here: that is the [`crate::auth::AuthPolicy`], registered apart.

mod callback_tokens;
mod invocations;

pub(crate) use callback_tokens::CallbackTokens;
pub(crate) use invocations::{Invocations, Parked};

use std::sync::Arc;

use bk_plugin_core::bkapi::{BkApiTransport, NoBkApi};
use bk_plugin_core::{PluginMeta, Registry, StepServices};

use crate::bkapi_client::BkApiClient;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugin_api::PluginApis;
use crate::store::Store;

/// Shared state of one plugin process.
pub(crate) struct AppState {
    registry: Arc<Registry>,
    store: Store,
    config: Arc<Config>,
    meta: Arc<PluginMeta>,
    apis: PluginApis,
    metrics: Metrics,
    tokens: CallbackTokens,
    invocations: Invocations,
    bkapi: Arc<dyn BkApiTransport>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("versions", &self.registry.version_names())
            .finish()
    }
}

impl AppState {
    /// Builds the shared state and starts its background writers (on the current runtime).
    pub(crate) fn new(
        registry: Arc<Registry>,
        store: Store,
        config: Arc<Config>,
        meta: Arc<PluginMeta>,
        apis: PluginApis,
    ) -> Self {
        let longest_wait = registry
            .versions()
            .iter()
            .filter_map(|v| v.callback_timeout())
            .chain([config.callback_timeout])
            .max()
            .unwrap_or(config.callback_timeout);
        let tokens = CallbackTokens::new(&config, longest_wait);
        let invocations = Invocations::start(registry.clone(), store.clone(), &config);
        let metrics = Metrics::new(config.hostname.clone());
        let bkapi: Arc<dyn BkApiTransport> = match BkApiClient::new(&config, metrics.clone()) {
            Ok(client) => Arc::new(client),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the BK API client; plugins' BK API calls fail");
                Arc::new(NoBkApi)
            }
        };
        Self {
            metrics,
            bkapi,
            registry,
            store,
            config,
            meta,
            apis,
            tokens,
            invocations,
        }
    }

    /// Every plugin version.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The schedule database.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Plugin-level meta.
    pub(crate) fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    /// The author's data APIs.
    pub(crate) fn apis(&self) -> &PluginApis {
        &self.apis
    }

    /// Prometheus metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Callback URLs and tokens.
    pub(crate) fn tokens(&self) -> &CallbackTokens {
        &self.tokens
    }

    /// What a step is lent: callback URLs and the BK API client.
    pub(crate) fn step_services(&self) -> StepServices {
        StepServices {
            callbacks: self.tokens.issuer(),
            bkapi: self.bkapi.clone(),
        }
    }

    /// The BK API client, for data-API requests.
    pub(crate) fn bkapi(&self) -> Arc<dyn BkApiTransport> {
        self.bkapi.clone()
    }

    /// Storing and moving on waiting invocations.
    pub(crate) fn invocations(&self) -> &Invocations {
        &self.invocations
    }
}
