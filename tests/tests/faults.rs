//! The scheduler under faults, over real processes: results the database cannot or will not
//! store, finish-callback receivers that fail, hang or redirect, database outages, steps that
//! block their thread, rolling deploys with mixed binaries.
#![allow(missing_docs)]

use std::time::Duration;

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, migrate, on_every_backend};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

on_every_backend!(
    an_err_longer_than_64_kib_is_recorded_once_and_capped,
    a_result_the_database_refuses_fails_the_invocation_instead_of_running_it_again,
);

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| line.contains(needle)).count()
}

async fn an_err_longer_than_64_kib_is_recorded_once_and_capped(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve()
            .binary("bkp-faults")
            .env("BK_PLUGIN_LEASE_SECONDS", "3"),
    )
    .await;
    let (_, body) = plugin
        .invoke("1.0.0", json!({"err_bytes": 100_000}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], json!(5));
    let err = done["err"].as_str().unwrap_or_default();
    assert!(err.starts_with("plugin schedule failed: eeee"), "{err:.80}");
    assert!(
        err.ends_with("[err truncated: 100024 bytes in all]"),
        "{}",
        &err[err.len().saturating_sub(80)..]
    );
    assert!(err.len() <= 32 * 1024 + 64, "err is capped: {}", err.len());
    assert_eq!(done["invoke_count"], json!(2));
    assert_eq!(count(&plugin.log_text(), "fault step ran"), 1, "ran once");
}

/// Makes the database refuse any row whose outputs say `"done"` (1.1.0's last step).
async fn refuse_done_outputs(db: &TestDb) {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sql = match db.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER bkp_refuse_done BEFORE UPDATE ON bkp_schedule \
             WHEN NEW.outputs LIKE '%\"done\"%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        }
        Backend::Postgres | Backend::Mysql => {
            "ALTER TABLE bkp_schedule ADD CONSTRAINT bkp_refuse_done CHECK (outputs NOT LIKE '%\"done\"%')"
        }
    };
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn a_result_the_database_refuses_fails_the_invocation_instead_of_running_it_again(
    db: &TestDb,
) {
    migrate(db);
    refuse_done_outputs(db).await;
    let plugin = Plugin::launch(db, Launch::serve().env("BK_PLUGIN_LEASE_SECONDS", "2")).await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 0, "polls": 1}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(15))
        .await;
    assert_eq!(done["state"], json!(5), "{done}");
    let err = done["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with(
            "plugin schedule raise unexpected error: the step's result could not be stored: "
        ),
        "{err}"
    );
    assert_eq!(
        done["outputs"],
        json!({"phase": "waiting"}),
        "the stored outputs are kept"
    );
    // Wait past a lease: the step is never run again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&plugin.log_text(), "poll plugin done"), 1);
}
