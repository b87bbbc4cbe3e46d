//! Times and waits in words for people, and in the machine-readable form `<time>` carries.

/// "1 second", "40 seconds", "2 minutes", "1 hour": how long to wait, for people.
pub fn wait_in_words(seconds: u64) -> String {
    let plural = |count: u64, unit: &str| format!("{count} {unit}{}", if count == 1 { "" } else { "s" });
    match seconds {
        0..=59 => plural(seconds.max(1), "second"),
        60..=3599 => plural(seconds.div_ceil(60), "minute"),
        _ => plural(seconds.div_ceil(3600), "hour"),
    }
}

/// "3 minutes ago", with the exact time left to a `title` attribute.
pub fn relative_time(millis: i64, now: i64) -> String {
    let seconds = (now - millis).max(0) / 1000;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match seconds {
        0..=9 => "just now".to_owned(),
        10..=59 => plural(seconds, "second"),
        60..=3599 => plural(seconds / 60, "minute"),
        3600..=86_399 => plural(seconds / 3600, "hour"),
        _ => plural(seconds / 86_400, "day"),
    }
}

/// Machine-readable UTC time for a `<time datetime>` (read by `static/local-time.js`).
pub fn iso_time(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Exact UTC time for people: `2026-11-22 13:40 UTC`.
pub fn exact_time(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{relative_time, wait_in_words};

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_in_words(0), "1 second");
        assert_eq!(wait_in_words(1), "1 second");
        assert_eq!(wait_in_words(42), "42 seconds");
        assert_eq!(wait_in_words(60), "1 minute");
        assert_eq!(wait_in_words(61), "2 minutes");
        assert_eq!(wait_in_words(900), "15 minutes");
        assert_eq!(wait_in_words(3600), "1 hour");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 10_000_000_000;
        assert_eq!(relative_time(now - 2_000, now), "just now");
        assert_eq!(relative_time(now - 180_000, now), "3 minutes ago");
        assert_eq!(relative_time(now - 3_600_000, now), "1 hour ago");
        assert_eq!(relative_time(now - 3 * 86_400_000, now), "3 days ago");
    }
}
