//! The fast copy of the denylist: Redis keys with a TTL of the token's remaining lifetime, or an
//! in-process map with expiry when no Redis is configured. The database stays the source of truth:
//! a sentinel key marks a Redis copy as complete, and a copy without it (Redis restarted, flushed,
//! or a write to it failed) is rebuilt from the database before its answer is used.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use deadpool_redis::redis::AsyncCommands;

use crate::domain::now_millis;
use crate::error::ApiError;
use crate::store::{self, Db};

#[derive(Clone)]
pub enum DenylistCopy {
    Memory(Arc<DashMap<String, i64>>),
    Redis {
        pool: deadpool_redis::Pool,
        prefix: String,
        stale: Arc<AtomicBool>,
    },
}

impl DenylistCopy {
    pub fn memory() -> Self {
        Self::Memory(Arc::new(DashMap::new()))
    }

    pub fn redis(pool: deadpool_redis::Pool, prefix: String) -> Self {
        Self::Redis {
            pool,
            prefix,
            stale: Arc::new(AtomicBool::new(true)),
        }
    }

    fn key(prefix: &str, jti: &str) -> String {
        format!("{prefix}deny:{jti}")
    }

    fn sentinel(prefix: &str) -> String {
        format!("{prefix}deny-loaded")
    }

    pub async fn contains(&self, db: &Db, jti: &str) -> Result<bool, ApiError> {
        match self {
            Self::Memory(map) => Ok(map.get(jti).is_some_and(|expires_at| *expires_at > now_millis())),
            Self::Redis { pool, prefix, stale } => {
                let lookup = async {
                    let mut connection = pool.get().await?;
                    let answer: (bool, bool) = redis::pipe()
                        .exists(Self::sentinel(prefix))
                        .exists(Self::key(prefix, jti))
                        .query_async(&mut connection)
                        .await?;
                    Ok::<_, ApiError>(answer)
                };
                let Ok((loaded, present)) = lookup.await else {
                    // Redis down: the source of truth answers, and the copy is rebuilt once it is back.
                    stale.store(true, Ordering::Release);
                    return Ok(store::denylist::contains(db, jti, now_millis()).await?);
                };
                if loaded && !stale.load(Ordering::Acquire) {
                    return Ok(present);
                }
                // The copy is incomplete: answer from the database, and rebuild the copy.
                let denied = store::denylist::contains(db, jti, now_millis()).await?;
                self.reload(db).await?;
                Ok(denied)
            }
        }
    }

    /// Copies one entry; on failure marks the Redis copy stale rather than losing the entry.
    pub async fn insert(&self, jti: &str, expires_at: i64) {
        match self {
            Self::Memory(map) => {
                map.insert(jti.to_owned(), expires_at);
            }
            Self::Redis { pool, prefix, stale } => {
                let ttl_ms = (expires_at - now_millis()).max(1) as u64;
                let result = async {
                    let mut connection = pool.get().await.map_err(|e| anyhow::anyhow!(e))?;
                    connection
                        .pset_ex::<_, _, ()>(Self::key(prefix, jti), 1, ttl_ms)
                        .await?;
                    anyhow::Ok(())
                }
                .await;
                if let Err(error) = result {
                    tracing::warn!(error = %error, "denylist copy write failed; it will be rebuilt from the database");
                    stale.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Loads every live entry from the database into the copy; returns how many.
    pub async fn reload(&self, db: &Db) -> Result<usize, ApiError> {
        let now = now_millis();
        let entries = store::denylist::live(db, now).await?;
        match self {
            Self::Memory(map) => {
                map.retain(|_, expires_at| *expires_at > now);
                for (jti, expires_at) in &entries {
                    map.insert(jti.clone(), *expires_at);
                }
            }
            Self::Redis { pool, prefix, stale } => {
                let mut connection = pool.get().await?;
                let mut pipeline = redis::pipe();
                for (jti, expires_at) in &entries {
                    pipeline
                        .pset_ex(Self::key(prefix, jti), 1, (expires_at - now).max(1) as u64)
                        .ignore();
                }
                pipeline.set(Self::sentinel(prefix), now).ignore();
                pipeline.query_async::<()>(&mut connection).await?;
                stale.store(false, Ordering::Release);
            }
        }
        tracing::info!(entries = entries.len(), "denylist copy rebuilt from the database");
        Ok(entries.len())
    }

    /// Redis expires its own keys; the map is swept here.
    pub fn purge_expired(&self, now: i64) {
        if let Self::Memory(map) = self {
            map.retain(|_, expires_at| *expires_at > now);
        }
    }

    /// Entries in the copy right now (Redis: keys under the prefix).
    pub async fn entry_count(&self) -> Result<usize, ApiError> {
        match self {
            Self::Memory(map) => Ok(map.len()),
            Self::Redis { pool, prefix, .. } => {
                let mut connection = pool.get().await?;
                let keys: Vec<String> = connection.keys(format!("{prefix}deny:*")).await?;
                Ok(keys.len())
            }
        }
    }
}
