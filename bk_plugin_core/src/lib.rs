//! The authoring API of the BlueKing plugin framework.
//!
//! A plugin author writes models with [`inputs`], [`context_inputs`] and [`outputs`], a plugin
//! type with [`bk_plugin`], and an implementation of [`Plugin`]. This crate turns them into
//! pydantic-v1-style JSON schemas, validates and coerces requests the way the Python runtime
//! does, runs one step of an invocation ([`executor`]) and lets authors test their plugins
//! in-process ([`testing`]). It does no HTTP and no SQL: `bk_plugin_server` does.

extern crate self as bk_plugin_core;

pub mod bkapi;
pub mod callback;
pub mod coerce;
pub mod constraint;
pub mod context;
pub mod executor;
pub mod field;
pub mod form;
pub mod meta;
pub mod model;
pub mod plugin;
pub mod problem;
pub mod registry;
pub mod schema;
pub mod state;
pub mod testing;
pub mod version;

pub use bk_plugin_macros::{bk_plugin, context_inputs, inputs, outputs};
pub use bkapi::{Answer, BkApi, BkApiError, BkApiErrorKind, BkUser};
pub use callback::{CallbackIssuer, CallbackPreparation, IssueCallbackError};
pub use context::{CallbackDelivery, Run, StepServices};
pub use meta::{PluginMeta, ScopeRule};
#[doc(hidden)]
pub use model::assert_model;
pub use model::{Empty, Model, ModelShape, PluginCallbackInfo, ValidationError};
#[doc(hidden)]
pub use plugin::BuildPlugin;
pub use plugin::{Context, Next, Plugin, PluginError, PluginModels, Step};
#[doc(hidden)]
pub use registry::assert_plugin;
pub use registry::{PluginVersion, Registry, RegistryError};
pub use state::State;

/// What a plugin module needs, in one import: the macros and types of a declaration, JSON
/// (`json!`, `Value`, `Map`), `Duration` for waiting, `tracing` for logging (every line is
/// tagged with the trace id), the BlueKing API client ([`BkApi`], [`BkApiError`]) and the test
/// [`Harness`](crate::testing::Harness) with its [`BkApiMock`](crate::testing::BkApiMock).
pub mod prelude {
    pub use crate::testing::{BkApiMock, Harness, HarnessError};
    pub use crate::{
        BkApi, BkApiError, Context, Empty, Next, Plugin, PluginCallbackInfo, PluginError, Run,
        State, Step, bk_plugin, context_inputs, inputs, outputs,
    };
    pub use serde_json::{self, Map, Value, json};
    pub use std::time::Duration;
    pub use tracing;
}

/// The crates behind models, re-exported: the code `#[inputs]`, `#[context_inputs]` and
/// `#[outputs]` generates reaches them here (so an author's Cargo.toml needs only the framework),
/// and compiler messages about a model name these paths.
pub mod deps {
    pub use schemars;
    pub use serde;
    pub use serde_json;
}

/// Re-exports used by the code our macros generate. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{ErasedPlugin, PluginRecord, erase};
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}
