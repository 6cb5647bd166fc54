//! Finish callbacks (`enable_plugin_callback`): when an invocation that went through the
//! scheduler finishes, POST `plugin_callback_info.data` to `plugin_callback_info.url`.
//!
//! The pending delivery is recorded in the same transaction that finishes the invocation, so a
//! restart never forgets it. Delivery runs here, off the request path and off the step loop,
//! with exponential backoff; its outcome is logged and never changes the invocation's state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::app::AppState;
use crate::store::entity::schedule;
use crate::store::{notify, now_ms};

const IDLE: Duration = Duration::from_secs(1);
/// Each delivery may take up to `TIMEOUT`; a claim of `BATCH` rows must outlast them all, or
/// another notifier could take the rows back and deliver twice.
const TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: u64 = 4;
const LEASE: Duration = Duration::from_secs(10 * 4 + 30);

pub(super) async fn notify_loop(
    state: Arc<AppState>,
    owner: String,
    mut stopped: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; finish callbacks are off");
            return;
        }
    };
    while !*stopped.borrow() {
        match state.store.claim_notifications(&owner, LEASE, BATCH).await {
            Ok(rows) if !rows.is_empty() => {
                for row in rows {
                    deliver(&state, &client, row).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claiming finish callbacks failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// The URL and body of a finish callback, from the stored context.
fn target(row: &schedule::Model) -> Option<(String, Value)> {
    let context: Value = serde_json::from_str(&row.context).ok()?;
    let info = context.get("plugin_callback_info")?;
    let url = info.get("url")?.as_str()?.to_string();
    let data = info
        .get("data")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    Some((url, data))
}

async fn deliver(state: &AppState, client: &reqwest::Client, row: schedule::Model) {
    let attempts = row.notify_attempts + 1;
    let Some((url, data)) = target(&row) else {
        tracing::warn!(trace_id = %row.trace_id, "finish callback has no usable plugin_callback_info; dropped");
        let _ = state
            .store
            .record_notification(&row.trace_id, attempts, notify::GAVE_UP, None)
            .await;
        return;
    };
    let result = post(client, &url, &data).await;
    let (outcome, retry_at) = match &result {
        Ok(()) => (notify::DELIVERED, None),
        Err(_) if attempts >= i32::try_from(state.config.finish_callback_tries).unwrap_or(3) => {
            (notify::GAVE_UP, None)
        }
        Err(_) => {
            let backoff = 1i64 << attempts.clamp(0, 10);
            (notify::PENDING, Some(now_ms() + backoff * 1000))
        }
    };
    match &result {
        Ok(()) => tracing::info!(trace_id = %row.trace_id, attempts, "finish callback delivered"),
        Err(e) => {
            tracing::warn!(trace_id = %row.trace_id, attempts, error = %e, gave_up = outcome == notify::GAVE_UP, "finish callback failed")
        }
    }
    if let Err(e) = state
        .store
        .record_notification(&row.trace_id, attempts, outcome, retry_at)
        .await
    {
        tracing::warn!(trace_id = %row.trace_id, error = %e, "cannot record the finish callback outcome");
    }
}

/// POSTs `data`; a non-2xx answer or a JSON answer with `"result": false` is a failure.
async fn post(client: &reqwest::Client, url: &str, data: &Value) -> Result<(), String> {
    let response = client
        .post(url)
        .json(data)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {status}"));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if let Ok(json) = serde_json::from_slice::<Value>(&body)
        && json.get("result") == Some(&Value::Bool(false))
    {
        return Err("answered result: false".into());
    }
    Ok(())
}
