//! Invocations of plugin versions this binary does not have. During a rolling deploy old and
//! new binaries run side by side, so a worker leaves such rows to workers that have the
//! version (the claim filters on the versions it knows). Rows that no worker has taken
//! `BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS` after they were due — the version was removed, or
//! every binary that has it is gone — fail, with their finish callback.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;
use crate::store::now_ms;

pub(super) async fn unknown_versions_loop(
    state: Arc<AppState>,
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
        match state
            .store()
            .fail_unknown_versions(&known, due_before, err)
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
