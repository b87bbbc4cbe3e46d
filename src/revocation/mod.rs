//! The one place that answers "is this still valid?" and the one place that changes it.
//!
//! Checks: a user's current `token_version`, whether a `jti` is denylisted, whether a login
//! session is live, a cookie session's state. Changes: revocations (one login session, all of a
//! user's, a single `jti`), password changes and resets through an emailed link, "this wasn't me"
//! from a new-sign-in email, account deletion, cookie-state writes, and activity
//! that extends a session. Every change is committed to the database first, with a numbered entry
//! in the revocation log in the same transaction, before the caller is answered; then this
//! instance's cache applies it and the other instances hear of it (`sync`).
//!
//! Checks answer from the in-process cache (`cache`) while this instance is current, and from the
//! database otherwise, or always when `REVOCATION_CACHE=off`.

mod cache;
mod denylist;
mod jti_set;
mod retry;
mod rotation;
pub mod session_store;
mod signing_keys;
mod sync;
pub mod web_state;

pub use cache::{CacheSizes, KnownVersion, SessionView};
pub use denylist::DenylistCopy;
pub use rotation::{MintedAccess, NewRefresh, Rotation};
pub use sync::{FeedStatus, RedisFeed, SyncSettings};

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::domain::now_millis;
use crate::error::ApiError;
use crate::store::login_sessions::EndReason;
use crate::store::revocation_log::{Change, Entry};
use crate::store::{self, Db};
use session_store::WebSessionStore;

/// How the revocation layer is set up; from `Settings` in `startup`.
pub struct RevocationSettings {
    /// `REVOCATION_CACHE`: answer checks from memory (on) or look up every time (off).
    pub cache: bool,
    pub capacity: u64,
    /// No cached answer lives longer than this without a database read (the access-token lifetime).
    pub time_to_live: Duration,
    /// How long revocation log entries are kept for instances and feed readers to catch up.
    pub log_retention: Duration,
    /// Activity is written at most this often per session.
    pub activity_interval: Duration,
    /// How long past its `exp` a token is still accepted (`JWT_LEEWAY`, and `exp`'s rounding to
    /// whole seconds): a denylist entry stays in force that much longer.
    pub expiry_tolerance: Duration,
    pub sync: SyncSettings,
}

#[derive(Clone)]
pub struct Revocation {
    inner: Arc<Inner>,
    /// Whether checks may answer from the cache (`REVOCATION_CACHE`; off for `uncached`).
    use_cache: bool,
}

struct Inner {
    db: Db,
    denylist: DenylistCopy,
    web_sessions: WebSessionStore,
    cache: Arc<cache::Cache>,
    sync: Arc<sync::Sync>,
    log_retention: Duration,
    activity_interval: Duration,
    expiry_tolerance: i64,
    /// Activity seen since the last flush: login session → (last seen, new idle limit).
    activity: DashMap<String, (i64, Option<i64>)>,
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

/// Which lookup answered a check, for `/metrics` and `/compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
    /// The cache is off, or this instance is not current: the store answered.
    Store,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Store => "store",
        }
    }
}

/// `revocable_revocation_cache_lookups_total{cache, result}`. Each worker keeps the handles it has
/// used (a few static label pairs, found by address), so counting a lookup builds no labels.
fn count(cache: &'static str, lookup: Lookup) {
    LOOKUP_COUNTERS.with_borrow_mut(|counters| {
        let same = |(held, result): &(&'static str, Lookup)| std::ptr::eq(*held, cache) && *result == lookup;
        match counters.iter().find(|(labels, _)| same(labels)) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!(
                    "revocable_revocation_cache_lookups_total",
                    "cache" => cache,
                    "result" => lookup.as_str()
                );
                counter.increment(1);
                counters.push(((cache, lookup), counter));
            }
        }
    });
}

thread_local! {
    static LOOKUP_COUNTERS: std::cell::RefCell<Vec<((&'static str, Lookup), metrics::Counter)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Revocation {
    pub fn new(db: Db, denylist: DenylistCopy, web_sessions: WebSessionStore, settings: RevocationSettings) -> Self {
        let cache = Arc::new(cache::Cache::new(cache::Limits {
            capacity: settings.capacity,
            time_to_live: settings.time_to_live,
        }));
        let sync = Arc::new(sync::Sync::new(
            db.clone(),
            settings.sync,
            cache.clone(),
            denylist.clone(),
        ));
        Self {
            inner: Arc::new(Inner {
                db,
                denylist,
                web_sessions,
                cache,
                sync,
                log_retention: settings.log_retention,
                activity_interval: settings.activity_interval,
                expiry_tolerance: settings.expiry_tolerance.as_millis() as i64,
                activity: DashMap::new(),
            }),
            use_cache: settings.cache,
        }
    }

    /// Loads the cache and starts the listeners, the poll and the activity writer. Until the
    /// first load succeeds the instance is not current and checks ask the database.
    pub async fn start(&self) {
        if let Err(error) = self.inner.sync.load().await {
            tracing::warn!(error = %error, "revocation cache not loaded at start; checks use the database until it is");
        }
        if let Err(error) = self.inner.denylist.rebuild(&self.inner.db).await {
            tracing::warn!(error = %error, "denylist copy in Redis not rebuilt at start; it will be on first use");
        }
        self.inner.sync.spawn();
        let this = self.clone();
        tokio::spawn(async move { this.write_activity_forever().await });
    }

    pub fn denylist(&self) -> &DenylistCopy {
        &self.inner.denylist
    }

    pub fn web_sessions(&self) -> &WebSessionStore {
        &self.inner.web_sessions
    }

    /// Entries of the revocation log as this instance commits or learns of them, in `seq` order.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Entry>> {
        self.inner.sync.subscribe()
    }

    /// Closes the revocation log's own connections, so this instance stops vouching for its
    /// memory within `REVOCATION_MAX_STALENESS` (at shutdown, and for tests).
    pub async fn close(&self) {
        self.inner.sync.close().await;
    }

    /// Whether memory may answer now, renewing a lapsed lease first as a check would.
    pub async fn renew_lease(&self) -> bool {
        self.inner.sync.renew().await == sync::Renewal::Current
    }

    pub fn feed_status(&self) -> FeedStatus {
        self.inner.sync.status()
    }

    /// The same layer with every check going to the stores, as `REVOCATION_CACHE=off` does:
    /// for `/compare`, which measures both side by side.
    pub fn uncached(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            use_cache: false,
        }
    }

    pub fn cache_enabled(&self) -> bool {
        self.use_cache
    }

    pub fn cache_sizes(&self) -> CacheSizes {
        self.inner.cache.sizes()
    }

    /// A check's read of the stores, bounded by `REVOCATION_MAX_STALENESS`: a database that does
    /// not answer in time is a 503, never a wait and never a guess.
    async fn read_store<T, E: Into<ApiError>>(
        &self,
        read: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.inner.sync.max_staleness(), read).await {
            Ok(answer) => answer.map_err(Into::into),
            Err(_) => Err(ApiError::Unavailable("the database")),
        }
    }

    /// The cache, when it may answer; a lapsed lease is renewed first (one read for all the
    /// checks waiting on it). `None`: ask the stores. A database that does not answer the
    /// renewal in time is a 503.
    async fn trusted(&self) -> Result<Option<&cache::Cache>, ApiError> {
        if !self.use_cache {
            return Ok(None);
        }
        if self.inner.sync.is_current() {
            return Ok(Some(&*self.inner.cache));
        }
        // Boxed: the renewal's future is large, and a check that does not need it should not
        // carry (and set up) its state on every request.
        match Box::pin(self.inner.sync.renew()).await {
            sync::Renewal::Current => Ok(Some(&*self.inner.cache)),
            sync::Renewal::NotCurrent => Ok(None),
            sync::Renewal::Unanswered => Err(ApiError::Unavailable("the database")),
        }
    }

    /// Whether an access token carrying `ver` is still current for `user_id`.
    pub async fn version_is_current(&self, user_id: &str, ver: i64) -> Result<(bool, Lookup), ApiError> {
        if let Some(cache) = self.trusted().await? {
            match cache.version(user_id) {
                // A token newer than what is held means the cache has not heard of a change yet.
                Some(KnownVersion::Current(held)) if held >= ver => {
                    count("version", Lookup::Hit);
                    return Ok((held == ver, Lookup::Hit));
                }
                Some(KnownVersion::Deleted) => {
                    count("version", Lookup::Hit);
                    return Ok((false, Lookup::Hit));
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
            return Ok((known == KnownVersion::Current(ver), Lookup::Miss));
        }
        count("version", Lookup::Store);
        let current = self
            .read_store(store::users::token_version(&self.inner.db, user_id))
            .await?;
        Ok((current == Some(ver), Lookup::Store))
    }

    pub async fn is_denylisted(&self, jti: &str) -> Result<(bool, Lookup), ApiError> {
        if let Some(cache) = self.trusted().await?
            && let Some(answer) = cache.is_denylisted(jti, now_millis())
        {
            count("denylist", Lookup::Hit);
            return Ok((answer, Lookup::Hit));
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
                self.read_store(store::denylist::contains(&self.inner.db, jti, now_millis()))
                    .await
            }
        })
        .await?;
        Ok((denied, Lookup::Store))
    }

    /// The login session as the checks see it; `None` when it does not exist. A cached answer
    /// that looks timed out is read again: another instance may have seen activity since.
    pub async fn session(&self, session_id: &str) -> Result<(Option<SessionView>, Lookup), ApiError> {
        let now = now_millis();
        if let Some(cache) = self.trusted().await? {
            if let Some(view) = cache.session(session_id)
                && (view.revoked || view.is_live(now))
            {
                count("session", Lookup::Hit);
                return Ok((Some(view), Lookup::Hit));
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
            return Ok((view, Lookup::Miss));
        }
        count("session", Lookup::Store);
        let found = self
            .read_store(store::login_sessions::find(&self.inner.db, session_id))
            .await?;
        Ok((found.as_ref().map(SessionView::from), Lookup::Store))
    }

    /// Records that a login session was used: in memory at once, in the database at most once
    /// per `activity_interval`, by the background writer (never on the request's path). A cookie
    /// session's idle limit moves to `idle_expires_at`.
    pub fn record_activity(&self, session_id: &str, view: &SessionView, now: i64, idle_expires_at: Option<i64>) {
        if now - view.last_seen_at < self.inner.activity_interval.as_millis() as i64 {
            return;
        }
        self.inner.cache.record_activity(session_id, now, idle_expires_at);
        self.inner
            .activity
            .insert(session_id.to_owned(), (now, idle_expires_at));
    }

    async fn write_activity_forever(&self) {
        let period = self
            .inner
            .activity_interval
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            if let Err(error) = self.write_activity().await {
                tracing::warn!(error = %error, "could not record session activity; will retry");
            }
        }
    }

    /// Writes the activity seen since the last call (also called at shutdown and by tests).
    pub async fn write_activity(&self) -> Result<(), ApiError> {
        let pending: Vec<(String, (i64, Option<i64>))> = {
            let keys: Vec<String> = self.inner.activity.iter().map(|entry| entry.key().clone()).collect();
            keys.into_iter()
                .filter_map(|key| self.inner.activity.remove(&key))
                .collect()
        };
        for (index, (session_id, (seen, idle))) in pending.iter().enumerate() {
            let written = match idle {
                Some(idle) => store::login_sessions::touch(&self.inner.db, session_id, *seen, *idle).await,
                None => store::login_sessions::record_activity(&self.inner.db, session_id, *seen).await,
            };
            if let Err(error) = written {
                // Put back what was not written, unless newer activity arrived meanwhile.
                for (session_id, value) in &pending[index..] {
                    self.inner.activity.entry(session_id.clone()).or_insert(*value);
                }
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Puts one access token of `session_id` on the denylist until it expires.
    pub async fn denylist_token(
        &self,
        jti: &str,
        session_id: &str,
        user_id: &str,
        expires_at_millis: i64,
    ) -> Result<(), ApiError> {
        retry::on_conflict("denylisting", || {
            self.try_denylist_token(jti, session_id, user_id, expires_at_millis)
        })
        .await
    }

    async fn try_denylist_token(
        &self,
        jti: &str,
        session_id: &str,
        user_id: &str,
        expires_at_millis: i64,
    ) -> Result<(), ApiError> {
        let now = now_millis();
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
    ) -> Result<Option<Revoked>, ApiError> {
        retry::on_conflict("password reset", || {
            self.try_reset_password(token_hash, user_id, password_hash)
        })
        .await
    }

    async fn try_reset_password(
        &self,
        token_hash: &str,
        user_id: &str,
        password_hash: &str,
    ) -> Result<Option<Revoked>, ApiError> {
        use store::email_tokens::Purpose;
        let now = now_millis();
        let mut transaction = self.inner.db.begin().await?;
        let spent_by = store::email_tokens::spend(&mut *transaction, token_hash, Purpose::PasswordReset, now).await?;
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
    }

    /// "This wasn't me" from a new-sign-in email, in one transaction: the link is spent (`None`
    /// if it was already), `token_version` bumped, every login session ended (`ReportedNotYou`),
    /// and password log-ins refused until the password is reset through email.
    pub async fn lock_out_after_report(&self, token_hash: &str) -> Result<Option<(String, Revoked)>, ApiError> {
        retry::on_conflict("sign-in report", || self.try_lock_out_after_report(token_hash)).await
    }

    async fn try_lock_out_after_report(&self, token_hash: &str) -> Result<Option<(String, Revoked)>, ApiError> {
        use store::email_tokens::Purpose;
        let now = now_millis();
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
    }

    /// An operator's lock: in one transaction, log-ins are refused from now on (`users.locked_at`),
    /// `token_version` is bumped and every login session ends (reason `signed_out_by_admin`).
    /// `Ok(None)` when there is no such user.
    pub async fn lock_account(&self, user_id: &str) -> Result<Option<Revoked>, ApiError> {
        retry::on_conflict("account lock", || self.try_lock_account(user_id)).await
    }

    async fn try_lock_account(&self, user_id: &str) -> Result<Option<Revoked>, ApiError> {
        let now = now_millis();
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
    }

    /// Revokes every login session of the user (tokens denylisted, cookie state deleted), then
    /// deletes the user and, by cascade, everything that belonged to them.
    pub async fn delete_user(&self, user_id: &str, by_session_id: Option<&str>) -> Result<Revoked, ApiError> {
        retry::on_conflict("account deletion", || self.try_delete_user(user_id, by_session_id)).await
    }

    async fn try_delete_user(&self, user_id: &str, by_session_id: Option<&str>) -> Result<Revoked, ApiError> {
        let now = now_millis();
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
    ) -> Result<(), ApiError> {
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
    ) -> Result<(), ApiError> {
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

    /// Appends the log entries (the last lock the transaction takes), notifies PostgreSQL
    /// listeners, commits, then brings this instance and the copies up to date.
    async fn commit(
        &self,
        mut transaction: store::Transaction<'_>,
        pending: Pending,
        now: i64,
    ) -> Result<Revoked, ApiError> {
        let entries = store::revocation_log::append(&mut transaction, pending.changes, now).await?;
        if let Some(last) = entries.last() {
            self.inner.sync.notify_in(&mut transaction, last.seq).await?;
        }
        transaction.commit().await?;
        self.after_commit(&entries, &pending.sessions, &pending.denylisted)
            .await;
        Ok(Revoked {
            sessions: pending.sessions,
        })
    }

    /// The database has the change; now this instance's cache, the other instances, and the
    /// copies. A copy that cannot be written is only a copy: the database still answers.
    async fn after_commit(&self, entries: &[Entry], sessions: &[String], denylisted: &[(String, i64)]) {
        self.inner.sync.committed(entries).await;
        if !sessions.is_empty() || !denylisted.is_empty() {
            tracing::info!(
                sessions = sessions.len(),
                denylisted = denylisted.len(),
                "credentials revoked"
            );
        }
        if let Err(error) = self.inner.denylist.insert(denylisted).await {
            tracing::warn!(error = %error, "could not copy denylist entries to Redis; the database answers meanwhile");
        }
        for session_id in sessions {
            if let Err(error) = self.inner.web_sessions.delete_for_login_session(session_id).await {
                // The login session row is revoked, so the orphaned state is refused on use.
                tracing::warn!(error = %error, "could not delete the server-side state of a revoked session");
            }
        }
    }

    /// Says in the log that cookie state (named by the hash of its key) was written or deleted,
    /// so other instances drop their cached copy.
    pub async fn web_state_changed(&self, key_hash: &str) -> Result<(), ApiError> {
        let now = now_millis();
        let transaction = self.inner.db.begin().await?;
        let pending = Pending {
            changes: vec![Change::web_state_changed(key_hash)],
            ..Pending::default()
        };
        self.commit(transaction, pending, now).await?;
        Ok(())
    }

    /// Deletes what has expired everywhere: denylist entries (database, cache and copy),
    /// access-token records, refresh tokens, cookie state, login sessions ended more than 30 days
    /// ago, and revocation log entries past their retention.
    pub async fn purge_expired(&self) -> Result<(), ApiError> {
        let db = &self.inner.db;
        let now = now_millis();
        let denylist = store::denylist::purge_expired(db, now).await?;
        self.inner.cache.purge_expired(now);
        if let Err(error) = self.inner.denylist.purge_expired(now).await {
            tracing::debug!(error = %error, "could not purge the denylist copy in Redis");
        }
        let access = store::access_tokens::purge_expired(db, now - self.inner.expiry_tolerance).await?;
        let refresh = store::refresh_tokens::purge_expired(db, now).await?;
        let web = store::web_sessions::purge_expired(db, now).await?;
        let sessions = store::login_sessions::purge_ended_before(db, now - 30 * 24 * 3600 * 1000).await?;
        let log = store::revocation_log::purge_before(db, now - self.inner.log_retention.as_millis() as i64).await?;
        tracing::debug!(denylist, access, refresh, web, sessions, log, "purged expired state");
        Ok(())
    }
}
