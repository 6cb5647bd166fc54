//! Times as the protocol shows them: `YYYY-mm-dd HH:MM:SS` in the deployment's time zone.

use chrono::TimeZone;

/// Formats milliseconds since the epoch in `zone`; "" when out of range.
pub fn format_ms(ms: i64, zone: chrono_tz::Tz) -> String {
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
