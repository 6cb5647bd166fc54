//! Starting a process: the tokio runtime, the database (connected, and migrated in dev or
//! checked to be migrated elsewhere), the start-up checks, the shared state and the auth policy,
//! and the shutdown signal.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use bk_plugin_core::{PluginMeta, Registry};

use crate::app::AppState;
use crate::auth::AuthPolicy;
use crate::config::{Config, redact_url};
use crate::logging::LogCapture;
use crate::plugin_api::PluginApis;
use crate::store::Store;

/// What the process connects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connect {
    /// Serving HTTP: the gateway's public key is looked up (and refreshed) too.
    Server,
    /// Running steps only (`worker`, `invoke`).
    Worker,
}

/// A multi-threaded tokio runtime.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs `f` to completion on a new runtime.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<()> {
    runtime()?.block_on(f)
}

/// Connects and migrates (dev) or checks that the schema is current, runs the start-up checks,
/// and builds the shared state and the auth policy.
pub(crate) async fn connect_state(
    config: Config,
    registry: Arc<Registry>,
    meta: PluginMeta,
    apis: PluginApis,
    capture: Option<LogCapture>,
    purpose: Connect,
) -> anyhow::Result<(Arc<AppState>, AuthPolicy)> {
    let store = Store::connect(&config.database_url, config.db_max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database {}",
                redact_url(&config.database_url)
            )
        })?;
    if config.is_dev() {
        store.migrate().await.context("migrating the database")?;
    } else {
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            bail!(
                "the database is not migrated ({} pending: {}): run `{} migrate` first (the pre-release hook does this on PaaS)",
                pending.len(),
                pending.join(", "),
                std::env::args().next().unwrap_or_else(|| "plugin".into())
            );
        }
    }
    crate::deploy::enforce(&crate::deploy::static_items(&config, &registry))?;
    let key = match purpose {
        Connect::Server => crate::deploy::gateway_key(&config, &store).await?,
        Connect::Worker => None,
    };
    if let Some(capture) = capture {
        crate::logging::spawn_writer(store.clone(), capture);
    }
    let config = Arc::new(config);
    let (found, verifier) = key.unzip();
    if let (Some(found), Some(verifier)) = (found, verifier.clone()) {
        crate::apigw::public_key::spawn_refresh(verifier, store.clone(), config.clone(), found);
    }
    let auth = AuthPolicy::new(verifier, config.jwt_optional(), meta.allow_scope.clone());
    let state = Arc::new(AppState::new(registry, store, config, Arc::new(meta), apis));
    Ok((state, auth))
}

/// Resolves on SIGTERM or SIGINT. The SIGTERM handler is installed when this is called, not when
/// it is first awaited, so a signal that arrives while the process is still connecting (a TLS
/// handshake with the database can take a moment) stops it cleanly instead of killing it.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use crate::config::redact_url;

    #[test]
    fn database_passwords_are_hidden_in_messages() {
        assert_eq!(
            redact_url("mysql://root:s3cret@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(
            redact_url("sqlite://bk_plugin.db?mode=rwc"),
            "sqlite://bk_plugin.db?mode=rwc"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=bk&password=s3cret&sslmode=require"),
            "postgres://db/x?user=bk&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@db/x?sslmode=verify-full&SSLPassword=k3y"),
            "postgres://u:***@db/x?sslmode=verify-full&SSLPassword=***"
        );
        // An @ in the query is not taken for the end of a userinfo.
        assert_eq!(
            redact_url("mysql://db/x?password=a@b"),
            "mysql://db/x?password=***"
        );
    }
}
