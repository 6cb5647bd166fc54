//! Driving HTTP load with wrk (installed from Debian's packages when missing) and reading
//! its figures.

use std::process::Command;

use super::Table;

pub(crate) fn ensure_wrk() {
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

pub(crate) struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl WrkResult {
    /// Puts req/s, p50 / p99 and any errors into the table under `row`.
    pub(crate) fn record(&self, table: &mut Table, row: &str, python: bool) {
        table.put(&format!("{row} req/s"), python, format!("{:.0}", self.rps));
        let latency = format!("{:.2} / {:.2} ms", self.p50_ms, self.p99_ms);
        table.put(&format!("{row} p50 / p99"), python, latency);
        if self.errors > 0 {
            table.put(&format!("{row} errors"), python, self.errors.to_string());
        }
    }
}

pub(crate) fn parse_ms(text: &str) -> f64 {
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

pub(crate) fn wrk(url: &str, body: &str, seconds: u64) -> WrkResult {
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
