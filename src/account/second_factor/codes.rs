//! Checking a code, TOTP or recovery, under the attempt limit, and recording what it was.

use super::open_secret;
use crate::account::Accounts;
use crate::auth::{throttle, totp};
use crate::domain::SecondFactorCode;
use crate::error::{ApiError, LockedOut};
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::users::User;
use crate::store::{recovery_codes, totp_factors};

enum Checked {
    Totp,
    Recovery,
    Wrong,
}

/// A TOTP code of a step newer than the last one accepted (spent here by moving the replay
/// guard), or an unused recovery code (spent here). Without a confirmed authenticator every
/// code is wrong.
async fn check_code(accounts: &Accounts, user_id: &str, raw: &str) -> Result<Checked, ApiError> {
    let Some(factor) = totp_factors::find(&accounts.db, user_id)
        .await?
        .filter(|factor| factor.confirmed_at.is_some())
    else {
        return Ok(Checked::Wrong);
    };
    let now = accounts.now();
    match SecondFactorCode::parse(raw) {
        None => Ok(Checked::Wrong),
        Some(SecondFactorCode::Totp(code)) => {
            let Some(secret) = open_secret(accounts, user_id, &factor.sealed_secret) else {
                return Ok(Checked::Wrong);
            };
            match totp::accepted_step(&secret, &code, (now / 1000) as u64, factor.last_used_step)? {
                Some(step) if totp_factors::accept_step(&accounts.db, user_id, step as i64).await? => Ok(Checked::Totp),
                _ => Ok(Checked::Wrong),
            }
        }
        Some(SecondFactorCode::Recovery(code)) => {
            if recovery_codes::spend(&accounts.db, user_id, &code.hash(), now).await? {
                Ok(Checked::Recovery)
            } else {
                Ok(Checked::Wrong)
            }
        }
    }
}

/// The key a log-in's second-factor codes are counted under, apart from its password attempts so
/// that a right password does not wipe out wrong codes: per browser for one the account knows
/// (`auth::known_browser`), so that whoever knows the password cannot lock the owner's own
/// browsers out of the code step, else per account.
fn log_in_key(user_id: &str, known_browser_nonce: Option<&str>) -> String {
    match known_browser_nonce {
        Some(nonce) => format!("second-factor:browser:{nonce}"),
        None => format!("second-factor:{user_id}"),
    }
}

/// How a log-in's code is counted: `None` for a logged-in caller (its session), else the log-in's
/// browser as the account knows it, if it does.
pub enum CodeFrom<'a> {
    Session(&'a str),
    LogIn { known_browser: Option<&'a str> },
}

/// Checks a code under the limit: the attempt is counted first (`auth::throttle`; past the
/// limit, a 429 before any check), a right code takes it back; a wrong one goes into the
/// security activity; a spent recovery code is recorded with how many are left. A log-in's codes
/// (`session_id` `None`) count against the account, a logged-in caller's against its session.
pub async fn code_matches(
    accounts: &Accounts,
    user: &User,
    code: &str,
    from: CodeFrom<'_>,
    origin: &Origin,
) -> Result<bool, ApiError> {
    let session_id = match from {
        CodeFrom::Session(session_id) => Some(session_id),
        CodeFrom::LogIn { .. } => None,
    };
    let (key, counted_as) = match from {
        CodeFrom::Session(session_id) => (throttle::session_key(session_id), LockedOut::ThisSession),
        CodeFrom::LogIn { known_browser } => {
            let nonce = accounts.known_browsers.recognise(known_browser, user, accounts.now());
            (log_in_key(&user.id, nonce.as_deref()), LockedOut::SecondFactor)
        }
    };
    let attempt = throttle::begin(&accounts.db, accounts.lock.clone(), key, counted_as).await?;
    let checked = check_code(accounts, &user.id, code).await?;
    if !matches!(checked, Checked::Wrong) {
        attempt.succeeded(&accounts.db).await?;
    }
    let (kind, detail) = match checked {
        Checked::Totp => return Ok(true),
        Checked::Recovery => {
            let left = recovery_codes::count_unused(&accounts.db, &user.id).await?;
            (
                EventKind::RecoveryCodeUsed,
                format!("{left} recovery code{} left", if left == 1 { "" } else { "s" }),
            )
        }
        Checked::Wrong => (EventKind::SecondFactorFailed, String::new()),
    };
    events::record(
        &accounts.db,
        NewEvent {
            user_id: &user.id,
            kind,
            session_id,
            other_session_id: None,
            origin,
            detail,
        },
    )
    .await?;
    Ok(matches!(checked, Checked::Recovery))
}
