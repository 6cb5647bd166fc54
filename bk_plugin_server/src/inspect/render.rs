//! How the inspection commands show what they read: text for people (wall-clock times in the
//! configured zone, a table for listings), JSON for scripts (RFC 3339 times).

use std::fmt::Write as _;

use chrono::TimeZone as _;
use serde_json::{Value, json};

use crate::store::entity::{callback, schedule};
use crate::store::{JsonText, NotifyState, ScheduleSummary, StoredState};

/// The longest `err` a `schedules` table line shows before cutting it with `…`.
const ERR_WIDTH: usize = 60;

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

pub(super) fn schedule_json(
    row: &schedule::Model,
    callbacks: &[callback::Model],
    zone: chrono_tz::Tz,
) -> Value {
    let lease = row
        .lease_owner
        .as_ref()
        .map(|owner| json!({"owner": owner, "until": rfc3339(row.lease_until, zone)}));
    followed_by(
        &ScheduleSummary::from(row),
        json!({
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
        }),
        zone,
    )
}

pub(super) fn schedule_text(
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

pub(super) fn summary_json(row: &ScheduleSummary, zone: chrono_tz::Tz) -> Value {
    let rest = json!({
        "finished_at": rfc3339(row.finished_at, zone),
        "err": row.err,
        "finish_callback": {
            "status": finish_callback_status(row.notify_state),
            "attempts": row.notify_attempts,
        },
    });
    followed_by(row, rest, zone)
}

/// What both JSON views start with (the trace id, the version, the state, the invoke count
/// and the creation time), then the keys of the object `rest`, in order.
fn followed_by(row: &ScheduleSummary, rest: Value, zone: chrono_tz::Tz) -> Value {
    let mut view = serde_json::Map::new();
    view.insert("trace_id".into(), json!(row.trace_id));
    view.insert("version".into(), json!(row.plugin_version));
    view.insert("state".into(), json!(row.state.state().as_i32()));
    view.insert("state_name".into(), json!(state_name(row.state)));
    view.insert("invoke_count".into(), json!(row.invoke_count));
    view.insert("created_at".into(), rfc3339(Some(row.created_at), zone));
    if let Value::Object(rest) = rest {
        view.extend(rest);
    }
    Value::Object(view)
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

pub(super) fn schedules_table(rows: &[ScheduleSummary], zone: chrono_tz::Tz, limit: u64) -> String {
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

    #[test]
    fn long_errors_are_cut_to_one_line_in_the_table() {
        assert_eq!(clip("a\nb", 10), "a b");
        let cut = clip(&"x".repeat(100), ERR_WIDTH);
        assert_eq!(cut.chars().count(), ERR_WIDTH);
        assert!(cut.ends_with('…'));
    }
}
