//! The store actix-session calls: an adapter over `Revocation`'s cookie state
//! (`revocation::cookie_state`), which is the one writer of it. Nothing here decides anything:
//! keys, caching, announcements and the state of a lost session are the revocation layer's.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use crate::revocation::Revocation;

#[derive(Clone)]
pub struct CookieStateStore {
    revocation: Revocation,
    /// How long state is kept in the store: past the absolute session limit, so the check can
    /// still say why a session ended. Idle time is enforced on the login session, so activity
    /// does not have to rewrite the state; the middleware's own TTL is not used.
    state_ttl: std::time::Duration,
}

impl CookieStateStore {
    pub fn new(revocation: Revocation, session_ttl: std::time::Duration) -> Self {
        Self {
            revocation,
            state_ttl: std::time::Duration::from_secs(session_ttl.as_secs().max(1) + 3600),
        }
    }
}

impl SessionStore for CookieStateStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        self.revocation
            .load_cookie_state(session_key.as_ref())
            .await
            .map_err(|error| LoadError::Other(error.into()))
    }

    async fn save(&self, state: HashMap<String, String>, _ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = self
            .revocation
            .save_cookie_state(state, self.state_ttl)
            .await
            .map_err(|error| SaveError::Other(error.into()))?;
        SessionKey::try_from(key).map_err(|error| SaveError::Other(error.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.revocation
            .update_cookie_state(session_key.as_ref(), state, self.state_ttl)
            .await
            .map_err(|error| UpdateError::Other(error.into()))?;
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, _ttl: &Duration) -> anyhow::Result<()> {
        Ok(self
            .revocation
            .extend_cookie_state(session_key.as_ref(), self.state_ttl)
            .await?)
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.revocation.delete_cookie_state(session_key.as_ref()).await;
        Ok(())
    }
}
