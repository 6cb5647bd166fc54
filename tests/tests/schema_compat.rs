//! Deployed databases survive an upgrade: a database as the previous release left it — its
//! schema and migration records replayed from `tests/fixtures/schema/<backend>.sql`, with
//! invocations waiting in it — is migrated by the current binary, which then finishes them.
//! When a change needs a new migration, this test proves it against a real old schema.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bkp_blackbox_tests::fake_http::FakeServer;
use bkp_blackbox_tests::{Backend, Plugin, TestDb, migrate, on_every_backend};
use serde_json::json;

on_every_backend!(
    a_database_of_the_previous_release_is_migrated_and_the_invocations_waiting_in_it_finish,
);

/// The statements of a schema snapshot: each ends at a line ending with `;`.
fn snapshot(backend: Backend) -> Vec<String> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::Mysql => "mysql",
    };
    let path = format!("{}/fixtures/schema/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.starts_with("--")) {
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    statements
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// A row in the columns the previous release wrote.
#[allow(clippy::too_many_arguments)]
fn row(
    trace_id: &str,
    version: &str,
    state: i32,
    inputs: &str,
    context: &str,
    storage: &str,
    run_at: Option<i64>,
    lease: Option<(&str, i64)>,
    notify: bool,
) -> String {
    let now = now_ms();
    let null = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
    let (owner, until) = match lease {
        Some((owner, until)) => (format!("'{owner}'"), until.to_string()),
        None => ("NULL".into(), "NULL".into()),
    };
    let (notify_state, notify_at, finished_at) = if notify {
        (1, Some(now), Some(now))
    } else {
        (0, None, None)
    };
    format!(
        "INSERT INTO bkp_schedule (trace_id, plugin_version, state, invoke_count, inputs, \
         context, storage, outputs, err, run_at, lease_owner, lease_until, callback_deadline, \
         notify_state, notify_attempts, notify_at, created_at, updated_at, finished_at) VALUES \
         ('{trace_id}', '{version}', {state}, 1, '{inputs}', '{context}', '{storage}', \
         '{{\"phase\":\"waiting\"}}', NULL, {}, {owner}, {until}, NULL, {notify_state}, 0, {}, \
         {now}, {now}, {})",
        null(run_at),
        null(notify_at),
        null(finished_at)
    )
}

async fn a_database_of_the_previous_release_is_migrated_and_the_invocations_waiting_in_it_finish(
    db: &TestDb,
) {
    let statements = snapshot(db.backend());
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    db.execute(&refs).await;
    let receiver = FakeServer::start(Arc::new(|_| (200, "{\"result\": true}".into()))).await;
    let callback =
        json!({"plugin_callback_info": {"url": format!("{}/done/", receiver.base), "data": {}}})
            .to_string();
    let due = now_ms() - 1_000;
    let poll = r#"{"interval":0,"polls":1}"#;
    let stored = |id: &str| format!(r#"{{"marker":"stored-{id}","n":0}}"#);
    let waiting = [
        // Due now, never claimed.
        row(
            &"a".repeat(32),
            "1.1.0",
            2,
            poll,
            "{}",
            &stored(&"a".repeat(32)),
            Some(due),
            None,
            false,
        ),
        // Claimed by a worker of the previous release that died: its lease ran out.
        row(
            &"b".repeat(32),
            "1.1.0",
            2,
            poll,
            "{}",
            &stored(&"b".repeat(32)),
            Some(due),
            Some(("old-host-1-deadbeef:7", due)),
            false,
        ),
        // Waiting to run its last step, then to send its finish callback.
        row(
            &"c".repeat(32),
            "1.7.0",
            2,
            "{}",
            &callback,
            "{}",
            Some(due),
            None,
            false,
        ),
        // Finished, its finish callback pending (recorded without a receiver column).
        row(
            &"d".repeat(32),
            "1.7.0",
            4,
            "{}",
            &callback,
            "{}",
            None,
            None,
            true,
        ),
    ];
    let refs: Vec<&str> = waiting.iter().map(String::as_str).collect();
    db.execute(&refs).await;
    let applied = || db.scalar("SELECT COUNT(*) FROM bkp_migrations");
    let before = applied().await;
    migrate(db);
    assert!(
        applied().await > before,
        "the snapshot is of the schema before the newest migration: none was applied to it"
    );
    let plugin = Plugin::start(db).await;
    for id in ["a", "b", "c"] {
        let done = plugin
            .wait_finished(&id.repeat(32), Duration::from_secs(20))
            .await;
        assert_eq!(done["state"], json!(4), "{done}");
        assert_eq!(done["invoke_count"], json!(2), "{done}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.calls().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "finish callbacks delivered: {}\n{}",
            receiver.calls().len(),
            plugin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = db
        .scalar("SELECT COUNT(*) FROM bkp_schedule WHERE notify_state = 2")
        .await;
    assert_eq!(delivered, 2);
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 0, "polls": 1}), json!({}))
        .await;
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], json!(4), "a new invocation runs too: {done}");
}
