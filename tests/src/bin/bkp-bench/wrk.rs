//! Driving HTTP load with wrk (installed from Debian's packages when missing) and reading
//! its figures.

use std::path::Path;
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
    /// Requests per second.
    pub(crate) fn rps(&self) -> f64 {
        self.rps
    }

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
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    run(&lua, url, &[], seconds)
}

/// wrk whose requests rotate through the `X-Bkapi-JWT` values in `tokens` (one per line; `-`
/// for none). Each wrk thread takes every other line and cycles through its own share; the
/// requests are formatted once, up front, so the load generator does no per-request work.
pub(crate) fn wrk_rotating(url: &str, body: &str, tokens: &Path, seconds: u64) -> WrkResult {
    let lua = format!(
        r#"wrk.method = "POST"
wrk.body = [[{body}]]
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  reqs = {{}}
  local i = 0
  for line in io.lines(args[1]) do
    if i % THREADS == id then
      local headers = {{["Content-Type"] = "application/json"}}
      if line ~= "-" then headers["X-Bkapi-JWT"] = line end
      reqs[#reqs + 1] = wrk.format("POST", nil, headers, wrk.body)
    end
    i = i + 1
  end
  if #reqs == 0 then reqs[1] = wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, wrk.body) end
  k = 0
end
function request()
  k = k % #reqs + 1
  return reqs[k]
end
"#
    )
    .replace("THREADS", &THREADS.to_string());
    run(
        &lua,
        url,
        &["--".to_string(), tokens.display().to_string()],
        seconds,
    )
}

const THREADS: usize = 2;

fn run(lua: &str, url: &str, script_args: &[String], seconds: u64) -> WrkResult {
    let script = std::env::temp_dir().join(format!("bkp-wrk-{}.lua", std::process::id()));
    std::fs::write(&script, lua).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("wrk")
        .args([
            format!("-t{THREADS}"),
            "-c50".to_string(),
            format!("-d{seconds}s"),
            "--latency".to_string(),
            "-s".to_string(),
        ])
        .arg(&script)
        .arg(url)
        .args(script_args)
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
