//! The same sync and poll scenarios against the Python reference
//! (`../shared/reference-python`), started and stopped by its own scripts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use bkp_blackbox_tests::free_port;

use super::wrk::wrk;

pub(crate) fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference-python")
}

pub(crate) async fn python_scenarios(options: &Options, table: &mut Table) {
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
