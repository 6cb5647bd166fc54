//! The inspection commands of every plugin binary: `schedule <trace_id>` (one stored
//! invocation in full), `schedules` (a filtered listing, newest first) and `logs <trace_id>`
//! (the captured log lines). Readable text by default, `--json` for scripts. They only read:
//! nothing is created, migrated or changed, and a missing SQLite file is an error rather than
//! a new empty database.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use chrono::TimeZone as _;
use serde_json::{Value, json};

use crate::config::Config;
use crate::store::entity::{callback, schedule};
use crate::store::{JsonText, NotifyState, ScheduleFilter, ScheduleSummary, Store, StoredState};

/// The longest `err` a `schedules` table line shows before cutting it with `…`.
const ERR_WIDTH: usize = 60;

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
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
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

fn state_name(state: StoredState) -> &'static str {
    state.state().name()
}

/// A time for people: wall clock in `zone`.
fn wall(ms: Option<i64>, zone: chrono_tz::Tz) -> String {
    ms.map(|t| crate::time::format_ms(t, zone))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// A time for scripts: RFC 3339 with the offset of `zone`.
fn rfc3339(ms: Option<i64>, zone: chrono_tz::Tz) -> Value {
    ms.and_then(|t| zone.timestamp_millis_opt(t).single())
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        })
}

/// A stored JSON document, or its raw text when it does not parse.
fn document(text: &JsonText) -> Value {
    text.value()
        .unwrap_or_else(|_| Value::String(text.as_str().to_string()))
}

fn finish_callback_status(state: NotifyState) -> &'static str {
    state.name()
}

fn finish_callback_text(row: &schedule::Model, zone: chrono_tz::Tz) -> String {
    let attempts = row.notify_attempts;
    let plural = if attempts == 1 { "" } else { "s" };
    match row.notify_state {
        NotifyState::None => "none (not requested)".into(),
        NotifyState::Pending => format!(
            "pending, {attempts} attempt{plural} so far, next at {}",
            wall(row.notify_at, zone)
        ),
        NotifyState::Delivered => format!("delivered after {attempts} attempt{plural}"),
        NotifyState::GaveUp => format!("gave up after {attempts} attempt{plural}"),
    }
}

fn schedule_json(
    row: &schedule::Model,
    callbacks: &[callback::Model],
    zone: chrono_tz::Tz,
) -> Value {
    let lease = row
        .lease_owner
        .as_ref()
        .map(|owner| json!({"owner": owner, "until": rfc3339(row.lease_until, zone)}));
    json!({
        "trace_id": row.trace_id,
        "version": row.plugin_version,
        "state": row.state.state().as_i32(),
        "state_name": state_name(row.state),
        "invoke_count": row.invoke_count,
        "created_at": rfc3339(Some(row.created_at), zone),
        "updated_at": rfc3339(Some(row.updated_at), zone),
        "finished_at": rfc3339(row.finished_at, zone),
        "next_run_at": rfc3339(row.run_at, zone),
        "callback_deadline": rfc3339(row.callback_deadline, zone),
        "err": row.error,
        "inputs": document(&row.inputs),
        "context": document(&row.context),
        "outputs": document(&row.outputs),
        "storage": document(&row.storage),
        "finish_callback": {
            "status": finish_callback_status(row.notify_state),
            "attempts": row.notify_attempts,
            "next_attempt_at": rfc3339(row.notify_at.filter(|_| row.notify_state == NotifyState::Pending), zone),
        },
        "callbacks": callbacks.iter().map(|c| json!({
            "callback_id": c.callback_id,
            "received_at": rfc3339(Some(c.created_at), zone),
            "consumed": c.consumed,
            "data": document(&c.data),
        })).collect::<Vec<_>>(),
        "lease": lease,
    })
}

fn schedule_text(
    row: &schedule::Model,
    callbacks: &[callback::Model],
    zone: chrono_tz::Tz,
) -> String {
    let consumed = callbacks.iter().filter(|c| c.consumed).count();
    let lease = match &row.lease_owner {
        Some(owner) => format!("held by {owner} until {}", wall(row.lease_until, zone)),
        None => "-".into(),
    };
    let fields = [
        ("trace_id", row.trace_id.clone()),
        ("version", row.plugin_version.clone()),
        (
            "state",
            format!("{} ({})", state_name(row.state), row.state.state().as_i32()),
        ),
        ("invoke_count", row.invoke_count.to_string()),
        ("created_at", wall(Some(row.created_at), zone)),
        ("updated_at", wall(Some(row.updated_at), zone)),
        ("finished_at", wall(row.finished_at, zone)),
        ("next_run_at", wall(row.run_at, zone)),
        ("callback_deadline", wall(row.callback_deadline, zone)),
        ("lease", lease),
        ("finish_callback", finish_callback_text(row, zone)),
        (
            "callbacks",
            format!("{} received, {consumed} consumed", callbacks.len()),
        ),
        ("err", row.error.clone().unwrap_or_else(|| "-".into())),
    ];
    let mut out = format!("(times in {})\n", zone.name());
    for (name, value) in fields {
        let _ = writeln!(out, "{name:<18} {value}");
    }
    for (name, text) in [
        ("inputs", &row.inputs),
        ("context", &row.context),
        ("outputs", &row.outputs),
        ("storage", &row.storage),
    ] {
        let pretty = serde_json::to_string_pretty(&document(text)).unwrap_or_default();
        let _ = writeln!(out, "{name}:");
        for line in pretty.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn summary_json(row: &ScheduleSummary, zone: chrono_tz::Tz) -> Value {
    json!({
        "trace_id": row.trace_id,
        "version": row.plugin_version,
        "state": row.state.state().as_i32(),
        "state_name": state_name(row.state),
        "invoke_count": row.invoke_count,
        "created_at": rfc3339(Some(row.created_at), zone),
        "finished_at": rfc3339(row.finished_at, zone),
        "err": row.err,
        "finish_callback": {
            "status": finish_callback_status(row.notify_state),
            "attempts": row.notify_attempts,
        },
    })
}

/// One line of text, at most `width` characters, newlines flattened.
fn clip(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn schedules_table(rows: &[ScheduleSummary], zone: chrono_tz::Tz, limit: u64) -> String {
    if rows.is_empty() {
        return "no stored invocations match\n".into();
    }
    let header = [
        "TRACE_ID",
        "VERSION",
        "STATE",
        "RUNS",
        "CREATED",
        "FINISHED",
        "FINISH_CALLBACK",
        "ERR",
    ];
    let lines: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.trace_id.clone(),
                r.plugin_version.clone(),
                state_name(r.state).to_string(),
                r.invoke_count.to_string(),
                wall(Some(r.created_at), zone),
                wall(r.finished_at, zone),
                finish_callback_status(r.notify_state).to_string(),
                r.err
                    .as_deref()
                    .map_or_else(|| "-".into(), |e| clip(e, ERR_WIDTH)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = width.saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for line in &lines {
        push(line.iter().map(String::as_str).collect());
    }
    let more = if rows.len() as u64 >= limit {
        format!("; the newest {limit} shown, raise --limit for more")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} invocation{} (times in {}){more}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        zone.name()
    );
    out
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
    fn long_errors_are_cut_to_one_line_in_the_table() {
        assert_eq!(clip("a\nb", 10), "a b");
        let cut = clip(&"x".repeat(100), ERR_WIDTH);
        assert_eq!(cut.chars().count(), ERR_WIDTH);
        assert!(cut.ends_with('…'));
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
