//! The one writer of what the routes keep in a browser's session: who is logged in, when the
//! password was last proved and when the browser was last seen. `account` never sees the
//! session; it returns what changed (`account::RecentProof`) and the route records it here.

use actix_session::Session;

use crate::account::RecentProof;
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, LAST_SEEN_KEY};
use crate::error::ApiError;

/// Writes one value into the session; a value that does not serialise is a bug, so a 500.
pub fn put(session: &Session, key: &str, value: impl serde::Serialize) -> Result<(), ApiError> {
    session
        .insert(key, value)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))
}

/// The browser proved the password `now` (a log-in, or a password change), and so was seen.
pub fn record_password_proved(session: &Session, now: i64) -> Result<(), ApiError> {
    put(session, AUTHENTICATED_AT_KEY, now)?;
    put(session, LAST_SEEN_KEY, now)
}

/// A re-authentication that renewed the browser's proof; nothing when it did not.
pub fn record_renewed_proof(session: &Session, proof: &RecentProof) -> Result<(), ApiError> {
    match proof.renewed_at() {
        Some(renewed_at) => put(session, AUTHENTICATED_AT_KEY, renewed_at),
        None => Ok(()),
    }
}
