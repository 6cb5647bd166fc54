//! The inspection commands of every plugin binary: `schedule <trace_id>` (one stored
//! invocation in full), `schedules` (a filtered listing, newest first) and `logs <trace_id>`
//! (the captured log lines). Readable text by default, `--json` for scripts. They only read:
//! nothing is created, migrated or changed, and a missing SQLite file is an error rather than
//! a new empty database.

use anyhow::{Context as _, bail};
use chrono::TimeZone as _;
use serde_json::{Value, json};

mod render;

use crate::config::Config;
use crate::store::{ScheduleFilter, Store, StoredState};
use render::{schedule_json, schedule_text, schedules_table, summary_json};

/// `schedule <trace_id>`.
#[derive(Debug, clap::Args)]
pub(crate) struct ScheduleArgs {
    /// The invocation's trace id.
    trace_id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `schedules [--state] [--version] [--since] [--limit]`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchedulesArgs {
    /// Only these states: POLL, CALLBACK, SUCCESS, FAIL (any case, or 2-5), `waiting`
    /// (POLL and CALLBACK) or `finished` (SUCCESS and FAIL); repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    state: Vec<String>,
    /// Only this plugin version.
    #[arg(long)]
    version: Option<String>,
    /// Only invocations created since: a time ago (`90s`, `15m`, `2h`, `7d`), a date
    /// (`2026-11-25`) or a time (`2026-11-25 10:00:00`) in TIME_ZONE, or RFC 3339 with an offset.
    #[arg(long)]
    since: Option<String>,
    /// Show at most this many (1-10000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    limit: u64,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// `logs <trace_id>`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The invocation's trace id.
    trace_id: String,
    /// Print `{"trace_id": ..., "lines": [...]}` instead of the lines.
    #[arg(long)]
    json: bool,
}

/// Prints one stored invocation; fails when there is none with that trace id.
pub(crate) fn schedule(config: &Config, args: ScheduleArgs) -> anyhow::Result<()> {
    let zone = config.time_zone;
    let (row, callbacks) = run(async {
        let store = open(config).await?;
        let row = store.get(&args.trace_id).await?;
        let callbacks = match &row {
            Some(_) => store.callbacks_of(&args.trace_id).await?,
            None => Vec::new(),
        };
        Ok((row, callbacks))
    })?;
    let Some(row) = row else {
        bail!(
            "no stored invocation with trace_id {}: only invocations that waited (POLL or CALLBACK) are stored, and finished ones are deleted after SCHEDULE_PERSISTENT_DAYS ({} days)",
            args.trace_id,
            config.schedule_persistent_days
        );
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&schedule_json(&row, &callbacks, zone))?
        );
    } else {
        print!("{}", schedule_text(&row, &callbacks, zone));
    }
    Ok(())
}

/// Prints the invocations that match, newest first.
pub(crate) fn schedules(config: &Config, args: SchedulesArgs) -> anyhow::Result<()> {
    let zone = config.time_zone;
    let filter = ScheduleFilter {
        states: parse_states(&args.state)?,
        version: args.version.clone(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, zone, chrono::Utc::now().timestamp_millis()))
            .transpose()?,
        limit: args.limit,
    };
    let rows = run(async {
        let store = open(config).await?;
        Ok(store.list_schedules(&filter).await?)
    })?;
    if args.json {
        let list: Vec<Value> = rows.iter().map(|r| summary_json(r, zone)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", schedules_table(&rows, zone, args.limit));
    }
    Ok(())
}

/// Prints the captured log lines of one invocation, oldest first.
pub(crate) fn logs(config: &Config, args: LogsArgs) -> anyhow::Result<()> {
    let lines = run(async {
        let store = open(config).await?;
        Ok(store.logs_of(&args.trace_id).await?)
    })?;
    if args.json {
        let doc = json!({"trace_id": args.trace_id, "lines": lines});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for line in &lines {
            println!("{line}");
        }
    }
    if lines.is_empty() {
        eprintln!(
            "no captured log lines for trace_id {}: lines are captured in dev or with BK_PLUGIN_LOGS_API=1, and kept for SCHEDULE_PERSISTENT_DAYS",
            args.trace_id
        );
    }
    Ok(())
}

fn run<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    crate::bootstrap::runtime()?.block_on(future)
}

/// Connects to the configured database, refusing to create one.
async fn open(config: &Config) -> anyhow::Result<Store> {
    let url = &config.database_url;
    if let Some(path) = sqlite_file(url)
        && !std::path::Path::new(path).exists()
    {
        bail!(
            "no SQLite database at {path}: run this where the plugin runs, or set DATABASE_URL to its database"
        );
    }
    let shown = crate::config::redact_url(url);
    let store = Store::connect(url, 2)
        .await
        .with_context(|| format!("cannot connect to the database {shown}"))?;
    let pending = store.pending_migrations().await?;
    if pending
        .iter()
        .any(|name| name == "m20261125_000001_create_schedule")
    {
        bail!(
            "the database {shown} has no plugin tables: nothing was ever stored there (is DATABASE_URL the plugin's database?)"
        );
    }
    Ok(store)
}

/// The file of a `sqlite://` URL, unless it is in memory.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// `--state` values as stored states.
fn parse_states(values: &[String]) -> anyhow::Result<Vec<StoredState>> {
    let mut states = Vec::new();
    for value in values {
        let value = value.trim();
        let found: &[StoredState] = match value.to_ascii_lowercase().as_str() {
            "poll" | "2" => &[StoredState::Poll],
            "callback" | "3" => &[StoredState::Callback],
            "success" | "4" => &[StoredState::Success],
            "fail" | "failed" | "5" => &[StoredState::Fail],
            "waiting" => &[StoredState::Poll, StoredState::Callback],
            "finished" => &[StoredState::Success, StoredState::Fail],
            _ => bail!(
                "--state {value:?} is not a state: use POLL, CALLBACK, SUCCESS, FAIL (or 2-5), waiting or finished"
            ),
        };
        for &state in found {
            if !states.contains(&state) {
                states.push(state);
            }
        }
    }
    Ok(states)
}

/// `--since` as ms since the epoch; `now` is the current time in ms.
fn parse_since(value: &str, zone: chrono_tz::Tz, now: i64) -> anyhow::Result<i64> {
    let value = value.trim();
    let help = || {
        anyhow::anyhow!(
            "--since {value:?} is not a time: use a time ago (90s, 15m, 2h, 7d), a date (2026-11-25), a time in TIME_ZONE (\"2026-11-25 10:00:00\") or RFC 3339 (2026-11-25T10:00:00+08:00)"
        )
    };
    if let Some(unit) = value.chars().last().filter(char::is_ascii_alphabetic) {
        let number = &value[..value.len() - 1];
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            let seconds_per = match unit.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(help()),
            };
            let amount: i64 = number.parse().map_err(|_| help())?;
            let ago = amount.checked_mul(seconds_per * 1000).ok_or_else(help)?;
            return Ok(now.saturating_sub(ago));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map_err(|_| help())?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn since_accepts_durations_dates_and_times_in_the_configured_zone() {
        let now = 1_795_572_000_000; // 2026-11-25 10:00:00 Asia/Shanghai
        assert_eq!(parse_since("90s", SHANGHAI, now).ok(), Some(now - 90_000));
        assert_eq!(parse_since("2h", SHANGHAI, now).ok(), Some(now - 7_200_000));
        assert_eq!(
            parse_since("1d", SHANGHAI, now).ok(),
            Some(now - 86_400_000)
        );
        assert_eq!(
            parse_since("2026-11-25 10:00:00", SHANGHAI, 0).ok(),
            Some(now)
        );
        assert_eq!(
            parse_since("2026-11-25", SHANGHAI, 0).ok(),
            Some(now - 10 * 3_600_000)
        );
        assert_eq!(
            parse_since("2026-11-25T02:00:00Z", SHANGHAI, 0).ok(),
            Some(now)
        );
    }

    #[test]
    fn since_rejects_what_is_not_a_time_and_says_what_would_be() {
        for bad in ["yesterday", "5x", "2026-13-01", "", "h"] {
            let message = parse_since(bad, SHANGHAI, 0)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.contains("is not a time"), "{bad}: {message}");
            assert!(message.contains("2h"), "{message}");
        }
    }

    #[test]
    fn states_are_taken_by_name_number_or_group_without_repeats() {
        let parsed = parse_states(&["poll".into(), "waiting".into(), "5".into()]).ok();
        assert_eq!(
            parsed,
            Some(vec![
                StoredState::Poll,
                StoredState::Callback,
                StoredState::Fail
            ])
        );
        assert_eq!(
            parse_states(&["finished".into()]).ok(),
            Some(vec![StoredState::Success, StoredState::Fail])
        );
        let message = parse_states(&["done".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("\"done\" is not a state"), "{message}");
    }

    #[test]
    fn sqlite_files_are_found_in_urls() {
        assert_eq!(
            sqlite_file("sqlite://bk_plugin.db?mode=rwc"),
            Some("bk_plugin.db")
        );
        assert_eq!(sqlite_file("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("mysql://root@h/x"), None);
    }
}
