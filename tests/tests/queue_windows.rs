//! The scheduler's last fault windows, over real processes and real databases: an invoke
//! answered FAIL whose write commits after the answer, and a finish-callback receiver that
//! never answers while hundreds of callbacks wait for it.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, migrate, on_every_backend};
use serde_json::json;

on_every_backend!(
    an_invoke_answered_fail_is_never_run_even_when_its_write_commits_after_the_answer,
    a_receiver_that_never_answers_costs_no_more_row_updates_than_the_attempts_made_to_it,
);

/// The write of an invocation with these inputs takes 14 s: longer than the invoke waits
/// (1 s) and than the batch writer waits before it undoes the write (2 × 1 s + 10 s).
const SLOW_INPUTS: &str = "%\"polls\":7%";

async fn make_inserts_slow(db: &TestDb) {
    match db.backend() {
        Backend::Postgres => {
            db.execute(&[
                &format!(
                    "CREATE FUNCTION bkp_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.inputs LIKE '{SLOW_INPUTS}' THEN PERFORM pg_sleep(14); END IF; \
                 RETURN NEW; END $$"
                ),
                "CREATE TRIGGER bkp_slow_insert BEFORE INSERT ON bkp_schedule \
                FOR EACH ROW EXECUTE FUNCTION bkp_slow_insert()",
            ])
            .await;
        }
        Backend::Mysql => {
            db.execute(&[&format!(
                "CREATE TRIGGER bkp_slow_insert BEFORE INSERT ON bkp_schedule FOR EACH ROW \
                 BEGIN IF NEW.inputs LIKE '{SLOW_INPUTS}' THEN DO SLEEP(14); END IF; END"
            )])
            .await;
        }
        Backend::Sqlite => {}
    }
}

/// How many statements are writing to `bkp_schedule` in `db` now.
async fn inserts_running(db: &TestDb) -> i64 {
    let sql = match db.backend() {
        Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE 'INSERT INTO \"bkp_schedule\"%'"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() \
             AND info LIKE 'INSERT INTO `bkp_schedule`%'"
        }
    };
    db.scalar(sql).await
}

async fn an_invoke_answered_fail_is_never_run_even_when_its_write_commits_after_the_answer(
    db: &TestDb,
) {
    if db.backend() == Backend::Sqlite {
        bkp_blackbox_tests::report_skip(
            "on SQLite: a trigger cannot stand in for a slow commit (it cannot sleep)",
        );
        return;
    }
    migrate(db);
    make_inserts_slow(db).await;
    let plugin = Plugin::launch(
        db,
        Launch::serve().env("BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS", "1"),
    )
    .await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 0, "polls": 7}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(err.starts_with("schedule create error: "), "{err}");
    let failed = body["trace_id"].as_str().unwrap_or_default().to_string();
    // Wait until the slow write has ended, committed or cancelled.
    let deadline = Instant::now() + Duration::from_secs(40);
    while inserts_running(db).await > 0 {
        assert!(Instant::now() < deadline, "the slow insert never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another invocation, due a second after the slow write ended, runs to its end: by then
    // the worker (looking every 50 ms) has claimed whatever was due before it.
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 1, "polls": 1}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let later = body["trace_id"].as_str().unwrap_or_default();
    plugin.wait_finished(later, Duration::from_secs(20)).await;
    let runs = db
        .scalar(&format!(
            "SELECT COALESCE(MAX(invoke_count), 0) FROM bkp_schedule WHERE trace_id = '{failed}'"
        ))
        .await;
    assert!(
        runs <= 1,
        "the invocation answered FAIL was stored and run again ({runs} runs)\n{}",
        plugin.log_text()
    );
    let (_, shown) = plugin.get(&format!("/bk_plugin/schedule/{failed}")).await;
    assert_ne!(shown["data"]["state"], json!(4), "{shown}");
    assert_eq!(
        plugin.log_text().matches("poll plugin done").count(),
        1,
        "only the invocation answered POLL finished"
    );
}

/// A finish-callback receiver that accepts connections, reads, and never answers; counts the
/// connections (each is one delivery attempt: the notifier does not reuse a connection that
/// never answered).
struct BlackHole {
    url: String,
    attempts: Arc<AtomicUsize>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self {
            url: format!("http://{address}/callback/hung/"),
            attempts,
        }
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

/// Counts every row update of `bkp_schedule` in `bkp_test_updates`.
async fn count_updates(db: &TestDb) {
    db.execute(&[
        "CREATE TABLE bkp_test_updates (n BIGINT NOT NULL)",
        "INSERT INTO bkp_test_updates (n) VALUES (0)",
    ])
    .await;
    match db.backend() {
        Backend::Postgres => {
            db.execute(&[
                "CREATE FUNCTION bkp_count_update() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN UPDATE bkp_test_updates SET n = n + 1; RETURN NULL; END $$",
                "CREATE TRIGGER bkp_count_update AFTER UPDATE ON bkp_schedule \
                 FOR EACH ROW EXECUTE FUNCTION bkp_count_update()",
            ])
            .await;
        }
        Backend::Mysql => {
            db.execute(&[
                "CREATE TRIGGER bkp_count_update AFTER UPDATE ON bkp_schedule \
                 FOR EACH ROW UPDATE bkp_test_updates SET n = n + 1",
            ])
            .await;
        }
        Backend::Sqlite => {
            db.execute(&[
                "CREATE TRIGGER bkp_count_update AFTER UPDATE ON bkp_schedule \
                 BEGIN UPDATE bkp_test_updates SET n = n + 1; END",
            ])
            .await;
        }
    }
}

const STUCK: usize = 300;

async fn a_receiver_that_never_answers_costs_no_more_row_updates_than_the_attempts_made_to_it(
    db: &TestDb,
) {
    migrate(db);
    let receiver = BlackHole::start().await;
    // 300 invocations of the finish-callback version, finished, their callback due, as a
    // worker records them (columns every schema version has).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let context = json!({"plugin_callback_info": {"url": receiver.url, "data": {}}}).to_string();
    let rows: Vec<String> = (0..STUCK)
        .map(|i| {
            format!(
                "('{i:032x}', '1.7.0', 4, 2, '{{}}', '{context}', '{{}}', '{{}}', 1, 0, {now}, {now}, {now}, {now})"
            )
        })
        .collect();
    db.execute(&[&format!(
        "INSERT INTO bkp_schedule (trace_id, plugin_version, state, invoke_count, inputs, \
         context, storage, outputs, notify_state, notify_attempts, notify_at, created_at, \
         updated_at, finished_at) VALUES {}",
        rows.join(", ")
    )])
    .await;
    count_updates(db).await;
    let worker = Plugin::launch(db, Launch::worker()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.attempts() == 0 {
        assert!(
            Instant::now() < deadline,
            "no attempt\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let updates = "SELECT n FROM bkp_test_updates";
    let (updates_before, attempts_before) = (db.scalar(updates).await, receiver.attempts());
    // The window the bound is stated over.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (updates_after, attempts_after) = (db.scalar(updates).await, receiver.attempts());
    let updated = updates_after - updates_before;
    let attempts = i64::try_from(attempts_after - attempts_before).unwrap_or(i64::MAX);
    assert!(
        updated <= 2 * attempts + 10,
        "{updated} row updates for {attempts} delivery attempts in 10 s\n{}",
        worker.log_text()
    );
}
