//! The one place that answers "is this still valid?" and the one place that revokes.
//!
//! Checks: a user's current `token_version`, whether a `jti` is denylisted, whether a login
//! session is live. Revocations: one login session, all of a user's, a single `jti`. Every
//! revocation is committed to the database first (the source of truth), then copied to the
//! denylist copy (Redis with a TTL, or an in-process map) and the web-session store. Handlers and
//! extractors only ever call this type, so a cache or a cross-instance fan-out can be put in
//! front of its stores without touching them.

mod denylist;
mod retry;
mod rotation;

pub use denylist::DenylistCopy;
pub use rotation::{MintedAccess, NewRefresh, Rotation};

use std::sync::Arc;

use crate::auth::session_store::WebSessionStore;
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::store::login_sessions::{EndReason, LoginSession};
use crate::store::revocation_log::{Change, Entry};
use crate::store::{self, Db};

#[derive(Clone)]
pub struct Revocation {
    db: Db,
    denylist: DenylistCopy,
    web_sessions: WebSessionStore,
    /// Every committed entry of the revocation log, for in-process listeners (the revocation feed).
    committed: tokio::sync::broadcast::Sender<Arc<Entry>>,
}

/// The login sessions a revocation ended.
#[derive(Debug, Default)]
pub struct Revoked {
    pub sessions: Vec<String>,
}

/// What a revoking transaction has done so far: the log entries it will append, the sessions it
/// ended and the access tokens it denylisted.
#[derive(Default)]
struct Pending {
    changes: Vec<Change>,
    sessions: Vec<String>,
    denylisted: Vec<(String, i64)>,
}

impl Revocation {
    pub fn new(db: Db, denylist: DenylistCopy, web_sessions: WebSessionStore) -> Self {
        let (committed, _) = tokio::sync::broadcast::channel(1024);
        Self {
            db,
            denylist,
            web_sessions,
            committed,
        }
    }

    pub fn denylist(&self) -> &DenylistCopy {
        &self.denylist
    }

    /// Entries of the revocation log as this instance commits or learns of them, in order.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Entry>> {
        self.committed.subscribe()
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

    /// Puts one access token of `session_id` on the denylist until it expires.
    pub async fn denylist_token(&self, jti: &str, session_id: &str, expires_at_millis: i64) -> Result<(), ApiError> {
        retry::on_conflict("denylisting", || {
            self.try_denylist_token(jti, session_id, expires_at_millis)
        })
        .await
    }

    async fn try_denylist_token(&self, jti: &str, session_id: &str, expires_at_millis: i64) -> Result<(), ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        store::denylist::insert(&mut *transaction, jti, expires_at_millis, now).await?;
        let pending = Pending {
            changes: vec![Change::jti_denylisted(jti, session_id, expires_at_millis)],
            sessions: Vec::new(),
            denylisted: vec![(jti.to_owned(), expires_at_millis)],
        };
        self.commit(transaction, pending, now).await?;
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
        retry::on_conflict("session revocation", || {
            self.try_revoke_session(session_id, reason, by_session_id)
        })
        .await
    }

    async fn try_revoke_session(
        &self,
        session_id: &str,
        reason: EndReason,
        by_session_id: Option<&str>,
    ) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        let Some(user_id) =
            store::login_sessions::revoke(&mut *transaction, session_id, reason, by_session_id, now).await?
        else {
            transaction.rollback().await?;
            return Ok(Revoked::default());
        };
        let mut pending = Pending::default();
        Self::end_session(&mut transaction, &mut pending, &user_id, session_id, reason, now).await?;
        self.commit(transaction, pending, now).await
    }

    /// Revokes every login session of the user but `except`, optionally bumping `token_version`
    /// in the same transaction (log out everywhere).
    pub async fn revoke_all_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: EndReason,
        by_session_id: Option<&str>,
        bump_token_version: bool,
    ) -> Result<Revoked, ApiError> {
        retry::on_conflict("revocation of all sessions", || {
            self.try_revoke_all_sessions(user_id, except, reason, by_session_id, bump_token_version)
        })
        .await
    }

    async fn try_revoke_all_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: EndReason,
        by_session_id: Option<&str>,
        bump_token_version: bool,
    ) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        let mut pending = Pending::default();
        if bump_token_version {
            let version = store::users::bump_token_version(&mut *transaction, user_id).await?;
            pending.changes.push(Change::version_changed(user_id, version));
        }
        Self::end_all_sessions(
            &mut transaction,
            &mut pending,
            user_id,
            except,
            reason,
            by_session_id,
            now,
        )
        .await?;
        self.commit(transaction, pending, now).await
    }

    /// Stores a new password hash, bumps `token_version` and revokes every other login session,
    /// all in one transaction; the caller's own session (`keep`) survives.
    pub async fn change_password(&self, user_id: &str, password_hash: &str, keep: &str) -> Result<Revoked, ApiError> {
        retry::on_conflict("password change", || {
            self.try_change_password(user_id, password_hash, keep)
        })
        .await
    }

    async fn try_change_password(&self, user_id: &str, password_hash: &str, keep: &str) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        let mut pending = Pending::default();
        let version = store::users::change_password(&mut *transaction, user_id, password_hash).await?;
        pending.changes.push(Change::version_changed(user_id, version));
        Self::end_all_sessions(
            &mut transaction,
            &mut pending,
            user_id,
            Some(keep),
            EndReason::PasswordChanged,
            Some(keep),
            now,
        )
        .await?;
        self.commit(transaction, pending, now).await
    }

    /// Revokes every login session of the user (tokens denylisted, cookie state deleted), then
    /// deletes the user and, by cascade, everything that belonged to them.
    pub async fn delete_user(&self, user_id: &str, by_session_id: Option<&str>) -> Result<Revoked, ApiError> {
        retry::on_conflict("account deletion", || self.try_delete_user(user_id, by_session_id)).await
    }

    async fn try_delete_user(&self, user_id: &str, by_session_id: Option<&str>) -> Result<Revoked, ApiError> {
        let now = now_millis();
        let mut transaction = self.db.begin().await?;
        let mut pending = Pending::default();
        Self::end_all_sessions(
            &mut transaction,
            &mut pending,
            user_id,
            None,
            EndReason::AccountDeleted,
            by_session_id,
            now,
        )
        .await?;
        store::users::delete(&mut *transaction, user_id).await?;
        pending.changes.push(Change::user_deleted(user_id));
        self.commit(transaction, pending, now).await
    }

    async fn end_all_sessions(
        transaction: &mut store::Transaction<'_>,
        pending: &mut Pending,
        user_id: &str,
        except: Option<&str>,
        reason: EndReason,
        by_session_id: Option<&str>,
        now: i64,
    ) -> Result<(), ApiError> {
        let sessions =
            store::login_sessions::revoke_all_for_user(&mut **transaction, user_id, except, reason, by_session_id, now)
                .await?;
        for session_id in &sessions {
            Self::end_session(transaction, pending, user_id, session_id, reason, now).await?;
        }
        Ok(())
    }

    /// What follows from a login session's row being revoked: its refresh tokens go, its
    /// unexpired access tokens are denylisted, and the log says so.
    async fn end_session(
        transaction: &mut store::Transaction<'_>,
        pending: &mut Pending,
        user_id: &str,
        session_id: &str,
        reason: EndReason,
        now: i64,
    ) -> Result<(), ApiError> {
        store::refresh_tokens::delete_for_session(&mut **transaction, session_id).await?;
        let tokens = store::access_tokens::unexpired_for_session(&mut **transaction, session_id, now).await?;
        pending
            .changes
            .push(Change::session_revoked(user_id, session_id, reason.as_str()));
        for (jti, expires_at) in tokens {
            store::denylist::insert(&mut **transaction, &jti, expires_at, now).await?;
            pending
                .changes
                .push(Change::jti_denylisted(&jti, session_id, expires_at));
            pending.denylisted.push((jti, expires_at));
        }
        pending.sessions.push(session_id.to_owned());
        Ok(())
    }

    /// Appends the log entries (the last lock the transaction takes), commits, then updates the
    /// copies and tells in-process listeners.
    async fn commit(
        &self,
        mut transaction: store::Transaction<'_>,
        pending: Pending,
        now: i64,
    ) -> Result<Revoked, ApiError> {
        let entries = store::revocation_log::append(&mut transaction, pending.changes, now).await?;
        transaction.commit().await?;
        self.after_commit(&pending.sessions, &pending.denylisted).await;
        for entry in entries {
            // No listener is the normal case for an instance without feed clients.
            let _ = self.committed.send(Arc::new(entry));
        }
        Ok(Revoked {
            sessions: pending.sessions,
        })
    }

    /// The database has the revocation; now the copies. A copy that cannot be written is marked
    /// stale so it is rebuilt from the database before it is trusted again.
    async fn after_commit(&self, sessions: &[String], denylisted: &[(String, i64)]) {
        if !sessions.is_empty() || !denylisted.is_empty() {
            tracing::info!(
                sessions = sessions.len(),
                denylisted = denylisted.len(),
                "credentials revoked"
            );
        }
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
