//! The server-side state of cookie sessions: Redis when `REDIS_URL` is set (a TTL on every key),
//! the SQL database otherwise, so the embedded default keeps sessions across a restart; the
//! in-process cache in front of either, so a request's load is a memory read when this instance
//! is current. The cookie carries only an opaque 256-bit key. Both backends index the state by
//! login session, so revoking a device from anywhere deletes that device's state.
//!
//! A write or delete of existing state is said in the revocation log, so every other instance
//! drops its copy; new state gets a new random key that no other instance can hold yet. Cached
//! state is named by the SHA-256 of its key: the key itself is a credential and never leaves the
//! process except to its own store. The session middleware reaches this through
//! `crate::web_session`, which adapts it to actix-session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deadpool_redis::redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::{Error, Lookup, Revocation, count};
use crate::domain::{RandomId, SessionId};
use crate::store::{self, Db};

/// A cookie session's state: names to JSON-encoded values, as the session middleware keeps it.
pub type CookieState = HashMap<String, String>;

/// The state key under which a logged-in session names its login session.
pub const LOGIN_SESSION_KEY: &str = "login_session";

/// The only state of a session whose key names a login session the store has no state for (Redis
/// restarted empty, flushed or evicted it): the id, so that log-out can still end it. Such a
/// session is not logged in; nothing but log-out reads this.
pub const STATE_LOST_KEY: &str = "state_lost_for";

/// The key of a logged-in session starts with its login session's id: `{id}.{256 random bits}`.
/// The cookie that carries it is encrypted and authenticated, so the id it names is the server's
/// own word, and a log-out can end that login session even when the store lost the state.
fn session_key_for(login_session_id: Option<&str>) -> String {
    match login_session_id.and_then(SessionId::parse) {
        Some(id) => format!("{}.{}", id.as_str(), RandomId::secret()),
        None => RandomId::secret(),
    }
}

/// What a load answers for `session_key` when the store holds nothing under it.
fn state_when_lost(session_key: &str) -> Option<CookieState> {
    let id = login_session_named_by(session_key)?;
    let encoded = serde_json::to_string(id.as_str()).ok()?;
    Some(HashMap::from([(STATE_LOST_KEY.to_owned(), encoded)]))
}

/// The login session a session key names, when it names one.
pub fn login_session_named_by(session_key: &str) -> Option<SessionId> {
    let (id, secret) = session_key.split_once('.')?;
    (secret.len() == 43).then_some(())?;
    SessionId::parse(id)
}

fn login_session_of(state: &CookieState) -> Option<String> {
    state
        .get(LOGIN_SESSION_KEY)
        .and_then(|raw| serde_json::from_str::<String>(raw).ok())
}

fn key_hash(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_bytes()))
}

fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// Where the state is kept.
#[derive(Clone)]
pub enum WebSessionStore {
    Sql(Db),
    Redis { pool: deadpool_redis::Pool, prefix: String },
}

impl WebSessionStore {
    fn state_key(prefix: &str, session_key: &str) -> String {
        format!("{prefix}session:{session_key}")
    }

    fn index_key(prefix: &str, login_session_id: &str) -> String {
        format!("{prefix}session-of:{login_session_id}")
    }

    /// The state under `session_key`, unless it expired; state that cannot be decoded is none.
    async fn load(&self, session_key: &str, now: i64) -> Result<Option<CookieState>, Error> {
        let raw: Option<String> = match self {
            Self::Sql(db) => store::web_sessions::load(db, session_key, now).await?,
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                connection.get(Self::state_key(prefix, session_key)).await?
            }
        };
        Ok(raw.and_then(|raw| match serde_json::from_str(&raw) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(error = %error, "unreadable cookie-session state; a new session starts");
                None
            }
        }))
    }

    async fn write(&self, session_key: &str, state: &CookieState, ttl: Duration, now: i64) -> Result<(), Error> {
        let encoded = serde_json::to_string(state).map_err(|error| Error::Internal(error.into()))?;
        let login_session_id = login_session_of(state);
        match self {
            Self::Sql(db) => {
                let expires_at = now + ttl.as_millis() as i64;
                store::web_sessions::upsert(db, session_key, &encoded, login_session_id.as_deref(), expires_at).await?;
            }
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                let seconds = ttl_seconds(ttl);
                let mut pipeline = redis::pipe();
                pipeline.set_ex(Self::state_key(prefix, session_key), encoded, seconds);
                if let Some(id) = login_session_id {
                    pipeline.set_ex(Self::index_key(prefix, &id), session_key, seconds);
                }
                pipeline.query_async::<()>(&mut connection).await?;
            }
        }
        Ok(())
    }

    async fn extend(&self, session_key: &str, ttl: Duration, now: i64) -> Result<(), Error> {
        match self {
            Self::Sql(db) => {
                let expires_at = now + ttl.as_millis() as i64;
                store::web_sessions::extend(db, session_key, expires_at).await?;
            }
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                connection
                    .expire::<_, ()>(Self::state_key(prefix, session_key), ttl_seconds(ttl) as i64)
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes the state under `session_key`; `true` when there was any.
    async fn remove(&self, session_key: &str) -> Result<bool, Error> {
        Ok(match self {
            Self::Sql(db) => store::web_sessions::delete(db, session_key).await?,
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                connection.del::<_, u64>(Self::state_key(prefix, session_key)).await? > 0
            }
        })
    }

    /// Deletes the server-side state belonging to a login session, wherever it is kept.
    pub async fn delete_for_login_session(&self, login_session_id: &str) -> Result<(), Error> {
        match self {
            Self::Sql(db) => store::web_sessions::delete_for_login_session(db, login_session_id).await?,
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                let index = Self::index_key(prefix, login_session_id);
                let session_key: Option<String> = connection.get(&index).await?;
                let mut keys = vec![index];
                keys.extend(session_key.map(|key| Self::state_key(prefix, &key)));
                connection.del::<_, ()>(keys).await?;
            }
        }
        Ok(())
    }
}

impl Revocation {
    /// The state under `session_key`: from memory when this instance is current. A key that
    /// names a login session whose state is gone answers `STATE_LOST_KEY` alone.
    pub async fn load_cookie_state(&self, session_key: &str) -> Result<Option<CookieState>, Error> {
        let backend = &self.inner.web_sessions;
        let now = self.now_millis();
        let Some(cache) = self.trusted().await? else {
            count("web_state", Lookup::Store);
            let state = backend.load(session_key, now).await?;
            return Ok(state.or_else(|| state_when_lost(session_key)));
        };
        let hash = cache.web_state_name(session_key, key_hash);
        if let Some(state) = cache.web_state(&hash, now) {
            count("web_state", Lookup::Hit);
            return Ok(Some((*state).clone()));
        }
        count("web_state", Lookup::Miss);
        let ticket = cache.ticket();
        match backend.load(session_key, now).await? {
            Some(state) => {
                cache.fill_web_state(ticket, &hash, Arc::new(state.clone()));
                Ok(Some(state))
            }
            None => Ok(state_when_lost(session_key)),
        }
    }

    /// Stores new state under a new key (which names its login session, if it has one), kept
    /// for `ttl`; returns the key.
    pub async fn save_cookie_state(&self, state: CookieState, ttl: Duration) -> Result<String, Error> {
        let key = session_key_for(login_session_of(&state).as_deref());
        self.inner
            .web_sessions
            .write(&key, &state, ttl, self.now_millis())
            .await?;
        self.inner.cache.put_web_state(&key_hash(&key), Some(Arc::new(state)));
        Ok(key)
    }

    /// Replaces the state under `session_key`, and tells the other instances to drop their copy.
    pub async fn update_cookie_state(&self, session_key: &str, state: CookieState, ttl: Duration) -> Result<(), Error> {
        let hash = key_hash(session_key);
        self.inner
            .web_sessions
            .write(session_key, &state, ttl, self.now_millis())
            .await?;
        self.inner.cache.put_web_state(&hash, Some(Arc::new(state)));
        self.web_state_changed(&hash).await
    }

    /// Keeps the state under `session_key` for `ttl` from now.
    pub async fn extend_cookie_state(&self, session_key: &str, ttl: Duration) -> Result<(), Error> {
        self.inner
            .web_sessions
            .extend(session_key, ttl, self.now_millis())
            .await
    }

    /// Deletes the state under `session_key`. State that was already gone (a revoked device's,
    /// deleted with its login session) needs no announcement: the login session's end is what
    /// every instance checks. So refusing a revoked cookie costs one delete, not a commit to the
    /// revocation log.
    ///
    /// A store that cannot delete (Redis down) does not turn a log-out that committed into an
    /// error: what decides whether the state still works is its login session, already ended in
    /// the database; the leftover state is refused on use and expires. Other instances are still
    /// told to drop their copies.
    pub async fn delete_cookie_state(&self, session_key: &str) {
        let hash = key_hash(session_key);
        self.inner.cache.put_web_state(&hash, None);
        let existed = match self.inner.web_sessions.remove(session_key).await {
            Ok(existed) => existed,
            Err(error) => {
                tracing::warn!(error = %error, "could not delete cookie state; its login session decides whether it works");
                true
            }
        };
        if existed && let Err(error) = self.web_state_changed(&hash).await {
            tracing::warn!(error = %error, "could not announce a deleted cookie state; cached copies expire with their lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_in_session_key_names_its_login_session_and_an_anonymous_one_names_none() {
        let id = RandomId::generate();
        let key = session_key_for(Some(&id));
        assert_eq!(
            login_session_named_by(&key).map(|named| named.as_str().to_owned()),
            Some(id)
        );
        let anonymous = session_key_for(None);
        assert_eq!(login_session_named_by(&anonymous), None);
        assert_ne!(
            session_key_for(Some(&anonymous[..22])),
            session_key_for(Some(&anonymous[..22]))
        );
    }

    #[test]
    fn a_key_that_is_not_of_that_shape_names_nothing() {
        let id = RandomId::generate();
        for key in [
            format!("{id}."),
            format!("{id}.short"),
            format!("{id}x.{}", RandomId::secret()),
            format!(".{}", RandomId::secret()),
            format!("{}\0.{}", &id[..21], RandomId::secret()),
        ] {
            assert_eq!(login_session_named_by(&key), None, "{key:?}");
        }
        // An id that is not one is never embedded.
        assert_eq!(login_session_named_by(&session_key_for(Some("not an id"))), None);
    }
}
