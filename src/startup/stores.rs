//! The pools, stores, keys and limits of an `AppState`, opened and migrated; nothing started.

use std::time::Duration;

use actix_web::cookie::Key;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

use crate::account::Accounts;
use crate::auth::jwt::JwtKeys;
use crate::auth::login::{Issuer, Lifetimes};
use crate::auth::rate_limit::{LoginLimit, RateLimit};
use crate::auth::throttle::AccountLock;
use crate::config::Settings;
use crate::domain::Clock;
use crate::oauth::ClientEndpoints;
use crate::revocation::cookie_state::WebSessionStore;
use crate::revocation::{DenylistCopy, RedisFeed, Revocation, RevocationSettings, SyncSettings};
use crate::state::AppState;
use crate::store::{self, Backend};
use crate::web_session::CookieStateStore;

/// Reset and verification links asked for per recipient address: three at once, then one more
/// every 20 seconds.
const MESSAGES_PER_RECIPIENT_PER_MINUTE: u32 = 3;

/// The pools, stores and keys, with migrations applied; nothing started yet. The operator's
/// commands work through this too, so what they change goes through the same layers.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    build_state_with_clock(settings, Clock::System).await
}

/// As `build_state`, with the clock the app measures time on.
pub async fn build_state_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<AppState> {
    let backend = Backend::of(&settings.database_url);
    store::create_database_if_missing(&settings.database_url)
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the {} database: {error}", backend.name()))?;
    let db = store::connect_with_limit(&settings.database_url, settings.database_max_connections)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the {} database: {error}", backend.name()))?;
    store::migrate(&db).await?;
    let redis = match &settings.redis_url {
        None => None,
        Some(url) => Some(
            deadpool_redis::Config::from_url(url)
                .builder()
                .map_err(|error| anyhow::anyhow!("REDIS_URL: {error}"))?
                .max_size(32)
                .wait_timeout(Some(Duration::from_secs(2)))
                .create_timeout(Some(Duration::from_secs(2)))
                .recycle_timeout(Some(Duration::from_secs(2)))
                .runtime(deadpool_redis::Runtime::Tokio1)
                .build()
                .map_err(|error| anyhow::anyhow!("REDIS_URL: {error}"))?,
        ),
    };
    let (backing_sessions, denylist) = match &redis {
        None => (WebSessionStore::Sql(db.clone()), DenylistCopy::Database),
        Some(pool) => (
            WebSessionStore::Redis {
                pool: pool.clone(),
                prefix: settings.redis_prefix.clone(),
            },
            DenylistCopy::redis(pool.clone(), &settings.redis_prefix),
        ),
    };
    let keys = JwtKeys::load(&settings, &db, clock.clone()).await?;
    let csrf_key = store::secrets::get_or_create(&db, "csrf_key", crate::domain::RandomId::secret).await?;
    let anonymous_csrf = crate::auth::csrf::AnonymousCsrf::new(csrf_key.into_bytes(), settings.cookie_secure);
    let known_browser_key =
        store::secrets::get_or_create(&db, "known_browser_key", crate::domain::RandomId::secret).await?;
    let known_browsers = crate::auth::known_browser::KnownBrowsers::new(
        known_browser_key.into_bytes(),
        settings.known_browser_ttl,
        settings.cookie_secure,
    );
    let revocation = Revocation::new(
        db.clone(),
        denylist,
        backing_sessions,
        revocation_settings(&settings, &redis, clock.clone()),
    );
    let web_sessions = CookieStateStore::new(revocation.clone(), settings.session_ttl);
    let places = crate::geoip::Places::new(match &settings.geoip_db {
        None => None,
        Some(path) => Some(crate::geoip::Geoip::open(path).map_err(|error| anyhow::anyhow!("GEOIP_DB: {error}"))?),
    });
    let totp_sealing = crate::auth::totp::SealingKey::load(&settings, &db).await?;
    let shared_limits = redis.clone().map(|pool| (pool, settings.redis_prefix.clone()));
    let mailer = crate::mail::Mailer::new(db.clone(), &settings)?;
    let ssf = crate::ssf::Ssf::new(
        db.clone(),
        revocation.clone(),
        settings.issuer(),
        settings.public_origin(),
        settings.ssf_min_verification_interval,
    );
    let keys = std::sync::Arc::new(keys);
    let issuer = Issuer {
        db: db.clone(),
        keys: keys.clone(),
        revocation: revocation.clone(),
        lifetimes: Lifetimes::of(&settings),
        max_sessions_per_user: settings.max_sessions_per_user,
        mailer: mailer.clone(),
        places: places.clone(),
    };
    let stopping = tokio::sync::watch::Sender::new(false);
    let client_endpoints = std::sync::Arc::new(ClientEndpoints {
        db: db.clone(),
        keys: keys.clone(),
        revocation: revocation.clone(),
        client_auth_failures: RateLimit::new(
            "client-auth",
            settings.client_auth_failures_per_minute,
            shared_limits.clone(),
            clock.clone(),
        ),
        access_ttl: settings.access_ttl,
        feed_window: settings.access_ttl + settings.jwt_leeway,
        feed_heartbeat: settings.feed_heartbeat,
        stopping: stopping.clone(),
    });
    Ok(AppState {
        issuer: std::sync::Arc::new(issuer),
        accounts: std::sync::Arc::new(Accounts {
            db: db.clone(),
            revocation: revocation.clone(),
            mailer: mailer.clone(),
            known_browsers,
            totp_sealing,
            mail_limit: RateLimit::new(
                "mail",
                MESSAGES_PER_RECIPIENT_PER_MINUTE,
                shared_limits.clone(),
                clock.clone(),
            ),
            sudo_ttl: settings.sudo_ttl,
            lock: AccountLock::of(&settings, clock.clone()),
        }),
        ssf,
        backend,
        redis,
        keys,
        revocation,
        web_sessions,
        login_limit: std::sync::Arc::new(LoginLimit {
            attempts: RateLimit::new(
                "login",
                settings.login_rate_per_minute,
                shared_limits.clone(),
                clock.clone(),
            ),
        }),
        client_endpoints,
        mailer,
        anonymous_csrf,
        places,
        stopping,
        db,
        settings,
    })
}

fn revocation_settings(settings: &Settings, redis: &Option<deadpool_redis::Pool>, clock: Clock) -> RevocationSettings {
    RevocationSettings {
        clock,
        cache: settings.revocation_cache,
        capacity: settings.revocation_cache_capacity,
        time_to_live: settings.access_ttl,
        log_retention: settings.revocation_log_retention,
        activity_interval: settings.last_seen_interval(),
        expiry_tolerance: settings.jwt_leeway + Duration::from_secs(1),
        sync: SyncSettings {
            backend: Backend::of(&settings.database_url),
            database_url: settings.database_url.clone(),
            redis: match (redis, &settings.redis_url) {
                (Some(pool), Some(url)) => Some(RedisFeed {
                    url: url.clone(),
                    pool: pool.clone(),
                    channel: format!("{}revocations", settings.redis_prefix),
                }),
                _ => None,
            },
            push: settings.revocation_push,
            poll_interval: settings.revocation_poll_interval,
            max_staleness: settings.revocation_max_staleness,
        },
    }
}

/// The key that encrypts the session cookie, generated once and kept with the other secrets.
pub(super) async fn cookie_key(state: &AppState) -> anyhow::Result<Key> {
    let encoded = store::secrets::get_or_create(&state.db, "cookie_key", || {
        let mut bytes = [0u8; 64];
        rand::rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    })
    .await?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded)?;
    Ok(Key::try_from(bytes.as_slice())?)
}
