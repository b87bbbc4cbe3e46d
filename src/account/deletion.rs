//! Deleting the account, once the password is proved.

use super::password_matches;
use crate::account::Accounts;
use crate::auth::strategy::Principal;
use crate::error::ApiError;

/// After checking the password: every login session is revoked first (tokens denylisted, cookie
/// state deleted), then the user row and, by cascade, everything that belonged to it.
pub async fn delete(accounts: &Accounts, principal: &Principal, password: String) -> Result<(), ApiError> {
    if !password_matches(accounts, principal, password).await? {
        return Err(ApiError::invalid_field("password", "the password is not correct"));
    }
    accounts
        .revocation
        .delete_user(&principal.user_id, Some(&principal.session_id))
        .await?;
    Ok(())
}
