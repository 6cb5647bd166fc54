//! The command line of a plugin binary: `serve` (default), `worker`, `migrate`, `versions`,
//! `detail`, `invoke`, `schedule`, `schedules`, `logs`, `version`, `openapi`, and the deployment
//! commands `sync-apigw`, `fetch-apigw-public-key` and `check` (in `deploy`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::{Context as _, bail};
use bk_plugin_core::executor::StepInput;
use bk_plugin_core::{PluginMeta, Registry, State};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::app::{AppState, Parked, new_trace_id};
use crate::config::Config;
use crate::logging::LogCapture;
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
pub fn main<I, T>(meta: PluginMeta, apis: PluginApis, args: I) -> anyhow::Result<()>
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
    let mut config = match Config::from_env() {
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
                .with_context(|| format!("no plugin version {version}"))?;
            println!("{}", serde_json::to_string_pretty(found.detail())?);
            Ok(())
        }
        Command::Serve { no_worker, port } => {
            if let Some(port) = port {
                config.port = port;
            }
            let worker = config.embedded_worker && !no_worker;
            serve(config, registry, meta, apis, worker, capture)
        }
        Command::Worker => block_on(async move {
            let signal = shutdown_signal();
            let state = connect_state(config, registry, meta, apis, false, capture, false).await?;
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
            let state = connect_state(config, registry, meta, apis, false, capture, false).await?;
            invoke_and_follow(
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    runtime()?.block_on(f)
}

/// Connects and migrates (dev, or `migrate_always`) or checks that the schema is current.
async fn connect_state(
    config: Config,
    registry: Arc<Registry>,
    meta: PluginMeta,
    apis: PluginApis,
    migrate_always: bool,
    capture: Option<LogCapture>,
    serves_http: bool,
) -> anyhow::Result<Arc<AppState>> {
    let store = Store::connect(&config.database_url, config.db_max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database {}",
                redact(&config.database_url)
            )
        })?;
    if config.is_dev() || migrate_always {
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
    let key = if serves_http {
        crate::deploy::gateway_key(&config, &store).await?
    } else {
        None
    };
    if let Some(capture) = capture {
        crate::logging::spawn_writer(store.clone(), capture);
    }
    let (found, verifier) = key.unzip();
    let state = Arc::new(AppState::new(
        registry,
        store,
        Arc::new(config),
        Arc::new(meta),
        apis,
        verifier,
    ));
    if let Some(found) = found {
        crate::apigw::public_key::spawn_refresh(state.clone(), found);
    }
    Ok(state)
}

/// A database URL with its password hidden, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn serve(
    config: Config,
    registry: Arc<Registry>,
    meta: PluginMeta,
    apis: PluginApis,
    embedded_worker: bool,
    capture: Option<LogCapture>,
) -> anyhow::Result<()> {
    let rt = runtime()?;
    actix_web::rt::System::with_tokio_rt(move || rt).block_on(async move {
        let signal = shutdown_signal();
        let bind = (config.bind.clone(), config.port);
        let state = connect_state(config, registry, meta, apis, false, capture, true).await?;
        let worker = embedded_worker.then(|| crate::worker::start(state.clone()));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(actix_web::middleware::from_fn(crate::api::observe_http))
                .configure(crate::api::configure)
        })
        .disable_signals()
        .shutdown_timeout(25)
        .bind(bind.clone())
        .with_context(|| format!("cannot listen on {}:{}", bind.0, bind.1))?
        .run();
        tracing::info!(
            address = %format!("{}:{}", bind.0, bind.1),
            versions = ?state.registry.version_names(),
            worker = embedded_worker,
            "plugin server listening"
        );
        // One signal stops both at once: HTTP drains its connections while the worker stops
        // claiming and lets its in-flight steps finish.
        let handle = server.handle();
        let stop = async move {
            signal.await;
            tracing::info!("shutting down");
            let stop_worker = async move {
                if let Some(worker) = worker {
                    worker.shutdown().await;
                }
            };
            tokio::join!(handle.stop(true), stop_worker);
        };
        let (served, ()) = tokio::join!(server, stop);
        served?;
        Ok(())
    })
}

/// Resolves on SIGTERM or SIGINT. The SIGTERM handler is installed when this is called, not when
/// it is first awaited, so a signal that arrives while the process is still connecting (a TLS
/// handshake with the database can take a moment) stops it cleanly instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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

async fn invoke_and_follow(
    state: Arc<AppState>,
    version_name: &str,
    inputs: &str,
    context: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let version = state
        .registry
        .get(version_name)
        .with_context(|| format!("no plugin version {version_name}"))?;
    let inputs: Value = serde_json::from_str(inputs).context("--inputs is not valid JSON")?;
    let context: Value = serde_json::from_str(context).context("--context is not valid JSON")?;
    let trace_id = new_trace_id();
    let outcome = version
        .run(
            StepInput::first(trace_id.clone(), inputs.clone(), context.clone()),
            state.issuer.clone(),
        )
        .await;
    println!("trace_id: {trace_id}");
    match state
        .park(version_name, &trace_id, &inputs, &context, &outcome)
        .await?
    {
        Parked::Stored => {}
        Parked::NotWaiting => {
            let err = outcome.err().map(str::to_string);
            print_result(
                outcome.state(),
                &Value::Object(outcome.outputs),
                err.as_deref(),
            );
            return Ok(());
        }
        Parked::Refused(err) => {
            print_result(State::Fail, &Value::Null, Some(&err));
            return Ok(());
        }
    }
    println!(
        "state: {} ({}), following it to its end",
        outcome.state().as_i32(),
        outcome.state()
    );
    if outcome.state() == State::Callback {
        println!("outputs so far: {}", Value::Object(outcome.outputs.clone()));
    }
    let worker = crate::worker::start(state.clone());
    let started = std::time::Instant::now();
    let result = loop {
        if let Some(row) = state.store.get(&trace_id).await? {
            let row_state = State::from_i32(row.state).unwrap_or(State::Fail);
            if row_state.is_terminal() {
                let outputs: Value = serde_json::from_str(&row.outputs).unwrap_or(Value::Null);
                print_result(row_state, &outputs, row.error.as_deref());
                break Ok(());
            }
        }
        if started.elapsed() > timeout {
            break Err(anyhow::anyhow!(
                "gave up after {}s; the invocation is still waiting (trace_id {trace_id})",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.shutdown().await;
    result
}

fn print_result(state: State, outputs: &Value, err: Option<&str>) {
    let result = json!({"state": state.as_i32(), "state_name": state.name(), "outputs": outputs, "err": err});
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("mysql://root:s3cret@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(
            redact("sqlite://bk_plugin.db?mode=rwc"),
            "sqlite://bk_plugin.db?mode=rwc"
        );
    }
}
