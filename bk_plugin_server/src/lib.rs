//! The BlueKing plugin runtime for plugins written with `bk_plugin_core`.
//!
//! A plugin project depends on this crate only and writes:
//!
//! ```no_run
//! fn main() {
//!     bk_plugin_server::Server::new()
//!         .description("what this plugin does")
//!         .run()
//! }
//! ```
//!
//! The binary then speaks the BlueKing plugin protocol over HTTP (`serve`), re-runs waiting
//! invocations (`worker`, embedded in `serve` by default), migrates its database (`migrate`) and
//! runs invocations from the command line (`invoke`). See `--help`.

//! # The supported API
//!
//! What this crate promises, and all it exports: [`Server`] and [`run`]; the data APIs
//! ([`PluginApis`], [`ApiRequest`], [`ApiMethod`], [`ApiGroup`], [`HandlerError`]); the
//! authoring API of `bk_plugin_core`, re-exported item by item (the attribute macros, [`Plugin`],
//! [`Step`], [`Next`], [`Context`], the model types and [`field`] defaults, [`State`],
//! [`prelude`], [`testing`], [`deps`]); and `serde_json` and
//! `tracing`, so that a plugin needs no other dependency. Every module of the runtime is
//! private: its internals are no semver promise (see `docs/architecture.md`).

mod api;
mod apigw;
mod app;
mod auth;
mod bootstrap;
mod cli;
mod config;
mod deploy;
mod drivers;
mod error;
mod http_client;
mod inspect;
mod json_log;
mod local_invoke;
mod logging;
mod metrics;
mod openapi;
mod otel;
mod plugin_api;
mod serve;
mod store;
mod time;
mod token;
mod worker;

pub use bk_plugin_core::{
    CallbackDelivery, CallbackPreparation, Context, Empty, Model, ModelShape, Next, Plugin,
    PluginCallbackInfo, PluginError, PluginModels, Run, State, Step, ValidationError, bk_plugin,
    context_inputs, deps, field, inputs, outputs, prelude, testing,
};

/// Used by the code the attribute macros generate. Not part of the public API.
#[doc(hidden)]
pub use bk_plugin_core::{__private, BuildPlugin, assert_model, assert_plugin};

/// Re-exported so that a plugin project needs no dependency but this crate (the prelude brings
/// both too): `serde_json` for JSON values and `json!`, `tracing` for logging (every line is
/// tagged with the trace id).
pub use serde_json;
pub use tracing;

// The author guide. Its code blocks are not doc-tests of this crate (which would see this
// crate's own dependencies): `tests/author_guide.rs` builds them in a crate of their own.
#[cfg(not(doctest))]
#[doc = include_str!("../../docs/authoring.md")]
pub mod guide {}
pub use plugin_api::{
    ApiFuture, ApiGroup, ApiHandler, ApiMethod, ApiRequest, HandlerError, PluginApis,
};

use bk_plugin_core::PluginMeta;
use std::process::ExitCode;

/// A plugin process: its meta and data APIs, then `run()`.
#[derive(Debug, Default)]
pub struct Server {
    meta: PluginMeta,
    apis: PluginApis,
}

impl Server {
    /// A server with no description, no scope restrictions and no data APIs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin's description (`description` in meta).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.meta.description = description.into();
        self
    }

    /// Restricts the caller `app_code` to `scope_type` and these values (`allow_scope`).
    pub fn allow_scope<I, S>(mut self, app_code: &str, scope_type: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.meta = self.meta.allow_scope(app_code, scope_type, values);
        self
    }

    /// The data APIs for form widgets.
    pub fn apis(mut self, apis: PluginApis) -> Self {
        self.apis = apis;
        self
    }

    /// Parses the command line and runs; exits the process with a failure status on error.
    pub fn run(self) {
        let code = self.run_with_args(std::env::args_os());
        if code != ExitCode::SUCCESS {
            std::process::exit(1);
        }
    }

    /// Runs with explicit arguments (the first is the program name).
    pub fn run_with_args<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match cli::main(self.meta, self.apis, args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                json_log::print_error(json_log::json_mode(), &format!("{e:#}"));
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs a plugin with no description and no data APIs: `fn main() { bk_plugin_server::run() }`.
pub fn run() {
    Server::new().run()
}
