//! Times: as the protocol shows them (`YYYY-mm-dd HH:MM:SS` in the deployment's time zone),
//! and as the store keeps them (milliseconds since the epoch).

use std::time::Duration;

use chrono::TimeZone;

/// A duration in milliseconds, as the store adds it to times; a duration too long for `i64` is
/// taken as a quarter of `i64::MAX` (still about 73 million years, and safe to add to a time).
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Formats milliseconds since the epoch in `zone`; "" when out of range.
pub(crate) fn format_ms(ms: i64, zone: chrono_tz::Tz) -> String {
    match zone.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_shanghai_wall_clock_without_offset() {
        // 2026-11-25 02:00:00 UTC is 10:00 in Asia/Shanghai.
        let ms = 1_795_572_000_000;
        assert_eq!(
            format_ms(ms, chrono_tz::Asia::Shanghai),
            "2026-11-25 10:00:00"
        );
        assert_eq!(format_ms(ms, chrono_tz::UTC), "2026-11-25 02:00:00");
    }
}
