//! What each strategy's check costs: the check functions the extractors call
//! (`auth::strategy::check_*`), timed in-process over a few thousand calls against the measuring
//! instance's stores — from its in-process cache, then with the cache switched off — and the
//! bytes of state each one keeps. No request is built and nothing goes over HTTP here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_session::storage::{SessionKey, SessionStore};

use super::probe::{self, Probe};
use super::sizes;
use crate::auth::jwt::JwtKeys;
use crate::auth::strategy::{self, USER_KEY};
use crate::error::{ApiError, RejectReason};
use crate::revocation::Revocation;
use crate::revocation::cookie_state::LOGIN_SESSION_KEY;
use crate::state::AppState;
use crate::web_session::CookieStateStore;

/// Checks timed per strategy.
pub const CHECKS_PER_STRATEGY: usize = 2000;

#[derive(Clone, Debug)]
pub struct CheckCost {
    pub strategy: &'static str,
    pub median_micros: f64,
    pub p99_micros: f64,
    pub io: String,
    /// The same check with the in-process cache switched off: a store lookup per request.
    pub uncached: Option<UncachedCost>,
    pub state: String,
    /// Bytes kept for what the strategy revokes by (a user, a revoked token, a login session),
    /// as measured from the stores: what `/compare` charts.
    pub state_bytes: Option<(i64, &'static str)>,
}

#[derive(Clone, Debug)]
pub struct UncachedCost {
    pub median_micros: f64,
    pub p99_micros: f64,
    pub io: String,
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// Median and 99th percentile of `check`, in microseconds, after a warm-up.
async fn time_checks<F, Fut>(mut check: F) -> Result<(f64, f64), ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ApiError>>,
{
    for _ in 0..200 {
        check().await?;
    }
    let mut samples = Vec::with_capacity(CHECKS_PER_STRATEGY);
    for index in 0..CHECKS_PER_STRATEGY {
        // A check answered from memory never waits: let the instance serve its other tasks.
        if index % 50 == 0 {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        check().await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

/// What a strategy's check is given: the signing keys and the revocation layer, cached or not,
/// with the cookie-state store in front of it for the cookie.
struct Checker<'a> {
    keys: &'a JwtKeys,
    revocation: Revocation,
    cookie_states: CookieStateStore,
    idle_ttl: Duration,
}

impl<'a> Checker<'a> {
    fn new(state: &'a AppState, revocation: Revocation) -> Self {
        Self {
            keys: &state.keys,
            cookie_states: CookieStateStore::new(revocation.clone(), state.settings.session_ttl),
            revocation,
            idle_ttl: state.settings.session_idle_ttl,
        }
    }

    /// One check of `strategy`, as its extractor makes it once the credential is read.
    async fn check(&self, strategy: &str, probe: &Probe) -> Result<(), ApiError> {
        if strategy == "cookie" {
            return self.check_cookie(&probe.session_key).await;
        }
        let claims = strategy::check_stateless(self.keys, &probe.access_token)?;
        match strategy {
            "version" => strategy::check_version(&self.revocation, &claims).await,
            "denylist" => strategy::check_denylist(&self.revocation, &claims).await,
            "allowlist" => strategy::check_allowlist(&self.revocation, &claims).await,
            _ => Ok(()),
        }
    }

    /// The session middleware's load of the cookie's state, then the login session it names.
    async fn check_cookie(&self, session_key: &str) -> Result<(), ApiError> {
        let key = SessionKey::try_from(session_key.to_owned())
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
        let loaded = self
            .cookie_states
            .load(&key)
            .await
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?
            .unwrap_or_default();
        let read = |state: &HashMap<String, String>, name: &str| {
            state
                .get(name)
                .and_then(|value| serde_json::from_str::<String>(value).ok())
                .ok_or(ApiError::cookie(RejectReason::NoCredential))
        };
        let login_session_id = read(&loaded, LOGIN_SESSION_KEY)?;
        let user_id = read(&loaded, USER_KEY)?;
        strategy::check_login_session(&self.revocation, self.idle_ttl, &login_session_id, &user_id).await
    }

    async fn time(&self, strategy: &str, probe: &Probe) -> Result<(f64, f64), ApiError> {
        time_checks(|| self.check(strategy, probe)).await
    }
}

/// Every strategy's cost on the measuring instance `state`, and the state it keeps.
pub async fn measure(state: &AppState) -> Result<Vec<CheckCost>, ApiError> {
    let probe = probe::create(state).await?;
    let sizes = sizes::measure(state, &probe).await?;
    let cached = Checker::new(state, state.revocation.clone());
    let uncached = Checker::new(state, state.revocation.uncached());
    let database = state.backend.name();
    let memory = if state.revocation.cache_enabled() {
        "none on a hit: the in-process cache (a miss reads the store once)".to_owned()
    } else {
        "the cache is off (REVOCATION_CACHE=off): as below".to_owned()
    };
    let mut costs = Vec::new();
    for (strategy, uncached_io, kept, state_bytes) in [
        ("stateless", None, "none".to_owned(), None),
        (
            "version",
            Some(format!("{database}: the user's token_version")),
            "8 B per user (one integer)".to_owned(),
            Some((8, "per user")),
        ),
        (
            "denylist",
            Some(format!("{database}: the denylist row")),
            format!(
                "{} B per revoked token in {database} + {} B in the in-process copy; {} B per issued token to revoke a device at once",
                sizes.denylist_row, sizes.denylist_copy, sizes.access_token_row
            ),
            Some((sizes.denylist_row + sizes.denylist_copy, "per revoked token")),
        ),
        (
            "allowlist",
            Some(format!("{database}: the login session row")),
            format!("{} B per login session", sizes.login_session_row),
            Some((sizes.login_session_row, "per login session")),
        ),
        (
            "cookie",
            Some(format!("{database}: the session state and the login session row")),
            format!(
                "{} B per login session + {} B of session state",
                sizes.login_session_row, sizes.session_state
            ),
            Some((sizes.login_session_row + sizes.session_state, "per login session")),
        ),
    ] {
        let (median_micros, p99_micros) = cached.time(strategy, &probe).await?;
        let uncached = match uncached_io {
            None => None,
            Some(io) => {
                let (median_micros, p99_micros) = uncached.time(strategy, &probe).await?;
                Some(UncachedCost {
                    median_micros,
                    p99_micros,
                    io,
                })
            }
        };
        costs.push(CheckCost {
            strategy,
            median_micros,
            p99_micros,
            io: if strategy == "stateless" {
                "none".into()
            } else {
                memory.clone()
            },
            uncached,
            state: kept,
            state_bytes,
        });
    }
    Ok(costs)
}
