//! A password log-in, counted against the browser or the account before the password is checked.

use crate::account::Accounts;
use crate::auth::{password, throttle};
use crate::domain::Email;
use crate::error::{ApiError, LockedOut};
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::users::User;
use crate::store::{self};

/// A password log-in, either way (form or `/api/token`). The attempt is counted first (against
/// this browser when its device cookie, `known_browser`, is genuine for the account, else against
/// the account) and only then is the password checked; a right one takes the count back. A failure
/// for an existing account is recorded in its security activity. One generic refusal for an
/// unknown email and a wrong password alike; an account an operator locked is refused only once
/// the password proved right, so the refusal tells a guesser nothing.
pub async fn authenticate(
    accounts: &Accounts,
    email: &str,
    password: &str,
    origin: &Origin,
    known_browser: Option<&str>,
) -> Result<User, ApiError> {
    // An email that cannot be an account's reads and counts nothing; any other is read and
    // counted on one connection, given back before the hash.
    let (account, attempt) = match Email::parse(email) {
        Err(_) => (None, None),
        Ok(email) => {
            let mut connection = accounts.db.acquire().await?;
            let account = store::users::find_by_email(&mut *connection, &email).await?;
            let recognised = account
                .as_ref()
                .and_then(|user| accounts.known_browsers.recognise(known_browser, user, accounts.now()));
            let (key, counted_as) = match &recognised {
                Some(nonce) => (throttle::known_browser_key(nonce), LockedOut::ThisBrowser),
                None => (throttle::account_key_of(&email), LockedOut::UnknownClients),
            };
            let attempt = throttle::begin_on(&mut connection, accounts.lock.clone(), key, counted_as).await?;
            (account, Some(attempt))
        }
    };
    let stored = account.as_ref().map(|user| user.password_hash.clone());
    let matches = password::verify(password.to_owned(), stored).await?;
    match account.filter(|_| matches) {
        Some(user) => {
            if let Some(attempt) = attempt {
                attempt.succeeded(&accounts.db).await?;
            }
            if user.locked_at.is_some() {
                return Err(ApiError::LoginRefused(
                    "this account is locked by an administrator; log-ins are refused until it is unlocked".into(),
                ));
            }
            // Asked only once the password is known to be right, so it tells a guesser nothing.
            if user.password_reset_required_at.is_some() {
                return Err(ApiError::PasswordResetRequired(
                    "a password reset is required: this account's sign-ins were reported as not its owner's; \
                     set a new password with the link sent by email, or ask for one at /password/forgot"
                        .into(),
                ));
            }
            Ok(user)
        }
        None => {
            record_failed_login(accounts, email, origin).await?;
            Err(ApiError::InvalidGrant("the email or password is not correct".into()))
        }
    }
}

/// A wrong password for an existing account goes into that account's security activity.
async fn record_failed_login(accounts: &Accounts, email: &str, origin: &Origin) -> Result<(), ApiError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    if let Some(user) = store::users::find_by_email(&accounts.db, &email).await? {
        events::record(
            &accounts.db,
            NewEvent {
                user_id: &user.id,
                kind: EventKind::LoginFailed,
                session_id: None,
                other_session_id: None,
                origin,
                detail: String::new(),
            },
        )
        .await?;
    }
    Ok(())
}
