//! What the queue writes: a new waiting invocation ([`NewWaiting`] with its [`Wait`]) and how
//! a leased step ends ([`Transition`], one named constructor per transition), with the columns
//! each sets.

use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use sea_orm::sea_query::Expr;

use bk_plugin_core::State;

use super::entity::{JsonText, NotifyState, StoredState, schedule};

/// A new waiting invocation, written when its first run asks to wait.
#[derive(Debug, Clone)]
pub(crate) struct NewWaiting {
    /// The trace id.
    pub(crate) trace_id: String,
    /// The plugin version.
    pub(crate) version: String,
    /// What it waits for.
    pub(crate) wait: Wait,
    /// The invoke's inputs.
    pub(crate) inputs: JsonText,
    /// The invoke's context.
    pub(crate) context: JsonText,
    /// Storage after the first run.
    pub(crate) storage: JsonText,
    /// Outputs after the first run.
    pub(crate) outputs: JsonText,
    /// The invoke's trace context (`otel::propagation`), when tracing is on.
    pub(crate) trace_context: Option<String>,
}

/// What a waiting invocation waits for (times in ms since the epoch, by [`now_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// POLL: due again at this time.
    Poll {
        /// When it is due.
        run_at: i64,
    },
    /// CALLBACK: woken by a callback, or due at `deadline`, when it gives up waiting.
    Callback {
        /// When it gives up waiting.
        deadline: i64,
    },
}

impl Wait {
    fn state(self) -> StoredState {
        match self {
            Self::Poll { .. } => StoredState::Poll,
            Self::Callback { .. } => StoredState::Callback,
        }
    }

    fn run_at(self) -> i64 {
        match self {
            Self::Poll { run_at } => run_at,
            Self::Callback { deadline } => deadline,
        }
    }

    fn callback_deadline(self) -> Option<i64> {
        match self {
            Self::Poll { .. } => None,
            Self::Callback { deadline } => Some(deadline),
        }
    }
}

/// How a leased step ends: one named constructor per transition (River's per-transition
/// parameters), so that a terminal state with a due time, or a CALLBACK without a deadline,
/// cannot be written.
#[derive(Debug, Clone)]
pub(crate) struct Transition {
    to: To,
    pub(super) invoke_count: i32,
    /// New storage and outputs, or `None` to keep what is stored.
    written: Option<(JsonText, JsonText)>,
    pub(super) consumed_callback: Option<String>,
}

#[derive(Debug, Clone)]
enum To {
    Wait(Wait),
    Success { notify: Option<String> },
    Fail { err: String, notify: Option<String> },
}

impl Transition {
    /// Waits again (POLL or CALLBACK) after `invoke_count` runs, with this storage and outputs.
    pub(crate) fn wait(
        wait: Wait,
        invoke_count: i32,
        storage: JsonText,
        outputs: JsonText,
    ) -> Self {
        Self {
            to: To::Wait(wait),
            invoke_count,
            written: Some((storage, outputs)),
            consumed_callback: None,
        }
    }

    /// SUCCESS after `invoke_count` runs, with these outputs; `notify`: deliver the finish
    /// callback to this receiver ([`finish_callback_receiver`]).
    pub(crate) fn succeed(
        invoke_count: i32,
        storage: JsonText,
        outputs: JsonText,
        notify: Option<String>,
    ) -> Self {
        Self {
            to: To::Success { notify },
            invoke_count,
            written: Some((storage, outputs)),
            consumed_callback: None,
        }
    }

    /// FAIL with `err` after `invoke_count` runs, keeping what is stored unless `written`
    /// gives the run's storage and outputs; `notify`: deliver the finish callback to this
    /// receiver ([`finish_callback_receiver`]).
    pub(crate) fn fail(
        err: String,
        invoke_count: i32,
        written: Option<(JsonText, JsonText)>,
        notify: Option<String>,
    ) -> Self {
        Self {
            to: To::Fail { err, notify },
            invoke_count,
            written,
            consumed_callback: None,
        }
    }

    /// Goes on waiting for a callback until `deadline`, changing nothing else (woken with
    /// nothing to consume).
    pub(crate) fn keep_waiting(deadline: i64, invoke_count: i32) -> Self {
        Self {
            to: To::Wait(Wait::Callback { deadline }),
            invoke_count,
            written: None,
            consumed_callback: None,
        }
    }

    /// This transition of the row `trace_id`, leased by `owner` in the state `left`.
    pub(crate) fn of_lease(self, trace_id: &str, owner: &str, left: StoredState) -> FinishedStep {
        FinishedStep {
            trace_id: trace_id.to_string(),
            owner: owner.to_string(),
            left,
            transition: self,
        }
    }

    /// The same transition, marking the callback the step consumed.
    pub(crate) fn consuming(mut self, callback_id: Option<String>) -> Self {
        self.consumed_callback = callback_id;
        self
    }

    /// The state the row moves to.
    pub(crate) fn state(&self) -> State {
        self.stored_state().state()
    }

    /// How many runs the row has after it.
    pub(crate) fn invoke_count(&self) -> i32 {
        self.invoke_count
    }

    /// The `err` of a FAIL.
    pub(crate) fn error(&self) -> Option<&str> {
        match &self.to {
            To::Fail { err, .. } => Some(err),
            _ => None,
        }
    }

    /// The callback the step consumed.
    pub(crate) fn consumed_callback(&self) -> Option<&str> {
        self.consumed_callback.as_deref()
    }

    pub(super) fn stored_state(&self) -> StoredState {
        match &self.to {
            To::Wait(wait) => wait.state(),
            To::Success { .. } => StoredState::Success,
            To::Fail { .. } => StoredState::Fail,
        }
    }
}

/// One step to record with [`Store::finish_steps`]: a [`Transition`] of the row `trace_id` that
/// the worker `owner` leased in the state `left` ([`Transition::of_lease`]).
#[derive(Debug, Clone)]
#[must_use = "a finished step changes nothing until it is recorded"]
pub(crate) struct FinishedStep {
    pub(super) trace_id: String,
    pub(super) owner: String,
    pub(super) left: StoredState,
    pub(super) transition: Transition,
}

impl FinishedStep {
    /// The invocation's trace id.
    pub(crate) fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

/// A new waiting row, parked by `parker` (see [`super::PARKED`]).
pub(super) fn waiting_model(row: NewWaiting, parker: &str, now: i64) -> schedule::ActiveModel {
    schedule::ActiveModel {
        trace_id: Set(row.trace_id),
        plugin_version: Set(row.version),
        state: Set(row.wait.state()),
        invoke_count: Set(1),
        inputs: Set(row.inputs),
        context: Set(row.context),
        storage: Set(row.storage),
        outputs: Set(row.outputs),
        error: Set(None),
        run_at: Set(Some(row.wait.run_at())),
        lease_owner: Set(Some(parker.to_string())),
        lease_until: Set(Some(super::PARKED)),
        callback_deadline: Set(row.wait.callback_deadline()),
        notify_state: Set(NotifyState::None),
        notify_attempts: Set(0),
        notify_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        trace_context: Set(row.trace_context),
        notify_receiver: Set(None),
    }
}

/// Where a stored context asks its finish callback to go: `Some` when `plugin_callback_info` is
/// an object, holding the receiver of its `url` ([`receiver_of`]), or an empty string when the
/// `url` is missing or unusable (the notifier then gives up at once).
pub(crate) fn finish_callback_receiver(context: &JsonText) -> Option<String> {
    let context = context.value().ok()?;
    let info = context.get("plugin_callback_info")?.as_object()?;
    let url = info
        .get("url")
        .and_then(serde_json::Value::as_str)
        .and_then(|url| reqwest::Url::parse(url).ok());
    Some(url.as_ref().map(receiver_of).unwrap_or_default())
}

/// The receiver of a finish-callback URL as the notifier counts its deliveries and as logs may
/// name it: scheme, host and port, never path or query (which may carry the caller's token).
pub(crate) fn receiver_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let receiver = match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    // The column holds 255 characters; a longer host name shares its slot count with others.
    receiver.chars().take(255).collect()
}

/// The columns a transition sets, lease cleared; the caller adds the guard.
pub(super) fn transition_update(
    transition: &Transition,
    now: i64,
) -> sea_orm::UpdateMany<schedule::Entity> {
    let (run_at, callback_deadline, err, notify) = match &transition.to {
        To::Wait(wait) => (Some(wait.run_at()), wait.callback_deadline(), None, None),
        To::Success { notify } => (None, None, None, notify.clone()),
        To::Fail { err, notify } => (
            None,
            None,
            Some(super::cap_err(err.clone())),
            notify.clone(),
        ),
    };
    let mut update = without_lease(schedule::Entity::update_many())
        .col_expr(
            schedule::Column::State,
            Expr::value(transition.stored_state()),
        )
        .col_expr(
            schedule::Column::InvokeCount,
            Expr::value(transition.invoke_count),
        )
        .col_expr(schedule::Column::Error, Expr::value(err))
        .col_expr(schedule::Column::RunAt, Expr::value(run_at))
        .col_expr(
            schedule::Column::CallbackDeadline,
            Expr::value(callback_deadline),
        )
        .col_expr(schedule::Column::UpdatedAt, Expr::value(now));
    if let Some((storage, outputs)) = &transition.written {
        update = update
            .col_expr(schedule::Column::Storage, Expr::value(storage.clone()))
            .col_expr(schedule::Column::Outputs, Expr::value(outputs.clone()));
    }
    if transition.stored_state().is_terminal() {
        update = update.col_expr(schedule::Column::FinishedAt, Expr::value(now));
    }
    if let Some(receiver) = notify {
        update = update
            .col_expr(
                schedule::Column::NotifyState,
                Expr::value(NotifyState::Pending),
            )
            .col_expr(schedule::Column::NotifyAt, Expr::value(now))
            .col_expr(schedule::Column::NotifyReceiver, Expr::value(receiver));
    }
    update
}

/// Clears the lease columns: the row is no longer held by any worker.
pub(super) fn without_lease(
    update: sea_orm::UpdateMany<schedule::Entity>,
) -> sea_orm::UpdateMany<schedule::Entity> {
    update
        .col_expr(
            schedule::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            schedule::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
}
