//! The benchmark harness: builds the fixture plugin in release, drives it with `wrk` and a Rust
//! client, runs the same scenarios against the Python reference (`../shared/reference-python`),
//! and prints a table (also written to `bench-results/latest.md`).
//!
//! ```text
//! cargo run --release -p bkp-blackbox-tests --bin bkp-bench -- [--python] [--no-rust] [--quick]
//!     [--scenarios a,b,c,d,e,f,g,h,p,q] [--n 10000]
//!     [--fire 10] [--drain-small 10000] [--drain-large 1000000] [--drain-limit 600]
//!     [--before <an older bkp-fixtures build>]
//! ```
//! PostgreSQL scenarios run when `BKP_TEST_POSTGRES_URL` is set. See docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use bkp_blackbox_tests::{Backend, fixture_binary};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

mod prod;
mod python;
mod queue;
mod rust;
mod wrk;

use python::python_scenarios;
use rust::rust_scenarios;
use wrk::ensure_wrk;

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
    queue: queue::QueueOptions,
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
            .unwrap_or_else(|| "abcdefgh".into())
            .chars()
            .filter(char::is_ascii_lowercase)
            .collect(),
        python: args.iter().any(|a| a == "--python"),
        n: value("--n")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2000 } else { 10_000 }),
        duration: if quick { 5 } else { 15 },
        python_n: if quick { 200 } else { 500 },
        queue: queue::QueueOptions::from_args(value),
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

fn build_release() {
    println!("building the fixture plugin in release");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "bkp-fixtures"])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "release build failed");
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

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
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
        if options.scenarios.contains(&'h') {
            prod::prod_scenarios(&options, &mut table).await;
        }
        if options.scenarios.iter().any(|s| matches!(s, 'p' | 'q')) {
            queue::queue_scenarios(&options, &options.queue, &mut table).await;
        }
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
