//! The changes of validity: revocations of one login session, of all of a user's, of one `jti`;
//! password changes and resets, "this wasn't me", an operator's lock, account deletion. Each is
//! one transaction, run again when it loses a lock conflict (`retry`), committed with its
//! revocation log entries (`Revocation::commit`).

use super::{Error, Pending, Revocation, Revoked, retry};
use crate::store::login_sessions::EndReason;
use crate::store::revocation_log::Change;
use crate::store::{self};

impl Revocation {
    /// Puts one access token of `session_id` on the denylist until it expires.
    pub async fn denylist_token(
        &self,
        jti: &str,
        session_id: &str,
        user_id: &str,
        expires_at_millis: i64,
    ) -> Result<(), Error> {
        retry::on_conflict("denylisting", || async move {
            let now = self.now_millis();
            let expires_at_millis = expires_at_millis + self.inner.expiry_tolerance;
            let mut transaction = self.inner.db.begin().await?;
            store::denylist::insert(&mut *transaction, jti, expires_at_millis, now).await?;
            let pending = Pending {
                changes: vec![Change::jti_denylisted(
                    jti,
                    session_id,
                    user_id,
                    expires_at_millis,
                    "token_revoked",
                )],
                sessions: Vec::new(),
                denylisted: vec![(jti.to_owned(), expires_at_millis)],
            };
            self.commit(transaction, pending, now).await?;
            Ok(())
        })
        .await
    }

    /// Revokes one login session: the row, its refresh tokens, its unexpired access tokens (onto
    /// the denylist), and its server-side cookie state. Revokes nothing if it already was revoked.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: EndReason,
        by_session_id: Option<&str>,
    ) -> Result<Revoked, Error> {
        retry::on_conflict("session revocation", || async move {
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let Some(user_id) =
                store::login_sessions::revoke(&mut *transaction, session_id, reason, by_session_id, now).await?
            else {
                transaction.rollback().await?;
                return Ok(Revoked::default());
            };
            let mut pending = Pending::default();
            self.end_session(&mut transaction, &mut pending, &user_id, session_id, reason, now)
                .await?;
            self.commit(transaction, pending, now).await
        })
        .await
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
    ) -> Result<Revoked, Error> {
        retry::on_conflict("revocation of all sessions", || async move {
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let mut pending = Pending::default();
            if bump_token_version {
                let version = store::users::bump_token_version(&mut *transaction, user_id).await?;
                pending
                    .changes
                    .push(Change::version_changed(user_id, version, reason.as_str()));
            }
            self.end_all_sessions(
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
        })
        .await
    }

    /// Stores a new password hash, bumps `token_version` and revokes every other login session,
    /// all in one transaction; the caller's own session (`keep`) survives.
    pub async fn change_password(&self, user_id: &str, password_hash: &str, keep: &str) -> Result<Revoked, Error> {
        retry::on_conflict("password change", || async move {
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let mut pending = Pending::default();
            let version = store::users::change_password(&mut *transaction, user_id, password_hash).await?;
            pending.changes.push(Change::version_changed(
                user_id,
                version,
                EndReason::PasswordChanged.as_str(),
            ));
            self.end_all_sessions(
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
        })
        .await
    }

    /// A password reset through an emailed link, in one transaction: the link is spent (if another
    /// request spent it first, nothing happens and `None` is returned), the new hash stored,
    /// `token_version` bumped, the reset-required block lifted, every other reset link of the
    /// account spent, and every login session ended (`PasswordReset`).
    pub async fn reset_password(
        &self,
        token_hash: &str,
        user_id: &str,
        password_hash: &str,
    ) -> Result<Option<Revoked>, Error> {
        retry::on_conflict("password reset", || async move {
            use store::email_tokens::Purpose;
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let spent_by =
                store::email_tokens::spend(&mut *transaction, token_hash, Purpose::PasswordReset, now).await?;
            if spent_by.as_deref() != Some(user_id) {
                transaction.rollback().await?;
                return Ok(None);
            }
            let mut pending = Pending::default();
            let version = store::users::reset_password(&mut *transaction, user_id, password_hash, now).await?;
            pending.changes.push(Change::version_changed(
                user_id,
                version,
                EndReason::PasswordReset.as_str(),
            ));
            store::email_tokens::spend_all_for_user(&mut *transaction, user_id, Purpose::PasswordReset, now).await?;
            self.end_all_sessions(
                &mut transaction,
                &mut pending,
                user_id,
                None,
                EndReason::PasswordReset,
                None,
                now,
            )
            .await?;
            self.commit(transaction, pending, now).await.map(Some)
        })
        .await
    }

    /// "This wasn't me" from a new-sign-in email, in one transaction: the link is spent (`None`
    /// if it was already), `token_version` bumped, every login session ended (`ReportedNotYou`),
    /// and password log-ins refused until the password is reset through email.
    pub async fn lock_out_after_report(&self, token_hash: &str) -> Result<Option<(String, Revoked)>, Error> {
        retry::on_conflict("sign-in report", || async move {
            use store::email_tokens::Purpose;
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let Some(user_id) = store::email_tokens::spend(&mut *transaction, token_hash, Purpose::NotMe, now).await?
            else {
                transaction.rollback().await?;
                return Ok(None);
            };
            let mut pending = Pending::default();
            store::users::require_password_reset(&mut *transaction, &user_id, now).await?;
            let version = store::users::bump_token_version(&mut *transaction, &user_id).await?;
            pending.changes.push(Change::version_changed(
                &user_id,
                version,
                EndReason::ReportedNotYou.as_str(),
            ));
            self.end_all_sessions(
                &mut transaction,
                &mut pending,
                &user_id,
                None,
                EndReason::ReportedNotYou,
                None,
                now,
            )
            .await?;
            let revoked = self.commit(transaction, pending, now).await?;
            Ok(Some((user_id, revoked)))
        })
        .await
    }

    /// An operator's lock: in one transaction, log-ins are refused from now on (`users.locked_at`),
    /// `token_version` is bumped and every login session ends (reason `signed_out_by_admin`).
    /// `Ok(None)` when there is no such user.
    pub async fn lock_account(&self, user_id: &str) -> Result<Option<Revoked>, Error> {
        retry::on_conflict("account lock", || async move {
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            if !store::users::set_locked(&mut *transaction, user_id, Some(now)).await? {
                transaction.rollback().await?;
                return Ok(None);
            }
            let mut pending = Pending::default();
            let version = store::users::bump_token_version(&mut *transaction, user_id).await?;
            pending.changes.push(Change::version_changed(
                user_id,
                version,
                EndReason::SignedOutByAdmin.as_str(),
            ));
            self.end_all_sessions(
                &mut transaction,
                &mut pending,
                user_id,
                None,
                EndReason::SignedOutByAdmin,
                None,
                now,
            )
            .await?;
            self.commit(transaction, pending, now).await.map(Some)
        })
        .await
    }

    /// Revokes every login session of the user (tokens denylisted, cookie state deleted), then
    /// deletes the user and, by cascade, everything that belonged to them.
    pub async fn delete_user(&self, user_id: &str, by_session_id: Option<&str>) -> Result<Revoked, Error> {
        retry::on_conflict("account deletion", || async move {
            let now = self.now_millis();
            let mut transaction = self.inner.db.begin().await?;
            let mut pending = Pending::default();
            self.end_all_sessions(
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
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn end_all_sessions(
        &self,
        transaction: &mut store::Transaction<'_>,
        pending: &mut Pending,
        user_id: &str,
        except: Option<&str>,
        reason: EndReason,
        by_session_id: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        let sessions =
            store::login_sessions::revoke_all_for_user(&mut **transaction, user_id, except, reason, by_session_id, now)
                .await?;
        for session_id in &sessions {
            self.end_session(transaction, pending, user_id, session_id, reason, now)
                .await?;
        }
        Ok(())
    }

    /// What follows from a login session's row being revoked: its refresh tokens go, its
    /// unexpired access tokens are denylisted, and the log says so.
    async fn end_session(
        &self,
        transaction: &mut store::Transaction<'_>,
        pending: &mut Pending,
        user_id: &str,
        session_id: &str,
        reason: EndReason,
        now: i64,
    ) -> Result<(), Error> {
        store::refresh_tokens::delete_for_session(&mut **transaction, session_id).await?;
        // A token past its `exp` by less than the tolerance is still accepted: it goes too.
        let still_accepted_after = now - self.inner.expiry_tolerance;
        let tokens =
            store::access_tokens::unexpired_for_session(&mut **transaction, session_id, still_accepted_after).await?;
        pending
            .changes
            .push(Change::session_revoked(user_id, session_id, reason.as_str()));
        for (jti, expires_at) in tokens {
            let expires_at = expires_at + self.inner.expiry_tolerance;
            store::denylist::insert(&mut **transaction, &jti, expires_at, now).await?;
            pending.changes.push(Change::jti_denylisted(
                &jti,
                session_id,
                user_id,
                expires_at,
                "session_ended",
            ));
            pending.denylisted.push((jti, expires_at));
        }
        pending.sessions.push(session_id.to_owned());
        Ok(())
    }
}
