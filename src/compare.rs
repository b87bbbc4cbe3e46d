//! `/compare`: the five strategies measured. A measurement (1) runs the revocation scenario over
//! HTTP, (2) times each strategy's check in-process over a few thousand calls, (3) measures the
//! state each keeps from its stores — all of it against a throw-away instance of this build,
//! started for the measurement on a runtime and thread of its own, with its own SQLite file in a
//! temporary directory and in-process stores, and dropped afterwards with everything it spawned.
//! The served database, Redis and rate limits are never touched, and nothing is left behind
//! when a measurement fails. Measurements run when the server starts (`COMPARE_AT_START`) and
//! when a logged-in user asks, at most once a minute; any visitor is served the last report.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_session::{SessionExt, storage::SessionKey, storage::SessionStore};
use actix_web::http::header;
use actix_web::test::TestRequest;
use actix_web::web;
use tokio::sync::RwLock;

use crate::auth::login;
use crate::auth::password;
use crate::auth::strategy::{self, Allowlist, Denylist, LAST_SEEN_KEY, Stateless, Strategy, USER_KEY, Version};
use crate::config::Settings;
use crate::domain::{Email, Password, RandomId, now_millis};
use crate::error::ApiError;
use crate::revocation::cookie_state::LOGIN_SESSION_KEY;
use crate::revocation::{DenylistCopy, MintedAccess};
use crate::scenario::{self, Cell, Row};
use crate::state::AppState;
use crate::store::events::Origin;
use crate::store::login_sessions::Kind;
use crate::store::{self, users::Inserted};

/// How long a report stands before a logged-in user may ask for a new one.
pub const REPORT_LIFETIME: Duration = Duration::from_secs(60);
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

#[derive(Clone, Debug)]
pub struct Report {
    pub measured_at: i64,
    pub took_millis: u128,
    pub matrix: Result<Vec<Row>, String>,
    /// The expiry row was observed by validating with the clock moved forward, not by waiting.
    pub expiry_observed_in_process: bool,
    pub costs: Result<Vec<CheckCost>, String>,
    pub access_ttl_seconds: u64,
}

/// The last report. Registered by `startup` as app data of its own, which the `/compare` route
/// extracts; `AppState` does not hold it, so nothing below this module knows of it.
#[derive(Default)]
pub struct CompareCache {
    report: RwLock<Option<Arc<Report>>>,
    running: AtomicBool,
}

/// What a request to measure again came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    AlreadyRunning,
    /// The last report is younger than `REPORT_LIFETIME`; this many seconds are left.
    TooSoon(u64),
}

impl CompareCache {
    /// The last report, and whether a new one is being measured.
    pub async fn current(&self) -> (Option<Arc<Report>>, bool) {
        (self.report.read().await.clone(), self.running.load(Ordering::Acquire))
    }

    /// Starts a measurement unless one runs or the last report is under a minute old.
    pub async fn measure_again(self: &Arc<Self>, served: &Settings) -> Started {
        if let Some(report) = &*self.report.read().await {
            let age = (now_millis() - report.measured_at).max(0) as u64;
            let lifetime = REPORT_LIFETIME.as_millis() as u64;
            if age < lifetime {
                return Started::TooSoon((lifetime - age).div_ceil(1000));
            }
        }
        self.start(served)
    }

    /// Starts a measurement on a thread and runtime of its own, unless one runs already.
    pub fn start(self: &Arc<Self>, served: &Settings) -> Started {
        if self.running.swap(true, Ordering::AcqRel) {
            return Started::AlreadyRunning;
        }
        let settings = measuring_settings(served);
        let cache = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("compare".into()).spawn(move || {
            // Dropping the runtime at the end cancels every task the measuring instance
            // spawned (its purge, its revocation sync, its mailer): nothing outlives it.
            let report = actix_web::rt::System::new().block_on(measure_isolated(settings));
            *cache.report.blocking_write() = Some(Arc::new(report));
            cache.running.store(false, Ordering::Release);
        });
        if let Err(error) = spawned {
            tracing::warn!(error = %error, "cannot start a /compare measurement");
            self.running.store(false, Ordering::Release);
        }
        Started::Now
    }
}

/// The served settings, with everything that reaches the outside replaced: its own database
/// and outbox (set by `measure_isolated`), no Redis, no SMTP, no GeoIP, its own keys and issuer,
/// any free loopback port, and limits that a single measuring client cannot reach.
fn measuring_settings(served: &Settings) -> Settings {
    let mut settings = served.clone();
    settings.redis_url = None;
    settings.smtp_url = None;
    settings.geoip_db = None;
    settings.public_url = None;
    settings.jwt_issuer = None;
    settings.jwt_secret = None;
    settings.jwt_keys = None;
    settings.mfa_encryption_key = None;
    settings.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.trusted_proxies = Vec::new();
    settings.cookie_secure = false;
    settings.login_rate_per_minute = u32::MAX;
    settings.client_auth_failures_per_minute = u32::MAX;
    settings.account_lock_after = u32::MAX;
    settings.max_sessions_per_user = None;
    settings.database_max_connections = None;
    settings.compare_at_start = false;
    settings
}

/// Each measuring instance's directory: this prefix, the process id, a random part.
const DIRECTORY_PREFIX: &str = "revocable-compare-";

/// Directories of measuring instances whose process is gone (killed, or ended mid-measurement):
/// removed before the next measurement on this host. A process is known alive by `/proc`; where
/// there is no `/proc`, nothing is removed.
fn remove_abandoned_directories() {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIRECTORY_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !std::path::Path::new("/proc").join(pid.to_string()).exists()
            && let Err(error) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(error = %error, directory = %entry.path().display(), "cannot remove an abandoned measuring directory");
        }
    }
}

/// One measurement on a throw-away instance, whose directory is removed whatever happens.
async fn measure_isolated(mut settings: Settings) -> Report {
    let started = Instant::now();
    remove_abandoned_directories();
    let directory = std::env::temp_dir().join(format!(
        "{DIRECTORY_PREFIX}{}-{}",
        std::process::id(),
        RandomId::generate().to_lowercase()
    ));
    let report = match std::fs::create_dir_all(&directory) {
        Ok(()) => {
            settings.database_url = format!("sqlite://{}?mode=rwc", directory.join("compare.db").display());
            settings.mail_outbox = directory.join("outbox");
            measure_on_instance(settings).await
        }
        Err(error) => Err(format!("cannot create a directory for the measuring instance: {error}")),
    };
    if let Err(error) = std::fs::remove_dir_all(&directory)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %error, directory = %directory.display(), "cannot remove the measuring instance's directory");
    }
    report.unwrap_or_else(|error| Report {
        measured_at: now_millis(),
        took_millis: started.elapsed().as_millis(),
        matrix: Err(error.clone()),
        expiry_observed_in_process: false,
        costs: Err(error),
        access_ttl_seconds: 0,
    })
}

async fn measure_on_instance(settings: Settings) -> Result<Report, String> {
    let application = crate::startup::Application::build(settings)
        .await
        .map_err(|error| format!("the measuring instance did not start: {error}"))?;
    let state = application.state();
    let base = format!("http://{}", application.address());
    let server = application.serve_detached();
    let report = measure(&state, &base).await;
    server.stop(false).await;
    Ok(report)
}

pub async fn measure(state: &web::Data<AppState>, base: &str) -> Report {
    let started = Instant::now();
    let (matrix, expiry_observed_in_process) = match scenario::run(base).await {
        Ok(observed) => {
            let mut rows = observed.rows;
            let in_process = observe_expiry_in_process(state, &mut rows);
            (Ok(rows), in_process)
        }
        Err(error) => (Err(error.to_string()), false),
    };
    let costs = measure_costs(state).await.map_err(|error| error.to_string());
    Report {
        measured_at: now_millis(),
        took_millis: started.elapsed().as_millis(),
        matrix,
        expiry_observed_in_process,
        costs,
        access_ttl_seconds: state.settings.access_ttl.as_secs(),
    }
}

/// An access-token lifetime too long to wait for is observed by validating a freshly issued
/// token as if the clock had moved past its `exp` (every Bearer strategy starts with this check).
fn observe_expiry_in_process(state: &AppState, rows: &mut [Row]) -> bool {
    let Some(row) = rows
        .iter_mut()
        .find(|row| row.event == scenario::Event::AccessTokenExpired)
    else {
        return false;
    };
    if row.cells[0] != Cell::NotObserved {
        return false;
    }
    let Ok(issued) = state.keys.issue("expiry-probe", "expiry-probe", 0) else {
        return false;
    };
    let later = state.settings.access_ttl.as_secs() + state.settings.jwt_leeway.as_secs() + 1;
    let cell = match state.keys.validate_later(&issued.token, later) {
        Ok(_) => Cell::Accepted,
        Err(_) => Cell::Rejected,
    };
    for slot in &mut row.cells[..4] {
        *slot = cell;
    }
    true
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

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
        // A check answered from memory never waits: let the worker serve its other requests.
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

/// A probe account with one token login and one cookie login, removed afterwards.
struct Fixture {
    user_id: String,
    access_token: String,
    session_key: String,
    token_session: String,
    cookie_session: String,
    revoked_jti: String,
}

async fn fixture(state: &AppState) -> Result<Fixture, ApiError> {
    let email = Email::parse(&format!(
        "probe-{}@revocable.invalid",
        RandomId::generate().to_lowercase()
    ))
    .map_err(|message| ApiError::Internal(anyhow::anyhow!(message)))?;
    let secret = Password::parse(RandomId::secret()).map_err(|message| ApiError::Internal(anyhow::anyhow!(message)))?;
    let hash = password::hash(secret).await?;
    let Inserted::Created(user) = store::users::insert(&state.db, &email, &hash).await? else {
        return Err(ApiError::Internal(anyhow::anyhow!("probe email collided")));
    };
    let origin = Origin {
        ip: "127.0.0.1".into(),
        user_agent: "revocable-compare-probe".into(),
    };
    let issuer = state.issuer();
    let token_session = login::open_login_session(&issuer, &user, Kind::Token, &origin).await?;
    let access = state
        .keys
        .issue_for(&user.id, &token_session.id, user.token_version, 600)?;
    state
        .revocation
        .record_access_token(
            &token_session.id,
            &MintedAccess {
                jti: access.claims.jti.clone(),
                expires_at: access.claims.exp * 1000,
                token: (),
            },
        )
        .await?;
    let revoked = login::issue_access_token(&issuer, &user.id, &token_session.id, user.token_version).await?;
    state
        .revocation
        .denylist_token(
            &revoked.claims.jti,
            &token_session.id,
            &user.id,
            revoked.claims.exp * 1000,
        )
        .await?;
    let cookie_session = login::open_login_session(&issuer, &user, Kind::Cookie, &origin).await?;
    let session_state: HashMap<String, String> = HashMap::from([
        (USER_KEY.to_owned(), serde_json::to_string(&user.id).unwrap_or_default()),
        (
            LOGIN_SESSION_KEY.to_owned(),
            serde_json::to_string(&cookie_session.id).unwrap_or_default(),
        ),
        (LAST_SEEN_KEY.to_owned(), now_millis().to_string()),
    ]);
    let ttl = actix_web::cookie::time::Duration::seconds(300);
    let key = state
        .web_sessions
        .save(session_state, &ttl)
        .await
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
    Ok(Fixture {
        user_id: user.id,
        access_token: access.token,
        session_key: key.into(),
        token_session: token_session.id,
        cookie_session: cookie_session.id,
        revoked_jti: revoked.claims.jti,
    })
}

async fn remove(state: &AppState, fixture: &Fixture) -> Result<(), ApiError> {
    state.revocation.delete_user(&fixture.user_id, None).await?;
    Ok(())
}

async fn check_bearer<S: Strategy>(state: &web::Data<AppState>, token: &str) -> Result<(f64, f64), ApiError> {
    let request = TestRequest::default()
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .app_data(web::Data::from(state.keys.clone()))
        .app_data(web::Data::new(state.revocation.clone()))
        .to_http_request();
    time_checks(|| {
        let request = request.clone();
        async move { S::check(request).await.map(|_| ()) }
    })
    .await
}

/// The same checks with the cache switched off: what each strategy costs when it looks its state
/// up on every request (the token is verified first, as the extractors do).
async fn check_uncached(
    state: &web::Data<AppState>,
    strategy: &str,
    fixture: &Fixture,
) -> Result<(f64, f64), ApiError> {
    let revocation = state.revocation.uncached();
    let token = fixture.access_token.as_str();
    match strategy {
        "version" => {
            time_checks(|| async {
                let claims = state.keys.validate(token).map_err(ApiError::bearer)?;
                revocation
                    .version_is_current(&claims.sub, claims.ver)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from)
            })
            .await
        }
        "denylist" => {
            time_checks(|| async {
                let claims = state.keys.validate(token).map_err(ApiError::bearer)?;
                revocation
                    .is_denylisted(&claims.jti)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from)
            })
            .await
        }
        "allowlist" => {
            time_checks(|| async {
                let claims = state.keys.validate(token).map_err(ApiError::bearer)?;
                revocation
                    .session(&claims.sid)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from)
            })
            .await
        }
        _ => {
            let store = crate::web_session::CookieStateStore::new(revocation.clone(), state.settings.session_ttl);
            time_checks(|| async {
                let key = SessionKey::try_from(fixture.session_key.clone())
                    .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
                store
                    .load(&key)
                    .await
                    .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
                revocation
                    .session(&fixture.cookie_session)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::from)
            })
            .await
        }
    }
}

/// The cookie check as a request meets it: the session store's load, then the login session.
async fn check_cookie(state: &web::Data<AppState>, session_key: &str) -> Result<(f64, f64), ApiError> {
    time_checks(|| async {
        let key = SessionKey::try_from(session_key.to_owned())
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
        let loaded = state
            .web_sessions
            .load(&key)
            .await
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?
            .unwrap_or_default();
        let request = TestRequest::default().app_data(state.clone()).to_http_request();
        let session = request.get_session();
        for (name, value) in loaded {
            let value: serde_json::Value = serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
            let _ = session.insert(name, value);
        }
        strategy::check_cookie(&state.revocation, state.settings.session_idle_ttl, session)
            .await
            .map(|_| ())
    })
    .await
}

async fn measure_costs(state: &web::Data<AppState>) -> Result<Vec<CheckCost>, ApiError> {
    let fixture = fixture(state).await?;
    let outcome = cost_table(state, &fixture).await;
    remove(state, &fixture).await?;
    outcome
}

async fn cost_table(state: &web::Data<AppState>, fixture: &Fixture) -> Result<Vec<CheckCost>, ApiError> {
    let sizes = crate::compare::sizes::measure(state, fixture).await?;
    let redis = state.redis.is_some();
    let database = state.backend.name();
    let token = &fixture.access_token;
    let memory = if state.revocation.cache_enabled() {
        "none on a hit: the in-process cache (a miss reads the store once)".to_owned()
    } else {
        "the cache is off (REVOCATION_CACHE=off): as below".to_owned()
    };
    let mut costs = Vec::new();
    let (median, p99) = check_bearer::<Stateless>(state, token).await?;
    costs.push(CheckCost {
        strategy: "stateless",
        median_micros: median,
        p99_micros: p99,
        io: "none".into(),
        uncached: None,
        state: "none".into(),
        state_bytes: None,
    });
    let (median, p99) = check_bearer::<Version>(state, token).await?;
    costs.push(CheckCost {
        strategy: "version",
        median_micros: median,
        p99_micros: p99,
        io: memory.clone(),
        uncached: Some(
            uncached(
                state,
                "version",
                fixture,
                format!("{database}: the user's token_version"),
            )
            .await?,
        ),
        state: "8 B per user (one integer)".into(),
        state_bytes: Some((8, "per user")),
    });
    let (median, p99) = check_bearer::<Denylist>(state, token).await?;
    costs.push(CheckCost {
        strategy: "denylist",
        median_micros: median,
        p99_micros: p99,
        io: memory.clone(),
        uncached: Some(
            uncached(
                state,
                "denylist",
                fixture,
                if redis {
                    "Redis: one round trip (ZMSCORE of the entry and of the copy's completeness marker)".into()
                } else {
                    format!("{database}: the denylist row")
                },
            )
            .await?,
        ),
        state: format!(
            "{} B per revoked token in {database} + {} B in the {}; {} B per issued token to revoke a device at once",
            sizes.denylist_row,
            sizes.denylist_copy,
            if redis {
                "Redis copy and in memory"
            } else {
                "in-memory copy"
            },
            sizes.access_token_row
        ),
        state_bytes: Some((sizes.denylist_row + sizes.denylist_copy, "per revoked token")),
    });
    let (median, p99) = check_bearer::<Allowlist>(state, token).await?;
    costs.push(CheckCost {
        strategy: "allowlist",
        median_micros: median,
        p99_micros: p99,
        io: memory.clone(),
        uncached: Some(
            uncached(
                state,
                "allowlist",
                fixture,
                format!("{database}: the login session row"),
            )
            .await?,
        ),
        state: format!("{} B per login session", sizes.login_session_row),
        state_bytes: Some((sizes.login_session_row, "per login session")),
    });
    let (median, p99) = check_cookie(state, &fixture.session_key).await?;
    costs.push(CheckCost {
        strategy: "cookie",
        median_micros: median,
        p99_micros: p99,
        io: memory,
        uncached: Some(
            uncached(
                state,
                "cookie",
                fixture,
                if redis {
                    format!("Redis: the session state; {database}: the login session row")
                } else {
                    format!("{database}: the session state and the login session row")
                },
            )
            .await?,
        ),
        state: format!(
            "{} B per login session + {} B of session state",
            sizes.login_session_row, sizes.session_state
        ),
        state_bytes: Some((sizes.login_session_row + sizes.session_state, "per login session")),
    });
    Ok(costs)
}

async fn uncached(
    state: &web::Data<AppState>,
    strategy: &str,
    fixture: &Fixture,
    io: String,
) -> Result<UncachedCost, ApiError> {
    let (median_micros, p99_micros) = check_uncached(state, strategy, fixture).await?;
    Ok(UncachedCost {
        median_micros,
        p99_micros,
        io,
    })
}

mod sizes {
    //! Bytes each strategy keeps, read from the stores: payload bytes of the SQL rows (column
    //! values; the engine's own overhead comes on top), Redis's `MEMORY USAGE` for its keys.

    use deadpool_redis::redis;

    use super::{DenylistCopy, Fixture};
    use crate::error::ApiError;
    use crate::state::AppState;

    pub(super) struct Sizes {
        pub login_session_row: i64,
        pub access_token_row: i64,
        pub denylist_row: i64,
        pub denylist_copy: i64,
        pub session_state: i64,
    }

    const BIGINT: i64 = 8;

    pub(super) async fn measure(state: &AppState, fixture: &Fixture) -> Result<Sizes, ApiError> {
        let login_session_row: i64 = sqlx::query_scalar(
            "SELECT LENGTH(id) + LENGTH(user_id) + LENGTH(kind) + LENGTH(user_agent) + LENGTH(ip)
                    + COALESCE(LENGTH(revoke_reason), 0) + COALESCE(LENGTH(revoked_by_session_id), 0)
             FROM login_sessions WHERE id = $1",
        )
        .bind(&fixture.token_session)
        .fetch_one(&state.db)
        .await?;
        let login_session_row = login_session_row + 7 * BIGINT;
        let access_token_row: i64 =
            sqlx::query_scalar("SELECT LENGTH(jti) + LENGTH(session_id) FROM access_tokens WHERE jti = $1")
                .bind(&fixture.revoked_jti)
                .fetch_one(&state.db)
                .await?;
        let access_token_row = access_token_row + BIGINT;
        let denylist_row: i64 = sqlx::query_scalar("SELECT LENGTH(jti) FROM denylist WHERE jti = $1")
            .bind(&fixture.revoked_jti)
            .fetch_one(&state.db)
            .await?;
        let denylist_row = denylist_row + 2 * BIGINT;
        let (denylist_copy, session_state) = match (&state.redis, state.revocation.denylist()) {
            (Some(pool), DenylistCopy::Redis { key, .. }) => {
                let prefix = &state.settings.redis_prefix;
                let mut connection = pool.get().await?;
                // One sorted set holds every entry: its size shared out per member.
                let set_bytes: Option<i64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(key)
                    .query_async(&mut connection)
                    .await?;
                let members: i64 = redis::cmd("ZCARD").arg(key).query_async(&mut connection).await?;
                let deny_bytes = set_bytes.map(|bytes| bytes / members.max(1));
                let state_bytes: Option<i64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(format!("{prefix}session:{}", fixture.session_key))
                    .query_async(&mut connection)
                    .await?;
                let index_bytes: Option<i64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(format!("{prefix}session-of:{}", fixture.cookie_session))
                    .query_async(&mut connection)
                    .await?;
                (
                    deny_bytes.unwrap_or(0),
                    state_bytes.unwrap_or(0) + index_bytes.unwrap_or(0),
                )
            }
            _ => {
                let state_bytes: i64 = sqlx::query_scalar(
                    "SELECT LENGTH(session_key) + LENGTH(state) + COALESCE(LENGTH(login_session_id), 0)
                     FROM web_sessions WHERE session_key = $1",
                )
                .bind(&fixture.session_key)
                .fetch_one(&state.db)
                .await?;
                // The map holds the jti (a String: 24 B header + its bytes) and the expiry (8 B).
                let jti_bytes = fixture.revoked_jti.len() as i64;
                (24 + jti_bytes + BIGINT, state_bytes + BIGINT)
            }
        };
        Ok(Sizes {
            login_session_row,
            access_token_row,
            denylist_row,
            denylist_copy,
            session_state,
        })
    }
}
