//! The store actix-session calls, with the in-process layer in front of the server-side one
//! (Redis, or the SQL database): a request's session load is a memory read when this instance is
//! current. A write or delete of existing state is said in the revocation log, so every other
//! instance drops its copy; new state gets a new random key that no other instance can hold yet.
//! Cached state is named by the SHA-256 of its key: the key itself is a credential and never
//! leaves the process except to its own store.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::session_store::state_when_lost;
use super::{Lookup, Revocation, count};

#[derive(Clone)]
pub struct CookieStateStore {
    revocation: Revocation,
    /// How long state is kept in the store: past the absolute session limit, so the check can
    /// still say why a session ended. Idle time is enforced on the login session, so activity
    /// does not have to rewrite the state.
    state_ttl: Duration,
}

fn key_hash(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_bytes()))
}

impl CookieStateStore {
    pub fn new(revocation: Revocation, state_ttl: std::time::Duration) -> Self {
        Self {
            revocation,
            state_ttl: Duration::seconds(state_ttl.as_secs().max(1) as i64 + 3600),
        }
    }

    async fn announce(&self, hash: &str) -> anyhow::Result<()> {
        self.revocation
            .web_state_changed(hash)
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))
    }
}

impl SessionStore for CookieStateStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let backend = self.revocation.web_sessions();
        let trusted = self
            .revocation
            .trusted()
            .await
            .map_err(|error| LoadError::Other(anyhow::anyhow!("{error}")))?;
        let Some(cache) = trusted else {
            count("web_state", Lookup::Store);
            let state = backend.load(session_key).await?;
            return Ok(state.or_else(|| state_when_lost(session_key.as_ref())));
        };
        let hash = key_hash(session_key.as_ref());
        if let Some(state) = cache.web_state(&hash) {
            count("web_state", Lookup::Hit);
            return Ok(Some((*state).clone()));
        }
        count("web_state", Lookup::Miss);
        let ticket = cache.ticket();
        let state = backend.load(session_key).await?;
        match state {
            Some(state) => {
                cache.fill_web_state(ticket, &hash, Arc::new(state.clone()));
                Ok(Some(state))
            }
            None => Ok(state_when_lost(session_key.as_ref())),
        }
    }

    async fn save(&self, state: HashMap<String, String>, _ttl: &Duration) -> Result<SessionKey, SaveError> {
        let cached = Arc::new(state.clone());
        let key = self.revocation.web_sessions().save(state, &self.state_ttl).await?;
        self.revocation
            .inner
            .cache
            .put_web_state(&key_hash(key.as_ref()), Some(cached));
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = key_hash(session_key.as_ref());
        let cached = Arc::new(state.clone());
        let key = self
            .revocation
            .web_sessions()
            .update(session_key, state, &self.state_ttl)
            .await?;
        self.revocation.inner.cache.put_web_state(&hash, Some(cached));
        self.announce(&hash).await.map_err(UpdateError::Other)?;
        Ok(key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, _ttl: &Duration) -> anyhow::Result<()> {
        self.revocation
            .web_sessions()
            .update_ttl(session_key, &self.state_ttl)
            .await
    }

    /// State that was already gone (a revoked device's, deleted with its login session) needs no
    /// announcement: the login session's end is what every instance checks. So refusing a revoked
    /// cookie costs one delete, not a commit to the revocation log.
    ///
    /// A store that cannot delete (Redis down) does not turn a log-out that committed into an
    /// error: what decides whether the state still works is its login session, already ended in
    /// the database; the leftover state is refused on use and expires. Other instances are still
    /// told to drop their copies.
    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let hash = key_hash(session_key.as_ref());
        self.revocation.inner.cache.put_web_state(&hash, None);
        let existed = match self.revocation.web_sessions().remove(session_key).await {
            Ok(existed) => existed,
            Err(error) => {
                tracing::warn!(error = %error, "could not delete cookie state; its login session decides whether it works");
                true
            }
        };
        if existed && let Err(error) = self.announce(&hash).await {
            tracing::warn!(error = %error, "could not announce a deleted cookie state; cached copies expire with their lease");
        }
        Ok(())
    }
}
