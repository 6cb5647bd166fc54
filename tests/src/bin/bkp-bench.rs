//! The benchmark harness: builds the fixture plugin in release, drives it with `wrk` and a Rust
//! client, runs the same scenarios against the Python reference (`../shared/reference-python`),
//! and prints a table (also written to `bench-results/latest.md`).
//!
//! ```text
//! cargo run --release -p bkp-blackbox-tests --bin bkp-bench -- [--python] [--no-rust] [--quick]
//!     [--scenarios a,b,c,d,e,f,g] [--n 10000]
//! ```
//! PostgreSQL scenarios run when `BKP_TEST_POSTGRES_URL` is set. See docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, fixture_binary, free_port};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// The sync-invoke scenarios: key, version, request body, row name.
const SYNC: [(char, &str, &str, &str); 2] = [
    (
        'a',
        "1.6.0",
        r#"{"inputs": {}, "context": {}}"#,
        "a. sync invoke, empty 1.6.0",
    ),
    (
        'b',
        "1.5.0",
        r#"{"inputs": {"action": "go", "options": {"name": "n", "value": "5"}, "tags": ["x", "y"], "count": "7"}, "context": {"biz_id": "3"}}"#,
        "b. sync invoke, nested 1.5.0",
    ),
];

struct Options {
    scenarios: Vec<char>,
    python: bool,
    n: usize,
    duration: u64,
    python_n: usize,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    Options {
        scenarios: value("--scenarios")
            .unwrap_or_else(|| "abcdefg".into())
            .chars()
            .filter(char::is_ascii_lowercase)
            .collect(),
        python: args.iter().any(|a| a == "--python"),
        n: value("--n")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2000 } else { 10_000 }),
        duration: if quick { 5 } else { 15 },
        python_n: if quick { 200 } else { 500 },
    }
}

#[derive(Default)]
struct Table {
    rows: BTreeMap<String, [Option<String>; 2]>,
}

impl Table {
    fn put(&mut self, row: &str, python: bool, value: String) {
        println!(
            "  {row} [{}]: {value}",
            if python { "python" } else { "rust" }
        );
        self.rows.entry(row.to_string()).or_default()[usize::from(python)] = Some(value);
    }
}

fn ensure_wrk() {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return;
    }
    println!("installing wrk from Debian's packages");
    let _ = Command::new("apt-get").args(["update", "-q"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "wrk"])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "cannot install wrk");
}

fn build_release() {
    println!("building the fixture plugin in release");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "bkp-fixtures"])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "release build failed");
}

struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl WrkResult {
    /// Puts req/s, p50 / p99 and any errors into the table under `row`.
    fn record(&self, table: &mut Table, row: &str, python: bool) {
        table.put(&format!("{row} req/s"), python, format!("{:.0}", self.rps));
        let latency = format!("{:.2} / {:.2} ms", self.p50_ms, self.p99_ms);
        table.put(&format!("{row} p50 / p99"), python, latency);
        if self.errors > 0 {
            table.put(&format!("{row} errors"), python, self.errors.to_string());
        }
    }
}

fn parse_ms(text: &str) -> f64 {
    let text = text.trim();
    let (number, unit) =
        text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, body: &str, seconds: u64) -> WrkResult {
    let script = std::env::temp_dir().join(format!("bkp-wrk-{}.lua", std::process::id()));
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    std::fs::write(&script, lua).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("wrk")
        .args(["-t2", "-c50", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("wrk: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
    };
    let errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        + field("Socket errors:").map_or(0, |_| 1);
    WrkResult {
        rps: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: field("50%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN),
        errors,
    }
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    conn.query_one_raw(Statement::from_string(
        conn.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .ok()
    .flatten()
    .and_then(|r| r.try_get_by_index::<i64>(0).ok())
    .unwrap_or(0)
}

/// Invokes `n` times with 50 concurrent clients; returns the trace ids.
async fn invoke_many(base: &str, version: &str, n: usize, inputs: Value) -> Vec<String> {
    let per = n.div_ceil(50);
    let mut tasks = Vec::new();
    for worker in 0..50 {
        let count = per.min(n.saturating_sub(worker * per));
        let (base, version, inputs) = (base.to_string(), version.to_string(), inputs.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let body = json!({"inputs": inputs, "context": {}});
                if let Ok(r) = client
                    .post(format!("{base}/bk_plugin/invoke/{version}"))
                    .json(&body)
                    .send()
                    .await
                {
                    let answer: Value = r.json().await.unwrap_or_default();
                    ids.push(answer["trace_id"].as_str().unwrap_or_default().to_string());
                }
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap_or_default());
    }
    ids
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index.min(values.len() - 1)]
}

async fn rust_scenarios(options: &Options, backend: Backend, table: &mut Table) {
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
        let db = TestDb::new(backend).await.unwrap_or_else(|| panic!("db"));
        let plugin = Plugin::start(&db).await;
        let conn = Database::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::new();
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
        let db = TestDb::new(backend).await.unwrap_or_else(|| panic!("db"));
        let plugin = Plugin::start(&db).await;
        let conn = Database::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::new();
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
async fn poll_end_to_end(db: &TestDb, separate: bool, n: usize) -> (f64, f64, f64) {
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
async fn prefill_finished(db: &TestDb, rows: u64) {
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

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference-python")
}

async fn python_scenarios(options: &Options, table: &mut Table) {
    let port = free_port();
    println!("== Python reference (gunicorn 2x16 gthread + celery threads 50, SQLite, dev)");
    let start = reference_dir().join("start.sh");
    let status = Command::new("bash")
        .arg(&start)
        .env("REF_PORT", port.to_string())
        .env("REF_NO_DB_LOG", "1")
        .stdout(Stdio::inherit())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("  the Python reference did not start; skipped");
        return;
    }
    let base = format!("http://127.0.0.1:{port}");
    let has = |c: char| options.scenarios.contains(&c);
    for (key, version, body, name) in SYNC {
        if has(key) {
            let url = format!("{base}/bk_plugin/invoke/{version}");
            wrk(&url, body, options.duration).record(table, &format!("{name} (SQLite)"), true);
        }
    }
    if has('c') {
        let started = Instant::now();
        let ids = invoke_many(&base, "1.1.0", options.python_n, json!({"interval": 0})).await;
        let client = reqwest::Client::new();
        let mut pending: Vec<String> = ids.clone();
        let mut last_progress = Instant::now();
        let mut last_done = started.elapsed();
        // Stop waiting when nothing has finished for 30 s: a lost invocation must not hang the run.
        while !pending.is_empty() && last_progress.elapsed() < Duration::from_secs(30) {
            let mut still = Vec::new();
            for id in pending.iter().cloned() {
                let state = match client
                    .get(format!("{base}/bk_plugin/schedule/{id}"))
                    .send()
                    .await
                {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["data"]["state"].as_i64()),
                    Err(_) => None,
                };
                if state != Some(4) && state != Some(5) {
                    still.push(id);
                }
            }
            if still.len() < pending.len() {
                last_progress = Instant::now();
                last_done = started.elapsed();
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let finished = ids.len() - pending.len();
        let elapsed = last_done.as_secs_f64().max(0.001);
        let lost = if pending.is_empty() {
            String::new()
        } else {
            format!("; {} never finished: {}", pending.len(), pending.join(", "))
        };
        table.put(
            &format!(
                "c. poll end to end, {} x 1.1.0, embedded worker (SQLite)",
                options.n
            ),
            true,
            format!(
                "{:.1}/s ({finished} invocations in {elapsed:.1} s{lost})",
                finished as f64 / elapsed
            ),
        );
    }
    let _ = Command::new("bash")
        .arg(reference_dir().join("stop.sh"))
        .status();
}

fn render(table: &Table) -> String {
    let mut out = String::from("| scenario | Rust | Python | Rust / Python |\n|---|---|---|---|\n");
    for (row, [rust, python]) in &table.rows {
        let number = |v: &Option<String>| {
            v.as_ref()
                .and_then(|t| t.split(['/', ' ']).next())
                .and_then(|n| n.parse::<f64>().ok())
        };
        let ratio = match (number(rust), number(python)) {
            (Some(r), Some(p)) if p > 0.0 && row.contains("req/s") || row.starts_with("c.") => {
                format!("{:.0}x", r / p)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {row} | {} | {} | {ratio} |",
            rust.clone().unwrap_or_default(),
            python.clone().unwrap_or_default()
        );
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    ensure_wrk();
    build_release();
    let _ = fixture_binary();
    let mut table = Table::default();
    if !std::env::args().any(|a| a == "--no-rust") {
        rust_scenarios(&options, Backend::Sqlite, &mut table).await;
        rust_scenarios(&options, Backend::Postgres, &mut table).await;
    }
    if options.python {
        python_scenarios(&options, &mut table).await;
    }
    let text = render(&table);
    println!("\n{text}");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("latest.md"), &text);
}
