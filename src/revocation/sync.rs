//! How every instance learns of every revocation, and knows when it cannot be sure it has.
//!
//! The revocation log (`store::revocation_log`) is numbered gap-free in commit order. Each
//! instance applies it to its cache in order and remembers the last `seq` applied. Three ways
//! tell it that there is more to read, and all three end in the same `catch_up`, which reads
//! "everything after the last applied `seq`" from the database:
//! - **PostgreSQL `LISTEN/NOTIFY`**: the revoking transaction itself sends the notification, so
//!   PostgreSQL delivers it exactly when the revocation commits, and never for one that did not.
//! - **Redis pub/sub** (when `REDIS_URL` is set): published right after the commit.
//! - **A poll** of the log's counter every `REVOCATION_POLL_INTERVAL` (250 ms): the backstop for a
//!   notification lost with its connection or a revoking instance that died between its commit
//!   and its publish. It bounds the worst-case delay.
//!
//! Fail-safe, as a lease: the cache is trusted only while this instance is *current*. It has
//! loaded the denylist, a push connection is up and was caught up after it connected, and, within
//! `REVOCATION_MAX_STALENESS` on the monotonic clock, a read of the database that *started* then
//! found nothing in the log past what this instance had applied. Only such a read renews the
//! lease (a poll, or the catch-up a push sets off); a push alone never does. So a paused process,
//! a cut or slow connection or a wall-clock jump cannot make a cached answer older than the bound:
//! past it, every check goes to the source of truth.

mod feeds;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, broadcast};

use super::cache::Cache;
use super::denylist::DenylistCopy;
use crate::domain::now_millis;
use crate::store::revocation_log::{self, Entry, EntryKind};
use crate::store::{self, Backend, Db};

/// The PostgreSQL channel, and the suffix of the Redis one.
pub const CHANNEL: &str = "revocable_revocations";
/// How the listening connection names itself in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "revocable-revocation-listener";
/// Entries read per query while catching up.
const BATCH: i64 = 500;

pub struct SyncSettings {
    pub backend: Backend,
    pub database_url: String,
    pub redis: Option<RedisFeed>,
    /// Send notifications on commit; off only to measure and test the worst case.
    pub push: bool,
    pub poll_interval: Duration,
    /// `REVOCATION_MAX_STALENESS`: how old the last confirmation against the database may be for
    /// the cache to answer.
    pub max_staleness: Duration,
}

#[derive(Clone)]
pub struct RedisFeed {
    pub url: String,
    pub pool: deadpool_redis::Pool,
    pub channel: String,
}

/// Follows the revocation log for this instance: applies it to the cache in order, and holds the
/// lease that says whether the cache may answer.
pub struct LogFollower {
    /// The revocation log is read through a pool of its own: when the lease has run out and every
    /// check asks the database, the reads that renew the lease must not queue behind them.
    db: Db,
    denylist: DenylistCopy,
    settings: SyncSettings,
    cache: Arc<Cache>,
    applied: AtomicI64,
    /// The highest `seq` this instance committed itself (it may not have applied it in order yet).
    committed_seq: AtomicI64,
    loaded: AtomicBool,
    postgres_subscribed: AtomicBool,
    redis_subscribed: AtomicBool,
    /// The lease: nanoseconds after `epoch` at which the newest confirming read started (0: none).
    confirmed_at: AtomicU64,
    /// The log's head as the database last reported it.
    head_seq: AtomicI64,
    epoch: Instant,
    catching_up: Mutex<()>,
    /// One renewal of a lapsed lease at a time (`renew`), and when the last one started.
    renewing: Mutex<()>,
    last_renewal: AtomicU64,
    wake: Notify,
    listeners: broadcast::Sender<Arc<Entry>>,
}

/// What a check learns when it asks for a lapsed lease to be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Memory may answer.
    Current,
    /// Memory may not answer (not loaded yet, or the push feed is down): ask the database.
    NotCurrent,
    /// The database did not answer in time: nothing can vouch for memory, nor answer instead.
    Unanswered,
}

/// What `/readyz` and `/metrics` say about the feed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedStatus {
    pub current: bool,
    pub postgres_listening: bool,
    pub redis_subscribed: bool,
    pub applied_seq: i64,
    /// The newest `seq` this instance knows of: applied, or committed by itself.
    pub known_seq: i64,
    /// The log's head as the database last reported it.
    pub head_seq: i64,
    /// How long ago the read that last confirmed this instance current started; `None`: never.
    pub confirmed_millis_ago: Option<u64>,
}

impl LogFollower {
    pub fn new(db: Db, settings: SyncSettings, cache: Arc<Cache>, denylist: DenylistCopy) -> Self {
        let (listeners, _) = broadcast::channel(4096);
        let db = match store::connect_lazy_reader(&settings.database_url) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(error = %error, "no pool of its own for the revocation log; sharing the requests' pool");
                db
            }
        };
        Self {
            db,
            denylist,
            settings,
            cache,
            applied: AtomicI64::new(0),
            committed_seq: AtomicI64::new(0),
            loaded: AtomicBool::new(false),
            postgres_subscribed: AtomicBool::new(false),
            redis_subscribed: AtomicBool::new(false),
            confirmed_at: AtomicU64::new(0),
            head_seq: AtomicI64::new(0),
            epoch: Instant::now(),
            catching_up: Mutex::new(()),
            renewing: Mutex::new(()),
            last_renewal: AtomicU64::new(0),
            wake: Notify::new(),
            listeners,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Entry>> {
        self.listeners.subscribe()
    }

    fn has_push_feed(&self) -> bool {
        self.settings.backend == Backend::Postgres || self.settings.redis.is_some()
    }

    /// Nanoseconds since the last confirming read started, on the monotonic clock.
    fn since_confirmed(&self) -> Option<u64> {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        (confirmed != 0).then(|| self.nanos_now().saturating_sub(confirmed))
    }

    /// Renews the lease with a read of the database that started at `started` and found nothing
    /// past what is applied. It only moves forward: a slow read never shortens a newer lease.
    fn confirm(&self, started: Instant, head: i64) {
        let at = (started.saturating_duration_since(self.epoch).as_nanos() as u64).max(1);
        self.confirmed_at.fetch_max(at, Ordering::AcqRel);
        self.head_seq.fetch_max(head, Ordering::AcqRel);
    }

    fn nanos_now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Without a push connection (where there is one to have), memory is not trusted at all.
    fn push_feed_up(&self) -> bool {
        !self.has_push_feed()
            || self.postgres_subscribed.load(Ordering::Acquire)
            || self.redis_subscribed.load(Ordering::Acquire)
    }

    /// Whether the cache may answer: see the module's fail-safe rule.
    pub fn is_current(&self) -> bool {
        if !self.loaded.load(Ordering::Acquire) {
            return false;
        }
        match self.since_confirmed() {
            Some(age) if age < self.settings.max_staleness.as_nanos() as u64 => {}
            _ => return false,
        }
        self.push_feed_up()
    }

    pub fn status(&self) -> FeedStatus {
        let applied_seq = self.applied.load(Ordering::Acquire);
        FeedStatus {
            current: self.is_current(),
            postgres_listening: self.postgres_subscribed.load(Ordering::Acquire),
            redis_subscribed: self.redis_subscribed.load(Ordering::Acquire),
            applied_seq,
            known_seq: applied_seq.max(self.committed_seq.load(Ordering::Acquire)),
            head_seq: self.head_seq.load(Ordering::Acquire).max(applied_seq),
            confirmed_millis_ago: self.since_confirmed().map(|nanos| nanos / 1_000_000),
        }
    }

    /// A read of the log that the database leaves unanswered past the lease is given up, so a
    /// partition cannot hold the catch-up (and everything waiting on it) for a TCP timeout.
    async fn bounded<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        tokio::time::timeout(self.settings.max_staleness, read)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the revocation log read was not answered in time",
                )))
            })
    }

    /// Closes the log's own pool: the lease lapses within `max_staleness`. At shutdown, and for
    /// tests that take the database away.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// The longest a check may wait on the database once the cache cannot answer.
    pub fn max_staleness(&self) -> Duration {
        self.settings.max_staleness
    }

    /// Loads the complete denylist and the position in the log it corresponds to. The position
    /// is read first, so an entry committed in between is both loaded and caught up (harmless).
    pub async fn load(&self) -> Result<(), sqlx::Error> {
        let _guard = self.catching_up.lock().await;
        self.loaded.store(false, Ordering::Release);
        let started = Instant::now();
        let now = now_millis();
        let position = revocation_log::latest_seq(&self.db).await?;
        self.cache.reset();
        let rows = store::denylist::count_rows(&self.db).await?;
        let mut loading = self.cache.denylist_loader(rows);
        let count =
            store::denylist::for_each_live(&self.db, now, |jti, expires_at| loading.add(jti, expires_at)).await?;
        loading.finish();
        self.applied.store(position, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
        self.confirm(started, position);
        tracing::info!(
            denylisted = count,
            complete = self.cache.denylist_is_complete(),
            seq = position,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "revocation cache loaded"
        );
        Ok(())
    }

    /// Applies every committed entry after the last one applied, in order. A position the log no
    /// longer holds (entries purged while this instance was away) means a reload. The read that
    /// finds nothing more renews the lease from when it started.
    pub async fn catch_up(&self) -> Result<(), sqlx::Error> {
        let _guard = self.catching_up.lock().await;
        if !self.loaded.load(Ordering::Acquire) {
            drop(_guard);
            return self.load().await;
        }
        loop {
            let after = self.applied.load(Ordering::Acquire);
            let started = Instant::now();
            let entries = self.bounded(revocation_log::since(&self.db, after, BATCH)).await?;
            let Some(first) = entries.first() else {
                self.confirm(started, after);
                return Ok(());
            };
            if first.seq != after + 1 {
                tracing::warn!(
                    after,
                    first = first.seq,
                    "revocation log entries were purged before this instance read them; reloading"
                );
                drop(_guard);
                return self.load().await;
            }
            let now = now_millis();
            let last = entries.last().map_or(after, |entry| entry.seq);
            let denylisted: Vec<(String, i64)> = entries
                .iter()
                .filter(|entry| entry.change.kind == EntryKind::JtiDenylisted)
                .filter_map(|entry| Some((entry.change.subject.clone()?, entry.change.expires_at?)))
                .collect();
            for entry in entries {
                self.cache.apply(&entry, false);
                self.applied.store(entry.seq, Ordering::Release);
                metrics::counter!("revocable_invalidations_received_total").increment(1);
                metrics::gauge!("revocable_invalidation_lag_seconds")
                    .set((now - entry.created_at).max(0) as f64 / 1000.0);
                let _ = self.listeners.send(Arc::new(entry));
            }
            // The Redis copy follows the log in order; it only matters for lookups that bypass
            // the cache, which fall back to the database while it lags.
            if let Err(error) = self.denylist.record(&denylisted, after, last).await {
                tracing::debug!(error = %error, "denylist copy in Redis not updated");
            }
        }
    }

    /// Reads the log's head: nothing past what is applied renews the lease from when the read
    /// started; otherwise the catch-up renews it once it has read to the end. Each read bounded.
    async fn read_head(&self) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let latest = self.bounded(revocation_log::latest_seq(&self.db)).await?;
        if latest == self.applied.load(Ordering::Acquire) {
            self.confirm(started, latest);
            Ok(())
        } else {
            self.catch_up().await
        }
    }

    /// Renews a lapsed lease for the checks waiting on it: one read of the log (and the catch-up
    /// it calls for) serves every check that arrived before it started, so a lapse costs the
    /// database one query, not one per request, and an instance under load renews its lease at
    /// once instead of flooding the database. Bounded by `REVOCATION_MAX_STALENESS`.
    pub async fn renew(&self) -> Renewal {
        if self.is_current() {
            return Renewal::Current;
        }
        if !self.loaded.load(Ordering::Acquire) || !self.push_feed_up() {
            // A fresh read would not make this instance current: the checks ask the database.
            return Renewal::NotCurrent;
        }
        let asked = self.nanos_now();
        let _flight = self.renewing.lock().await;
        if self.is_current() {
            return Renewal::Current;
        }
        if self.last_renewal.load(Ordering::Acquire) > asked {
            // A renewal that started after this check arrived has just failed.
            return Renewal::Unanswered;
        }
        self.last_renewal.store(self.nanos_now(), Ordering::Release);
        match tokio::time::timeout(self.settings.max_staleness, self.read_head()).await {
            Ok(Ok(())) if self.is_current() => Renewal::Current,
            Ok(Ok(())) => Renewal::NotCurrent,
            Ok(Err(_)) | Err(_) => Renewal::Unanswered,
        }
    }
}

#[cfg(test)]
mod tests;
