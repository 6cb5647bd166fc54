//! Finish callbacks (`enable_plugin_callback`): when an invocation that went through the
//! scheduler finishes, POST `plugin_callback_info.data` to `plugin_callback_info.url`.
//!
//! The pending delivery is recorded in the same transaction that finishes the invocation, so a
//! restart never forgets it. Delivery runs here, off the request path and off the step loop:
//! up to [`IN_FLIGHT`] deliveries at once per process and [`PER_HOST`] per receiver (host and
//! port), so a receiver that never answers delays nobody else. A failed attempt is tried again
//! with exponential backoff until `BK_PLUGIN_FINISH_CALLBACK_RETRY_SECONDS` after the
//! invocation finished; the final give-up is an ERROR log line and a metric. Redirects are not
//! followed (a 3xx is a failed attempt) and at most [`MAX_BODY`] bytes of an answer are read.
//! Logs name the receiver by scheme, host and port only: the rest of the URL may carry the
//! caller's token. The outcome never changes the invocation's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

use super::Memory;
use crate::app::AppState;
use crate::store::{Notification, NotifyState, now_ms, receiver_of};

const IDLE: Duration = Duration::from_secs(1);
/// The longest one attempt may take, connection and answer included.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries one process makes at once.
pub(super) const IN_FLIGHT: usize = 32;
/// Deliveries one process makes at once to one receiver (scheme, host and port).
pub(super) const PER_HOST: usize = 4;
/// The most of a receiver's answer that is read; the rest is ignored.
pub(super) const MAX_BODY: usize = 64 * 1024;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECONDS: i64 = 120;
/// A claimed row is skipped by other notifiers this long; a delivery holds it at most
/// [`TIMEOUT`], since it never waits for a receiver's slot.
const LEASE: Duration = Duration::from_secs(60);

type Hosts = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

/// The outbound client for finish callbacks: no redirects (a caller-chosen URL must not bounce
/// the POST elsewhere), [`TIMEOUT`] per attempt, TLS as `http_client` sets it up
/// (`BK_PLUGIN_CALLBACK_TLS_VERIFY`).
pub(super) fn client(tls_verify: bool) -> reqwest::Result<reqwest::Client> {
    crate::http_client::builder(tls_verify, TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

pub(super) async fn notify_loop(
    state: Arc<AppState>,
    owner: String,
    memory: Memory,
    mut stopped: watch::Receiver<bool>,
) {
    let client = match client(state.config().tls_verify) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; finish callbacks are off");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let hosts: Hosts = Arc::default();
    // A stored context is at most a request body.
    let context_bytes = state.config().max_body_bytes;
    while !*stopped.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                _ = stopped.changed() => {}
            }
            continue;
        }
        // Read no more contexts than fit in the worker's memory budget, were each as large as
        // a request body may be.
        let Some((fit, mut reserved)) = memory.reserve(free, context_bytes) else {
            tokio::select! {
                _ = memory.wait_for(context_bytes) => {}
                _ = stopped.changed() => {}
            }
            continue;
        };
        let busy = busy_receivers(&hosts);
        match claim(&state, &owner, &hosts, fit, &busy).await {
            Ok(claimed) if !claimed.is_empty() => {
                for (notification, slot) in claimed {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    // Each delivery keeps its context's actual size of the reservation.
                    let held = memory.take(&mut reserved, notification.context.len());
                    let (state, client) = (state.clone(), client.clone());
                    tokio::spawn(async move {
                        deliver(&state, &client, notification, slot).await;
                        drop(held);
                        drop(permit);
                    });
                }
                drop(reserved);
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claiming finish callbacks failed"),
        }
        drop(reserved);
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = stopped.changed() => {}
        }
    }
    // Let deliveries in flight end (each is bounded by TIMEOUT).
    let all = u32::try_from(IN_FLIGHT).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(TIMEOUT + Duration::from_secs(1), slots.acquire_many(all)).await;
}

/// The receivers with no free delivery slot: their rows are left in the database, untouched,
/// until one of their deliveries ends.
fn busy_receivers(hosts: &Hosts) -> Vec<String> {
    hosts.lock().map_or_else(
        |_| Vec::new(),
        |hosts| {
            hosts
                .iter()
                .filter(|(_, slots)| slots.available_permits() == 0)
                .map(|(receiver, _)| receiver.clone())
                .collect()
        },
    )
}

/// A claimed finish callback and the slot of its receiver (none when it names no usable
/// receiver: it is given up at once).
type Claimed = (Notification, Option<OwnedSemaphorePermit>);

/// Reads up to `limit` due finish callbacks and claims those whose receiver has a free slot,
/// taking the slot: a row whose receiver is busy is not written (read at most), so no row is
/// written more often than an attempt for it can be made.
async fn claim(
    state: &AppState,
    owner: &str,
    hosts: &Hosts,
    limit: usize,
    busy: &[String],
) -> Result<Vec<Claimed>, crate::store::StoreError> {
    let due = state.store().due_notifications(limit as u64, busy).await?;
    let mut claimed = Vec::new();
    for (notification, notify_at) in due {
        let receiver = match &notification.receiver {
            Some(receiver) => Some(receiver.clone()),
            // Recorded before the receiver had a column.
            None => target(&notification).map(|(url, _)| receiver_of(&url)),
        };
        let slot = match receiver.as_deref() {
            Some(receiver) if !receiver.is_empty() => match host_slot(hosts, receiver) {
                Some(slot) => Some(slot),
                None => continue,
            },
            _ => None,
        };
        if state
            .store()
            .claim_notification(&notification.trace_id, notify_at, owner, LEASE)
            .await?
        {
            claimed.push((notification, slot));
        }
    }
    Ok(claimed)
}

/// The URL and body of a finish callback, from the stored context.
fn target(notification: &Notification) -> Option<(reqwest::Url, Value)> {
    let context = notification.context.value().ok()?;
    let info = context.get("plugin_callback_info")?;
    let url = reqwest::Url::parse(info.get("url")?.as_str()?).ok()?;
    let data = info
        .get("data")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    Some((url, data))
}

/// A slot for one more delivery to `receiver`, or `None` when it has [`PER_HOST`] already.
fn host_slot(hosts: &Hosts, receiver: &str) -> Option<OwnedSemaphorePermit> {
    let mut hosts = hosts.lock().ok()?;
    if hosts.len() > 1024 {
        hosts.retain(|_, slots| slots.available_permits() < PER_HOST);
    }
    let slots = hosts
        .entry(receiver.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(PER_HOST)))
        .clone();
    slots.try_acquire_owned().ok()
}

/// When the attempt after `attempts` failed ones is due: 2^attempts seconds later, at most
/// [`MAX_BACKOFF_SECONDS`]; `None` (give up) once that is past `finished + retry window`, or
/// when `BK_PLUGIN_FINISH_CALLBACK_TRIES` (0: no limit) attempts have been made.
fn next_attempt(
    state: &AppState,
    finished_at: Option<i64>,
    attempts: i32,
    now: i64,
) -> Option<i64> {
    let tries = i32::try_from(state.config().finish_callback_tries).unwrap_or(i32::MAX);
    if tries > 0 && attempts >= tries {
        return None;
    }
    let backoff = (1i64 << attempts.clamp(1, 16)).min(MAX_BACKOFF_SECONDS) * 1000;
    let window = crate::time::duration_ms(state.config().finish_callback_retry);
    let last = finished_at.unwrap_or(now).saturating_add(window);
    let at = now + backoff;
    (at <= last).then_some(at)
}

async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    row: Notification,
    _slot: Option<OwnedSemaphorePermit>,
) {
    let attempts = row.attempts + 1;
    let hostname = state.metrics().hostname().to_string();
    let count = |outcome: &str| {
        state
            .metrics()
            .finish_callbacks
            .with_label_values(&[outcome, hostname.as_str()])
            .inc();
    };
    let Some((url, data)) = target(&row) else {
        tracing::error!(trace_id = %row.trace_id, "finish callback has no usable plugin_callback_info url; given up");
        count("gave_up");
        let _ = state
            .store()
            .record_notification(&row.trace_id, attempts, NotifyState::GaveUp, None)
            .await;
        return;
    };
    let receiver = receiver_of(&url);
    let span = crate::otel::finish_callback_span(
        row.trace_context.as_deref(),
        &row.trace_id,
        attempts,
        &receiver,
    );
    let result = post(client, url, &data).instrument(span.clone()).await;
    let (outcome, retry_at) = match &result {
        Ok(()) => (NotifyState::Delivered, None),
        Err(_) => match next_attempt(state, row.finished_at, attempts, now_ms()) {
            Some(at) => (NotifyState::Pending, Some(at)),
            None => (NotifyState::GaveUp, None),
        },
    };
    span.record(
        "bk_plugin.finish_callback.outcome",
        match outcome {
            NotifyState::Delivered => "delivered",
            NotifyState::GaveUp => "gave_up",
            _ => "failed",
        },
    );
    if let Err(e) = &result {
        crate::otel::record_error(&span, e);
    }
    match &result {
        Ok(()) => {
            count("delivered");
            tracing::info!(trace_id = %row.trace_id, receiver = %receiver, attempts, "finish callback delivered");
        }
        Err(e) if outcome == NotifyState::GaveUp => {
            count("gave_up");
            tracing::error!(trace_id = %row.trace_id, receiver = %receiver, attempts, error = %e, "finish callback failed; given up, it will not be tried again");
        }
        Err(e) => {
            count("failed");
            tracing::warn!(trace_id = %row.trace_id, receiver = %receiver, attempts, error = %e, "finish callback failed; will try again");
        }
    }
    if let Err(e) = state
        .store()
        .record_notification(&row.trace_id, attempts, outcome, retry_at)
        .await
    {
        tracing::warn!(trace_id = %row.trace_id, error = %e, "cannot record the finish callback outcome");
    }
}

/// POSTs `data`; a non-2xx answer (3xx included: redirects are not followed) or a JSON answer
/// with `"result": false` is a failure. Errors never contain the URL.
async fn post(client: &reqwest::Client, url: reqwest::Url, data: &Value) -> Result<(), String> {
    let mut response = crate::http_client::send(client.post(url).json(data))
        .await
        .map_err(|e| crate::apigw::manager::error_chain(&e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            // A 2xx whose answer is this long is not a `{"result": false}`.
            return Ok(());
        }
    }
    if let Ok(json) = serde_json::from_slice::<Value>(&body)
        && json.get("result") == Some(&Value::Bool(false))
    {
        return Err("answered result: false".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::receiver_of;

    #[test]
    fn logs_name_the_receiver_without_the_path_that_carries_the_token() {
        let url = reqwest::Url::parse("https://sops.example.com/callback/SECRET-TOKEN/?t=SECRET")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(receiver_of(&url), "https://sops.example.com:443");
    }
}
