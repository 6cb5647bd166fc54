//! The tables: `bkp_schedule` (one row per waiting or finished invocation) and
//! `bkp_callback` (the inbox of callbacks delivered to invocations).
//!
//! Times are milliseconds since the Unix epoch in UTC (`BIGINT`): portable across SQLite,
//! MySQL and PostgreSQL, cheap to compare and index. JSON is stored as text, but rows carry it
//! as [`JsonText`], which only a serialized JSON value can become; the protocol state and the
//! finish-callback state are enums ([`StoredState`], [`NotifyState`]), decoded once, here.

use bk_plugin_core::State;
use sea_orm::entity::prelude::*;
use serde_json::{Map, Value};

/// The state of a stored invocation: an invocation is stored only once its first run asked to
/// wait, so it is never EMPTY.
///
/// - POLL: written by `invoke` (first run) or a worker's step; a worker moves it on.
/// - CALLBACK: written likewise; a worker moves it on when a callback arrives or it times out.
/// - SUCCESS, FAIL: terminal, written by a worker's step (or the unknown-version rescuer); only
///   the cleanup deletes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub(crate) enum StoredState {
    /// Waiting to run again at `run_at`.
    #[sea_orm(num_value = 2)]
    Poll,
    /// Waiting for a callback, until `callback_deadline`.
    #[sea_orm(num_value = 3)]
    Callback,
    /// Finished.
    #[sea_orm(num_value = 4)]
    Success,
    /// Failed.
    #[sea_orm(num_value = 5)]
    Fail,
}

impl StoredState {
    /// The protocol state.
    pub(crate) fn state(self) -> State {
        match self {
            Self::Poll => State::Poll,
            Self::Callback => State::Callback,
            Self::Success => State::Success,
            Self::Fail => State::Fail,
        }
    }

    /// Whether the invocation has finished.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Fail)
    }
}

/// Finish-callback delivery (`notify_state`). Set to PENDING by the step that finishes an
/// invocation whose context asks for it; moved on by the notifier only.
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i16", db_type = "SmallInteger")]
pub(crate) enum NotifyState {
    /// Nothing to deliver.
    #[sea_orm(num_value = 0)]
    None,
    /// Waiting for delivery.
    #[sea_orm(num_value = 1)]
    Pending,
    /// Delivered.
    #[sea_orm(num_value = 2)]
    Delivered,
    /// Every try failed.
    #[sea_orm(num_value = 3)]
    GaveUp,
}

impl NotifyState {
    /// The name the inspection commands show.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::GaveUp => "gave_up",
        }
    }
}

/// A JSON document as stored: made only by serializing a JSON value, read back by parsing.
#[derive(Clone, Debug, PartialEq, Eq, DeriveValueType)]
pub(crate) struct JsonText(String);

impl JsonText {
    /// The text of `value`.
    pub(crate) fn of(value: &Value) -> Self {
        Self(value.to_string())
    }

    /// The text of the object `map`.
    pub(crate) fn of_object(map: &Map<String, Value>) -> Self {
        // A map serializes as the object it is, without cloning it into a `Value`.
        Self(serde_json::to_string(map).unwrap_or_else(|_| "{}".into()))
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, or a message saying why the stored text is not JSON.
    pub(crate) fn value(&self) -> Result<Value, String> {
        serde_json::from_str(&self.0).map_err(|e| e.to_string())
    }

    /// The value; `null` when the stored text is not JSON.
    pub(crate) fn value_or_null(&self) -> Value {
        self.value().unwrap_or(Value::Null)
    }

    /// The object, or `None` when the stored text is not a JSON object.
    pub(crate) fn object(&self) -> Option<Map<String, Value>> {
        match self.value() {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }
}

/// `bkp_schedule`.
pub(crate) mod schedule {
    use sea_orm::entity::prelude::*;

    use super::{JsonText, NotifyState, StoredState};

    /// One invocation that went through the scheduler.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_schedule")]
    pub(crate) struct Model {
        /// The invocation's trace id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub trace_id: String,
        /// The plugin version it runs.
        pub plugin_version: String,
        /// The protocol state (2 POLL, 3 CALLBACK, 4 SUCCESS, 5 FAIL).
        pub state: StoredState,
        /// How many times `execute` has run.
        pub invoke_count: i32,
        /// The invoke's `inputs` (JSON).
        pub inputs: JsonText,
        /// The invoke's `context` (JSON).
        pub context: JsonText,
        /// The plugin's storage (JSON object).
        pub storage: JsonText,
        /// The outputs so far (JSON object).
        pub outputs: JsonText,
        /// The `err` of a failed invocation.
        #[sea_orm(column_name = "err")]
        pub error: Option<String>,
        /// When the worker should pick the row up: a POLL's due time, a delivered callback's
        /// arrival, or a CALLBACK's timeout. Null once terminal.
        pub run_at: Option<i64>,
        /// The worker holding the row while it runs a step.
        pub lease_owner: Option<String>,
        /// When that lease runs out unless renewed.
        pub lease_until: Option<i64>,
        /// When a CALLBACK invocation gives up waiting.
        pub callback_deadline: Option<i64>,
        /// Finish-callback delivery: 0 none, 1 pending, 2 delivered, 3 given up.
        pub notify_state: NotifyState,
        /// Finish-callback attempts so far.
        pub notify_attempts: i32,
        /// When the next finish-callback attempt is due.
        pub notify_at: Option<i64>,
        /// When the invocation was created.
        pub created_at: i64,
        /// When the row last changed.
        pub updated_at: i64,
        /// When the invocation reached SUCCESS or FAIL.
        pub finished_at: Option<i64>,
        /// The W3C trace context of the invoke (`traceparent`, then `tracestate` on a second
        /// line), so that re-runs and the finish callback continue its trace; null when
        /// tracing was off.
        pub trace_context: Option<String>,
        /// Where the finish callback goes (scheme, host and port; empty when the URL is
        /// unusable), set with `notify_state = PENDING`.
        pub notify_receiver: Option<String>,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `bkp_callback`.
pub(crate) mod callback {
    use sea_orm::entity::prelude::*;

    use super::JsonText;

    /// One callback delivered to an invocation; the (trace id, callback id) pair is unique, so a
    /// duplicate delivery is recognised by the database.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_callback")]
    pub(crate) struct Model {
        /// The invocation.
        #[sea_orm(primary_key, auto_increment = false)]
        pub trace_id: String,
        /// The callback id from `prepare_callback`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub callback_id: String,
        /// The posted JSON body.
        pub data: JsonText,
        /// Whether a step has consumed it.
        pub consumed: bool,
        /// When it arrived.
        pub created_at: i64,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `bkp_log`.
pub(crate) mod log {
    use sea_orm::entity::prelude::*;

    /// One captured log line of a trace.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_log")]
    pub(crate) struct Model {
        /// Insertion order.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The trace the line belongs to.
        pub trace_id: String,
        /// When it was emitted (ms since the epoch).
        pub created_at: i64,
        /// The formatted line.
        pub line: String,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
