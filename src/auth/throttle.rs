//! The per-account limit on failed password log-ins.
//!
//! After `ACCOUNT_LOCK_AFTER` failures within `ACCOUNT_LOCK_WINDOW`, new password log-ins to that
//! account (form and `/api/token`) are refused with 429 until the window has passed, even with the
//! right password, so a guesser spread over many addresses gets a handful of tries per window.
//! Only new log-ins are refused: devices already logged in, their refresh tokens and cookies keep
//! working, so the limit cannot lock the owner out of a device they already use. The count is
//! kept in the database, which every instance shares in every configuration; it is not put in
//! Redis, so that a Redis outage cannot stop log-ins that otherwise need no Redis (and a Redis
//! flush cannot reset the count). Accounts are keyed by the SHA-256 of the normalized email,
//! known or not, so the limit does not tell which emails have accounts.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::domain::{Email, now_millis};
use crate::error::ApiError;
use crate::store::{self, Db};

/// The key under which an email's failures are counted; `None` for what is not an email.
pub fn account_key(email: &str) -> Option<String> {
    let email = Email::parse(email).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(email.normalized().as_bytes())))
}

/// `ACCOUNT_LOCK_AFTER` failures within `ACCOUNT_LOCK_WINDOW` lock an account; from `Settings`.
#[derive(Clone, Copy)]
pub struct AccountLock {
    pub after: u32,
    pub window: Duration,
}

impl AccountLock {
    pub fn of(settings: &Settings) -> Self {
        Self {
            after: settings.account_lock_after,
            window: settings.account_lock_window,
        }
    }
}

/// `Err(RateLimited)` while the account is locked, with the seconds left.
pub async fn check(db: &Db, lock: AccountLock, account_key: &str) -> Result<(), ApiError> {
    let limit = i64::from(lock.after);
    let window = lock.window.as_millis() as i64;
    let now = now_millis();
    let (failures, oldest) = store::login_failures::count_since(db, account_key, now - window).await?;
    if failures >= limit {
        // Locked until the oldest failure of the window leaves it.
        let remaining_millis = oldest.map_or(window, |oldest| oldest + window - now);
        return Err(ApiError::RateLimited {
            retry_after_seconds: seconds_rounded_up(remaining_millis),
        });
    }
    Ok(())
}

fn seconds_rounded_up(millis: i64) -> u64 {
    (millis.max(1) as u64).div_ceil(1000)
}

/// Counts one failed log-in for this account.
pub async fn record_failure(db: &Db, lock: AccountLock, account_key: &str) -> Result<(), ApiError> {
    let window = lock.window.as_millis() as i64;
    let now = now_millis();
    store::login_failures::record(db, account_key, now, now - window).await?;
    Ok(())
}

/// Forgets the account's failures after a successful log-in.
pub async fn clear(db: &Db, account_key: &str) -> Result<(), ApiError> {
    store::login_failures::clear(db, account_key).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{account_key, seconds_rounded_up};

    #[test]
    fn account_keys_follow_the_normalized_email() {
        assert_eq!(account_key("Ann@Example.com"), account_key("ann@example.com"));
        assert_ne!(account_key("ann@example.com"), account_key("bob@example.com"));
        assert_eq!(account_key("not an email"), None);
    }

    #[test]
    fn waits_are_rounded_up_to_whole_seconds() {
        assert_eq!(seconds_rounded_up(0), 1);
        assert_eq!(seconds_rounded_up(1), 1);
        assert_eq!(seconds_rounded_up(1000), 1);
        assert_eq!(seconds_rounded_up(1001), 2);
    }
}
