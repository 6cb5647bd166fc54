//! Invocations of plugin versions this binary does not have. During a rolling deploy old and
//! new binaries run side by side, so a worker leaves such rows to workers that have the
//! version (the claim filters on the versions it knows). Rows that no worker has taken
//! `BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS` after they were due — the version was removed, or
//! every binary that has it is gone — fail, with their finish callback. A sweep reads at most
//! 100 rows, and no more contexts than fit in the worker's memory budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Memory;
use crate::app::AppState;
use crate::store::now_ms;

/// The most rows one sweep fails.
const SWEEP: usize = 100;

pub(super) async fn unknown_versions_loop(
    state: Arc<AppState>,
    memory: Memory,
    mut stopped: watch::Receiver<bool>,
) {
    let grace = state.config().unknown_version_grace;
    let every = (grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let known = super::known_versions(&state);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        let due_before = now_ms() - crate::time::duration_ms(grace);
        let err = |version: &str| {
            format!(
                "plugin version {version} is not registered in this binary: no worker that has it took the invocation within {} seconds (BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS); it was removed or renamed while invocations of it were waiting",
                grace.as_secs()
            )
        };
        // The sweep reads each row's context: no more of them than fit in the worker's
        // memory budget, were each as large as a request body may be.
        let Some((fit, _reserved)) = memory.reserve(SWEEP, state.config().max_body_bytes) else {
            continue;
        };
        match state
            .store()
            .fail_unknown_versions(&known, due_before, fit as u64, err)
            .await
        {
            Ok(failed) if !failed.is_empty() => {
                tracing::error!(trace_ids = ?failed, "failed invocations of plugin versions no worker has");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "looking for invocations of unknown versions failed")
            }
        }
    }
}
