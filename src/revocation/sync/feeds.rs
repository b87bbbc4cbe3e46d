//! The three ways an instance hears there is more of the log to read: the notification a
//! revoking transaction sends (PostgreSQL `NOTIFY` inside it, Redis `PUBLISH` after it), the
//! listeners that hear them, and the poll; all three end in `catch_up`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CHANNEL, LISTENER_NAME, LogFollower};
use crate::store::revocation_log::Entry;
use crate::store::{self, Backend};

impl LogFollower {
    /// Starts the listeners and the poll; they run for the life of the process.
    pub fn spawn(self: &Arc<Self>) {
        if self.settings.backend == Backend::Postgres {
            tokio::spawn(Arc::clone(self).listen_postgres());
        }
        if self.settings.redis.is_some() {
            tokio::spawn(Arc::clone(self).listen_redis());
        }
        tokio::spawn(Arc::clone(self).poll());
    }

    /// A poll every `poll_interval` (or at once after this instance commits), each in a task of
    /// its own: one that the database is slow to answer does not hold back the next, so a single
    /// stalled read cannot cost the lease while later ones would have renewed it.
    async fn poll(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = self.wake.notified() => {}
            }
            tokio::spawn(Arc::clone(&self).poll_once());
        }
    }

    async fn poll_once(self: Arc<Self>) {
        let polled = async {
            if !self.loaded.load(Ordering::Acquire) {
                // Not bounded: a large denylist takes as long as it takes, and the instance is
                // not current meanwhile.
                return self.load().await;
            }
            self.read_head().await
        };
        if let Err(error) = polled.await {
            tracing::debug!(error = %error, "revocation log poll failed");
        }
    }

    /// Inside the revoking transaction, just before its commit: PostgreSQL delivers the
    /// notification when, and only if, the transaction commits.
    pub async fn notify_in(&self, transaction: &mut store::Transaction<'_>, last_seq: i64) -> Result<(), sqlx::Error> {
        if self.settings.push && self.settings.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(last_seq.to_string())
                .execute(&mut **transaction)
                .await?;
        }
        Ok(())
    }

    /// After the commit: this instance's cache first (so the revoking request's own instance
    /// refuses at once), then Redis, then the in-order catch-up that feeds listeners.
    pub async fn committed(&self, entries: &[Entry]) {
        for entry in entries {
            self.cache.apply(entry, true);
        }
        if let Some(last) = entries.last() {
            self.committed_seq.fetch_max(last.seq, Ordering::AcqRel);
            metrics::counter!("revocable_invalidations_sent_total").increment(entries.len() as u64);
            if self.settings.push
                && let Some(redis) = &self.settings.redis
            {
                let published = async {
                    let mut connection = redis.pool.get().await.map_err(|error| anyhow::anyhow!(error))?;
                    redis::cmd("PUBLISH")
                        .arg(&redis.channel)
                        .arg(last.seq)
                        .query_async::<i64>(&mut connection)
                        .await?;
                    anyhow::Ok(())
                };
                if let Err(error) = published.await {
                    tracing::warn!(error = %error, "could not publish a revocation; other instances will poll it");
                }
            }
        }
        self.wake.notify_one();
    }

    async fn listen_postgres(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        loop {
            match self.postgres_session().await {
                Ok(()) => backoff.reset(),
                Err(error) => tracing::warn!(error = %error, "revocation listener on PostgreSQL lost; reconnecting"),
            }
            self.postgres_subscribed.store(false, Ordering::Release);
            metrics::gauge!("revocable_revocation_feed_subscribed", "feed" => "postgres").set(0.0);
            backoff.wait().await;
        }
    }

    /// One connection's life: listen, catch up, then trust the feed until the connection drops.
    async fn postgres_session(&self) -> Result<(), sqlx::Error> {
        use std::str::FromStr;
        let options =
            sqlx::postgres::PgConnectOptions::from_str(&self.settings.database_url)?.application_name(LISTENER_NAME);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        self.catch_up().await?;
        self.postgres_subscribed.store(true, Ordering::Release);
        metrics::gauge!("revocable_revocation_feed_subscribed", "feed" => "postgres").set(1.0);
        tracing::info!("listening for revocations on PostgreSQL");
        while let Some(_notification) = listener.try_recv().await? {
            if let Err(error) = self.catch_up().await {
                tracing::warn!(error = %error, "catching up with the revocation log failed");
            }
        }
        Ok(())
    }

    async fn listen_redis(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        loop {
            match self.redis_session().await {
                Ok(()) => backoff.reset(),
                Err(error) => tracing::warn!(error = %error, "revocation subscription on Redis lost; resubscribing"),
            }
            self.redis_subscribed.store(false, Ordering::Release);
            metrics::gauge!("revocable_revocation_feed_subscribed", "feed" => "redis").set(0.0);
            backoff.wait().await;
        }
    }

    async fn redis_session(&self) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        let Some(feed) = &self.settings.redis else {
            return Ok(());
        };
        let client = redis::Client::open(feed.url.as_str())?;
        let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub()).await??;
        pubsub.subscribe(&feed.channel).await?;
        self.catch_up().await?;
        self.redis_subscribed.store(true, Ordering::Release);
        metrics::gauge!("revocable_revocation_feed_subscribed", "feed" => "redis").set(1.0);
        tracing::info!("subscribed to revocations on Redis");
        let mut messages = pubsub.on_message();
        while messages.next().await.is_some() {
            if let Err(error) = self.catch_up().await {
                tracing::warn!(error = %error, "catching up with the revocation log failed");
            }
        }
        anyhow::bail!("the subscription connection closed")
    }
}

/// 50 ms doubling to 1 s between reconnection attempts.
#[derive(Default)]
struct Backoff {
    attempts: u32,
}

impl Backoff {
    fn reset(&mut self) {
        self.attempts = 0;
    }

    async fn wait(&mut self) {
        let delay = Duration::from_millis(50 * 2u64.pow(self.attempts.min(5))).min(Duration::from_secs(1));
        self.attempts += 1;
        tokio::time::sleep(delay).await;
    }
}
