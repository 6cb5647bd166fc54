//! Scenarios p and q: the scheduler at production scale (issue 23), on MariaDB and PostgreSQL,
//! each run with the binary under test and, with `--before <path>`, with an older build in the
//! same run.
//!
//! - p. The PaaS shape: `serve --no-worker` and one `worker` process on one database; wrk fires
//!   1.1.0 invokes (`interval 0, polls 1`) for `--fire` seconds (default 10) at full speed, then
//!   the backlog drains. Reports invokes/s, the drain rate after the last invoke, end to end,
//!   time to empty, and the peak RSS of each process.
//! - q. The drain alone: `--drain-small` (10,000) and `--drain-large` (1,000,000) due 1.1.0
//!   rows seeded by SQL, one `worker` started and timed until none is left (or for at most
//!   `--drain-limit` seconds, default 600: the rate so far is reported, with what was left).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use super::wrk::wrk;
use super::*;

/// What scenarios p and q are told on the command line.
pub(crate) struct QueueOptions {
    fire: u64,
    drain_small: u64,
    drain_large: u64,
    drain_limit: u64,
    before: Option<PathBuf>,
}

impl QueueOptions {
    pub(crate) fn from_args(value: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str, default: u64| {
            value(name)
                .and_then(|v| v.replace('_', "").parse().ok())
                .unwrap_or(default)
        };
        Self {
            fire: number("--fire", 10),
            drain_small: number("--drain-small", 10_000),
            drain_large: number("--drain-large", 1_000_000),
            drain_limit: number("--drain-limit", 600),
            before: value("--before").map(PathBuf::from),
        }
    }
}

/// The load average now, as `uptime` prints it (the box is shared: every figure carries it).
pub(crate) fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The builds to compare: the previous one (when given) and this one.
fn builds(options: &QueueOptions) -> Vec<(&'static str, Option<&Path>)> {
    let mut builds = Vec::new();
    if let Some(before) = &options.before {
        builds.push(("before", Some(before.as_path())));
    }
    builds.push(("after", None));
    builds
}

fn label(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
        Backend::Mysql => "MariaDB",
    }
}

/// Runs `migrate` of `program` (the fixture beside the harness when `None`) on `db`.
fn migrate_with(program: Option<&Path>, db: &TestDb) {
    let program = program.map_or_else(bkp_blackbox_tests::fixture_binary, Path::to_path_buf);
    let output = std::process::Command::new(program)
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    assert!(
        output.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Samples the RSS of `pids` every 100 ms until stopped; returns the peak of each, in MiB.
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Vec<f64>>,
}

impl PeakRss {
    fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = vec![0.0f64; pids.len()];
            while !stopped.load(Ordering::Relaxed) {
                for (peak, pid) in peak.iter_mut().zip(&pids) {
                    let rss = rss_mib(*pid);
                    if rss.is_finite() {
                        *peak = peak.max(rss);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        Self { stop, sampler }
    }

    fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or_default()
    }
}

async fn connect(db: &TestDb) -> DatabaseConnection {
    Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until no POLL / CALLBACK row is left (at most `limit`); returns the seconds waited
/// and how many were left.
async fn wait_empty(conn: &DatabaseConnection, limit: Duration) -> (f64, i64) {
    let started = Instant::now();
    loop {
        let left = count(
            conn,
            "SELECT COUNT(*) FROM bkp_schedule WHERE state IN (2, 3)",
        )
        .await;
        if left == 0 || started.elapsed() > limit {
            return (started.elapsed().as_secs_f64(), left);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn queue_scenarios(options: &Options, queue: &QueueOptions, table: &mut Table) {
    for backend in [Backend::Mysql, Backend::Postgres] {
        for (build, program) in builds(queue) {
            if options.scenarios.contains(&'p') {
                paas_shape(backend, build, program, queue, table).await;
            }
            if options.scenarios.contains(&'q') {
                for rows in [queue.drain_small, queue.drain_large] {
                    drain(backend, build, program, rows, queue, table).await;
                }
            }
        }
    }
}

async fn paas_shape(
    backend: Backend,
    build: &str,
    program: Option<&Path>,
    queue: &QueueOptions,
    table: &mut Table,
) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let name = label(backend);
    println!("== p. PaaS shape on {name}, {build}");
    migrate_with(program, &db);
    let web = Plugin::launch(&db, Launch::web_only().program(program)).await;
    let worker = Plugin::launch(&db, Launch::worker().program(program)).await;
    let conn = connect(&db).await;
    let peak = PeakRss::start(vec![web.pid(), worker.pid()]);
    let load_before = load();
    let url = format!("{}/bk_plugin/invoke/1.1.0", web.base);
    let body = r#"{"inputs": {"interval": 0, "polls": 1}, "context": {}}"#;
    let fire = queue.fire;
    let started = Instant::now();
    let fired = tokio::task::spawn_blocking(move || wrk(&url, body, fire))
        .await
        .unwrap_or_else(|e| panic!("wrk: {e}"));
    let firing = started.elapsed().as_secs_f64();
    let stored = count(&conn, "SELECT COUNT(*) FROM bkp_schedule").await;
    let done_then = count(&conn, "SELECT COUNT(*) FROM bkp_schedule WHERE state = 4").await;
    let (to_empty, left) = wait_empty(&conn, Duration::from_secs(queue.drain_limit)).await;
    let rss = peak.finish();
    let drained = stored - done_then - left;
    let row = format!("p. PaaS shape, {name}, {build}");
    table.put(
        &format!("{row}: invokes accepted"),
        false,
        format!(
            "{stored} in {firing:.1} s ({:.0}/s; wrk {:.0} req/s)",
            stored as f64 / firing,
            fired.rps()
        ),
    );
    table.put(
        &format!("{row}: backlog at the last invoke, drain after it"),
        false,
        format!(
            "{} waiting; {:.0}/s",
            stored - done_then,
            drained as f64 / to_empty.max(0.001)
        ),
    );
    table.put(
        &format!("{row}: time to empty, end to end"),
        false,
        format!(
            "{to_empty:.1} s{}; {:.0}/s",
            if left > 0 {
                format!(" (gave up, {left} left)")
            } else {
                String::new()
            },
            (stored - left) as f64 / (firing + to_empty)
        ),
    );
    table.put(
        &format!("{row}: peak RSS web / worker, load"),
        false,
        format!(
            "{:.0} / {:.0} MiB; load {load_before} -> {}",
            rss.first().copied().unwrap_or(f64::NAN),
            rss.get(1).copied().unwrap_or(f64::NAN),
            load()
        ),
    );
    drop(worker);
    drop(web);
    let _ = conn.close().await;
    db.drop_database().await;
}

/// What a drain measured: rows finished between the first progress seen and the end.
struct Drained {
    done: i64,
    seconds: f64,
    left: i64,
}

impl Drained {
    fn rate(&self) -> f64 {
        self.done as f64 / self.seconds.max(0.001)
    }
}

/// Times the drain of `total` waiting rows from the first one seen finished (so the worker's
/// start-up is not counted) until none is left, or `limit` has passed. Counts every 200 ms,
/// every second past 100,000 rows (a count of a million rows is itself a load).
async fn drain_rate(conn: &DatabaseConnection, total: i64, limit: Duration) -> Drained {
    let every = Duration::from_millis(if total > 100_000 { 1000 } else { 200 });
    let started = Instant::now();
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let left = count(
            conn,
            "SELECT COUNT(*) FROM bkp_schedule WHERE state IN (2, 3)",
        )
        .await;
        let now = Instant::now();
        if first.is_none() && left < total {
            first = Some((now, left));
        }
        if left == 0 || started.elapsed() > limit {
            let (since, from) = first.unwrap_or((now, left));
            return Drained {
                done: from - left,
                seconds: now.duration_since(since).as_secs_f64(),
                left,
            };
        }
        tokio::time::sleep(every).await;
    }
}

/// Seeds `rows` due 1.1.0 invocations (one step from SUCCESS), as the invoke route stores
/// them, oldest due first; no statistics are taken.
async fn seed_due(db: &TestDb, conn: &DatabaseConnection, rows: u64) {
    let now = chrono_ms();
    let columns = "trace_id, plugin_version, state, invoke_count, inputs, context, storage, \
                   outputs, err, run_at, lease_owner, lease_until, callback_deadline, \
                   notify_state, notify_attempts, notify_at, created_at, updated_at, finished_at";
    let values = |i: &str| {
        format!(
            "'1.1.0', 2, 1, '{{\"interval\":0,\"polls\":1}}', '{{}}', \
             '{{\"marker\":\"seeded\",\"n\":0}}', '{{\"phase\":\"waiting\"}}', NULL, \
             {now} - {rows} + {i}, NULL, NULL, NULL, 0, 0, NULL, {now}, {now}, NULL"
        )
    };
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "INSERT INTO bkp_schedule ({columns}) SELECT lpad(to_hex(i), 32, '0'), {} \
             FROM generate_series(1, {rows}) AS i",
            values("i")
        ),
        _ => {
            // A cross join of digit tables (MariaDB stops a recursive CTE at 1,000 rows).
            let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL \
                          SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 \
                          UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
            let places = (rows.max(2) - 1).to_string().len();
            let tables: Vec<String> = (0..places).map(|p| format!("{digits} d{p}")).collect();
            let number: Vec<String> = (0..places)
                .map(|p| format!("d{p}.d * {}", 10u64.pow(u32::try_from(p).unwrap_or(0))))
                .collect();
            format!(
                "INSERT INTO bkp_schedule ({columns}) SELECT LPAD(HEX(i), 32, '0'), {} FROM \
                 (SELECT 1 + {} AS i FROM {}) n WHERE i <= {rows}",
                values("i"),
                number.join(" + "),
                tables.join(", ")
            )
        }
    };
    let started = Instant::now();
    conn.execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    println!(
        "  seeded {rows} due rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn drain(
    backend: Backend,
    build: &str,
    program: Option<&Path>,
    rows: u64,
    queue: &QueueOptions,
    table: &mut Table,
) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let name = label(backend);
    println!("== q. drain of {rows} due rows on {name}, {build}");
    migrate_with(program, &db);
    let conn = connect(&db).await;
    seed_due(&db, &conn, rows).await;
    let load_before = load();
    let worker = Plugin::launch(&db, Launch::worker().program(program)).await;
    let peak = PeakRss::start(vec![worker.pid()]);
    let total = i64::try_from(rows).unwrap_or(i64::MAX);
    let drained = drain_rate(&conn, total, Duration::from_secs(queue.drain_limit)).await;
    let rss = peak.finish();
    table.put(
        &format!("q. drain of {rows} due rows, {name}, {build}"),
        false,
        format!(
            "{:.0}/s ({} in {:.1} s{}; worker peak RSS {:.0} MiB; load {load_before} -> {})",
            drained.rate(),
            drained.done,
            drained.seconds,
            if drained.left > 0 {
                format!(", stopped with {} left", drained.left)
            } else {
                String::new()
            },
            rss.first().copied().unwrap_or(f64::NAN),
            load()
        ),
    );
    drop(worker);
    let _ = conn.close().await;
    db.drop_database().await;
}
