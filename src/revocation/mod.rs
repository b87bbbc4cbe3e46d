//! The one place that answers "is this still valid?" and the one place that revokes.
//!
//! Checks: a user's current `token_version`, whether a `jti` is denylisted, whether a login
//! session is live. Revocations: one login session, all of a user's, a single `jti`. Every
//! revocation is committed to the database first (the source of truth), then copied to the
//! denylist copy (Redis with a TTL, or an in-process map) and the web-session store. Handlers and
//! extractors only ever call this type, so a cache or a cross-instance fan-out can be put in
//! front of its stores without touching them.

mod denylist;

pub use denylist::DenylistCopy;

use crate::auth::session_store::WebSessionStore;
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::store::login_sessions::{EndReason, LoginSession};
use crate::store::{self, Db};

#[derive(Clone)]
pub struct Revocation {
    db: Db,
    denylist: DenylistCopy,
    web_sessions: WebSessionStore,
}

/// The login sessions a revocation ended.
#[derive(Debug, Default)]
pub struct Revoked {
    pub sessions: Vec<String>,
}

impl Revocation {
    pub fn new(db: Db, denylist: DenylistCopy, web_sessions: WebSessionStore) -> Self {
        Self {
            db,
            denylist,
            web_sessions,
        }
    }

    pub fn denylist(&self) -> &DenylistCopy {
        &self.denylist
    }

    /// The user's `token_version` now; `None` when the user no longer exists.
    pub async fn current_token_version(&self, user_id: &str) -> Result<Option<i64>, ApiError> {
        Ok(store::users::token_version(&self.db, user_id).await?)
    }

    pub async fn is_denylisted(&self, jti: &str) -> Result<bool, ApiError> {
        self.denylist.contains(&self.db, jti).await
    }

    /// The login session if it exists, whatever its state; callers decide with `is_live`.
    pub async fn login_session(&self, session_id: &str) -> Result<Option<LoginSession>, ApiError> {
        Ok(store::login_sessions::find(&self.db, session_id).await?)
    }

    /// Puts one access token on the denylist until it expires.
    pub async fn denylist_token(&self, jti: &str, expires_at_millis: i64) -> Result<(), ApiError> {
        store::denylist::insert(&self.db, jti, expires_at_millis, now_millis()).await?;
        self.denylist.insert(jti, expires_at_millis).await;
        Ok(())
    }

    /// Revokes one login session: the row, its refresh tokens, its unexpired access tokens (onto
    /// the denylist), and its server-side cookie state. Revokes nothing if it already was revoked.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: EndReason,
        by_session_id: Option<&str>,
    ) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        let revoked = store::login_sessions::revoke(&mut *transaction, session_id, reason, by_session_id, now).await?;
        if !revoked {
            transaction.rollback().await?;
            return Ok(Revoked::default());
        }
        let denylisted = Self::revoke_tokens_of(&mut transaction, session_id, now).await?;
        transaction.commit().await?;
        self.after_commit(std::slice::from_ref(&session_id.to_owned()), &denylisted)
            .await;
        Ok(Revoked {
            sessions: vec![session_id.to_owned()],
        })
    }

    /// Revokes every login session of the user but `except`, optionally bumping `token_version`
    /// in the same transaction (log out everywhere, password change).
    pub async fn revoke_all_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: EndReason,
        by_session_id: Option<&str>,
        bump_token_version: bool,
    ) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        if bump_token_version {
            store::users::bump_token_version(&mut *transaction, user_id).await?;
        }
        let sessions =
            store::login_sessions::revoke_all_for_user(&mut *transaction, user_id, except, reason, by_session_id, now)
                .await?;
        let mut denylisted = Vec::new();
        for session_id in &sessions {
            denylisted.extend(Self::revoke_tokens_of(&mut transaction, session_id, now).await?);
        }
        transaction.commit().await?;
        self.after_commit(&sessions, &denylisted).await;
        Ok(Revoked { sessions })
    }

    async fn revoke_tokens_of(
        transaction: &mut store::Transaction<'_>,
        session_id: &str,
        now: i64,
    ) -> Result<Vec<(String, i64)>, ApiError> {
        store::refresh_tokens::delete_for_session(&mut **transaction, session_id).await?;
        let tokens = store::access_tokens::unexpired_for_session(&mut **transaction, session_id, now).await?;
        for (jti, expires_at) in &tokens {
            store::denylist::insert(&mut **transaction, jti, *expires_at, now).await?;
        }
        Ok(tokens)
    }

    /// The database has the revocation; now the copies. A copy that cannot be written is marked
    /// stale so it is rebuilt from the database before it is trusted again.
    async fn after_commit(&self, sessions: &[String], denylisted: &[(String, i64)]) {
        tracing::info!(
            sessions = sessions.len(),
            denylisted = denylisted.len(),
            "login sessions revoked"
        );
        for (jti, expires_at) in denylisted {
            self.denylist.insert(jti, *expires_at).await;
        }
        for session_id in sessions {
            if let Err(error) = self.web_sessions.delete_for_login_session(session_id).await {
                // The login session row is revoked, so the orphaned state is refused on use.
                tracing::warn!(error = %error, "could not delete the server-side state of a revoked session");
            }
        }
    }

    /// Rebuilds the denylist copy from the database (start-up, or Redis came back empty).
    pub async fn reload_denylist(&self) -> Result<usize, ApiError> {
        self.denylist.reload(&self.db).await
    }

    /// Deletes what has expired everywhere: denylist entries (database and copy), access-token
    /// records, refresh tokens, cookie state, and login sessions ended more than 30 days ago.
    pub async fn purge_expired(&self) -> Result<(), ApiError> {
        let now = now_millis();
        let denylist = store::denylist::purge_expired(&self.db, now).await?;
        self.denylist.purge_expired(now);
        let access = store::access_tokens::purge_expired(&self.db, now).await?;
        let refresh = store::refresh_tokens::purge_expired(&self.db, now).await?;
        let web = store::web_sessions::purge_expired(&self.db, now).await?;
        let sessions = store::login_sessions::purge_ended_before(&self.db, now - 30 * 24 * 3600 * 1000).await?;
        tracing::debug!(denylist, access, refresh, web, sessions, "purged expired state");
        Ok(())
    }
}
