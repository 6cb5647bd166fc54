//! `serve`: the HTTP server (routes, middleware, shared state) with the embedded worker, both
//! stopped by one signal.

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use bk_plugin_core::{PluginMeta, Registry};

use crate::bootstrap::{Connect, connect_state, runtime, shutdown_signal};
use crate::config::Config;
use crate::logging::LogCapture;
use crate::plugin_api::PluginApis;

/// Serves until SIGTERM or SIGINT, with the worker when `embedded_worker`.
pub(crate) fn serve(
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
        let (state, auth) =
            connect_state(config, registry, meta, apis, capture, Connect::Server).await?;
        let worker = embedded_worker.then(|| crate::worker::start(state.clone()));
        let data = web::Data::from(state.clone());
        let auth = web::Data::new(auth);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(auth.clone())
                .wrap(actix_web::middleware::from_fn(crate::error::stamp_trace_id))
                .wrap(actix_web::middleware::from_fn(crate::api::observe_http))
                .wrap(actix_web::middleware::from_fn(crate::otel::trace_requests))
                .configure(crate::api::configure)
        })
        .disable_signals()
        .shutdown_timeout(25)
        .bind(bind.clone())
        .with_context(|| format!("cannot listen on {}:{}", bind.0, bind.1))?
        .run();
        tracing::info!(
            address = %format!("{}:{}", bind.0, bind.1),
            versions = ?state.registry().version_names(),
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
