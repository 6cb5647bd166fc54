//! Test harness for the black-box tests: databases of every supported backend (each test gets
//! its own), and the real fixture plugin binary started on a free loopback port.
//!
//! PostgreSQL and MySQL/MariaDB tests read `BKP_TEST_POSTGRES_URL` / `BKP_TEST_MYSQL_URL` (a
//! server URL whose user may create databases) and skip with a printed reason when unset.

pub mod browser;
pub mod fake_http;
pub mod otlp;
mod plugin;
pub mod prefix_proxy;

pub use plugin::{Launch, Plugin, free_port};

use std::path::PathBuf;
use std::process::Command;

use sea_orm::{ConnectionTrait, Database};

/// A listener on a free loopback port, and the port.
pub async fn bind_loopback() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    (listener, port)
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh MySQL/MariaDB database.
    Mysql,
}

/// A database created for one test, dropped when the test ends.
#[derive(Debug)]
pub struct TestDb {
    /// The URL the plugin connects to.
    pub url: String,
    backend: Backend,
    server_url: Option<String>,
    name: String,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => "BKP_TEST_POSTGRES_URL",
        Backend::Mysql => "BKP_TEST_MYSQL_URL",
    };
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Replaces the database name (the URL path) of `url`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A file of test keys (`tests/fixtures/jwt/`).
pub fn jwt_fixture(name: &str) -> String {
    format!("{}/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A JWT as the API gateway `kid` sends it, signed (RS512) with the test key `key_file`: app
/// `bk_sops` and user `admin`, both verified, valid from ten seconds ago for ten minutes.
pub fn gateway_jwt(key_file: &str, kid: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = serde_json::json!({
        "app": {"app_code": "bk_sops", "verified": true},
        "user": {"username": "admin", "verified": true},
        "iss": "APIGW", "exp": now + 600, "nbf": now - 10,
    });
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some(kid.to_string());
    let pem = std::fs::read(jwt_fixture(key_file)).unwrap_or_else(|e| panic!("{key_file}: {e}"));
    let key = EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

/// Reports that a test did not run, and why, where the person running the tests sees it: the
/// line goes straight to the process's stdout, past the test harness's capture, so a skipped
/// database test never looks like a silent pass (`cargo test` shows `skipped: ...` beside the
/// `ok`).
pub fn report_skip(reason: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "skipped: {reason}");
    let _ = out.flush();
}

impl TestDb {
    /// A fresh database on `backend`, or `None` (with a printed reason) when that backend's
    /// test URL is not set.
    pub async fn new(backend: Backend) -> Option<Self> {
        let name = format!("bkp_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        if backend == Backend::Sqlite {
            let dir = TempDir::new("bkp-test");
            let url = format!("sqlite://{}/plugin.db?mode=rwc", dir.0.display());
            return Some(Self {
                url,
                backend,
                server_url: None,
                name,
                _dir: Some(dir),
            });
        }
        let Some(server) = server_url(backend) else {
            report_skip(&format!(
                "{backend:?} tests need {} (e.g. postgres://postgres@127.0.0.1:5432/test or mysql://root@127.0.0.1:3306/test)",
                if backend == Backend::Postgres {
                    "BKP_TEST_POSTGRES_URL"
                } else {
                    "BKP_TEST_MYSQL_URL"
                }
            ));
            return None;
        };
        let admin = Database::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {backend:?} at {server}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = admin.close().await;
        Some(Self {
            url: with_database(&server, &name),
            backend,
            server_url: Some(server),
            name,
            _dir: None,
        })
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The first column of the first row `sql` returns, as an integer (-1 when there is none).
    pub async fn scalar(&self, sql: &str) -> i64 {
        let conn = Database::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let value = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                sql,
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .and_then(|row| row.try_get_by_index::<i64>(0).ok())
            .unwrap_or(-1);
        let _ = conn.close().await;
        value
    }

    /// Runs each statement of `sql` in order, on one connection.
    pub async fn execute(&self, sql: &[&str]) {
        let conn = Database::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for statement in sql {
            conn.execute_unprepared(statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        let _ = conn.close().await;
    }

    /// Drops the database (PostgreSQL / MySQL); call at the end of a test.
    pub async fn drop_database(self) {
        if let Some(server) = &self.server_url
            && let Ok(admin) = Database::connect(server).await
        {
            let sql = match self.backend {
                Backend::Postgres => {
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                }
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            };
            let _ = admin.execute_unprepared(&sql).await;
            let _ = admin.close().await;
        }
    }
}

/// The fixture plugin binary, built by `cargo test --workspace` next to this test executable
/// (tests live in `<profile>/deps/`, binaries such as the bench harness in `<profile>/`).
pub fn fixture_binary() -> PathBuf {
    binary("bkp-fixtures")
}

/// A binary of the fixtures package (`bkp-fixtures`, or `bkp-faults`, the fault-injection
/// plugin), found the way [`fixture_binary`] finds the fixture.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [dir.join(name), dir.join(format!("../{name}"))];
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    found.unwrap_or_else(|| {
        panic!(
            "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p bkp-fixtures` first)",
            candidates[1].display()
        )
    })
}

/// Runs `bkp-fixtures migrate` on `db` (production refuses to start on an unmigrated database).
pub fn migrate(db: &TestDb) {
    let output = Command::new(fixture_binary())
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

/// Runs the fixture binary with `args` and `env` to completion; returns (success, stderr).
pub fn run_fixture(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let (success, _, stderr) = run_fixture_output(args, env);
    (success, stderr)
}

/// Runs the fixture binary with `args` and `env` to completion in a temporary directory (its
/// log files stay there); returns (success, stdout, stderr).
pub fn run_fixture_output<K, V>(args: &[&str], env: &[(K, V)]) -> (bool, String, String)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let dir = TempDir::new("bkp-run");
    let mut command = Command::new(fixture_binary());
    command
        .args(args)
        .current_dir(&dir.0)
        .env("PORT", free_port().to_string())
        .env("BK_PLUGIN_LOG_DIR", dir.0.join("v3logs"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| panic!("run: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// What a finished fixture command printed.
#[derive(Debug)]
pub struct Ran {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs the fixture binary with `args` against `db` (dev, times in UTC) to completion, in a
/// fresh working directory.
pub fn run_fixture_on(db: &TestDb, args: &[&str]) -> Ran {
    let dir = TempDir::new("bkp-run");
    let output = Command::new(fixture_binary())
        .args(args)
        .current_dir(&dir.0)
        .env("DATABASE_URL", &db.url)
        .env("BKPAAS_ENVIRONMENT", "dev")
        .env("TIME_ZONE", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// Runs one async test body on every backend whose URL is set (SQLite always).
#[macro_export]
macro_rules! on_every_backend {
    (@on $module:ident $backend:ident; $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::new($crate::Backend::$backend).await {
                        super::$name(&db).await;
                        db.drop_database().await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!(@on sqlite Sqlite; $($name),*);
        $crate::on_every_backend!(@on postgres Postgres; $($name),*);
        $crate::on_every_backend!(@on mysql Mysql; $($name),*);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test?a=b", "y"),
            "mysql://root@127.0.0.1:3306/y?a=b"
        );
        assert_eq!(with_database("postgres://u@h", "z"), "postgres://u@h/z");
    }
}
