//! Per-address limits: log-in and sign-up attempts, and failed client authentication on
//! `/oauth/*`.
//!
//! Both are GCRA ("generic cell rate algorithm", the one `governor` implements): `per_minute`
//! attempts at once, then one more every `60 s / per_minute`. With Redis configured the state is
//! kept there, so every instance counts against the same limit; without Redis, or while Redis does
//! not answer within `REDIS_TIMEOUT`, each instance counts in its own memory. An outage therefore
//! loosens the limit to one per instance for its duration and never turns a log-in into an error.
//!
//! Hand-written rather than taken from `actix-extensible-rate-limit`: its Redis backend is built
//! on `redis` 0.26 and a connection of its own, while this service keeps one `redis` (0.32,
//! through deadpool-redis); and it fails open or closed on a Redis error, with no fallback to a
//! local count. The Redis side is one Lua script, so the read and the write are atomic across
//! instances, and it reads the time from Redis, so instances with skewed clocks still agree (moved
//! by as much as the app's clock is ahead of the system's, which only a test clock ever is). The
//! in-memory count reads the app's clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::domain::Clock;

/// How long a limiter waits for Redis before counting in memory instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Above this many addresses in memory, those whose state has run out are dropped, at most once a
/// second (so many addresses with live state cannot make every attempt scan the map).
const LOCAL_PRUNE_THRESHOLD: usize = 10_000;
const LOCAL_PRUNE_EVERY_MILLIS: i64 = 1_000;

/// GCRA in Redis. KEYS[1]: the address's key. ARGV: the emission interval and the tolerance in
/// milliseconds, "1" to count this attempt or "0" only to ask, and how many milliseconds the
/// app's clock is ahead of the system's. Returns the milliseconds to wait (0 when allowed).
const GCRA_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[4])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - tolerance
if wait > 0 then return wait end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now) end
return 0
";

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused: `Retry-After` and the body say this many whole seconds (at least 1).
    Limited {
        retry_after_seconds: u64,
    },
}

impl Decision {
    fn from_wait(wait_millis: i64) -> Self {
        if wait_millis <= 0 {
            Self::Allowed
        } else {
            Self::Limited {
                retry_after_seconds: (wait_millis as u64).div_ceil(1000).max(1),
            }
        }
    }
}

/// The per-address limit on log-in, sign-up and password attempts (`LOGIN_RATE_PER_MINUTE`),
/// keyed by `client::address`; registered as app data of its own for the middleware that counts
/// the attempts.
pub struct LoginLimit {
    pub attempts: RateLimit,
}

/// One limit: `per_minute` attempts per key, shared through Redis when there is one.
pub struct RateLimit {
    name: &'static str,
    interval_millis: i64,
    tolerance_millis: i64,
    redis: Option<(deadpool_redis::Pool, String)>,
    script: redis::Script,
    /// The theoretical arrival time of each key's next attempt, in unix milliseconds.
    local: DashMap<String, i64>,
    last_pruned: AtomicI64,
    clock: Clock,
}

impl RateLimit {
    /// `name` keeps limits apart in Redis (`{prefix}rate:{name}:{key}`).
    pub fn new(
        name: &'static str,
        per_minute: u32,
        redis: Option<(deadpool_redis::Pool, String)>,
        clock: Clock,
    ) -> Self {
        let interval_millis = (60_000 / i64::from(per_minute.max(1))).max(1);
        Self {
            name,
            interval_millis,
            tolerance_millis: interval_millis * i64::from(per_minute.max(1)),
            redis,
            script: redis::Script::new(GCRA_SCRIPT),
            local: DashMap::new(),
            last_pruned: AtomicI64::new(0),
            clock,
        }
    }

    /// Counts one attempt by `key`, unless it is refused.
    pub async fn attempt(&self, key: &str) -> Decision {
        self.decide(key, true).await
    }

    /// Whether `key` would be refused now, without counting anything.
    pub async fn check(&self, key: &str) -> Decision {
        self.decide(key, false).await
    }

    async fn decide(&self, key: &str, count: bool) -> Decision {
        if let Some((pool, prefix)) = &self.redis {
            let redis_key = format!("{prefix}rate:{}:{key}", self.name);
            let asked = tokio::time::timeout(REDIS_TIMEOUT, async {
                let mut connection = pool.get().await.map_err(|error| error.to_string())?;
                self.script
                    .key(redis_key)
                    .arg(self.interval_millis)
                    .arg(self.tolerance_millis)
                    .arg(if count { "1" } else { "0" })
                    .arg(self.clock.ahead_millis())
                    .invoke_async::<i64>(&mut connection)
                    .await
                    .map_err(|error| error.to_string())
            })
            .await;
            match asked {
                Ok(Ok(wait)) => return Decision::from_wait(wait),
                Ok(Err(error)) => {
                    tracing::warn!(
                        limit = self.name,
                        error,
                        "redis unavailable: rate limit counted in memory"
                    );
                }
                Err(_) => {
                    tracing::warn!(limit = self.name, "redis too slow: rate limit counted in memory");
                }
            }
        }
        Decision::from_wait(self.decide_locally(key, count, self.clock.now_millis()))
    }

    /// The same algorithm as the script, in this process; returns the milliseconds to wait.
    fn decide_locally(&self, key: &str, count: bool, now: i64) -> i64 {
        if count && self.local.len() > LOCAL_PRUNE_THRESHOLD {
            let last = self.last_pruned.load(Ordering::Relaxed);
            if now - last >= LOCAL_PRUNE_EVERY_MILLIS
                && self
                    .last_pruned
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.local.retain(|_, tat| *tat > now);
            }
        }
        let over = |tat: i64| {
            let next = tat.max(now) + self.interval_millis;
            (next - now - self.tolerance_millis, next)
        };
        if !count {
            // Only asking: an address that has no state is not given any.
            let tat = self.local.get(key).map_or(now, |tat| *tat);
            return over(tat).0.max(0);
        }
        let mut entry = self.local.entry(key.to_owned()).or_insert(now);
        let (wait, next) = over(*entry);
        if wait > 0 {
            return wait;
        }
        *entry = next;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{Clock, Decision, RateLimit};

    #[test]
    fn a_burst_of_the_rate_is_allowed_then_one_more_per_interval() {
        let limit = RateLimit::new("test", 3, None, Clock::System);
        let start = 1_000_000;
        for _ in 0..3 {
            assert_eq!(limit.decide_locally("a", true, start), 0);
        }
        // The fourth waits for one interval (20 s at 3 a minute), and asking does not count.
        assert_eq!(limit.decide_locally("a", true, start), 20_000);
        assert_eq!(limit.decide_locally("a", false, start + 19_999), 1);
        assert_eq!(limit.decide_locally("a", true, start + 20_000), 0);
        assert_eq!(limit.decide_locally("a", true, start + 20_000), 20_000);
        // Another key has its own allowance.
        assert_eq!(limit.decide_locally("b", true, start), 0);
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        assert_eq!(Decision::from_wait(0), Decision::Allowed);
        assert_eq!(Decision::from_wait(1), Decision::Limited { retry_after_seconds: 1 });
        assert_eq!(Decision::from_wait(1_001), Decision::Limited { retry_after_seconds: 2 });
    }
}
