//! The one place that reads the process environment: an unset or blank variable is `None`,
//! numbers and booleans are parsed with one rule each, and the message names the variable.

/// The variable's value; `None` when unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable parsed as a `T`, or `default` when unset.
pub(super) fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid value")),
    }
}

/// The variable as a boolean (`1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`, any case), or
/// `default` when unset.
pub(crate) fn flag(name: &str, default: bool) -> Result<bool, String> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(format!("{name}={v:?} is not a boolean")),
    }
}

/// This host's name: `HOSTNAME`, else `/etc/hostname`, else `localhost`.
pub(super) fn hostname() -> String {
    var("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
