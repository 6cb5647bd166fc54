//! The command line of a plugin binary: `serve` (default), `worker`, `migrate`, `versions`,
//! `detail`, `invoke`, `schedule`, `schedules`, `logs`, `version`, `openapi`, and the deployment
//! commands `sync-apigw`, `fetch-apigw-public-key` and `check` (in `deploy`). This module
//! parses the arguments and hands each command to the module that does it: `bootstrap`
//! (runtime, database, shared state, signals), `serve`, `local_invoke`, `inspect`, `deploy`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bk_plugin_core::{PluginMeta, Registry};
use clap::{Parser, Subcommand};

use crate::bootstrap::{Connect, block_on, connect_state, shutdown_signal};
use crate::config::Config;
use crate::plugin_api::PluginApis;
use crate::store::Store;

/// A BlueKing plugin built with bk-plugin-framework for Rust.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the plugin protocol over HTTP on $PORT (default 5000), with an embedded worker.
    Serve {
        /// Do not run the embedded worker (run `worker` processes instead).
        #[arg(long)]
        no_worker: bool,
        /// Listen on this port instead of $PORT.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run only the worker that re-runs waiting invocations (scale out with more of these).
    Worker,
    /// Apply database migrations (idempotent).
    Migrate,
    /// List the plugin versions, newest first.
    Versions,
    /// Print the detail (schemas, form) of one version.
    Detail {
        /// The version.
        version: String,
    },
    /// Run one invocation on the configured database and follow it to its end.
    Invoke {
        /// The version.
        version: String,
        /// The inputs, as JSON.
        #[arg(long, default_value = "{}")]
        inputs: String,
        /// The context, as JSON.
        #[arg(long, default_value = "{}")]
        context: String,
        /// Give up following after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Show one stored invocation: state, version, times, err, outputs, storage, finish callback.
    Schedule(crate::inspect::ScheduleArgs),
    /// List stored invocations, newest first (filter by state, version, creation time).
    Schedules(crate::inspect::SchedulesArgs),
    /// Print the captured log lines of one invocation.
    Logs(crate::inspect::LogsArgs),
    /// Print the framework version.
    Version,
    /// Print the OpenAPI 3.1 document that `GET /schema/` serves (JSON, or YAML with --yaml).
    Openapi {
        /// Print YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Register the plugin with its API gateway (the pre-release hook runs this after `migrate`).
    SyncApigw {
        /// Sync even when nothing changed since the last successful sync.
        #[arg(long)]
        force: bool,
        /// Print the calls it would make and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Fetch the API gateway's public key and store it in the database for `serve`.
    FetchApigwPublicKey {
        /// Also print the key.
        #[arg(long)]
        print: bool,
    },
    /// Check the configuration for this environment; exits non-zero on a blocker.
    Check,
}

/// Parses `args` and runs the command.
pub(crate) fn main<I, T>(meta: PluginMeta, apis: PluginApis, args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() && crate::json_log::json_mode() {
                crate::json_log::print_error(true, e.to_string().trim_end());
            } else {
                let _ = e.print();
            }
            if e.use_stderr() {
                bail!("invalid command line");
            }
            return Ok(());
        }
    };
    let command = cli.command.unwrap_or(Command::Serve {
        no_worker: false,
        port: None,
    });
    if let Command::Version = command {
        println!("bk-plugin-framework-rust {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) if matches!(command, Command::Check) => {
            println!("MISSING configuration: {e}");
            bail!("1 blocker: {e}");
        }
        Err(e) => bail!(e),
    };
    let capture = crate::logging::init(&config);
    meta.check()
        .map_err(|e| anyhow::anyhow!("invalid allow_scope: {e}"))?;
    let mut registry = Registry::load()?;
    for warning in registry.bind_plugin_code(&config.app_code) {
        tracing::warn!("{warning}");
    }
    let registry = Arc::new(registry);
    let result = run(command, config, registry, meta, apis, capture);
    // Whatever the command, spans still queued are sent (a few seconds at most).
    crate::otel::shutdown();
    result
}

/// Runs one command after the common start-up.
fn run(
    command: Command,
    mut config: Config,
    registry: Arc<Registry>,
    meta: PluginMeta,
    apis: PluginApis,
    capture: Option<crate::logging::LogCapture>,
) -> anyhow::Result<()> {
    match command {
        Command::Versions => {
            for version in registry.version_names() {
                println!("{version}");
            }
            Ok(())
        }
        Command::Detail { version } => {
            let found = registry
                .get(&version)
                .with_context(|| crate::error::no_such_version(&version))?;
            println!("{}", serde_json::to_string_pretty(found.detail())?);
            Ok(())
        }
        Command::Serve { no_worker, port } => {
            if let Some(port) = port {
                config.port = port;
            }
            let worker = config.embedded_worker && !no_worker;
            crate::serve::serve(config, registry, meta, apis, worker, capture)
        }
        Command::Worker => block_on(async move {
            let signal = shutdown_signal();
            let (state, _) =
                connect_state(config, registry, meta, apis, capture, Connect::Worker).await?;
            let handle = crate::worker::start(state);
            signal.await;
            handle.shutdown().await;
            Ok(())
        }),
        Command::Migrate => block_on(async move {
            let store = Store::connect(&config.database_url, 2).await?;
            store.migrate().await?;
            if config.is_dev() {
                println!("database is up to date");
            } else {
                // The pre-release hook's output is collected like the processes': JSON there too.
                tracing::info!("database is up to date");
            }
            Ok(())
        }),
        Command::Invoke {
            version,
            inputs,
            context,
            timeout,
        } => block_on(async move {
            let (state, _) =
                connect_state(config, registry, meta, apis, capture, Connect::Worker).await?;
            crate::local_invoke::invoke_and_follow(
                state,
                &version,
                &inputs,
                &context,
                Duration::from_secs(timeout),
            )
            .await
        }),
        Command::Schedule(args) => crate::inspect::schedule(&config, args),
        Command::Schedules(args) => crate::inspect::schedules(&config, args),
        Command::Logs(args) => crate::inspect::logs(&config, args),
        Command::Openapi { yaml } => Ok(crate::openapi::print(
            &config, &registry, &meta, &apis, yaml,
        )?),
        Command::Version => Ok(()),
        Command::SyncApigw { force, dry_run } => block_on(crate::deploy::sync_apigw(
            config,
            meta.description.clone(),
            force,
            dry_run,
        )),
        Command::FetchApigwPublicKey { print } => {
            block_on(crate::deploy::fetch_public_key(config, print))
        }
        Command::Check => block_on(crate::deploy::check(config, registry)),
    }
}
