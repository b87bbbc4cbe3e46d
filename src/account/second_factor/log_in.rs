//! The second step of a log-in: a challenge (`mfa_token`) after the password, spent by a right code.

use super::{CodeFrom, MAX_WRONG_CODES_PER_LOG_IN, MFA_TOKEN_TTL_MILLIS, code_matches, is_enabled};
use crate::account::Accounts;
use crate::domain::MfaToken;
use crate::error::ApiError;
use crate::store::events::Origin;
use crate::store::users::User;
use crate::store::{self, mfa_challenges};

/// The step between "password verified" and "logged in": for an account with a second factor,
/// a new `mfa_token` (stored hashed, valid `MFA_TOKEN_TTL_MILLIS`) and nothing else; `None` for
/// an account without one, whose log-in goes on.
pub async fn challenge_if_enrolled(accounts: &Accounts, user: &User) -> Result<Option<MfaToken>, ApiError> {
    if !is_enabled(accounts, &user.id).await? {
        return Ok(None);
    }
    let token = MfaToken::generate();
    let now = accounts.now();
    mfa_challenges::insert(&accounts.db, &token.hash(), &user.id, now, now + MFA_TOKEN_TTL_MILLIS).await?;
    Ok(Some(token))
}

fn challenge_gone() -> ApiError {
    ApiError::InvalidGrant("the mfa_token is not valid, was already used, or has expired: log in again".into())
}

/// The second step of a log-in: the challenge (by its token's hash) must be open and the code
/// right. A right code spends the challenge (single use) and forgets the account's wrong codes; a
/// wrong one is a 401 and counts, and the `MAX_WRONG_CODES_PER_LOG_IN`-th spends the challenge.
/// Returns the user whose login session may now be opened.
pub async fn finish_log_in(
    accounts: &Accounts,
    challenge_hash: &str,
    code: &str,
    known_browser: Option<&str>,
    origin: &Origin,
) -> Result<User, ApiError> {
    let challenge = mfa_challenges::find_open(&accounts.db, challenge_hash, accounts.now())
        .await?
        .ok_or_else(challenge_gone)?;
    let user = store::users::find_by_id(&accounts.db, &challenge.user_id)
        .await?
        .ok_or_else(challenge_gone)?;
    if !code_matches(accounts, &user, code, CodeFrom::LogIn { known_browser }, origin).await? {
        let spent =
            mfa_challenges::record_failure(&accounts.db, challenge_hash, MAX_WRONG_CODES_PER_LOG_IN, accounts.now())
                .await?;
        return Err(ApiError::InvalidGrant(if spent {
            "the code is not correct, and that was the last try for this log-in: log in again".into()
        } else {
            "the code is not correct".into()
        }));
    }
    if !mfa_challenges::spend(&accounts.db, challenge_hash, accounts.now()).await? {
        return Err(challenge_gone());
    }
    if user.locked_at.is_some() {
        // Locked by an operator between the two steps: refused like a password log-in.
        return Err(ApiError::LoginRefused(
            "this account is locked by an administrator; log-ins are refused until it is unlocked".into(),
        ));
    }
    Ok(user)
}

/// Whether the challenge behind a browser's pending second step is still open.
pub async fn challenge_is_open(accounts: &Accounts, challenge_hash: &str) -> Result<bool, ApiError> {
    Ok(mfa_challenges::find_open(&accounts.db, challenge_hash, accounts.now())
        .await?
        .is_some())
}
