//! Configuration from the environment the PaaS platform gives a deployed plugin.

use std::time::Duration;

/// The deployment environment (`BKPAAS_ENVIRONMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local development: migrations run by themselves, no gateway JWT required, the logs API
    /// is on, a dev-only callback secret is used when none is set.
    Dev,
    /// Staging.
    Stag,
    /// Production.
    Prod,
}

impl Environment {
    /// Reads a `BKPAAS_ENVIRONMENT` value; anything but stag/staging/prod/production is dev.
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "prod" | "production" => Self::Prod,
            "stag" | "staging" => Self::Stag,
            _ => Self::Dev,
        }
    }

    /// The name PaaS uses (`dev`, `stag`, `prod`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Stag => "stag",
            Self::Prod => "prod",
        }
    }
}

/// Everything the runtime reads from the environment. Its `Debug` hides the secrets (app
/// secret, callback secret, the database password).
#[derive(Clone)]
pub struct Config {
    /// `BKPAAS_APP_ID`: the plugin's app code, shown as `code` in meta.
    pub app_code: String,
    /// `BKPAAS_APP_SECRET`.
    pub app_secret: Option<String>,
    /// `BKPAAS_ENVIRONMENT`.
    pub environment: Environment,
    /// `PORT` (5000 by default) and `BK_PLUGIN_BIND` (0.0.0.0 by default).
    pub bind: String,
    /// The port.
    pub port: u16,
    /// The database URL: `DATABASE_URL`, else the MySQL add-on variables, else SQLite.
    pub database_url: String,
    /// `TIME_ZONE` for `created_at` / `finish_at` (default `Asia/Shanghai`).
    pub time_zone: chrono_tz::Tz,
    /// `SCHEDULE_PERSISTENT_DAYS` (default 30): finished rows older than this are deleted.
    pub schedule_persistent_days: u32,
    /// `BK_PLUGIN_CALLBACK_HOST`: the public base URL callbacks reach us through.
    pub callback_host: Option<String>,
    /// `BK_PLUGIN_APIGW_STAGE_NAME` (default: the environment name).
    pub stage_name: String,
    /// `BK_PLUGIN_CALLBACK_SECRET`: the key callback tokens are signed with (else the app secret).
    pub callback_secret: Option<String>,
    /// `BK_PLUGIN_CALLBACK_TOKEN_TTL_SECONDS` (default 8 days; never less than the longest
    /// callback timeout plus a day).
    pub callback_token_ttl: Duration,
    /// `BK_PLUGIN_CALLBACK_TIMEOUT_SECONDS` (default 7 days): a CALLBACK invocation whose
    /// callback never comes fails after this long.
    pub callback_timeout: Duration,
    /// `BK_PLUGIN_EARLY_CALLBACK_SECONDS` (default 120): a callback for an invocation that is
    /// not stored is kept as an early arrival when its token is younger than this (or the
    /// invoke still runs in this process); otherwise it gets 400.
    pub early_callback: Duration,
    /// `BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS` (default 5, at least 1): the longest an invoke
    /// waits to store a waiting invocation; past it the answer is FAIL (`schedule create
    /// error: ...`) and the invocation is not stored.
    pub invoke_db_timeout: Duration,
    /// `BK_PLUGIN_MAX_BODY_BYTES` (default 10 MiB).
    pub max_body_bytes: usize,
    /// `BK_PLUGIN_MAX_STATE_BYTES` (default 4 MiB): the most a waiting invocation's storage and
    /// outputs may take together; a step that leaves more fails with a clear err.
    pub max_state_bytes: usize,
    /// `BK_PLUGIN_WORKER_CONCURRENCY` (default 256): steps one worker runs at once.
    pub worker_concurrency: usize,
    /// `BK_PLUGIN_WORKER_POLL_MS` (default 200): how often an idle worker looks for work that
    /// other processes created.
    pub worker_poll_interval: Duration,
    /// `BK_PLUGIN_LEASE_SECONDS` (default 30): how long a claimed row stays leased without a heartbeat.
    pub lease: Duration,
    /// `BK_PLUGIN_STEP_TIMEOUT_SECONDS` (default 3600): a re-run that takes longer fails.
    pub step_timeout: Duration,
    /// `BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS` (default 600): a waiting invocation of a
    /// version no running binary has fails this long after it was due (with its finish
    /// callback); until then workers without the version leave it for workers with it.
    pub unknown_version_grace: Duration,
    /// `BK_PLUGIN_EMBEDDED_WORKER` (default on): `serve` also runs a worker.
    pub embedded_worker: bool,
    /// `BK_PLUGIN_FINISH_CALLBACK_TRIES` (default 0: no limit by count): the most attempts of
    /// one finish callback.
    pub finish_callback_tries: u32,
    /// `BK_PLUGIN_FINISH_CALLBACK_RETRY_SECONDS` (default 3600): a failed finish callback is
    /// tried again, with backoff, until this long after its invocation finished.
    pub finish_callback_retry: Duration,
    /// `BK_PLUGIN_DB_MAX_CONNECTIONS` (default 16).
    pub db_max_connections: u32,
    /// The API gateway whose JWTs we accept (`kid`): `BKPAAS_BK_PLUGIN_APIGW_NAME`, else the app code.
    pub gateway_name: String,
    /// `BK_PLUGIN_LOG_DIR` (default `/app/v3logs`, where PaaS collects logs; `off` for none):
    /// where stag/prod write their JSON log file.
    pub log_dir: Option<std::path::PathBuf>,
    /// `BKPAAS_PROCESS_TYPE` (default `web`): the first part of the log file's name.
    pub process_type: String,
    /// `BK_PLUGIN_LOG_FILE_MAX_BYTES` (default 10 MiB, as Python's): the log file is rotated
    /// before a line would take it past this size.
    pub log_file_max_bytes: u64,
    /// `BK_PLUGIN_LOG_FILE_BACKUPS` (default 5, as Python's): rotated log files kept.
    pub log_file_backups: usize,
    /// `BK_PLUGIN_SWAGGER` (default on): outside dev, serve the readable API page at `/` and
    /// `/swagger/` (as Python serves Swagger UI there). `/schema/` is served either way.
    pub api_page: bool,
}

/// Stands in for a secret in `Debug` output.
const HIDDEN: &str = "<hidden>";

/// A URL with the password of its userinfo hidden.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:{HIDDEN}{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| HIDDEN);
        f.debug_struct("Config")
            .field("app_code", &self.app_code)
            .field("app_secret", &hidden(&self.app_secret))
            .field("environment", &self.environment)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("database_url", &without_password(&self.database_url))
            .field("time_zone", &self.time_zone)
            .field("callback_host", &self.callback_host)
            .field("stage_name", &self.stage_name)
            .field("callback_secret", &hidden(&self.callback_secret))
            .field("gateway_name", &self.gateway_name)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid value")),
    }
}

fn flag(name: &str, default: bool) -> Result<bool, String> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(format!("{name}={v:?} is not a boolean")),
    }
}

impl Config {
    /// Reads the configuration; the message names the variable that is wrong.
    pub fn from_env() -> Result<Self, String> {
        let environment = Environment::parse(&var("BKPAAS_ENVIRONMENT").unwrap_or_default());
        let time_zone_name = var("TIME_ZONE").unwrap_or_else(|| "Asia/Shanghai".into());
        let time_zone = time_zone_name
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("TIME_ZONE={time_zone_name:?} is not a known time zone"))?;
        let app_code = var("BKPAAS_APP_ID").unwrap_or_else(|| "bk-plugin".into());
        Ok(Self {
            gateway_name: var("BKPAAS_BK_PLUGIN_APIGW_NAME").unwrap_or_else(|| app_code.clone()),
            app_code,
            app_secret: var("BKPAAS_APP_SECRET"),
            environment,
            bind: var("BK_PLUGIN_BIND").unwrap_or_else(|| "0.0.0.0".into()),
            port: parsed("PORT", 5000)?,
            database_url: database_url(),
            time_zone,
            schedule_persistent_days: parsed("SCHEDULE_PERSISTENT_DAYS", 30)?,
            callback_host: var("BK_PLUGIN_CALLBACK_HOST"),
            stage_name: var("BK_PLUGIN_APIGW_STAGE_NAME")
                .unwrap_or_else(|| environment.name().to_string()),
            callback_secret: var("BK_PLUGIN_CALLBACK_SECRET"),
            callback_token_ttl: Duration::from_secs(parsed(
                "BK_PLUGIN_CALLBACK_TOKEN_TTL_SECONDS",
                8 * 24 * 3600,
            )?),
            callback_timeout: Duration::from_secs(parsed(
                "BK_PLUGIN_CALLBACK_TIMEOUT_SECONDS",
                7 * 24 * 3600,
            )?),
            early_callback: Duration::from_secs(parsed("BK_PLUGIN_EARLY_CALLBACK_SECONDS", 120)?),
            invoke_db_timeout: Duration::from_secs(
                parsed("BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS", 5u64)?.max(1),
            ),
            max_body_bytes: parsed("BK_PLUGIN_MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            max_state_bytes: parsed("BK_PLUGIN_MAX_STATE_BYTES", 4 * 1024 * 1024)?,
            worker_concurrency: parsed("BK_PLUGIN_WORKER_CONCURRENCY", 256usize)?.max(1),
            worker_poll_interval: Duration::from_millis(
                parsed("BK_PLUGIN_WORKER_POLL_MS", 200u64)?.max(10),
            ),
            lease: Duration::from_secs(parsed("BK_PLUGIN_LEASE_SECONDS", 30u64)?.max(2)),
            step_timeout: Duration::from_secs(
                parsed("BK_PLUGIN_STEP_TIMEOUT_SECONDS", 3600u64)?.max(1),
            ),
            unknown_version_grace: Duration::from_secs(parsed(
                "BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS",
                600u64,
            )?),
            embedded_worker: flag("BK_PLUGIN_EMBEDDED_WORKER", true)?,
            finish_callback_tries: parsed("BK_PLUGIN_FINISH_CALLBACK_TRIES", 0u32)?,
            finish_callback_retry: Duration::from_secs(parsed(
                "BK_PLUGIN_FINISH_CALLBACK_RETRY_SECONDS",
                3600u64,
            )?),
            db_max_connections: parsed("BK_PLUGIN_DB_MAX_CONNECTIONS", 16u32)?.max(1),
            log_dir: log_dir(),
            process_type: var("BKPAAS_PROCESS_TYPE").unwrap_or_else(|| "web".into()),
            log_file_max_bytes: parsed("BK_PLUGIN_LOG_FILE_MAX_BYTES", 10 * 1024 * 1024u64)?,
            log_file_backups: parsed("BK_PLUGIN_LOG_FILE_BACKUPS", 5usize)?,
            api_page: flag("BK_PLUGIN_SWAGGER", true)?,
        })
    }

    /// Whether this is local development.
    pub fn is_dev(&self) -> bool {
        self.environment == Environment::Dev
    }
}

/// `BK_PLUGIN_LOG_DIR`, else `/app/v3logs`; `off` (or `none`) writes no log file.
fn log_dir() -> Option<std::path::PathBuf> {
    match var("BK_PLUGIN_LOG_DIR") {
        Some(dir) if ["off", "none"].contains(&dir.trim().to_ascii_lowercase().as_str()) => None,
        Some(dir) => Some(dir.into()),
        None => Some("/app/v3logs".into()),
    }
}

/// `DATABASE_URL`, else the PaaS MySQL add-on (`MYSQL_HOST`, ...), else `./bk_plugin.db`.
fn database_url() -> String {
    if let Some(url) = var("DATABASE_URL") {
        return url;
    }
    if let Some(host) = var("MYSQL_HOST") {
        let port = var("MYSQL_PORT").unwrap_or_else(|| "3306".into());
        let user = var("MYSQL_USER").unwrap_or_else(|| "root".into());
        let password = var("MYSQL_PASSWORD").unwrap_or_default();
        let name = var("MYSQL_NAME").unwrap_or_else(|| "bk_plugin".into());
        return format!(
            "mysql://{}:{}@{host}:{port}/{name}",
            encode(&user),
            encode(&password)
        );
    }
    "sqlite://bk_plugin.db?mode=rwc".into()
}

/// Percent-encodes a URL userinfo part.
fn encode(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_passwords_are_percent_encoded_in_the_url() {
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let config = Config {
            app_secret: Some("app-secret-value".into()),
            callback_secret: Some("callback-secret-value".into()),
            database_url: "mysql://root:db-password@db:3306/plugin".into(),
            ..Config::from_env().unwrap_or_else(|e| panic!("{e}"))
        };
        let text = format!("{config:?}");
        for secret in ["app-secret-value", "callback-secret-value", "db-password"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("mysql://root:<hidden>@db:3306/plugin"),
            "{text}"
        );
    }

    #[test]
    fn unknown_environment_names_mean_dev() {
        assert_eq!(Environment::parse("PROD"), Environment::Prod);
        assert_eq!(Environment::parse("stag"), Environment::Stag);
        assert_eq!(Environment::parse(""), Environment::Dev);
    }
}
