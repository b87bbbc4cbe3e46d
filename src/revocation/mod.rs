//! The one place that answers "is this still valid?" and the one place that changes it.
//!
//! Checks: a user's current `token_version`, whether a `jti` is denylisted, whether a login
//! session is live, a cookie session's state. Changes: revocations (one login session, all of a
//! user's, a single `jti`), password changes and resets through an emailed link, "this wasn't me"
//! from a new-sign-in email, account deletion, cookie-state writes, second-factor changes (which
//! revoke nothing but are logged for Shared Signals streams), and activity that extends a session. Every change is committed to the database first, with a numbered entry
//! in the revocation log in the same transaction, before the caller is answered; then this
//! instance's cache applies it and the other instances hear of it (`sync`).
//!
//! Checks answer from the in-process cache (`cache`) while this instance is current, and from the
//! database otherwise, or always when `REVOCATION_CACHE=off`.

mod activity;
mod bounded;
mod cache;
mod check;
pub mod cookie_state;
mod credential_changes;
mod denylist;
pub mod error;
mod jti_set;
mod retry;
mod revoke;
mod rotation;
mod signing_keys;
mod sync;

pub use cache::CacheSizes;
pub use check::{KnownVersion, SessionView};
pub use credential_changes::SecondFactorChange;
pub use denylist::DenylistCopy;
pub use error::Error;
pub use rotation::{LiveRefresh, MintedAccess, NewRefresh, Rotation};
pub use sync::{FeedStatus, RedisFeed, SyncSettings};

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::domain::Clock;
use crate::store::revocation_log::{Change, Entry};
use crate::store::{self, Db};
use cookie_state::WebSessionStore;

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
    /// The app's clock, which every expiry here is measured against.
    pub clock: Clock,
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
    sync: Arc<sync::LogFollower>,
    log_retention: Duration,
    activity_interval: Duration,
    expiry_tolerance: i64,
    /// Activity seen since the last flush: login session → (last seen, new idle limit).
    activity: DashMap<String, (i64, Option<i64>)>,
    clock: Clock,
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
            clock: settings.clock.clone(),
        }));
        let sync = Arc::new(sync::LogFollower::new(
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
                clock: settings.clock,
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

    /// Entries of the revocation log as this instance commits or learns of them, in `seq` order.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Entry>> {
        self.inner.sync.subscribe()
    }

    /// Closes the revocation log's own connections, so this instance stops vouching for its
    /// memory within `REVOCATION_MAX_STALENESS` (at shutdown, and for tests).
    pub async fn close(&self) {
        self.inner.sync.close().await;
    }

    /// Applies the log entries committed since the last one applied, as the listeners and the
    /// poll do when they hear of more; a test need not wait for them.
    pub async fn catch_up(&self) -> Result<(), Error> {
        Ok(self.inner.sync.catch_up().await?)
    }

    /// Whether memory may answer now, renewing a lapsed lease first as a check would.
    pub async fn renew_lease(&self) -> bool {
        self.inner.sync.renew().await == sync::Renewal::Current
    }

    /// `REVOCATION_MAX_STALENESS`: the longest a check waits on the database once memory cannot
    /// answer, and how recent a confirmation from the database must be to count it as up.
    pub fn max_staleness(&self) -> Duration {
        self.inner.sync.max_staleness()
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

    /// The app's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn now_millis(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    /// A check's read of the stores, bounded by `REVOCATION_MAX_STALENESS`: a database that does
    /// not answer in time is a 503, never a wait and never a guess.
    async fn read_store<T, E: Into<Error>>(
        &self,
        read: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.inner.sync.max_staleness(), read).await {
            Ok(answer) => answer.map_err(Into::into),
            Err(_) => Err(Error::database_unavailable()),
        }
    }

    /// The cache, when it may answer; a lapsed lease is renewed first (one read for all the
    /// checks waiting on it). `None`: ask the stores. A database that does not answer the
    /// renewal in time is a 503.
    async fn trusted(&self) -> Result<Option<&cache::Cache>, Error> {
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
            sync::Renewal::Unanswered => Err(Error::database_unavailable()),
        }
    }

    /// Appends the log entries (the last lock the transaction takes), notifies PostgreSQL
    /// listeners, commits, then brings this instance and the copies up to date.
    async fn commit(
        &self,
        mut transaction: store::Transaction<'_>,
        pending: Pending,
        now: i64,
    ) -> Result<Revoked, Error> {
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
    pub async fn web_state_changed(&self, key_hash: &str) -> Result<(), Error> {
        let now = self.now_millis();
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
    pub async fn purge_expired(&self) -> Result<(), Error> {
        let db = &self.inner.db;
        let now = self.now_millis();
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
