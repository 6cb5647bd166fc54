//! Times: as the protocol shows them (`YYYY-mm-dd HH:MM:SS` in the deployment's time zone),
//! and as the store keeps them (milliseconds since the epoch).

use std::time::Duration;

use chrono::TimeZone;

/// A duration in milliseconds, as the store adds it to times; a duration too long for `i64` is
/// taken as a quarter of `i64::MAX` (still about 73 million years, and safe to add to a time).
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The longest wait the scheduler keeps: a `Next::Poll` interval (or a callback timeout) longer
/// than 366 days is taken as 366 days, so a plugin that polls after a caller's huge `delay` runs
/// again then, instead of overflowing the due time (docs/scheduler.md).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);

/// When a wait of `after` that starts at `now` (ms since the epoch) is due: `after` capped at
/// [`MAX_WAIT`], added without overflow.
pub(crate) fn due_after(now: i64, after: Duration) -> i64 {
    now.saturating_add(duration_ms(after.min(MAX_WAIT)))
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
    fn a_huge_wait_is_due_after_the_maximum_wait_without_overflow() {
        let now = 1_795_572_000_000;
        let year = duration_ms(MAX_WAIT);
        assert_eq!(due_after(now, Duration::from_secs(5)), now + 5_000);
        assert_eq!(due_after(now, MAX_WAIT), now + year);
        // 9.2e18 ms fits an i64 on its own but not added to now.
        let near_max = Duration::from_millis(i64::MAX as u64 - 1);
        assert_eq!(due_after(now, near_max), now + year);
        assert_eq!(due_after(now, Duration::MAX), now + year);
        assert_eq!(due_after(i64::MAX - 1, Duration::from_secs(1)), i64::MAX);
    }

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
