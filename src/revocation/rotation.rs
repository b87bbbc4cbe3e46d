//! The writes of the refresh-token path: a login session's first pair, a rotation, and the pair
//! that replaces a session's family after a password change.
//!
//! They decide which refresh and access tokens a login session has, so they live beside the
//! revocations that end them, and take their locks in the same order: the login session row
//! first (a conditional `UPDATE … WHERE revoked_at IS NULL`, so a session revoked meanwhile is
//! seen as ended), then refresh tokens, access tokens and the denylist. A rotation never takes
//! the revocation counter. A rotation and a revocation of the same session therefore queue on the
//! session row instead of deadlocking, and whichever comes second sees what the first did: a
//! revocation after a rotation revokes the tokens it minted, a rotation after a revocation finds
//! the session ended.

use crate::store::refresh_tokens::StoredRefreshToken;
use crate::store::revocation_log::Change;
use crate::store::users::User;
use crate::store::{self};

use super::{Error, Pending, Revocation, retry};

/// An access token just signed for a login session, and what must be recorded of it.
pub struct MintedAccess<T> {
    pub token: T,
    pub jti: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// A refresh token to store: its hash and when it expires at the latest.
#[derive(Clone, Copy)]
pub struct NewRefresh<'a> {
    pub token_hash: &'a str,
    /// Unix milliseconds; capped by the login session's absolute limit.
    pub expires_at: i64,
}

/// What became of a presented refresh token.
pub enum Rotation<T> {
    /// Spent; the session's new pair is recorded.
    Rotated {
        session_id: String,
        access: MintedAccess<T>,
        /// When the new refresh token expires.
        refresh_expires_at: i64,
    },
    /// No such refresh token (never issued, or deleted with its ended session).
    Unknown,
    Expired,
    /// Its login session was revoked or timed out.
    SessionEnded,
    /// Spent already, by an earlier refresh or by a concurrent one that won the race.
    Spent {
        session_id: String,
        used_at: i64,
        /// Who spent it: see `store::refresh_tokens::mark_used`.
        used_by: Option<String>,
    },
    AccountGone,
}

/// A refresh token that would rotate now: unspent, unexpired, its login session live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRefresh {
    pub user_id: String,
    pub session_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
}

impl Revocation {
    /// The refresh token (by its hash) when it is still good for a rotation; `None` when it is
    /// unknown, spent, expired, or its login session has ended.
    pub async fn live_refresh_token(&self, token_hash: &str) -> Result<Option<LiveRefresh>, Error> {
        let now = self.now_millis();
        let Some(stored) = self.refresh_token(token_hash).await? else {
            return Ok(None);
        };
        if stored.used_at.is_some() || stored.expires_at <= now {
            return Ok(None);
        }
        Ok(self
            .session(&stored.session_id, now)
            .await?
            .filter(|session| session.is_live(now))
            .map(|session| LiveRefresh {
                user_id: session.user_id.into(),
                session_id: stored.session_id,
                created_at: stored.created_at,
                expires_at: stored.expires_at,
            }))
    }

    /// The stored record of a refresh token (by its hash), for reading only.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<StoredRefreshToken>, Error> {
        Ok(store::refresh_tokens::find(&self.inner.db, token_hash).await?)
    }

    /// Records the first pair of a login session that is being opened, in the transaction that
    /// opens it (nobody else knows its id yet, so nothing can race it).
    pub async fn record_first_pair<T>(
        &self,
        transaction: &mut store::Transaction<'_>,
        session_id: &str,
        refresh: NewRefresh<'_>,
        access: &MintedAccess<T>,
        now: i64,
    ) -> Result<(), Error> {
        store::refresh_tokens::insert(
            &mut **transaction,
            refresh.token_hash,
            session_id,
            now,
            refresh.expires_at,
        )
        .await?;
        store::access_tokens::record(&mut **transaction, &access.jti, session_id, access.expires_at).await?;
        Ok(())
    }

    /// Records one more access token of a login session, so that revoking the session denylists
    /// it too.
    pub async fn record_access_token<T>(&self, session_id: &str, access: &MintedAccess<T>) -> Result<(), Error> {
        store::access_tokens::record(&self.inner.db, &access.jti, session_id, access.expires_at).await?;
        Ok(())
    }

    /// Spends the presented refresh token (by its hash) and records its successor and a new
    /// access token, minted by `mint` for the session's user and id, in one transaction. `client` names
    /// who spends it (kept for reuse detection). Of concurrent presentations exactly one rotates;
    /// the others see it `Spent`.
    pub async fn rotate_refresh_token<T>(
        &self,
        presented_hash: &str,
        replacement: NewRefresh<'_>,
        client: &str,
        now: i64,
        mint: impl Fn(&User, &str) -> anyhow::Result<MintedAccess<T>>,
    ) -> Result<Rotation<T>, Error> {
        let Some(stored) = self.refresh_token(presented_hash).await? else {
            return Ok(Rotation::Unknown);
        };
        if let Some(used_at) = stored.used_at {
            return Ok(Rotation::Spent {
                session_id: stored.session_id,
                used_at,
                used_by: stored.used_by,
            });
        }
        if stored.expires_at <= now {
            return Ok(Rotation::Expired);
        }
        let stored = &stored;
        let mint = &mint;
        retry::on_conflict("refresh rotation", || async move {
            let session_id = &stored.session_id;
            let mut transaction = self.inner.db.begin().await?;
            // First: the session row's lock, and whether the session is still live.
            let Some((user_id, refresh_expires_at)) = store::login_sessions::record_new_refresh(
                &mut *transaction,
                session_id,
                now,
                replacement.expires_at,
                true,
            )
            .await?
            else {
                transaction.rollback().await?;
                return Ok(Rotation::SessionEnded);
            };
            if !store::refresh_tokens::mark_used(&mut *transaction, presented_hash, now, client).await? {
                transaction.rollback().await?;
                // Someone presented it a moment ago and won.
                let spent = self.refresh_token(presented_hash).await?;
                return Ok(match spent {
                    Some(spent) => Rotation::Spent {
                        session_id: spent.session_id,
                        used_at: spent.used_at.unwrap_or(now),
                        used_by: spent.used_by,
                    },
                    None => Rotation::Unknown,
                });
            }
            let Some(user) = store::users::find_by_id(&mut *transaction, &user_id).await? else {
                transaction.rollback().await?;
                return Ok(Rotation::AccountGone);
            };
            store::refresh_tokens::insert(
                &mut *transaction,
                replacement.token_hash,
                session_id,
                now,
                refresh_expires_at,
            )
            .await?;
            let access = mint(&user, session_id)?;
            store::access_tokens::record(&mut *transaction, &access.jti, session_id, access.expires_at).await?;
            transaction.commit().await?;
            Ok(Rotation::Rotated {
                session_id: session_id.clone(),
                access,
                refresh_expires_at,
            })
        })
        .await
    }

    /// Replaces every token of a live login session with a new pair (after a password change):
    /// its refresh tokens are deleted, its unexpired access tokens denylisted, and the new pair,
    /// minted by `mint` for the user as they are now, recorded, in one transaction. `None` when
    /// the session has ended.
    pub async fn replace_pair<T>(
        &self,
        session_id: &str,
        replacement: NewRefresh<'_>,
        now: i64,
        mint: impl Fn(&User, &str) -> anyhow::Result<MintedAccess<T>>,
    ) -> Result<Option<(MintedAccess<T>, i64)>, Error> {
        let mint = &mint;
        retry::on_conflict("pair replacement", || async move {
            let mut transaction = self.inner.db.begin().await?;
            let Some((user_id, refresh_expires_at)) = store::login_sessions::record_new_refresh(
                &mut *transaction,
                session_id,
                now,
                replacement.expires_at,
                false,
            )
            .await?
            else {
                transaction.rollback().await?;
                return Ok(None);
            };
            let Some(user) = store::users::find_by_id(&mut *transaction, &user_id).await? else {
                transaction.rollback().await?;
                return Ok(None);
            };
            store::refresh_tokens::delete_for_session(&mut *transaction, session_id).await?;
            let mut pending = Pending::default();
            let still_accepted_after = now - self.inner.expiry_tolerance;
            for (jti, expires_at) in
                store::access_tokens::unexpired_for_session(&mut *transaction, session_id, still_accepted_after).await?
            {
                let expires_at = expires_at + self.inner.expiry_tolerance;
                store::denylist::insert(&mut *transaction, &jti, expires_at, now).await?;
                pending.changes.push(Change::jti_denylisted(
                    &jti, session_id, &user_id, expires_at, "replaced",
                ));
                pending.denylisted.push((jti, expires_at));
            }
            store::refresh_tokens::insert(
                &mut *transaction,
                replacement.token_hash,
                session_id,
                now,
                refresh_expires_at,
            )
            .await?;
            let access = mint(&user, session_id)?;
            store::access_tokens::record(&mut *transaction, &access.jti, session_id, access.expires_at).await?;
            self.commit(transaction, pending, now).await?;
            Ok(Some((access, refresh_expires_at)))
        })
        .await
    }
}
