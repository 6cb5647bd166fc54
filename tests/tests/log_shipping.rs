//! Production log lines as PaaS collects them and BK-SOPS shows them: the real binary in prod
//! mode writes JSON lines with every key Python's formatter writes, to stdout and to a file under
//! the log directory, and BK-SOPS's formatter (`[{ts}]{levelname}-{funcName}: {message}`, keyed
//! by `trace_id`) works on every one of them, warnings and panics included.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TempDir, TestDb, migrate};
use serde_json::{Value, json};

/// The keys blueapps' JSON formatter writes, plus the runtime's `trace_id`.
const PYTHON_KEYS: [&str; 9] = [
    "levelname",
    "asctime",
    "pathname",
    "lineno",
    "funcName",
    "process",
    "thread",
    "message",
    "trace_id",
];

fn gateway_jwt() -> String {
    bkp_blackbox_tests::gateway_jwt("gateway.key", "bkp-fixtures")
}

async fn prod_plugin(db: &TestDb, log_dir: &Path) -> Plugin {
    migrate(db);
    let launch = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
        .env("BKPAAS_PROCESS_TYPE", "web")
        .env(
            "APIGW_PUBLIC_KEY_FILE",
            &bkp_blackbox_tests::jwt_fixture("gateway.pub"),
        )
        .env("BK_PLUGIN_LOG_DIR", &log_dir.display().to_string());
    Plugin::launch(db, launch).await
}

async fn invoke(plugin: &Plugin, version: &str, inputs: Value, context: Value) -> String {
    let jwt = gateway_jwt();
    let body = json!({"inputs": inputs, "context": context}).to_string();
    let (status, answer) = plugin
        .post_with(
            &format!("/bk_plugin/invoke/{version}"),
            "application/json",
            body,
            &[("X-Bkapi-JWT", &jwt)],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["trace_id"].as_str().unwrap_or_default().to_string()
}

/// BK-SOPS's `get_logs` line: a missing key there is a KeyError and a 500 for the user.
fn sops_line(line: &Value) -> String {
    for key in ["levelname", "funcName", "message"] {
        assert!(
            line.get(key).is_some(),
            "BK-SOPS would raise KeyError({key:?}) on {line}"
        );
    }
    format!(
        "[{}]{}-{}: {}",
        line["asctime"].as_str().unwrap_or_default(),
        line["levelname"].as_str().unwrap_or_default(),
        line["funcName"].as_str().unwrap_or_default(),
        line["message"].as_str().unwrap_or_default()
    )
}

/// Every line of `text` as JSON; fails on any line that is not a JSON object with every key.
fn json_lines(text: &str, origin: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let value: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{origin}: not a JSON line ({e}): {l:?}"));
            for key in PYTHON_KEYS {
                assert!(value.get(key).is_some(), "{origin}: no {key:?} in {l}");
            }
            value
        })
        .collect()
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bk_sops_formats_every_prod_line_from_stdout_and_the_log_file_including_an_error_and_a_panic()
 {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"));
    let dir = TempDir::new("bkp-v3logs");
    let plugin = prod_plugin(&db, &dir.0).await;
    let echo = invoke(
        &plugin,
        "1.0.0",
        json!({"hello": "x"}),
        json!({"executor": "admin"}),
    )
    .await;
    let failed = invoke(&plugin, "1.3.0", json!({}), json!({})).await;
    let crashed = invoke(&plugin, "1.4.0", json!({}), json!({})).await;

    let files = log_files(&dir.0);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with("web-") && name.ends_with("-plugin.log") && name.len() == 19,
        "{name}"
    );
    let file_text = std::fs::read_to_string(&files[0]).unwrap_or_default();
    let from_file = json_lines(&file_text, "log file");
    // stdout and stderr of the process, both: every line must be JSON in prod.
    let from_process = json_lines(&plugin.log_text(), "stdout/stderr");
    assert!(!from_process.is_empty());

    for lines in [&from_file, &from_process] {
        let of = |trace: &str| -> Vec<(String, &Value)> {
            lines
                .iter()
                .filter(|l| l["trace_id"] == json!(trace))
                .map(|l| (sops_line(l), l))
                .collect()
        };
        let info = of(&echo);
        assert!(
            info.iter().any(|(text, l)| text
                .contains("]INFO-v1_0_0: echo plugin executing for admin")
                && l["pathname"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("v1_0_0.rs"))
                && l["lineno"].as_u64().is_some_and(|n| n > 0)),
            "{info:?}"
        );
        // ERROR, as Python's `logger.exception` logs a failed step.
        let error = of(&failed);
        assert!(
            error.iter().any(|(text, _)| text.contains("]ERROR-")
                && text.contains("plugin execute failed: boom")),
            "{error:?}"
        );
        // No line names the build machine's directories (a dependency's registry path).
        let absolute: Vec<&Value> = lines
            .iter()
            .filter(|l| l["pathname"].as_str().is_some_and(|p| p.starts_with('/')))
            .collect();
        assert!(absolute.is_empty(), "{absolute:?}");
        let panic = of(&crashed);
        let critical: Vec<&String> = panic
            .iter()
            .filter(|(text, _)| text.contains("]CRITICAL-"))
            .map(|(text, _)| text)
            .collect();
        assert_eq!(critical.len(), 1, "{panic:?}");
        assert!(
            critical[0].contains("-v1_4_0: panicked at") && critical[0].contains("kaboom"),
            "{}",
            critical[0]
        );
        for (text, _) in info.iter().chain(&error).chain(&panic) {
            assert!(
                text.starts_with('[') && text.contains(',') && !text.contains("]-"),
                "{text}"
            );
        }
    }
    // Lines outside any trace (start-up) are there too, with a null trace id.
    assert!(
        from_file.iter().any(|l| l["trace_id"].is_null()),
        "{file_text}"
    );
}

#[tokio::test]
async fn an_unwritable_log_directory_means_stdout_only_said_once() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"));
    let dir = TempDir::new("bkp-v3logs-blocked");
    let blocker = dir.0.join("not-a-directory");
    std::fs::write(&blocker, "a file where the log directory should be")
        .unwrap_or_else(|e| panic!("{e}"));
    let plugin = prod_plugin(&db, &blocker.join("v3logs")).await;
    let echo = invoke(
        &plugin,
        "1.0.0",
        json!({"hello": "x"}),
        json!({"executor": "admin"}),
    )
    .await;
    invoke(
        &plugin,
        "1.0.0",
        json!({"hello": "y"}),
        json!({"executor": "admin"}),
    )
    .await;
    let lines = json_lines(&plugin.log_text(), "stdout/stderr");
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot write log files under"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert_eq!(warnings[0]["levelname"], json!("WARNING"));
    assert!(
        lines
            .iter()
            .any(|l| l["trace_id"] == json!(echo) && l["levelname"] == json!("INFO")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn production_start_up_failures_and_command_line_errors_are_json_lines() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"));
    let cases: [(&[&str], &str, &str); 3] = [
        (&["serve"], "UTC", "not migrated"),
        (&["serve"], "Nowhere/Atlantis", "TIME_ZONE"),
        (&["serve", "--no-such-flag"], "UTC", "--no-such-flag"),
    ];
    for (args, zone, needle) in cases {
        let (ok, stderr) = bkp_blackbox_tests::run_fixture(
            args,
            &[
                ("DATABASE_URL", &db.url),
                ("BKPAAS_ENVIRONMENT", "prod"),
                ("TIME_ZONE", zone),
                (
                    "APIGW_PUBLIC_KEY_FILE",
                    &bkp_blackbox_tests::jwt_fixture("gateway.pub"),
                ),
            ],
        );
        assert!(!ok, "{args:?}");
        let lines = json_lines(&stderr, "stderr");
        assert!(
            lines.iter().any(|l| l["levelname"] == json!("ERROR")
                && l["message"].as_str().is_some_and(|m| m.contains(needle))),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn production_migrate_reports_in_json_lines_too() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"));
    let dir = TempDir::new("bkp-migrate-logs");
    let output = std::process::Command::new(bkp_blackbox_tests::fixture_binary())
        .arg("migrate")
        .current_dir(&dir.0)
        .env("DATABASE_URL", &db.url)
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env("BK_PLUGIN_LOG_DIR", dir.0.join("v3logs"))
        .output()
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = json_lines(&stdout, "stdout");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == json!("database is up to date")),
        "{stdout}"
    );
    assert!(json_lines(&String::from_utf8_lossy(&output.stderr), "stderr").is_empty());
    // sea-orm-migration's own lines name its file from its crate directory, not from the
    // cargo registry of the machine that built the binary.
    let migration = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Applying migration"))
        })
        .unwrap_or_else(|| panic!("no migration line in {stdout}"));
    let pathname = migration["pathname"].as_str().unwrap_or_default();
    assert!(
        pathname.starts_with("sea-orm-migration-") && pathname.ends_with(".rs"),
        "{pathname}"
    );
}
