//! Proving it is still the person: the password (or a second-factor code) again, once the last
//! proof is older than `SUDO_TTL`.

use super::second_factor;
use crate::account::Accounts;
use crate::auth::strategy::{Credential, Principal};
use crate::auth::{password, throttle};
use crate::error::{ApiError, LockedOut};
use crate::store::events::Origin;
use crate::store::login_sessions;
use crate::store::{self};

/// Verifies `password` against the account's own, for a logged-in caller. Wrong answers are
/// counted against the caller's login session, with the same limit as log-ins, so a stolen token
/// is no way around it and a guesser elsewhere cannot stop the owner.
pub async fn password_matches(accounts: &Accounts, principal: &Principal, password: String) -> Result<bool, ApiError> {
    let user = store::users::find_by_id(&accounts.db, &principal.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = throttle::session_key(&principal.session_id);
    let attempt = throttle::begin(&accounts.db, accounts.lock.clone(), key, LockedOut::ThisSession).await?;
    let matches = password::verify(password, Some(user.password_hash)).await?;
    if matches {
        attempt.succeeded(&accounts.db).await?;
    }
    Ok(matches)
}

/// When the caller last proved the password: for a browser, at log-in or its last
/// re-authentication; for a Bearer token, when its login session was opened by a password log-in.
pub async fn password_proved_at(accounts: &Accounts, principal: &Principal) -> Result<i64, ApiError> {
    match &principal.credential {
        Credential::Cookie(login) => Ok(login.authenticated_at),
        Credential::Bearer(_) => Ok(login_sessions::find(&accounts.db, &principal.session_id)
            .await?
            .map_or(0, |session| session.created_at)),
    }
}

/// What a caller may offer to re-authenticate: the password, or, for an account with two-step
/// verification, a code from its authenticator (or an unused recovery code).
#[derive(Default)]
pub struct Proof {
    pub password: Option<String>,
    pub code: Option<String>,
}

impl Proof {
    pub fn password(password: Option<String>) -> Self {
        Self { password, code: None }
    }
}

/// A re-authentication rule that was met. When it renewed a browser's proof, the route writes
/// `renewed_at` into the browser's session (`routes::browser_session::record_renewed_proof`);
/// the actions that need it take it as evidence that the rule was checked.
#[must_use]
pub struct RecentProof {
    renewed_at: Option<i64>,
}

impl RecentProof {
    /// When a browser's proof was renewed; `None` when the last one was still recent, or for a
    /// Bearer token, whose proof is its login session's password log-in.
    pub fn renewed_at(&self) -> Option<i64> {
        self.renewed_at
    }
}

/// The re-authentication rule, one for every route: signing out all other devices and logging
/// out everywhere need the password again once its last proof is older than `SUDO_TTL` (a
/// password change and account deletion always ask for it; signing out one device or this one
/// never does). Without the password, or with a wrong one: 403 `reauthentication_required`. A
/// right one renews a browser's proof (returned, for the route to record). A second-factor code may stand in for the password (as in
/// GitHub's sudo mode: either one proves the person is there). When both are sent, the password
/// decides. A code counts towards the same per-account limit as a password.
pub async fn require_recent_proof(
    accounts: &Accounts,
    principal: &Principal,
    proof: Proof,
    origin: &Origin,
) -> Result<RecentProof, ApiError> {
    let proved_at = password_proved_at(accounts, principal).await?;
    if accounts.now() - proved_at <= accounts.sudo_ttl.as_millis() as i64 {
        return Ok(RecentProof { renewed_at: None });
    }
    let password = proof.password.filter(|given| !given.is_empty());
    let code = proof.code.filter(|given| !given.trim().is_empty());
    match (password, code) {
        (Some(given), _) => {
            if !password_matches(accounts, principal, given).await? {
                return Err(ApiError::ReauthenticationRequired("the password is not correct".into()));
            }
        }
        (None, Some(code)) => {
            let user = store::users::find_by_id(&accounts.db, &principal.user_id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if !second_factor::code_matches(
                accounts,
                &user,
                &code,
                second_factor::CodeFrom::Session(&principal.session_id),
                origin,
            )
            .await?
            {
                return Err(ApiError::ReauthenticationRequired("the code is not correct".into()));
            }
        }
        (None, None) => {
            return Err(ApiError::ReauthenticationRequired(
                "this action needs your password again: send it as `password` (or, with two-step verification on, \
                 a code as `code`)"
                    .into(),
            ));
        }
    }
    let renewed_at = match principal.credential {
        Credential::Cookie(_) => Some(accounts.now()),
        Credential::Bearer(_) => None,
    };
    Ok(RecentProof { renewed_at })
}
