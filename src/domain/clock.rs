//! The app's clock: token lifetimes, refresh-token expiry, idle and absolute session limits and
//! the purge of expired state are measured against the one the app owns, so a test can move
//! time forward instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The system's wall-clock time in unix milliseconds (negative before 1970), the unit of every
/// time column. Read on every check, so straight from `SystemTime`: chrono's `Utc::now` costs
/// twice as much, for a calendar date nothing here reads.
pub fn now_millis() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Wall-clock time in unix milliseconds, from the system or from a clock a test moves.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// The system's clock moved ahead by the milliseconds held, which only `advance` changes:
    /// time still passes as usual, and jumps when a test says so.
    Test(Arc<AtomicI64>),
}

impl Clock {
    /// A test clock that starts at the system's time.
    pub fn test() -> Self {
        Self::Test(Arc::new(AtomicI64::new(0)))
    }

    /// Unix milliseconds now.
    pub fn now_millis(&self) -> i64 {
        let system = now_millis();
        match self {
            Self::System => system,
            Self::Test(ahead) => system + ahead.load(Ordering::Acquire),
        }
    }

    /// Unix seconds now (the unit of JWT claims).
    pub fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// How far this clock is ahead of the system's: 0 for the system's clock. Lets a time read
    /// elsewhere (Redis's) be moved as this one is.
    pub fn ahead_millis(&self) -> i64 {
        match self {
            Self::System => 0,
            Self::Test(ahead) => ahead.load(Ordering::Acquire),
        }
    }

    /// Moves a test clock forward by `by`; the system's clock cannot be moved, so `false` then.
    pub fn advance(&self, by: Duration) -> bool {
        match self {
            Self::System => false,
            Self::Test(ahead) => {
                ahead.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::AcqRel);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_jumps_when_advanced_and_the_system_clock_does_not() {
        let clock = Clock::test();
        let before = clock.now_millis();
        assert!(clock.advance(Duration::from_secs(3600)));
        let after = clock.now_millis();
        assert!(after - before >= 3_600_000, "{before} → {after}");
        assert!(after - before < 3_660_000, "{before} → {after}");
        assert!(!Clock::System.advance(Duration::from_secs(1)));
        assert_eq!(Clock::System.ahead_millis(), 0);
        assert_eq!(clock.ahead_millis(), 3_600_000);
    }

    #[test]
    fn the_system_time_is_what_chrono_reads_in_unix_milliseconds() {
        let before = chrono::Utc::now().timestamp_millis();
        let read = now_millis();
        let after = chrono::Utc::now().timestamp_millis();
        assert!(before <= read && read <= after, "{before} <= {read} <= {after}");
    }

    #[test]
    fn clones_of_a_test_clock_share_its_time() {
        let clock = Clock::test();
        let shared = clock.clone();
        clock.advance(Duration::from_secs(60));
        assert!(shared.now_millis() - chrono::Utc::now().timestamp_millis() >= 59_000);
    }
}
