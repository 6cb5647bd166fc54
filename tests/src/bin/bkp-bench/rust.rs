//! The scenarios against the Rust fixture binary, on one database backend.

use std::time::{Duration, Instant};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use super::wrk::wrk;
use super::*;

pub(crate) async fn rust_scenarios(options: &Options, backend: Backend, table: &mut Table) {
    let label = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
        Backend::Mysql => "MySQL",
    };
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    println!("== Rust fixture on {label}");
    let has = |c: char| options.scenarios.contains(&c);
    if has('f') {
        let started = Instant::now();
        let plugin = Plugin::start(&db).await;
        let startup = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        table.put(
            &format!("f. start to first 200 on meta ({label})"),
            false,
            format!("{:.0} ms", startup.as_secs_f64() * 1000.0),
        );
        table.put(
            &format!("f. RSS idle ({label})"),
            false,
            format!("{:.1} MiB", rss_mib(plugin.pid())),
        );
    }
    let plugin = Plugin::start(&db).await;
    for (key, version, body, name) in SYNC {
        if !has(key) {
            continue;
        }
        let url = format!("{}/bk_plugin/invoke/{version}", plugin.base);
        let pid = plugin.pid();
        let sampler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            rss_mib(pid)
        });
        let result = wrk(&url, body, options.duration);
        let rss = sampler.join().unwrap_or(f64::NAN);
        result.record(table, &format!("{name} ({label})"), false);
        if key == 'a' {
            table.put(
                &format!("f. RSS under load a ({label})"),
                false,
                format!("{rss:.1} MiB"),
            );
        }
    }
    drop(plugin);
    let mut empty_rate = None;
    if has('c') {
        for separate in [false, true] {
            let db = TestDb::new(backend).await.unwrap_or_else(|| panic!("db"));
            let (rate, elapsed, invoked) = poll_end_to_end(&db, separate, options.n).await;
            let mode = if separate {
                "separate worker"
            } else {
                "embedded worker"
            };
            if !separate {
                empty_rate = Some(rate);
            }
            table.put(
                &format!(
                    "c. poll end to end, {} x 1.1.0, {mode} ({label})",
                    options.n
                ),
                false,
                format!("{rate:.0}/s ({elapsed:.1} s; invokes took {invoked:.1} s)"),
            );
            db.drop_database().await;
        }
    }
    if has('g') {
        let db = TestDb::new(backend).await.unwrap_or_else(|| panic!("db"));
        prefill_finished(&db, 1_000_000).await;
        let (rate, elapsed, _) = poll_end_to_end(&db, false, options.n).await;
        let drop = empty_rate
            .map(|e| format!(", {:.1} % below the empty table", (1.0 - rate / e) * 100.0));
        table.put(
            &format!("g. poll end to end with 1,000,000 finished rows ({label})"),
            false,
            format!("{rate:.0}/s ({elapsed:.1} s){}", drop.unwrap_or_default()),
        );
        db.drop_database().await;
    }
    if has('d') {
        let (db, plugin, conn, client) = served(backend).await;
        let total = 1000;
        for i in 0..total {
            let body = json!({"inputs": {"interval": 1}, "context": {}});
            let _ = client
                .post(format!("{}/bk_plugin/invoke/1.1.0", plugin.base))
                .json(&body)
                .send()
                .await;
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        while (count(&conn, "SELECT COUNT(*) FROM bkp_schedule WHERE state = 4").await as usize)
            < total
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT finished_at - created_at - 1000 FROM bkp_schedule".to_string(),
            ))
            .await
            .unwrap_or_default();
        let mut lateness: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.try_get_by_index::<i64>(0).ok())
            .map(|v| v as f64)
            .collect();
        let max = lateness.iter().copied().fold(f64::NAN, f64::max);
        table.put(
            &format!("d. poll lateness, 1000 x 1 s, due -> step recorded ({label})"),
            false,
            format!(
                "p50 {:.0} / p99 {:.0} / max {:.0} ms",
                percentile(&mut lateness, 0.5),
                percentile(&mut lateness, 0.99),
                max
            ),
        );
        db.drop_database().await;
    }
    if has('e') {
        let (db, plugin, conn, client) = served(backend).await;
        let mut latencies = Vec::new();
        for _ in 0..300 {
            let answer: Value = match client
                .post(format!("{}/bk_plugin/invoke/1.2.0", plugin.base))
                .json(&json!({"inputs": {}, "context": {}}))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => continue,
            };
            let trace_id = answer["trace_id"].as_str().unwrap_or_default().to_string();
            let url = answer["data"]["outputs"]["callback_url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let sent = chrono_ms();
            let _ = client.post(&url).json(&json!({"ok": true})).send().await;
            loop {
                let sql = format!(
                    "SELECT finished_at FROM bkp_schedule WHERE trace_id = '{trace_id}' AND state = 4"
                );
                let finished = conn
                    .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.try_get_by_index::<i64>(0).ok());
                if let Some(finished) = finished {
                    latencies.push((finished - sent) as f64);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        table.put(
            &format!("e. callback -> resume recorded, 300 x 1.2.0 ({label})"),
            false,
            format!(
                "p50 {:.0} / p99 {:.0} ms",
                percentile(&mut latencies.clone(), 0.5),
                percentile(&mut latencies, 0.99)
            ),
        );
        db.drop_database().await;
    }
    db.drop_database().await;
}

/// Invokes `n` poll invocations (interval 0) and waits until all are SUCCESS; returns
/// (completions per second, seconds in all, seconds the invokes took).
pub(crate) async fn poll_end_to_end(db: &TestDb, separate: bool, n: usize) -> (f64, f64, f64) {
    let (web, _worker) = if separate {
        let web = Plugin::launch(db, Launch::web_only()).await;
        let worker = Plugin::launch(db, Launch::worker()).await;
        (web, Some(worker))
    } else {
        (Plugin::start(db).await, None)
    };
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Counting by the indexed finish time keeps the harness's own polling cheap on a big table.
    let since = chrono_ms();
    let finished =
        format!("SELECT COUNT(*) FROM bkp_schedule WHERE finished_at >= {since} AND state = 4");
    let started = Instant::now();
    let ids = invoke_many(&web.base, "1.1.0", n, json!({"interval": 0})).await;
    let invoked = started.elapsed().as_secs_f64();
    loop {
        let done = count(&conn, &finished).await;
        if done as usize >= ids.len() {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            println!("  poll scenario gave up with {done} of {} done", ids.len());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (ids.len() as f64 / elapsed, elapsed, invoked)
}

/// Fills the schedule table with `rows` finished invocations, as a long-running deployment has.
pub(crate) async fn prefill_finished(db: &TestDb, rows: u64) {
    bkp_blackbox_tests::migrate(db);
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = chrono_ms();
    let columns = "trace_id, plugin_version, state, invoke_count, inputs, context, storage, outputs, err, run_at, lease_owner, lease_until, callback_deadline, notify_state, notify_attempts, notify_at, created_at, updated_at, finished_at";
    let values = format!(
        "'1.1.0', 4, 2, '{{}}', '{{}}', '{{\"n\": 1}}', '{{\"phase\": \"done\"}}', NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, {now}, {now}, {now}"
    );
    let sql = match db.backend() {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) INSERT INTO bkp_schedule ({columns}) SELECT printf('%032x', i), {values} FROM n"
        ),
        Backend::Postgres => format!(
            "INSERT INTO bkp_schedule ({columns}) SELECT lpad(to_hex(i), 32, '0'), {values} FROM generate_series(1, {rows}) AS i"
        ),
        Backend::Mysql => format!(
            "INSERT INTO bkp_schedule ({columns}) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) SELECT LPAD(HEX(i), 32, '0'), {values} FROM n"
        ),
    };
    let started = Instant::now();
    conn.execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("prefill: {e}"));
    if db.backend() == Backend::Postgres {
        let _ = conn.execute_unprepared("ANALYZE bkp_schedule").await;
    }
    println!(
        "  prefilled {rows} finished rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A fresh database on `backend`, the fixture serving it, a connection to it and an HTTP
/// client.
async fn served(backend: Backend) -> (TestDb, Plugin, DatabaseConnection, reqwest::Client) {
    let db = TestDb::new(backend).await.unwrap_or_else(|| panic!("db"));
    let plugin = Plugin::start(&db).await;
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (db, plugin, conn, reqwest::Client::new())
}
