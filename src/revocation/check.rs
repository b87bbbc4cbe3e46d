//! The checks: is this `token_version` current, this `jti` denylisted, this login session live.
//! Memory answers while this instance is current (`LogFollower`); a miss reads the store and
//! fills the cache only if nothing was revoked meanwhile; otherwise the store answers.

use compact_str::CompactString;

use super::{Error, Lookup, Revocation, count};
use crate::store;
use crate::store::login_sessions::{Kind, LoginSession};

/// A user's `token_version` as far as this instance knows, or that the user is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KnownVersion {
    Current(i64),
    Deleted,
}

/// What the checks need of a login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub user_id: CompactString,
    pub kind: Kind,
    pub expires_at: i64,
    pub idle_expires_at: i64,
    pub last_seen_at: i64,
    pub revoked: bool,
}

impl SessionView {
    pub fn is_live(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at && now < self.idle_expires_at
    }

    /// Merges what the log says with what is held: revoked wins, times only move forward.
    pub(super) fn merge(self, newer: SessionView) -> SessionView {
        SessionView {
            revoked: self.revoked || newer.revoked,
            idle_expires_at: self.idle_expires_at.max(newer.idle_expires_at),
            last_seen_at: self.last_seen_at.max(newer.last_seen_at),
            ..newer
        }
    }
}

impl From<&LoginSession> for SessionView {
    fn from(session: &LoginSession) -> Self {
        Self {
            user_id: CompactString::new(&session.user_id),
            kind: session.kind,
            expires_at: session.expires_at,
            idle_expires_at: session.idle_expires_at,
            last_seen_at: session.last_seen_at,
            revoked: session.revoked_at.is_some(),
        }
    }
}

impl Revocation {
    /// Whether an access token carrying `ver` is still current for `user_id`.
    pub async fn version_is_current(&self, user_id: &str, ver: i64) -> Result<bool, Error> {
        if let Some(cache) = self.trusted().await? {
            match cache.version(user_id, self.now_millis()) {
                // A token newer than what is held means the cache has not heard of a change yet.
                Some(KnownVersion::Current(held)) if held >= ver => {
                    count("version", Lookup::Hit);
                    return Ok(held == ver);
                }
                Some(KnownVersion::Deleted) => {
                    count("version", Lookup::Hit);
                    return Ok(false);
                }
                _ => {}
            }
            let ticket = cache.ticket();
            let known = self
                .read_store(store::users::token_version(&self.inner.db, user_id))
                .await?
                .map_or(KnownVersion::Deleted, KnownVersion::Current);
            cache.fill_version(ticket, user_id, known);
            count("version", Lookup::Miss);
            return Ok(known == KnownVersion::Current(ver));
        }
        count("version", Lookup::Store);
        let current = self
            .read_store(store::users::token_version(&self.inner.db, user_id))
            .await?;
        Ok(current == Some(ver))
    }

    pub async fn is_denylisted(&self, jti: &str) -> Result<bool, Error> {
        if let Some(cache) = self.trusted().await?
            && let Some(answer) = cache.is_denylisted(jti, self.now_millis())
        {
            count("denylist", Lookup::Hit);
            return Ok(answer);
        }
        count("denylist", Lookup::Store);
        // The Redis copy is believed as far as this instance has read the log, so only within
        // the lease; past it the database answers. Boxed, as the renewal is: rare, and large.
        let denied = Box::pin(async {
            if self.inner.sync.is_current() {
                let applied = self.inner.sync.status().applied_seq;
                self.read_store(self.inner.denylist.contains(&self.inner.db, jti, applied))
                    .await
            } else {
                self.read_store(store::denylist::contains(&self.inner.db, jti, self.now_millis()))
                    .await
            }
        })
        .await?;
        Ok(denied)
    }

    /// The login session as the checks see it at `now` (on the app's clock, which the caller
    /// read to judge the answer); `None` when it does not exist. A cached answer that looks timed
    /// out is read again: another instance may have seen activity since.
    pub async fn session(&self, session_id: &str, now: i64) -> Result<Option<SessionView>, Error> {
        if let Some(cache) = self.trusted().await? {
            if let Some(view) = cache.session(session_id, now)
                && (view.revoked || view.is_live(now))
            {
                count("session", Lookup::Hit);
                return Ok(Some(view));
            }
            let ticket = cache.ticket();
            let found = self
                .read_store(store::login_sessions::find(&self.inner.db, session_id))
                .await?;
            let view = found.as_ref().map(SessionView::from);
            if let Some(view) = &view {
                cache.fill_session(ticket, session_id, view.clone());
            }
            count("session", Lookup::Miss);
            return Ok(view);
        }
        count("session", Lookup::Store);
        let found = self
            .read_store(store::login_sessions::find(&self.inner.db, session_id))
            .await?;
        Ok(found.as_ref().map(SessionView::from))
    }
}
