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
    a_callback_for_an_invocation_that_was_never_stored_is_refused,
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

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let value = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(-1);
    let _ = conn.close().await;
    value
}

async fn execute(db: &TestDb, sql: &str) {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn a_callback_for_an_invocation_that_was_never_stored_is_refused(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve().env("BK_PLUGIN_EARLY_CALLBACK_SECONDS", "1"),
    )
    .await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    assert_eq!(body["data"]["state"], json!(3), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // As if the invocation had never been stored (its first run ended without waiting).
    execute(
        db,
        &format!("DELETE FROM bkp_schedule WHERE trace_id = '{trace_id}'"),
    )
    .await;
    // Past the early-arrival window of its token.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, answer) = plugin.post(&url, &json!({"late": true})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        json!(format!(
            "callback fail, can not find schedule for trace_id {trace_id}"
        ))
    );
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM bkp_callback").await, 0);
}
