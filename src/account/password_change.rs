//! Changing the password: every other login session is signed out.

use super::{count_devices, password_matches, record, related_words};
use crate::account::Accounts;
use crate::auth::password;
use crate::auth::strategy::Principal;
use crate::domain::Password;
use crate::error::ApiError;
use crate::store::events::{EventKind, Origin};
use crate::store::{self};

/// Verifies the current password, stores the new one, bumps `token_version` and revokes every
/// other login session; the caller's own survives. Returns how many were signed out.
pub async fn change_password(
    accounts: &Accounts,
    principal: &Principal,
    current: String,
    new: String,
    origin: &Origin,
) -> Result<usize, ApiError> {
    let user = store::users::find_by_id(&accounts.db, &principal.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let new = Password::parse_new(new, &related_words(&user.email))
        .map_err(|message| ApiError::invalid_field("new_password", message))?;
    if new.same_as(&current) {
        return Err(ApiError::invalid_field(
            "new_password",
            "the new password must differ from the current one",
        ));
    }
    if !password_matches(accounts, principal, current).await? {
        return Err(ApiError::invalid_field(
            "current_password",
            "the current password is not correct",
        ));
    }
    let hash = password::hash(new).await?;
    let revoked = accounts
        .revocation
        .change_password(&principal.user_id, &hash, &principal.session_id)
        .await?;
    let count = revoked.sessions.len();
    let detail = format!("{} signed out", count_devices(count, true));
    record(accounts, principal, EventKind::PasswordChanged, None, origin, detail).await?;
    Ok(count)
}
