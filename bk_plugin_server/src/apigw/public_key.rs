//! Where the API gateway's public key comes from, and how a rotated key reaches running
//! processes.
//!
//! `serve` looks, in order, at `APIGW_PUBLIC_KEY`, the file named by `APIGW_PUBLIC_KEY_FILE`,
//! the database row written by `fetch-apigw-public-key` (the pre-release hook runs it), and
//! finally (outside dev, when none of these has a key) fetches it once from the gateway manager
//! with the app's credentials and stores it for the other processes. A key from a file or the
//! database is read again every `BK_PLUGIN_PUBLIC_KEY_REFRESH_SECONDS` (60 s by default); when it
//! changed, the verifier is replaced, so a rotation takes effect without a restart.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::context;
use super::manager::{Manager, ManagerError};
use crate::auth::GatewayVerifier;
use crate::config::Config;
use crate::store::Store;

/// Where a key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `APIGW_PUBLIC_KEY`.
    Env,
    /// `APIGW_PUBLIC_KEY_FILE`.
    File(String),
    /// The `bkp_apigw_context` row.
    Database,
    /// Fetched from the gateway manager at start-up (and stored in the database).
    Gateway,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str("APIGW_PUBLIC_KEY"),
            Self::File(path) => write!(f, "APIGW_PUBLIC_KEY_FILE={path}"),
            Self::Database => f.write_str("the database (fetch-apigw-public-key)"),
            Self::Gateway => f.write_str("the gateway manager (fetched at start-up)"),
        }
    }
}

/// A key and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct FoundKey {
    /// The PEM text.
    pub pem: String,
    /// Its source.
    pub source: KeySource,
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// A source is set but unusable.
    #[error("{0}")]
    Source(String),
    /// The database could not be read or written.
    #[error("database error while reading the gateway public key: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The gateway manager refused or could not be reached.
    #[error("fetching the gateway public key failed: {0}")]
    Fetch(#[from] ManagerError),
}

/// The key from the environment or its file, if one is configured.
pub(crate) fn from_env(config: &Config) -> Result<Option<FoundKey>, KeyError> {
    if let Some(pem) = &config.apigw_public_key {
        return Ok(Some(FoundKey {
            pem: pem.replace("\\n", "\n"),
            source: KeySource::Env,
        }));
    }
    match config.apigw_public_key_file.clone() {
        Some(path) => std::fs::read_to_string(&path)
            .map(|pem| {
                Some(FoundKey {
                    pem,
                    source: KeySource::File(path.clone()),
                })
            })
            .map_err(|e| KeySource::File(path).to_string() + ": " + &e.to_string())
            .map_err(KeyError::Source),
        None => Ok(None),
    }
}

/// The key stored in the database for `gateway`.
pub(crate) async fn from_database(
    store: &Store,
    gateway: &str,
) -> Result<Option<String>, KeyError> {
    Ok(context::get(store, context::PUBLIC_KEY, gateway)
        .await?
        .filter(|pem| !pem.trim().is_empty()))
}

/// Fetches the key from the gateway manager (`GET public_key/`), checks that it is an RSA
/// public key, and stores it in the database.
pub(crate) async fn fetch_and_store(config: &Config, store: &Store) -> Result<String, KeyError> {
    let manager = Manager::from_config(config)?;
    let data = manager.call(Method::GET, "public_key/", None).await?;
    let pem = data
        .get("public_key")
        .and_then(Value::as_str)
        .filter(|pem| !pem.trim().is_empty())
        .ok_or_else(|| {
            KeyError::Source(format!(
                "the gateway manager's answer to GET {} has no data.public_key",
                manager.url("public_key/")
            ))
        })?
        .to_string();
    GatewayVerifier::new(&pem, &config.gateway_name).map_err(KeyError::Source)?;
    context::put(store, context::PUBLIC_KEY, &config.gateway_name, &pem).await?;
    Ok(pem)
}

/// Finds the key for `serve`: environment, file, database, then (when `fetch` is true) one
/// fetch from the gateway manager. `None` when there is none and `fetch` is false.
pub(crate) async fn resolve(
    config: &Config,
    store: &Store,
    fetch: bool,
) -> Result<Option<FoundKey>, KeyError> {
    if let Some(found) = from_env(config)? {
        return Ok(Some(found));
    }
    if let Some(pem) = from_database(store, &config.gateway_name).await? {
        return Ok(Some(FoundKey {
            pem,
            source: KeySource::Database,
        }));
    }
    if !fetch {
        return Ok(None);
    }
    let pem = fetch_and_store(config, store).await?;
    Ok(Some(FoundKey {
        pem,
        source: KeySource::Gateway,
    }))
}

/// Re-reads a file or database key every `config.public_key_refresh` and replaces the
/// verifier's key when it changed (which also empties its verified-token cache). A key from `APIGW_PUBLIC_KEY` never changes and is not watched.
pub(crate) fn spawn_refresh(
    verifier: GatewayVerifier,
    store: Store,
    config: Arc<Config>,
    found: FoundKey,
) {
    if found.source == KeySource::Env {
        return;
    }
    tokio::spawn(async move {
        let mut current = found.pem;
        let every: Duration = config.public_key_refresh;
        loop {
            tokio::time::sleep(every).await;
            let latest = match &found.source {
                KeySource::File(path) => match tokio::fs::read_to_string(path).await {
                    Ok(pem) => Some(pem),
                    Err(e) => {
                        tracing::warn!(path = %path, error = %e, "cannot re-read the gateway public key; keeping the current one");
                        None
                    }
                },
                _ => match from_database(&store, &config.gateway_name).await {
                    Ok(pem) => pem,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the gateway public key; keeping the current one");
                        None
                    }
                },
            };
            let Some(latest) = latest.filter(|pem| pem.trim() != current.trim()) else {
                continue;
            };
            match verifier.replace_key(&latest) {
                Ok(changed) => {
                    current = latest;
                    if changed {
                        tracing::info!(source = %found.source, "the gateway public key changed; verifying with the new key");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the new gateway public key is unusable; keeping the current one");
                }
            }
        }
    });
}
