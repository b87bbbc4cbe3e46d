//! Where the denylist is looked up when the in-process cache cannot answer (it is switched off
//! with `REVOCATION_CACHE=off`, or this instance is not current): the database, or with Redis a
//! copy in one sorted set (`jti` → expiry in unix ms) that a lost key cannot make lie.
//!
//! The set carries a marker member whose score is minus the last log `seq` whose entries are all
//! in the set. Each instance writes the log's `jti` entries in order as it applies them, and moves
//! the marker only after they are written. So a lookup trusts absence only when the marker says
//! the set is at least as current as this instance: a set that was evicted, flushed, deleted or
//! rebuilt from an old snapshot has no marker or an old one, and the database answers instead
//! (and the set is rebuilt). The set itself has no TTL, so `volatile-*` eviction never takes it;
//! `allkeys-*` eviction takes it whole, marker included.

use redis::AsyncCommands;

use crate::domain::now_millis;
use crate::store::{self, Db};

use super::Error;

const MARKER: &str = "!complete-up-to";

/// `record`, atomically: add the entries, then move the marker (score = -seq) only from `after`.
static RECORD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        for i = 4, #ARGV, 2 do
            redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
        end
        local marker = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if marker and -tonumber(marker) >= tonumber(ARGV[2]) then
            redis.call('ZADD', KEYS[1], 'LT', -tonumber(ARGV[3]), ARGV[1])
        end
        return 0
        ",
    )
});

#[derive(Clone)]
pub enum DenylistCopy {
    /// No Redis: the database is asked.
    Database,
    Redis {
        pool: deadpool_redis::Pool,
        key: String,
    },
}

impl DenylistCopy {
    pub fn redis(pool: deadpool_redis::Pool, prefix: &str) -> Self {
        Self::Redis {
            pool,
            key: format!("{prefix}denylist"),
        }
    }

    /// Whether `jti` is denylisted; `applied_seq` is how far this instance has read the log.
    pub async fn contains(&self, db: &Db, jti: &str, applied_seq: i64) -> Result<bool, Error> {
        let now = now_millis();
        let Self::Redis { pool, key } = self else {
            return Ok(store::denylist::contains(db, jti, now).await?);
        };
        let lookup = async {
            let mut connection = pool.get().await?;
            let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
                .arg(key)
                .arg(MARKER)
                .arg(jti)
                .query_async(&mut connection)
                .await?;
            Ok::<_, Error>(scores)
        };
        match lookup.await {
            Ok(scores) => {
                let marker = scores.first().copied().flatten();
                let expires_at = scores.get(1).copied().flatten();
                if let Some(expires_at) = expires_at
                    && expires_at as i64 > now
                {
                    return Ok(true);
                }
                match marker {
                    Some(marker) if -(marker as i64) >= applied_seq => Ok(false),
                    Some(_) => Ok(store::denylist::contains(db, jti, now).await?),
                    None => {
                        let denied = store::denylist::contains(db, jti, now).await?;
                        if let Err(error) = self.rebuild(db).await {
                            tracing::warn!(error = %error, "could not rebuild the denylist copy in Redis");
                        }
                        Ok(denied)
                    }
                }
            }
            // Redis down: the source of truth answers.
            Err(_) => Ok(store::denylist::contains(db, jti, now).await?),
        }
    }

    /// Writes entries this instance has just committed, without moving the marker (other
    /// instances' entries before them may not be in the set yet).
    pub async fn insert(&self, entries: &[(String, i64)]) -> anyhow::Result<()> {
        let Self::Redis { pool, key } = self else {
            return Ok(());
        };
        if entries.is_empty() {
            return Ok(());
        }
        let mut connection = pool.get().await?;
        let members: Vec<(i64, &str)> = entries
            .iter()
            .map(|(jti, expires_at)| (*expires_at, jti.as_str()))
            .collect();
        connection.zadd_multiple::<_, _, _, ()>(key, &members).await?;
        Ok(())
    }

    /// Writes the `jti` entries of the log entries `after + 1 ..= last`, then moves the marker to
    /// `last`, but only when the set was already complete up to `after`: a set restored from an
    /// old snapshot keeps its old marker, so its absences are not believed until it is rebuilt.
    pub async fn record(&self, entries: &[(String, i64)], after: i64, last: i64) -> anyhow::Result<()> {
        let Self::Redis { pool, key } = self else {
            return Ok(());
        };
        let mut connection = pool.get().await?;
        let mut invocation = RECORD.key(key);
        invocation.arg(MARKER).arg(after).arg(last);
        for (jti, expires_at) in entries {
            invocation.arg(jti).arg(*expires_at);
        }
        invocation.invoke_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// Rebuilds the set from the database: the log position first, then the rows, so an entry
    /// committed in between is in the set and also re-applied.
    pub async fn rebuild(&self, db: &Db) -> anyhow::Result<usize> {
        let Self::Redis { pool, key } = self else {
            return Ok(0);
        };
        let position = store::revocation_log::latest_seq(db).await?;
        let mut entries = Vec::new();
        store::denylist::for_each_live(db, now_millis(), |jti, expires_at| {
            entries.push((jti.to_owned(), expires_at))
        })
        .await?;
        let mut connection = pool.get().await?;
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for chunk in entries.chunks(1000) {
            let members: Vec<(i64, &str)> = chunk
                .iter()
                .map(|(jti, expires_at)| (*expires_at, jti.as_str()))
                .collect();
            pipeline.zadd_multiple(key, &members).ignore();
        }
        pipeline
            .cmd("ZADD")
            .arg(key)
            .arg("LT")
            .arg(-position)
            .arg(MARKER)
            .ignore();
        pipeline.query_async::<()>(&mut connection).await?;
        tracing::info!(
            entries = entries.len(),
            "denylist copy in Redis rebuilt from the database"
        );
        Ok(entries.len())
    }

    /// Drops members whose tokens have expired (never the marker, whose score is negative).
    pub async fn purge_expired(&self, now: i64) -> anyhow::Result<()> {
        if let Self::Redis { pool, key } = self {
            let mut connection = pool.get().await?;
            connection.zrembyscore::<_, _, _, ()>(key, 0, now).await?;
        }
        Ok(())
    }

    /// Entries in the copy right now (Redis), marker excluded.
    pub async fn entry_count(&self) -> Result<usize, Error> {
        match self {
            Self::Database => Ok(0),
            Self::Redis { pool, key } => {
                let mut connection = pool.get().await?;
                let count: usize = connection.zcount(key, 0, "+inf").await?;
                Ok(count)
            }
        }
    }
}
