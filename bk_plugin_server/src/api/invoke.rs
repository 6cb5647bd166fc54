//! `POST /bk_plugin/invoke/{version}`: validate, run the first step, store a waiting invocation
//! before answering.

use actix_web::{HttpResponse, web};
use bk_plugin_core::executor::StepInput;
use serde_json::{Value, json};

use crate::app::{AppState, Parked};
use crate::auth::AuthPolicy;
use crate::error::{ApiError, Envelope, TraceId};
use crate::metrics::StepTimer;
use crate::otel::{self, RunKind};
use bk_plugin_core::State;
use tracing::Instrument;

use super::{Protected, read_json};

/// Splits an invoke body into its `inputs` and `context` objects.
pub(crate) fn split_invoke_body(body: Value) -> Result<(Value, Value), ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object with `inputs` and `context`".into(),
        ));
    };
    let mut take = |key: &str| match body.remove(key) {
        Some(value @ Value::Object(_)) => Ok(value),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`{key}` must be a JSON object, not {}",
            kind(&other)
        ))),
        None => Err(ApiError::BadRequest(format!("`{key}` is required"))),
    };
    let inputs = take("inputs")?;
    let context = take("context")?;
    Ok((inputs, context))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Runs the first step of a new invocation.
pub(crate) async fn invoke(
    state: web::Data<AppState>,
    auth: web::Data<AuthPolicy>,
    path: web::Path<String>,
    call: Protected,
) -> Result<HttpResponse, ApiError> {
    let Protected { caller, req, body } = call;
    let version_name = path.into_inner();
    let Some(version) = state.registry().get(&version_name) else {
        return Err(ApiError::VersionNotFound(version_name));
    };
    let trace_id = TraceId::assign(&req);
    let _running = state.tokens().invoke_started(&trace_id);
    auth.check_scope(&caller, &req)?;
    let body = read_json(&req, body, state.config().max_body_bytes).await?;
    let (inputs, context) = split_invoke_body(body)?;
    let first = StepInput::first(trace_id.clone(), inputs, context);
    let (inputs, context) = (first.inputs.clone(), first.context.clone());
    let step_span = otel::step_span(&version_name, RunKind::First, 1, &trace_id);
    let outcome = {
        let _timer = StepTimer::start(state.metrics(), &version_name, false);
        version
            .run(first, state.tokens().issuer())
            .instrument(step_span.clone())
            .await
    };
    state
        .metrics()
        .count_failure(&version_name, false, outcome.failure());
    let mut state_value = outcome.state();
    let mut err = outcome.err().map(str::to_string);
    match state
        .invocations()
        .park(&version_name, &trace_id, &inputs, &context, &outcome)
        .await
    {
        Ok(Parked::NotWaiting | Parked::Stored) => {}
        Ok(Parked::Refused(refused)) => {
            state_value = State::Fail;
            err = Some(refused);
        }
        Err(e) => {
            tracing::error!(trace_id = %trace_id, error = %e, "cannot store the waiting invocation");
            state_value = State::Fail;
            err = Some(format!("schedule create error: {e}"));
        }
    }
    otel::record_step_end(&step_span, state_value.name(), err.as_deref());
    let outputs = if state_value == State::Fail {
        Value::Null
    } else {
        Value::Object(outcome.outputs)
    };
    let data = json!({"outputs": outputs, "state": state_value.as_i32(), "err": err});
    Ok(Envelope::success("success", data).traced(&trace_id).ok())
}

#[cfg(test)]
mod fuzz {
    //! Fuzzing the invoke body split: arbitrary JSON never panics; what passes has two objects.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn invoke_bodies_never_panic(
            inputs in prop_oneof![Just(Value::Null), Just(json!({})), Just(json!([1])), Just(json!("x"))],
            context in prop_oneof![Just(Value::Null), Just(json!({"a": 1})), Just(json!(7))],
            keep in any::<(bool, bool)>(),
        ) {
            let mut body = serde_json::Map::new();
            if keep.0 { body.insert("inputs".into(), inputs); }
            if keep.1 { body.insert("context".into(), context); }
            if let Ok((i, c)) = split_invoke_body(Value::Object(body)) {
                prop_assert!(i.is_object() && c.is_object());
            }
        }
    }
}
