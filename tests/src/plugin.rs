//! The fixture plugin as a child process: launching it (serve, web only, worker) on a test
//! database, speaking HTTP to it, reading its log, stopping it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{TempDir, TestDb, binary};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A fixture plugin process.
#[derive(Debug)]
pub struct Plugin {
    child: Child,
    /// `http://127.0.0.1:<port>`, or empty for a worker-only process.
    pub base: String,
    /// Where its stdout and stderr go (one file, in the order written).
    pub log: PathBuf,
    _logs: TempDir,
}

/// How to start a fixture process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `serve` or `worker`.
    pub command: &'static str,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The binary: `bkp-fixtures` unless [`Launch::binary`] says otherwise.
    pub binary: &'static str,
    /// A program to run instead of the binary found beside the tests ([`Launch::program`]).
    pub program: Option<PathBuf>,
}

impl Launch {
    /// `serve` with the embedded worker.
    pub fn serve() -> Self {
        Self {
            command: "serve",
            args: vec![],
            env: vec![],
            binary: "bkp-fixtures",
            program: None,
        }
    }

    /// `serve --no-worker`.
    pub fn web_only() -> Self {
        Self {
            command: "serve",
            args: vec!["--no-worker".into()],
            env: vec![],
            binary: "bkp-fixtures",
            program: None,
        }
    }

    /// `worker`.
    pub fn worker() -> Self {
        Self {
            command: "worker",
            args: vec![],
            env: vec![],
            binary: "bkp-fixtures",
            program: None,
        }
    }

    /// Runs another binary of the fixtures package (e.g. `bkp-faults`).
    pub fn binary(mut self, name: &'static str) -> Self {
        self.binary = name;
        self
    }

    /// Runs `program` (another build of the fixture, e.g. the previous release for a
    /// before/after benchmark) instead of the binary beside the tests.
    pub fn program(mut self, program: Option<&std::path::Path>) -> Self {
        self.program = program.map(std::path::Path::to_path_buf);
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

impl Plugin {
    /// Starts `bkp-fixtures serve` on `db` and waits until `meta` answers.
    pub async fn start(db: &TestDb) -> Self {
        Self::launch(db, Launch::serve()).await
    }

    /// Starts a fixture process as described; a `serve` is waited for until it answers.
    pub async fn launch(db: &TestDb, launch: Launch) -> Self {
        let port = free_port();
        let logs = TempDir::new("bkp-log");
        let log = logs.0.join("plugin.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
        let program = launch
            .program
            .clone()
            .unwrap_or_else(|| binary(launch.binary));
        let mut command = Command::new(program);
        command
            .arg(launch.command)
            .args(&launch.args)
            .current_dir(&logs.0)
            .env("PORT", port.to_string())
            .env("BK_PLUGIN_BIND", "127.0.0.1")
            .env("DATABASE_URL", &db.url)
            .env("BKPAAS_APP_ID", "bkp-fixtures")
            .env("BKPAAS_ENVIRONMENT", "dev")
            .env("BK_PLUGIN_WORKER_POLL_MS", "50")
            .env("BK_PLUGIN_DB_MAX_CONNECTIONS", "8")
            // stag/prod write a log file; keep it beside the test's other output.
            .env("BK_PLUGIN_LOG_DIR", logs.0.join("v3logs"))
            .stdout(Stdio::from(
                log_file
                    .try_clone()
                    .unwrap_or_else(|e| panic!("log file: {e}")),
            ))
            .stderr(Stdio::from(log_file));
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the fixture: {e}"));
        let base = if launch.command == "serve" {
            format!("http://127.0.0.1:{port}")
        } else {
            String::new()
        };
        let mut plugin = Self {
            child,
            base,
            log,
            _logs: logs,
        };
        if launch.command == "serve" {
            plugin.wait_ready().await;
        }
        plugin
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/bk_plugin/meta", self.base))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the fixture exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the fixture did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `GET /metrics` as text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    /// GET `path`; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        read(response).await
    }

    /// POST `body` as JSON to `path`; returns status and JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        self.post_with(path, content_type, body, &[]).await
    }

    /// POST raw bytes with a content type and extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        read(response).await
    }

    /// Invokes `version`; returns status and body.
    pub async fn invoke(&self, version: &str, inputs: Value, context: Value) -> (u16, Value) {
        self.post(
            &format!("/bk_plugin/invoke/{version}"),
            &serde_json::json!({"inputs": inputs, "context": context}),
        )
        .await
    }

    /// Polls `schedule/{trace_id}` until its state is terminal (or `timeout`); returns its data.
    pub async fn wait_finished(&self, trace_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
            let state = body["data"]["state"].as_i64().unwrap_or(0);
            if state == 4 || state == 5 {
                return body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{trace_id} did not finish: {body}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, body)
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}
