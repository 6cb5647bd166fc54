//! The deployment commands of a plugin binary (`sync-apigw`, `fetch-apigw-public-key`, `check`)
//! and the start-up checks `serve` and `worker` share with `check`: each configuration item is
//! OK, a warning, or missing (a blocker that stops the process).

use std::sync::Arc;

use anyhow::{Context as _, bail};
use bk_plugin_core::Registry;

use crate::apigw::manager;
use crate::apigw::public_key::{self, FoundKey};
use crate::apigw::sync;
use crate::auth::GatewayVerifier;
use crate::config::Config;
use crate::store::Store;

/// How an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Configured.
    Ok,
    /// Works, but not as it should in production.
    Warn,
    /// A blocker: the process refuses to start.
    Missing,
}

/// One checked item.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// OK, WARN or MISSING.
    pub status: Status,
    /// What was checked.
    pub name: &'static str,
    /// The value found, or what to do.
    pub detail: String,
}

impl Item {
    fn new(status: Status, name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            name,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Status::Ok => "OK     ",
            Status::Warn => "WARN   ",
            Status::Missing => "MISSING",
        };
        write!(f, "{status} {}: {}", self.name, self.detail)
    }
}

/// Whether any version declares that it waits for callbacks (`callback_timeout`).
fn declares_callbacks(registry: &Registry) -> bool {
    registry
        .versions()
        .iter()
        .any(|v| v.callback_timeout().is_some())
}

/// The items that need neither the database nor the network: environment, listen address,
/// secrets, gateway name, callback host, gateway manager address, outbound TLS.
pub(crate) fn static_items(config: &Config, registry: &Registry) -> Vec<Item> {
    let dev = config.is_dev();
    let mut items = vec![Item::new(
        Status::Ok,
        "environment",
        if config.environment_explicit {
            config.environment.name().to_string()
        } else {
            "dev (BKPAAS_ENVIRONMENT is not set)".into()
        },
    )];
    items.push(Item::new(
        Status::Ok,
        "listen address",
        format!("{}:{}", config.bind, config.port),
    ));
    items.push(match crate::config::var("BKPAAS_APP_ID") {
        Some(code) => Item::new(Status::Ok, "app code", format!("{code} (BKPAAS_APP_ID)")),
        None if dev => Item::new(
            Status::Warn,
            "app code",
            "BKPAAS_APP_ID is not set; using bk-plugin",
        ),
        None => Item::new(
            Status::Missing,
            "app code",
            "set BKPAAS_APP_ID (PaaS injects it)",
        ),
    });
    let secret = config.callback_secret.is_some() || config.app_secret.is_some();
    items.push(match (secret, dev) {
        (true, _) => Item::new(
            Status::Ok,
            "secrets",
            if config.callback_secret.is_some() {
                "callback tokens signed with BK_PLUGIN_CALLBACK_SECRET"
            } else {
                "callback tokens signed with BKPAAS_APP_SECRET"
            },
        ),
        (false, true) => Item::new(
            Status::Warn,
            "secrets",
            "no BKPAAS_APP_SECRET: callback tokens use the built-in development secret (dev only)",
        ),
        (false, false) => Item::new(
            Status::Missing,
            "secrets",
            "set BKPAAS_APP_SECRET (PaaS injects it) or BK_PLUGIN_CALLBACK_SECRET: callback tokens are signed with it",
        ),
    });
    items.push(Item::new(
        Status::Ok,
        "gateway name",
        format!("{} (JWT kid, sync-apigw)", config.gateway_name),
    ));
    items.push(match (&config.callback_host, dev) {
        (Some(host), _) => Item::new(
            Status::Ok,
            "callback host",
            format!(
                "{}/{}/callback/<token>/",
                host.trim_end_matches('/'),
                config.stage_name
            ),
        ),
        (None, true) => Item::new(
            Status::Ok,
            "callback host",
            format!(
                "dev: http://127.0.0.1:{}/bk_plugin/callback/<token>/",
                config.port
            ),
        ),
        (None, false) if declares_callbacks(registry) => Item::new(
            Status::Missing,
            "callback host",
            "set BK_API_URL_TMPL (PaaS injects it) or BK_PLUGIN_CALLBACK_HOST: a version of this plugin waits for callbacks",
        ),
        (None, false) => Item::new(
            Status::Warn,
            "callback host",
            "neither BK_API_URL_TMPL nor BK_PLUGIN_CALLBACK_HOST is set: an invocation that asks for a callback URL fails",
        ),
    });
    items.push(match manager::url_template() {
        Some((template, name)) => Item::new(
            Status::Ok,
            "gateway manager",
            format!(
                "{} ({name})",
                template.replace("{api_name}", "bk-apigateway")
            ),
        ),
        None => Item::new(
            if dev { Status::Ok } else { Status::Warn },
            "gateway manager",
            "no BK_API_URL_TMPL: sync-apigw and fetch-apigw-public-key cannot run",
        ),
    });
    let unverified: Vec<&str> = [
        (!config.tls_verify)
            .then_some("finish-callback receivers (BK_PLUGIN_CALLBACK_TLS_VERIFY=false)"),
        (!config.apigw_tls_verify)
            .then_some("the gateway manager (BK_PLUGIN_APIGW_TLS_VERIFY=false)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    items.push(if unverified.is_empty() {
        Item::new(Status::Ok, "outbound TLS", "certificates verified")
    } else {
        Item::new(
            Status::Warn,
            "outbound TLS",
            format!("certificates NOT verified: {}", unverified.join("; ")),
        )
    });
    items
}

/// Logs `items` and fails naming every blocker.
pub(crate) fn enforce(items: &[Item]) -> anyhow::Result<()> {
    let mut blockers = vec![];
    for item in items {
        match item.status {
            Status::Ok => tracing::debug!("{item}"),
            Status::Warn => tracing::warn!("{item}"),
            Status::Missing => blockers.push(format!("{}: {}", item.name, item.detail)),
        }
    }
    if !blockers.is_empty() {
        bail!(
            "refusing to start in {}: {}",
            crate::config::var("BKPAAS_ENVIRONMENT").unwrap_or_else(|| "this environment".into()),
            blockers.join("; ")
        );
    }
    Ok(())
}

/// The gateway public key `serve` verifies JWTs with, and a verifier for it. Outside dev
/// (unless stag with `BK_APIGW_REQUIRE_EXEMPT`) a key is required: when none is configured or
/// stored, it is fetched once from the gateway manager and stored.
pub(crate) async fn gateway_key(
    config: &Config,
    store: &Store,
) -> anyhow::Result<Option<(FoundKey, GatewayVerifier)>> {
    let required = !config.jwt_optional();
    let found = public_key::resolve(config, store, required)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "BKPAAS_ENVIRONMENT={} needs the API gateway public key to verify X-Bkapi-JWT; looked at APIGW_PUBLIC_KEY, APIGW_PUBLIC_KEY_FILE, the database, then the gateway: {e}",
                config.environment.name()
            )
        })?;
    match found {
        Some(found) => {
            let verifier = GatewayVerifier::new(&found.pem, &config.gateway_name)
                .map_err(|e| anyhow::anyhow!("{} : {e}", found.source))?;
            tracing::info!(source = %found.source, gateway = %config.gateway_name, "gateway public key loaded");
            Ok(Some((found, verifier)))
        }
        None if required => bail!(
            "BKPAAS_ENVIRONMENT={} needs the API gateway public key: set APIGW_PUBLIC_KEY (PEM) or APIGW_PUBLIC_KEY_FILE, or run `fetch-apigw-public-key`",
            config.environment.name()
        ),
        None => Ok(None),
    }
}

async fn migrated_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, 2)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database ({})",
                config.database_source
            )
        })?;
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        bail!(
            "the database is not migrated ({} pending): run `migrate` first",
            pending.len()
        );
    }
    Ok(store)
}

/// `fetch-apigw-public-key`: fetches the gateway's public key and stores it in the database.
pub(crate) async fn fetch_public_key(config: Config, print: bool) -> anyhow::Result<()> {
    let store = migrated_store(&config).await?;
    let pem = public_key::fetch_and_store(&config, &store).await?;
    if print {
        println!("{}", pem.trim_end());
    }
    println!(
        "stored the public key of gateway {} in the database",
        config.gateway_name
    );
    Ok(())
}

/// `sync-apigw`: registers the gateway (see `apigw::sync`).
pub(crate) async fn sync_apigw(
    config: Config,
    description: String,
    force: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let plan = sync::plan(&config, &description)?;
    if dry_run {
        let calls: Vec<_> = plan
            .calls
            .iter()
            .map(|c| serde_json::json!({"method": c.method.as_str(), "path": format!("api/v1/apis/{}/{}", plan.gateway, c.path), "body": c.body}))
            .collect();
        let document = serde_json::json!({
            "gateway": plan.gateway,
            "stage": plan.stage,
            "version": plan.version,
            "hash": plan.hash,
            "calls": calls,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        println!("dry run: nothing was sent");
        return Ok(());
    }
    let store = migrated_store(&config).await?;
    match sync::run(&config, &store, &plan, force).await? {
        sync::Outcome::Unchanged => println!(
            "gateway {} is up to date (nothing changed since the last sync); use --force to sync anyway",
            plan.gateway
        ),
        sync::Outcome::Released(version) => println!(
            "gateway {} synced: version {version} released to stage {}",
            plan.gateway, plan.stage
        ),
    }
    Ok(())
}

/// `check`: prints every item and fails when any is missing.
pub(crate) async fn check(config: Config, registry: Arc<Registry>) -> anyhow::Result<()> {
    let mut items = static_items(&config, &registry);
    let store = match Store::connect(&config.database_url, 2).await {
        Ok(store) => match store.pending_migrations().await {
            Ok(pending) if pending.is_empty() => {
                items.push(Item::new(
                    Status::Ok,
                    "database",
                    format!("reachable and migrated ({})", config.database_source),
                ));
                Some(store)
            }
            Ok(pending) => {
                items.push(Item::new(
                    if config.is_dev() {
                        Status::Warn
                    } else {
                        Status::Missing
                    },
                    "database",
                    format!(
                        "{} migration(s) pending: run `migrate`{}",
                        pending.len(),
                        if config.is_dev() {
                            " (dev migrates at start)"
                        } else {
                            ""
                        }
                    ),
                ));
                None
            }
            Err(e) => {
                items.push(Item::new(Status::Missing, "database", e.to_string()));
                None
            }
        },
        Err(e) => {
            items.push(Item::new(
                Status::Missing,
                "database",
                format!("cannot connect ({}): {e}", config.database_source),
            ));
            None
        }
    };
    let key = match public_key::from_env(&config) {
        Err(e) => Item::new(Status::Missing, "public key", e.to_string()),
        Ok(Some(found)) => key_item(&config, &found),
        Ok(None) => {
            let stored = match &store {
                Some(store) => public_key::from_database(store, &config.gateway_name)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            match stored {
                Some(pem) => key_item(
                    &config,
                    &FoundKey {
                        pem,
                        source: public_key::KeySource::Database,
                    },
                ),
                None if config.jwt_optional() => Item::new(
                    Status::Ok,
                    "public key",
                    "none (not needed: JWTs are not required here)",
                ),
                None if manager::url_template().is_some() && config.app_secret.is_some() => {
                    Item::new(
                        Status::Warn,
                        "public key",
                        "not stored yet: serve will fetch it from the gateway at start (run fetch-apigw-public-key in the pre-release hook)",
                    )
                }
                None => Item::new(
                    Status::Missing,
                    "public key",
                    "set APIGW_PUBLIC_KEY or APIGW_PUBLIC_KEY_FILE, or run fetch-apigw-public-key",
                ),
            }
        }
    };
    items.push(key);
    let mut blockers = 0;
    for item in &items {
        println!("{item}");
        if item.status == Status::Missing {
            blockers += 1;
        }
    }
    if blockers > 0 {
        bail!(
            "{blockers} blocker(s): this plugin cannot start in {}",
            config.environment.name()
        );
    }
    Ok(())
}

fn key_item(config: &Config, found: &FoundKey) -> Item {
    match GatewayVerifier::new(&found.pem, &config.gateway_name) {
        Ok(_) => Item::new(Status::Ok, "public key", format!("from {}", found.source)),
        Err(e) => Item::new(
            Status::Missing,
            "public key",
            format!("{}: {e}", found.source),
        ),
    }
}
