//! The per-account limit on failed password attempts.
//!
//! After `ACCOUNT_LOCK_AFTER` failures within `ACCOUNT_LOCK_WINDOW`, new password log-ins to that
//! account (form and `/api/token`) from clients it does not know are refused with 429 until the
//! window has passed, even with the right password, so a guesser spread over many addresses gets a
//! handful of tries per window. A browser that has logged in to the account before
//! (`auth::known_browser`) is counted on its own key instead, so failures made elsewhere never lock
//! the owner's own browsers out. Devices already logged in are not affected either.
//!
//! An attempt is counted *before* its password is checked, by one conditional upsert
//! (`store::login_attempts::count_attempt`), and a right password takes it back
//! (`Attempt::succeeded`): the 10th failure is the last one checked, however many arrive at once.
//! The count is kept in the database, which every instance shares in every configuration; it is
//! not put in Redis, so that a Redis outage cannot stop log-ins that otherwise need no Redis (and a
//! Redis flush cannot reset the count). Accounts are keyed by the SHA-256 of the normalized email,
//! known or not, so the limit does not tell which emails have accounts.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::domain::{Clock, Email};
use crate::error::{ApiError, LockedOut};
use crate::store::{self, Db};

/// The key under which an email's failures are counted; `None` for what is not an email.
pub fn account_key(email: &str) -> Option<String> {
    Email::parse(email).ok().map(|email| account_key_of(&email))
}

/// `account_key` of an email already parsed.
pub fn account_key_of(email: &Email) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(email.normalized().as_bytes()))
}

/// `ACCOUNT_LOCK_AFTER` failures within `ACCOUNT_LOCK_WINDOW` lock an account; from `Settings`,
/// with windows measured on the app's clock.
#[derive(Clone)]
pub struct AccountLock {
    pub after: u32,
    pub window: Duration,
    pub clock: Clock,
}

impl AccountLock {
    pub fn of(settings: &Settings, clock: Clock) -> Self {
        Self {
            after: settings.account_lock_after,
            window: settings.account_lock_window,
            clock,
        }
    }
}

/// The key a trusted browser's attempts are counted under.
pub fn known_browser_key(nonce: &str) -> String {
    format!("browser:{nonce}")
}

/// The key a login session's re-authentications are counted under, so that a stolen token can
/// guess no more than the limit and a guesser elsewhere cannot stop the owner re-authenticating.
pub fn session_key(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// An attempt counted as a failure until `succeeded` takes it back.
#[must_use = "a right password must call `succeeded`"]
pub struct Attempt {
    key: String,
}

impl Attempt {
    /// The password was right: the key's failures are forgotten.
    pub async fn succeeded(self, db: &Db) -> Result<(), ApiError> {
        store::login_attempts::clear(db, &self.key).await?;
        Ok(())
    }
}

/// Counts an attempt against `key`; `Err(AccountLocked)` with the seconds left when the limit is
/// reached, in which case the password must not be checked.
pub async fn begin(db: &Db, lock: AccountLock, key: String, counted_as: LockedOut) -> Result<Attempt, ApiError> {
    begin_on(&mut *db.acquire().await?, lock, key, counted_as).await
}

/// `begin` on a connection the caller holds (and may go on using).
pub async fn begin_on(
    connection: &mut sqlx::AnyConnection,
    lock: AccountLock,
    key: String,
    counted_as: LockedOut,
) -> Result<Attempt, ApiError> {
    let window = lock.window.as_millis() as i64;
    let now = lock.clock.now_millis();
    match store::login_attempts::count_attempt(connection, &key, now, window, i64::from(lock.after)).await? {
        None => Ok(Attempt { key }),
        Some(window_started_at) => Err(ApiError::AccountLocked {
            retry_after_seconds: seconds_rounded_up(window_started_at + window - now),
            who: counted_as,
        }),
    }
}

fn seconds_rounded_up(millis: i64) -> u64 {
    (millis.max(1) as u64).div_ceil(1000)
}

/// Forgets an account's failures (its password was reset through email).
pub async fn clear_account(db: &Db, email: &str) -> Result<(), ApiError> {
    if let Some(key) = account_key(email) {
        store::login_attempts::clear(db, &key).await?;
    }
    Ok(())
}

/// Forgets windows that have passed.
pub async fn purge(db: &Db, lock: AccountLock) -> Result<u64, ApiError> {
    let before = lock.clock.now_millis() - lock.window.as_millis() as i64;
    Ok(store::login_attempts::purge_before(db, before).await?)
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
