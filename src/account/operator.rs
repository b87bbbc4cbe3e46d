//! What an operator does to an account from the command line (`revocable users …`); each is
//! recorded in the account's security activity, where its owner reads it.

use super::count_devices;
use crate::account::Accounts;
use crate::domain::Email;
use crate::error::ApiError;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::{self, EndReason, LoginSession};
use crate::store::users::User;
use crate::store::{self};

/// Where an operator's actions are recorded as coming from.
fn operator_origin() -> Origin {
    Origin {
        ip: "-".to_owned(),
        user_agent: "revocable users (operator)".to_owned(),
    }
}

async fn record(accounts: &Accounts, user: &User, kind: EventKind, detail: String) -> Result<(), ApiError> {
    events::record(
        &accounts.db,
        NewEvent {
            user_id: &user.id,
            kind,
            session_id: None,
            other_session_id: None,
            origin: &operator_origin(),
            detail,
        },
    )
    .await?;
    Ok(())
}

/// The account with this email; a clear error when there is none.
pub async fn find(accounts: &Accounts, email: &str) -> Result<User, ApiError> {
    let parsed = Email::parse(email).map_err(|message| ApiError::invalid_field("email", message))?;
    store::users::find_by_email(&accounts.db, &parsed)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("no account with the email {email:?}")))
}

/// What `users show` prints.
pub struct Overview {
    pub user: User,
    pub email_verified_at: Option<i64>,
    /// Password log-ins refused until a reset through email ("this wasn't me").
    pub password_reset_required_at: Option<i64>,
    pub second_factor: bool,
    pub live: Vec<LoginSession>,
    pub recent: Vec<events::SecurityEvent>,
}

pub async fn show(accounts: &Accounts, email: &str) -> Result<Overview, ApiError> {
    let user = find(accounts, email).await?;
    let live = login_sessions::list_live(&accounts.db, &user.id, accounts.now()).await?;
    let recent = events::recent(&accounts.db, &user.id, 10).await?;
    Ok(Overview {
        email_verified_at: user.email_verified_at,
        password_reset_required_at: user.password_reset_required_at,
        second_factor: super::second_factor::is_enabled(accounts, &user.id).await?,
        user,
        live,
        recent,
    })
}

/// Ends every login session and bumps `token_version`; returns how many were signed out.
pub async fn sign_out(accounts: &Accounts, email: &str) -> Result<usize, ApiError> {
    let user = find(accounts, email).await?;
    let revoked = accounts
        .revocation
        .revoke_all_sessions(&user.id, None, EndReason::SignedOutByAdmin, None, true)
        .await?;
    let count = revoked.sessions.len();
    record(
        accounts,
        &user,
        EventKind::SignedOutByAdmin,
        count_devices(count, false),
    )
    .await?;
    Ok(count)
}

/// Refuses log-ins and signs every device out; returns how many were signed out.
pub async fn lock(accounts: &Accounts, email: &str) -> Result<usize, ApiError> {
    let user = find(accounts, email).await?;
    let revoked = accounts.revocation.lock_account(&user.id).await?.unwrap_or_default();
    let count = revoked.sessions.len();
    record(accounts, &user, EventKind::AccountLocked, count_devices(count, false)).await?;
    Ok(count)
}

/// Allows log-ins again. Nothing that was signed out comes back: each device logs in anew.
pub async fn unlock(accounts: &Accounts, email: &str) -> Result<bool, ApiError> {
    let user = find(accounts, email).await?;
    let was_locked = user.locked_at.is_some();
    store::users::set_locked(&accounts.db, &user.id, None).await?;
    if was_locked {
        record(accounts, &user, EventKind::AccountUnlocked, String::new()).await?;
    }
    Ok(was_locked)
}
