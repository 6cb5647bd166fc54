//! The worker: claims due rows with a lease, re-runs their step, and moves them on.
//!
//! There is no fixed tick. The worker sleeps until the earliest due time it knows of, is woken at
//! once by work created in its own process (invoke, callback), and otherwise looks at the database
//! every `BK_PLUGIN_WORKER_POLL_MS` for work created by other processes. Steps run concurrently
//! up to `BK_PLUGIN_WORKER_CONCURRENCY`; a heartbeat renews each step's lease. On shutdown it
//! stops claiming and lets in-flight steps finish within a bound; a step still running after
//! that is abandoned with its lease, which expires so that another worker re-runs it.

mod cleanup;
mod lease_keeper;
mod notify;
mod step;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::app::AppState;
use crate::store::now_ms;

/// How long in-flight steps may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// A running worker's handle: signal it, then await it.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops claiming, waits for in-flight work (bounded), and returns.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A unique name for this worker's leases: host, process and a random suffix.
fn owner_name(hostname: &str) -> String {
    let host: String = hostname.chars().take(24).collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

/// Starts the step loop, the finish-callback notifier and the daily cleanup.
pub(crate) fn start(state: Arc<AppState>) -> WorkerHandle {
    let (stop, stopped) = watch::channel(false);
    let owner = owner_name(&state.config().hostname);
    tracing::info!(owner = %owner, "worker started");
    // One budget for the stored text every loop of this worker holds.
    let memory = Memory::new(state.config());
    let tasks = vec![
        tokio::spawn(step_loop(
            state.clone(),
            owner.clone(),
            memory.clone(),
            stopped.clone(),
        )),
        tokio::spawn(notify::notify_loop(
            state.clone(),
            owner,
            memory.clone(),
            stopped.clone(),
        )),
        tokio::spawn(versions::unknown_versions_loop(
            state.clone(),
            memory,
            stopped.clone(),
        )),
        tokio::spawn(cleanup::cleanup_loop(state, stopped)),
    ];
    WorkerHandle { stop, tasks }
}

async fn step_loop(
    state: Arc<AppState>,
    owner: String,
    memory: Memory,
    mut stopped: watch::Receiver<bool>,
) {
    let concurrency = state.config().worker_concurrency;
    let keeper =
        lease_keeper::LeaseKeeper::start(state.config().database_url.clone(), state.config().lease);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut backoff = Duration::from_millis(50);
    let mut claims = 0u64;
    // Only the versions this binary has: during a rolling deploy, rows of other versions are
    // left for workers that have them (see versions.rs for the grace period).
    let known = known_versions(&state);
    while !*stopped.borrow() {
        // Claim no more rows than fit in the memory budget even if each were as large as
        // the limits allow; once claimed, each row holds only its actual size.
        let fits = memory.rows_that_fit();
        if fits == 0 {
            tokio::select! {
                _ = memory.wait_for_one_row() => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let free = slots.available_permits().min(fits);
        if free == 0 {
            // Wait for a step to finish (or a stop signal) before claiming more.
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                _ = stopped.changed() => {}
            }
            continue;
        }
        // Each claim gets its own lease token, so that a step whose lease was lost and taken
        // back (even by this same process) can never record over the newer run.
        claims += 1;
        let token = format!("{owner}:{claims}");
        let claim_started = std::time::SystemTime::now();
        let claimed = state
            .store()
            .claim_due_of(&token, state.config().lease, free as u64, Some(&known))
            .await;
        let rows = match claimed {
            Ok(rows) => {
                backoff = Duration::from_millis(50);
                rows
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming due work failed; retrying");
                sleep_or_stop(backoff, &mut stopped).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let full_batch = rows.len() == free;
        if crate::otel::enabled() {
            let claim_ended = std::time::SystemTime::now();
            for row in &rows {
                let stored = row.trace_context.as_deref();
                crate::otel::record_claim(
                    stored,
                    &row.trace_id,
                    claim_started,
                    claim_ended,
                    rows.len(),
                );
            }
        }
        for row in rows {
            let held = memory.hold(stored_bytes(&row)).await;
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (state, token, keeper) = (state.clone(), token.clone(), keeper.clone());
            tokio::spawn(async move {
                step::run_claimed(&state, &keeper, &token, row).await;
                drop(permit);
                drop(held);
            });
        }
        if full_batch {
            continue;
        }
        let wait = match state.store().next_due_of(Some(&known)).await {
            Ok(Some(due)) => {
                let until = u64::try_from(due - now_ms()).unwrap_or(0);
                Duration::from_millis(until).min(state.config().worker_poll_interval)
            }
            Ok(None) => state.config().worker_poll_interval,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next due time failed");
                state.config().worker_poll_interval
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.invocations().wake_signal().notified() => {}
            _ = stopped.changed() => {}
        }
    }
    // Shutdown: let in-flight steps finish, bounded.
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    match tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("worker stopped; every in-flight step finished"),
        Err(_) => tracing::warn!(
            "worker stopped with steps still running; their leases expire and another worker re-runs them"
        ),
    }
}

/// The bytes of stored invocations one worker holds at once — the rows its steps run, the
/// contexts its notifier delivers, the rows its unknown-version sweeper fails: at most
/// `BK_PLUGIN_WORKER_MEMORY_MB`, counted in KiB of stored text (inputs, context, storage,
/// outputs, err).
#[derive(Debug, Clone)]
struct Memory {
    budget: Arc<Semaphore>,
    total_kib: u32,
    /// The largest a row can be under the configured limits.
    row_kib: u32,
}

impl Memory {
    fn new(config: &crate::config::Config) -> Self {
        let total_kib = u32::try_from(config.worker_memory_mb.saturating_mul(1024))
            .unwrap_or(u32::MAX / 2)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let largest = config.max_body_bytes + config.max_state_bytes + crate::store::MAX_ERR_BYTES;
        let row_kib = u32::try_from(largest / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(total_kib);
        Self {
            budget: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            row_kib,
        }
    }

    fn rows_that_fit(&self) -> usize {
        self.budget.available_permits() / self.row_kib as usize
    }

    async fn wait_for_one_row(&self) {
        if let Ok(permits) = self.budget.acquire_many(self.row_kib).await {
            drop(permits);
        }
    }

    /// How many of `rows` rows of at most `bytes` each fit in the budget now, at least one,
    /// with their room reserved until the permit is dropped; `None` when not even one fits.
    fn reserve(&self, rows: usize, bytes: usize) -> Option<(usize, OwnedSemaphorePermit)> {
        let kib = self.kib_of(bytes);
        let fit = (self.budget.available_permits() / kib as usize).min(rows);
        let total = u32::try_from(fit).ok()?.checked_mul(kib)?;
        if fit == 0 {
            return None;
        }
        let permit = self.budget.clone().try_acquire_many_owned(total).ok()?;
        Some((fit, permit))
    }

    /// Waits until a row of `bytes` would fit.
    async fn wait_for(&self, bytes: usize) {
        if let Ok(permits) = self.budget.acquire_many(self.kib_of(bytes)).await {
            drop(permits);
        }
    }

    /// Moves `bytes` of stored text out of `reserved` (made by [`Memory::reserve`] for rows at
    /// least this large) into a permit of its own.
    fn take(
        &self,
        reserved: &mut OwnedSemaphorePermit,
        bytes: usize,
    ) -> Option<OwnedSemaphorePermit> {
        reserved.split(self.kib_of(bytes) as usize)
    }

    /// Holds `bytes` of stored text until dropped (all of the budget for more than it).
    async fn hold(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.budget
            .clone()
            .acquire_many_owned(self.kib_of(bytes))
            .await
            .ok()
    }

    /// `bytes` in whole KiB, at least one, at most the whole budget.
    fn kib_of(&self, bytes: usize) -> u32 {
        u32::try_from(bytes / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.total_kib)
    }
}

/// The stored text a claimed row holds.
fn stored_bytes(row: &crate::store::entity::schedule::Model) -> usize {
    row.inputs.len()
        + row.context.len()
        + row.storage.len()
        + row.outputs.len()
        + row.error.as_ref().map_or(0, String::len)
}

/// The plugin versions this binary has.
fn known_versions(state: &AppState) -> Vec<String> {
    state
        .registry()
        .version_names()
        .into_iter()
        .map(str::to_string)
        .collect()
}

async fn sleep_or_stop(duration: Duration, stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stopped.changed() => {}
    }
}
