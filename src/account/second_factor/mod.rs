//! Two-step verification of an account: enrolling an authenticator app (TOTP) with recovery
//! codes, the second step of both ways of logging in, codes as a re-authentication proof, and
//! turning it off. The JSON and the HTML routes both call these.
//!
//! Codes are counted like passwords (`auth::throttle`), before they are checked: at log-in against
//! the account's own second-factor key, which only a right code resets (a right password does
//! not, so knowing the password buys no extra guesses); in re-authentication against the caller's
//! login session, as its passwords are.

mod changes;
mod codes;
mod enrolment;
mod log_in;

pub use changes::{disable, replace_recovery_codes};
pub use codes::{CodeFrom, code_matches};
pub use enrolment::{Enrolment, confirm_enrolment, pending_enrolment, start_enrolment};
pub use log_in::{challenge_if_enrolled, challenge_is_open, finish_log_in};

use crate::account::Accounts;
use crate::error::ApiError;
use crate::mail::messages::Change;
use crate::store::events::Origin;
use crate::store::{self, recovery_codes, totp_factors};

/// How long an `mfa_token` (or a browser's pending second step) waits for its code.
pub const MFA_TOKEN_TTL_MILLIS: i64 = 5 * 60 * 1000;
/// Wrong codes one `mfa_token` allows; the last of them spends it.
pub const MAX_WRONG_CODES_PER_LOG_IN: i64 = 5;
/// How long a started enrolment waits for its first code.
pub const ENROLMENT_TTL_MILLIS: i64 = 15 * 60 * 1000;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// What the dashboard shows.
pub struct Status {
    /// When the authenticator was confirmed; `None` while two-step verification is off.
    pub enabled_since: Option<i64>,
    pub recovery_codes_left: i64,
}

pub async fn status(accounts: &Accounts, user_id: &str) -> Result<Status, ApiError> {
    let enabled_since = totp_factors::find(&accounts.db, user_id)
        .await?
        .and_then(|factor| factor.confirmed_at);
    let recovery_codes_left = match enabled_since {
        Some(_) => recovery_codes::count_unused(&accounts.db, user_id).await?,
        None => 0,
    };
    Ok(Status {
        enabled_since,
        recovery_codes_left,
    })
}

pub async fn is_enabled(accounts: &Accounts, user_id: &str) -> Result<bool, ApiError> {
    Ok(totp_factors::find(&accounts.db, user_id)
        .await?
        .is_some_and(|factor| factor.confirmed_at.is_some()))
}

/// An email to the account's address that two-step verification was turned on or off, or its
/// recovery codes replaced, queued in
/// the change's own transaction (`mail::enqueue`): whoever holds a stolen session cannot quietly
/// turn it off, nor turn it on to lock the owner out, without the owner hearing of it.
async fn tell_the_owner(
    accounts: &Accounts,
    transaction: &mut store::Transaction<'_>,
    user_id: &str,
    change: Change,
    origin: &Origin,
) -> Result<(), ApiError> {
    let user = store::users::find_by_id(&mut **transaction, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(accounts.now())
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let device = crate::auth::client::describe_device(&origin.user_agent);
    let reset_link = accounts.mailer.link("/password/forgot");
    let message = crate::mail::messages::second_factor_changed(
        &user.email,
        &crate::mail::messages::SecondFactorChange {
            change,
            when: &when,
            device: &device,
            ip: &origin.ip,
            reset_link: &reset_link,
        },
    )?;
    crate::mail::enqueue(&mut **transaction, &message).await?;
    Ok(())
}

/// The stored secret, or `None` (logged, without the secret) when it does not open: sealed under
/// another `MFA_ENCRYPTION_KEY`, or damaged. Its owner's TOTP codes are then refused, and a
/// recovery code still logs in, so that they can enrol again.
fn open_secret(accounts: &Accounts, user_id: &str, sealed: &str) -> Option<Vec<u8>> {
    match accounts.totp_sealing.open(user_id, sealed) {
        Ok(secret) => Some(secret),
        Err(error) => {
            tracing::error!(user_id, error = %error, "a stored TOTP secret does not open");
            None
        }
    }
}
