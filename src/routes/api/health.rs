//! Liveness, readiness, and the public keys.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};

use crate::auth::jwt::JwtKeys;
use crate::config::Settings;
use crate::revocation::Revocation;
use crate::ssf::Ssf;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    responses(
        (status = 200, description = "the process runs", body = Object)
    )
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Redis's answer to PING for `/readyz`: asked at most twice a second and for at most 300 ms,
/// however often readiness is asked; callers arriving during a probe share its answer.
pub struct RedisProbe {
    pool: Option<deadpool_redis::Pool>,
    last: std::sync::Mutex<Option<(Instant, bool)>>,
    probing: tokio::sync::Mutex<()>,
}

const READY_WITHIN: Duration = Duration::from_millis(600);
const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

impl RedisProbe {
    pub fn new(pool: Option<deadpool_redis::Pool>) -> Self {
        Self {
            pool,
            last: std::sync::Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    fn recent(&self) -> Option<bool> {
        let last = *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        last.filter(|(at, _)| at.elapsed() < PROBE_EVERY).map(|(_, up)| up)
    }

    async fn state(&self) -> &'static str {
        let Some(pool) = &self.pool else {
            return "not configured";
        };
        let up = match self.recent() {
            Some(up) => up,
            None => {
                let _probing = self.probing.lock().await;
                match self.recent() {
                    Some(up) => up,
                    None => {
                        let ping = async {
                            let mut connection = pool.get().await.ok()?;
                            redis::cmd("PING").query_async::<String>(&mut connection).await.ok()
                        };
                        let up = tokio::time::timeout(PROBE_TIMEOUT, ping).await.ok().flatten().is_some();
                        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), up));
                        up
                    }
                }
            }
        };
        if up { "up" } else { "down" }
    }
}

/// Whether this instance can answer checks correctly, within a second whatever is down. It can
/// while its revocation lease is current (memory answers), or while the database answers its
/// polls (the database answers). Redis alone being down is no reason to leave the rotation: the
/// Bearer checks and revocations do not need it. The database's state is the revocation lease's
/// (renewed here as a check renews it when it has lapsed: one read shared by every caller), and
/// Redis's a cached PING.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: whether this instance can answer checks correctly",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "neither memory nor the database can answer checks", body = crate::error::ErrorResponse)
    )
)]
pub async fn readyz(revocation: web::Data<Revocation>, redis: web::Data<RedisProbe>) -> HttpResponse {
    // A lapsed lease is renewed as a check would renew it (one read for every caller at once),
    // within the second readiness promises.
    let _ = tokio::time::timeout(READY_WITHIN, revocation.renew_lease()).await;
    let feed = revocation.feed_status();
    let staleness = revocation.max_staleness().as_millis() as u64;
    let database_up = feed.confirmed_millis_ago.is_some_and(|ago| ago < staleness);
    let ready = feed.current || database_up;
    let mut body = serde_json::json!({
        "ready": ready,
        "database": if database_up { "up" } else { "down" },
        "redis": redis.state().await,
        "revocations": {
            "current": feed.current,
            "applied_seq": feed.applied_seq,
            "head_seq": feed.head_seq,
            "known_seq": feed.known_seq,
            "confirmed_ms_ago": feed.confirmed_millis_ago,
            "cache": if revocation.cache_enabled() { "on" } else { "off" },
            "postgres_listening": feed.postgres_listening,
            "redis_subscribed": feed.redis_subscribed,
        },
    });
    if ready {
        return HttpResponse::Ok().json(body);
    }
    body["error"] = "service_unavailable".into();
    body["error_description"] = "the database does not answer and this instance cannot vouch for its memory".into();
    body["unavailable"] = "database".into();
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
        .json(body)
}

/// The public keys. Clients may cache them for `JWKS_MAX_AGE`: a rotated-in key is published
/// that long before it signs, so a cache never lacks the key of a token it is shown.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    summary = "Public keys (EdDSA signing)",
    responses(
        (status = 200, description = "a JWK set; empty with HS256", body = Object)
    )
)]
pub async fn jwks(keys: web::Data<JwtKeys>, ssf: web::Data<Ssf>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={}", keys.jwks_max_age().as_secs()),
        ))
        .json(jwks_with_set_key(&keys, &ssf).await)
}

/// The access-token keys and, once a stream has made it, the RS256 key that signs SETs.
async fn jwks_with_set_key(keys: &JwtKeys, ssf: &Ssf) -> serde_json::Value {
    let mut jwks = keys.jwks();
    if let Some(key) = ssf.published_key().await
        && let Some(keys) = jwks["keys"].as_array_mut()
    {
        keys.push(key.public_jwk().clone());
    }
    jwks
}

/// The server's public policy (`GET /api/policy`), which tells the scenario how long to wait:
/// fixed at start-up, and registered as app data of its own.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Policy {
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
    pub session_idle_ttl_seconds: u64,
    pub session_ttl_seconds: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub jwt_leeway_seconds: u64,
    pub jwt_algorithm: String,
}

/// The server's public token and session policy, so clients (and `revocable demo`) know the limits.
#[utoipa::path(
    get,
    path = "/api/policy",
    tag = "operations",
    summary = "The server's token and session lifetimes",
    responses(
        (status = 200, description = "the policy", body = Policy)
    )
)]
pub async fn policy(policy: web::Data<Policy>) -> HttpResponse {
    HttpResponse::Ok().json(&**policy)
}

impl Policy {
    pub fn of(settings: &Settings, keys: &JwtKeys) -> Self {
        Self {
            access_ttl_seconds: settings.access_ttl.as_secs(),
            refresh_ttl_seconds: settings.refresh_ttl.as_secs(),
            session_idle_ttl_seconds: settings.session_idle_ttl.as_secs(),
            session_ttl_seconds: settings.session_ttl.as_secs(),
            refresh_reuse_grace_seconds: settings.refresh_reuse_grace.as_secs(),
            jwt_leeway_seconds: settings.jwt_leeway.as_secs(),
            jwt_algorithm: keys.algorithm_name().to_owned(),
        }
    }
}
