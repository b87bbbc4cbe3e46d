//! The server-side store behind actix-session: Redis when `REDIS_URL` is set (a TTL on every key),
//! the SQL database otherwise, so the embedded default keeps sessions across a restart. The cookie
//! carries only an opaque 256-bit key. Both backends index the state by login session, so revoking
//! a device from anywhere deletes that device's server-side state. It belongs to `revocation`,
//! which wraps it (`web_state`) and is the one place that deletes a revoked device's state; `auth`
//! reads only `LOGIN_SESSION_KEY` from here.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use deadpool_redis::redis::AsyncCommands;

use crate::domain::{RandomId, SessionId, now_millis};
use crate::store::{self, Db};

/// The state key under which a logged-in session names its login session.
pub const LOGIN_SESSION_KEY: &str = "login_session";

/// The key of a logged-in session starts with its login session's id: `{id}.{256 random bits}`.
/// The cookie that carries it is encrypted and authenticated, so the id it names is the server's
/// own word, and a log-out can end that login session even when the store lost the state.
fn session_key_for(login_session_id: Option<&str>) -> String {
    match login_session_id.and_then(SessionId::parse) {
        Some(id) => format!("{}.{}", id.as_str(), RandomId::secret()),
        None => RandomId::secret(),
    }
}

/// The only state of a session whose key names a login session the store has no state for (Redis
/// restarted empty, flushed or evicted it): the id, so that log-out can still end it. Such a
/// session is not logged in; nothing but log-out reads this.
pub const STATE_LOST_KEY: &str = "state_lost_for";

/// What a load answers for `session_key` when the store holds nothing under it.
pub fn state_when_lost(session_key: &str) -> Option<HashMap<String, String>> {
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

#[derive(Clone)]
pub enum WebSessionStore {
    Sql(Db),
    Redis { pool: deadpool_redis::Pool, prefix: String },
}

fn login_session_of(state: &HashMap<String, String>) -> Option<String> {
    state
        .get(LOGIN_SESSION_KEY)
        .and_then(|raw| serde_json::from_str::<String>(raw).ok())
}

fn ttl_seconds(ttl: &Duration) -> u64 {
    ttl.whole_seconds().max(1) as u64
}

impl WebSessionStore {
    fn state_key(prefix: &str, session_key: &str) -> String {
        format!("{prefix}session:{session_key}")
    }

    fn index_key(prefix: &str, login_session_id: &str) -> String {
        format!("{prefix}session-of:{login_session_id}")
    }

    async fn write(&self, session_key: &str, state: &HashMap<String, String>, ttl: &Duration) -> anyhow::Result<()> {
        let encoded = serde_json::to_string(state)?;
        let login_session_id = login_session_of(state);
        match self {
            Self::Sql(db) => {
                let expires_at = now_millis() + ttl.whole_milliseconds() as i64;
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

    /// Deletes the state under `session_key`; `true` when there was any.
    pub async fn remove(&self, session_key: &SessionKey) -> anyhow::Result<bool> {
        Ok(match self {
            Self::Sql(db) => store::web_sessions::delete(db, session_key.as_ref()).await?,
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                connection
                    .del::<_, u64>(Self::state_key(prefix, session_key.as_ref()))
                    .await?
                    > 0
            }
        })
    }

    /// Deletes the server-side state belonging to a login session, wherever it is kept.
    pub async fn delete_for_login_session(&self, login_session_id: &str) -> anyhow::Result<()> {
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

impl SessionStore for WebSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let raw: Option<String> = match self {
            Self::Sql(db) => store::web_sessions::load(db, session_key.as_ref(), now_millis())
                .await
                .map_err(|error| LoadError::Other(error.into()))?,
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await.map_err(|error| LoadError::Other(error.into()))?;
                connection
                    .get(Self::state_key(prefix, session_key.as_ref()))
                    .await
                    .map_err(|error| LoadError::Other(error.into()))?
            }
        };
        raw.map(|raw| serde_json::from_str(&raw).map_err(|error| LoadError::Deserialization(error.into())))
            .transpose()
    }

    async fn save(&self, state: HashMap<String, String>, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = session_key_for(login_session_of(&state).as_deref());
        self.write(&key, &state, ttl).await.map_err(SaveError::Other)?;
        SessionKey::try_from(key).map_err(|error| SaveError::Other(error.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.write(session_key.as_ref(), &state, ttl)
            .await
            .map_err(UpdateError::Other)?;
        Ok(session_key)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        match self {
            Self::Sql(db) => {
                let expires_at = now_millis() + ttl.whole_milliseconds() as i64;
                store::web_sessions::extend(db, session_key.as_ref(), expires_at).await?;
            }
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                connection
                    .expire::<_, ()>(Self::state_key(prefix, session_key.as_ref()), ttl_seconds(ttl) as i64)
                    .await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.remove(session_key).await.map(|_| ())
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
