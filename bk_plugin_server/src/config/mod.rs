//! Configuration from the environment the PaaS platform gives a deployed plugin.

mod env;
pub(crate) mod otel;
mod sub_path;

use std::time::Duration;

use env::parsed;
pub(crate) use env::{flag, var};
pub(crate) use sub_path::preallocated_url;

/// The deployment environment (`BKPAAS_ENVIRONMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Environment {
    /// Local development: migrations run by themselves, no gateway JWT required, the logs API
    /// is on, a dev-only callback secret is used when none is set.
    Dev,
    /// Staging.
    Stag,
    /// Production.
    Prod,
}

impl Environment {
    /// Parses a PaaS environment name; anything but the six accepted spellings is refused, so a
    /// typo (`online`, `production-eu`) can never turn the JWT check off.
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "prod" | "production" => Ok(Self::Prod),
            "stag" | "staging" => Ok(Self::Stag),
            "dev" | "development" => Ok(Self::Dev),
            other => Err(format!(
                "{other:?} is not an environment: use dev (development), stag (staging) or prod (production)"
            )),
        }
    }

    /// The environment from `BKPAAS_ENVIRONMENT`, else the legacy `BK_ENV`
    /// (`development`/`testing`/`production`), else dev; `true` when it was given explicitly.
    fn from_env() -> Result<(Self, bool), String> {
        if let Some(value) = var("BKPAAS_ENVIRONMENT") {
            return Self::parse(&value)
                .map(|env| (env, true))
                .map_err(|e| format!("BKPAAS_ENVIRONMENT={e}"));
        }
        match var("BK_ENV").map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok((Self::Dev, false)),
            Some(v) if v == "testing" => Ok((Self::Stag, true)),
            Some(v) => Self::parse(&v)
                .map(|env| (env, true))
                .map_err(|e| format!("BK_ENV={e}")),
        }
    }

    /// The name PaaS uses (`dev`, `stag`, `prod`).
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct Config {
    /// `BKPAAS_APP_ID`: the plugin's app code, shown as `code` in meta.
    pub app_code: String,
    /// `BKPAAS_APP_SECRET`.
    pub app_secret: Option<String>,
    /// `BKPAAS_ENVIRONMENT` (else `BK_ENV`, else dev).
    pub environment: Environment,
    /// Whether the environment was named explicitly (unset means dev, listening on loopback).
    pub environment_explicit: bool,
    /// `BK_PLUGIN_BIND`: by default 0.0.0.0 when the environment is named, 127.0.0.1 when it
    /// is not (an unconfigured process is never reachable from other hosts).
    pub bind: String,
    /// The port.
    pub port: u16,
    /// The database URL: `DATABASE_URL`, else the MySQL add-on variables (`MYSQL_*`, then the
    /// legacy `GCS_MYSQL_*`), else (dev only) SQLite in `./bk_plugin.db`.
    pub database_url: String,
    /// Which variables gave the database URL, for messages.
    pub database_source: &'static str,
    /// `TIME_ZONE` for `created_at` / `finish_at` (default `Asia/Shanghai`).
    pub time_zone: chrono_tz::Tz,
    /// `SCHEDULE_PERSISTENT_DAYS` (default 30): finished rows older than this are deleted.
    pub schedule_persistent_days: u32,
    /// The public base URL callbacks reach us through: `BK_PLUGIN_CALLBACK_HOST`, else
    /// `BK_API_URL_TMPL` with `{api_name}` replaced by the gateway name.
    pub callback_host: Option<String>,
    /// `BK_PLUGIN_APIGW_STAGE_NAME`, else `BK_APIGW_STAGE_NAME`, else stag in stag and prod
    /// elsewhere (dev included, as in the Python runtime).
    pub stage_name: String,
    /// `BK_APIGW_REQUIRE_EXEMPT` (stag only, default off): accept requests without a verified
    /// gateway JWT, as dev does. Ignored in prod.
    pub jwt_exempt: bool,
    /// `BK_PLUGIN_CALLBACK_TLS_VERIFY` (default on): verify the certificates of `https://`
    /// finish-callback receivers, of the BlueKing APIs plugins call and of the OTLP collector.
    pub tls_verify: bool,
    /// `BK_PLUGIN_APIGW_TLS_VERIFY` (default on): verify the gateway manager's certificate. A
    /// switch of its own: the manager hands out the JWT public key, so accepting any
    /// certificate there would let an on-path attacker plant the key that `serve` trusts.
    pub apigw_tls_verify: bool,
    /// `BK_COMPONENT_API_URL`, else `BK_PAAS_INNER_HOST`, else `BK_PAAS_HOST`: where the ESB
    /// components of `bkapi().esb(...)` are (`{it}/api/c/compapi/v2/<system>/<component>/`).
    pub component_api_url: Option<String>,
    /// `BK_API_URL_TMPL` (`http://bkapi.example.com/api/{api_name}`): where the API gateways of
    /// `bkapi().gateway(...)` are.
    pub api_url_tmpl: Option<String>,
    /// `BK_PLUGIN_BKAPI_STAGE`, else `prod` in prod and `stag` elsewhere (as the Python
    /// reference plugin picks it): the stage of the gateways plugins call.
    pub bkapi_stage: String,
    /// `BK_PLUGIN_BKAPI_TIMEOUT_SECONDS` (default 30, at least 1): the timeout of each attempt
    /// of a BK API call that sets none.
    pub bkapi_timeout: Duration,
    /// `BK_PLUGIN_BKAPI_RETRIES` (default 2): how many more times a GET is tried after a
    /// connection error or a 5xx.
    pub bkapi_retries: u32,
    /// `BK_PLUGIN_BKAPI_RETRY_BACKOFF_MS` (default 200): the wait before the first retry,
    /// doubled before each next one.
    pub bkapi_retry_backoff: Duration,
    /// `BKPAAS_APP_TENANT_ID`: sent as `X-Bk-Tenant-Id` to the gateway manager and to the API
    /// gateways plugins call.
    pub tenant_id: Option<String>,
    /// `BK_PLUGIN_PUBLIC_KEY_REFRESH_SECONDS` (default 60): how often `serve` re-reads the
    /// gateway public key kept in the database, so a rotated key is used without a restart.
    pub public_key_refresh: Duration,
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
    /// `BK_PLUGIN_WORKER_MEMORY_MB` (default 1024, at least 1): the most stored invocation
    /// text (inputs, context, storage, outputs, err) one worker holds at once; a claim takes
    /// only as many rows as would fit were each as large as the size limits allow.
    pub worker_memory_mb: usize,
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
    /// The plugin's API gateway (the JWT `kid`, the gateway `sync-apigw` registers):
    /// `BKPAAS_BK_PLUGIN_APIGW_NAME` (PaaS injects it), else `BK_APIGW_NAME`, else the app code.
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
    /// The path prefix PaaS serves the app under (`""` or `/a/b`): `BK_PLUGIN_SUB_PATH`, else
    /// the path of this environment's address in `BKPAAS_DEFAULT_PREALLOCATED_URLS`. The
    /// routes do not move (the ingress strips it); the pages and `/schema/` put it before every
    /// URL they give a browser.
    pub sub_path: String,
    /// `BK_PLUGIN_SWAGGER` (default on): outside dev, serve the readable API page at `/` and
    /// `/swagger/` (as Python serves Swagger UI there). `/schema/` is served either way.
    pub api_page: bool,
    /// This host's name (`HOSTNAME`, else `/etc/hostname`, else `localhost`): the metrics'
    /// `hostname` label and the start of the worker's lease owner name.
    pub hostname: String,
    /// Whether log lines are captured for the logs API: `BK_PLUGIN_LOGS_API` (a boolean; any
    /// other value counts as unset), else in dev only.
    pub capture_logs: bool,
    /// The log filter: `BK_PLUGIN_LOG_LEVEL`, else `RUST_LOG`, else `info`.
    pub log_level: String,
    /// `APIGW_PUBLIC_KEY`: the gateway's public key (PEM; `\n` may stand for line breaks).
    pub apigw_public_key: Option<String>,
    /// `APIGW_PUBLIC_KEY_FILE`: a file holding the gateway's public key.
    pub apigw_public_key_file: Option<String>,
    /// OpenTelemetry tracing, when switched on by the environment ([`otel::from_env`]).
    pub otel: Option<otel::OtelConfig>,
}

/// Stands in for a secret in `Debug` output.
const HIDDEN: &str = "<hidden>";

/// A database URL with its passwords hidden, for messages and `Debug`: the password of its
/// userinfo and the value of every query parameter whose name ends with `password`
/// (`?password=`, `sslpassword=`, any case), which the drivers accept as well.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &base[..scheme + 3], &base[at..])
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => {
                    format!("{name}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
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
            .field("database_url", &redact_url(&self.database_url))
            .field("time_zone", &self.time_zone)
            .field("callback_host", &self.callback_host)
            .field("stage_name", &self.stage_name)
            .field("callback_secret", &hidden(&self.callback_secret))
            .field("gateway_name", &self.gateway_name)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the configuration; the message names the variable that is wrong.
    pub(crate) fn from_env() -> Result<Self, String> {
        let (environment, environment_explicit) = Environment::from_env()?;
        let time_zone_name = var("TIME_ZONE").unwrap_or_else(|| "Asia/Shanghai".into());
        let time_zone = time_zone_name
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("TIME_ZONE={time_zone_name:?} is not a known time zone"))?;
        let app_code = var("BKPAAS_APP_ID").unwrap_or_else(|| "bk-plugin".into());
        let gateway_name = var("BKPAAS_BK_PLUGIN_APIGW_NAME")
            .or_else(|| var("BK_APIGW_NAME"))
            .unwrap_or_else(|| app_code.clone());
        let api_url_tmpl = var("BK_API_URL_TMPL");
        let (database_url, database_source) = database_url(environment)?;
        let otel = otel::from_env(&app_code)?;
        Ok(Self {
            callback_host: var("BK_PLUGIN_CALLBACK_HOST").or_else(|| {
                api_url_tmpl
                    .as_ref()
                    .map(|tmpl| tmpl.replace("{api_name}", &gateway_name))
            }),
            gateway_name,
            app_code,
            app_secret: var("BKPAAS_APP_SECRET"),
            environment,
            environment_explicit,
            bind: var("BK_PLUGIN_BIND").unwrap_or_else(|| {
                if environment_explicit {
                    "0.0.0.0"
                } else {
                    "127.0.0.1"
                }
                .into()
            }),
            port: parsed("PORT", 5000)?,
            database_url,
            database_source,
            time_zone,
            schedule_persistent_days: parsed("SCHEDULE_PERSISTENT_DAYS", 30)?,
            stage_name: var("BK_PLUGIN_APIGW_STAGE_NAME")
                .or_else(|| var("BK_APIGW_STAGE_NAME"))
                .unwrap_or_else(|| match environment {
                    Environment::Stag => "stag".into(),
                    _ => "prod".into(),
                }),
            jwt_exempt: environment == Environment::Stag && flag("BK_APIGW_REQUIRE_EXEMPT", false)?,
            tls_verify: flag("BK_PLUGIN_CALLBACK_TLS_VERIFY", true)?,
            apigw_tls_verify: flag("BK_PLUGIN_APIGW_TLS_VERIFY", true)?,
            tenant_id: var("BKPAAS_APP_TENANT_ID"),
            component_api_url: var("BK_COMPONENT_API_URL")
                .or_else(|| var("BK_PAAS_INNER_HOST"))
                .or_else(|| var("BK_PAAS_HOST")),
            api_url_tmpl: api_url_tmpl.clone(),
            bkapi_stage: var("BK_PLUGIN_BKAPI_STAGE").unwrap_or_else(|| match environment {
                Environment::Prod => "prod".into(),
                _ => "stag".into(),
            }),
            bkapi_timeout: Duration::from_secs(
                parsed("BK_PLUGIN_BKAPI_TIMEOUT_SECONDS", 30u64)?.max(1),
            ),
            bkapi_retries: parsed("BK_PLUGIN_BKAPI_RETRIES", 2u32)?,
            bkapi_retry_backoff: Duration::from_millis(parsed(
                "BK_PLUGIN_BKAPI_RETRY_BACKOFF_MS",
                200u64,
            )?),
            public_key_refresh: Duration::from_secs(
                parsed("BK_PLUGIN_PUBLIC_KEY_REFRESH_SECONDS", 60u64)?.max(1),
            ),
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
            worker_memory_mb: parsed("BK_PLUGIN_WORKER_MEMORY_MB", 1024usize)?.max(1),
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
            sub_path: sub_path::sub_path(environment.name())?,
            api_page: flag("BK_PLUGIN_SWAGGER", true)?,
            hostname: env::hostname(),
            capture_logs: flag("BK_PLUGIN_LOGS_API", environment == Environment::Dev)
                .unwrap_or(environment == Environment::Dev),
            log_level: var("BK_PLUGIN_LOG_LEVEL")
                .or_else(|| var("RUST_LOG"))
                .unwrap_or_else(|| "info".into()),
            apigw_public_key: var("APIGW_PUBLIC_KEY"),
            apigw_public_key_file: var("APIGW_PUBLIC_KEY_FILE"),
            otel,
        })
    }

    /// Whether this is local development.
    pub(crate) fn is_dev(&self) -> bool {
        self.environment == Environment::Dev
    }

    /// Whether protected routes accept requests without a verified gateway JWT: dev always,
    /// stag with `BK_APIGW_REQUIRE_EXEMPT`, prod never.
    pub(crate) fn jwt_optional(&self) -> bool {
        self.is_dev() || self.jwt_exempt
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

/// `DATABASE_URL`, else the PaaS MySQL add-on (`MYSQL_HOST`, ..., then the legacy
/// `GCS_MYSQL_HOST`, ...), else in dev only `./bk_plugin.db`. Outside dev with none of these,
/// an error: each container silently getting its own SQLite file would lose invocations.
fn database_url(environment: Environment) -> Result<(String, &'static str), String> {
    if let Some(url) = var("DATABASE_URL") {
        return Ok((url, "DATABASE_URL"));
    }
    for (prefix, source) in [("MYSQL", "MYSQL_*"), ("GCS_MYSQL", "GCS_MYSQL_*")] {
        let get = |suffix: &str| var(&format!("{prefix}_{suffix}"));
        if let Some(host) = get("HOST") {
            let port = get("PORT").unwrap_or_else(|| "3306".into());
            let user = get("USER").unwrap_or_else(|| "root".into());
            let password = get("PASSWORD").unwrap_or_default();
            let Some(name) = get("NAME") else {
                return Err(format!(
                    "{prefix}_HOST is set but {prefix}_NAME (the database name) is not"
                ));
            };
            let url = format!(
                "mysql://{}:{}@{host}:{port}/{name}",
                encode(&user),
                encode(&password)
            );
            return Ok((url, source));
        }
    }
    if environment == Environment::Dev {
        return Ok(("sqlite://bk_plugin.db?mode=rwc".into(), "dev default"));
    }
    Err(format!(
        "BKPAAS_ENVIRONMENT={} has no database: enable the MySQL add-on (MYSQL_HOST, MYSQL_PORT, MYSQL_NAME, MYSQL_USER, MYSQL_PASSWORD) or set DATABASE_URL (mysql://, postgres://, or sqlite:// for a single process)",
        environment.name()
    ))
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
        assert!(text.contains("mysql://root:***@db:3306/plugin"), "{text}");
    }

    #[test]
    fn only_the_six_environment_spellings_are_accepted() {
        assert_eq!(Environment::parse("PROD"), Ok(Environment::Prod));
        assert_eq!(Environment::parse("production"), Ok(Environment::Prod));
        assert_eq!(Environment::parse("stag"), Ok(Environment::Stag));
        assert_eq!(Environment::parse("Staging"), Ok(Environment::Stag));
        assert_eq!(Environment::parse("dev"), Ok(Environment::Dev));
        assert_eq!(Environment::parse("development"), Ok(Environment::Dev));
        for wrong in ["online", "production-eu", "test", ""] {
            assert!(Environment::parse(wrong).is_err(), "{wrong}");
        }
    }
}
