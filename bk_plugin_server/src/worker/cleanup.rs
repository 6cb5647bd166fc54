//! The daily cleanup: deletes finished invocations older than `SCHEDULE_PERSISTENT_DAYS`, in
//! batches, so that no single statement holds the table for long, and invocations left parked
//! for an hour (stored, but never known to have been answered POLL or CALLBACK).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;
use crate::store::now_ms;

const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(24 * 3600);
const BATCH: u64 = 1000;
/// How long an invocation may stay parked before the cleanup deletes it.
const PARKED_FOR: Duration = Duration::from_secs(3600);

pub(super) async fn cleanup_loop(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let mut wait = FIRST_RUN_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
        wait = EVERY;
        let days = u64::from(state.config().schedule_persistent_days);
        let keep = crate::time::duration_ms(Duration::from_secs(days * 24 * 3600));
        let before = now_ms() - keep;
        let mut total = 0u64;
        loop {
            if *stopped.borrow() {
                return;
            }
            match state.store().delete_finished_before(before, BATCH).await {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(error = %e, "cleanup of finished invocations failed; next run tomorrow");
                    break;
                }
            }
        }
        let parked_before = now_ms() - crate::time::duration_ms(PARKED_FOR);
        match state.store().delete_parked_before(parked_before).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                deleted = n,
                "deleted invocations left parked for an hour: stored after their invoke had answered FAIL, or by a process that died before handing them to the workers"
            ),
            Err(e) => tracing::warn!(error = %e, "cleanup of parked invocations failed"),
        }
        if let Err(e) = state.store().delete_orphan_callbacks_before(before).await {
            tracing::warn!(error = %e, "cleanup of orphan callbacks failed");
        }
        let mut lines = 0u64;
        loop {
            match state.store().delete_logs_before(before, BATCH * 10).await {
                Ok(0) => break,
                Ok(n) => lines += n,
                Err(e) => {
                    tracing::warn!(error = %e, "cleanup of captured log lines failed");
                    break;
                }
            }
        }
        if total > 0 || lines > 0 {
            tracing::info!(
                deleted = total,
                log_lines = lines,
                "cleaned up finished invocations"
            );
        }
    }
}
