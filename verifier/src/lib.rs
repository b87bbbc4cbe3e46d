//! Verify revocable's access tokens in another service, and still honour their revocation.
//!
//! A [`Verifier`] checks a token's signature against revocable's JWKS (cached as its
//! `Cache-Control` allows, refetched when a token names an unknown `kid`), its claims (`typ`,
//! `iss`, `aud`, `exp`, `nbf`), and then whether it was revoked, from state kept in memory by
//! revocable's revocation feed (`GET /oauth/revocations`). While the feed is not connected and
//! caught up, it asks revocable's introspection endpoint instead, token by token; if that cannot
//! answer either, the request is refused with 503. It never accepts a token blindly.
//!
//! Instead of the feed, [`Config::revocations_from_ssf_poll`] makes it poll a Shared Signals
//! stream (RFC 8936) of its client: every SET is verified (RS256, a key of the JWKS, `typ:
//! secevent+jwt`, `iss`, `aud` = the client id) before CAEP `session-revoked`, a password's
//! `credential-change` or RISC `account-purged` is applied, and acknowledged; one that fails is
//! applied to nothing and reported back in `setErrs`. The same introspection fallback covers the
//! time it is not caught up.
//!
//! ```no_run
//! # async fn example() {
//! use revocable_verifier::{Config, Verifier, Verified};
//! use actix_web::{App, HttpServer, web};
//!
//! let verifier = Verifier::start(Config::new("http://127.0.0.1:8080", "client-id", "client-secret"));
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(web::Data::new(verifier.clone()))
//!         .route("/hello", web::get().to(|user: Verified| async move { user.claims.sub.clone() }))
//! });
//! # }
//! ```

mod extract;
mod feed;
mod jwks;
mod revocations;
mod ssf;
pub mod verified_tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

pub use extract::{SignatureOnly, Verified};

/// What a token says about itself, as revocable issues it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub ver: i64,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Where revocable is and how this service authenticates to it.
#[derive(Clone)]
pub struct Config {
    /// revocable's base URL: the JWKS, introspection and the feed are found under it.
    pub issuer_url: String,
    /// Where the feed is read from, when it is not `issuer_url` (a proxy, say).
    pub feed_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// The `iss` and `aud` tokens must carry: revocable's issuer (its `PUBLIC_URL`, or
    /// `JWT_ISSUER` when that is set; by default `issuer_url`, as RFC 9068 has it) and its
    /// `JWT_AUDIENCE` (`revocable` by default).
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// With no event or heartbeat for this long the feed counts as down and introspection takes
    /// over: more than revocable's `FEED_HEARTBEAT` (15 s by default).
    pub feed_silence_limit: Duration,
    /// How long revocations are remembered: at least revocable's `ACCESS_TTL` plus leeway.
    pub remember_for: Duration,
    /// Timeout of every call to revocable.
    pub request_timeout: Duration,
    /// Tokens kept verified in memory (see [`verified_tokens`]): a token presented again is not
    /// verified again while its key is still published; `exp`, `nbf` and revocation are checked
    /// on every request. 0 verifies every token every time.
    pub verified_token_cache: usize,
    /// Where revocations are learnt from: the SSE feed (the default) or a Shared Signals stream.
    pub revocation_source: RevocationSource,
}

/// How a [`Verifier`] hears of revocations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationSource {
    /// revocable's SSE feed, `GET /oauth/revocations`: the lowest latency.
    Feed,
    /// A Shared Signals poll stream (RFC 8936) of this client, by its `stream_id`: the client needs
    /// `ssf.read`; each SET is verified against the JWKS before it is applied, and acknowledged.
    SsfPoll { stream_id: String },
}

impl Config {
    /// Learn revocations from the Shared Signals poll stream `stream_id` (created by this client
    /// with delivery `urn:ietf:rfc:8936`) instead of the SSE feed.
    pub fn revocations_from_ssf_poll(mut self, stream_id: &str) -> Self {
        self.revocation_source = RevocationSource::SsfPoll {
            stream_id: stream_id.to_owned(),
        };
        self
    }
}

impl Config {
    pub fn new(issuer_url: &str, client_id: &str, client_secret: &str) -> Self {
        let issuer_url = issuer_url.trim_end_matches('/').to_owned();
        Self {
            issuer: issuer_url.clone(),
            issuer_url,
            feed_url: None,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            audience: "revocable".to_owned(),
            leeway: Duration::from_secs(5),
            feed_silence_limit: Duration::from_secs(40),
            remember_for: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(3),
            verified_token_cache: 10_000,
            revocation_source: RevocationSource::Feed,
        }
    }
}

/// Why a token was refused; `reason` uses revocable's vocabulary where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NoCredential,
    Malformed,
    BadSignature,
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    RevokedVersion,
    RevokedJti,
    RevokedSession,
    /// Introspection said the token is not active (the feed was down, so no finer reason).
    Inactive,
    /// Neither the feed nor introspection could say whether the token was revoked.
    Unavailable,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoCredential => "no_credential",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::RevokedVersion => "revoked_version",
            Self::RevokedJti => "revoked_jti",
            Self::RevokedSession => "revoked_session",
            Self::Inactive => "inactive",
            Self::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.reason())
    }
}

/// Longest token looked at: a real one is a few hundred bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
const TOKEN_TYPE: &str = "at+jwt";

struct Inner {
    config: Config,
    http: reqwest::Client,
    keys: jwks::KeyCache,
    revocations: revocations::Revocations,
    validation: Validation,
    verified: verified_tokens::VerifiedTokens<Claims>,
    /// Admissions since expired tokens were last dropped.
    admissions: AtomicU32,
}

/// Expired tokens are dropped from the verified-token cache every this many admissions (and
/// whenever one is presented again).
const PURGE_EVERY_ADMISSIONS: u32 = 1024;

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// Cheap to clone; one per process, shared by every worker.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl Verifier {
    /// Builds the verifier and starts following the feed, or the Shared Signals stream the
    /// config names (on the current tokio runtime).
    pub fn start(config: Config) -> Self {
        let source = config.revocation_source.clone();
        let verifier = Self::without_feed(config);
        match source {
            RevocationSource::Feed => {
                tokio::spawn(feed::follow(verifier.clone()));
            }
            RevocationSource::SsfPoll { stream_id } => {
                tokio::spawn(ssf::follow_poll(verifier.clone(), stream_id));
            }
        }
        verifier
    }

    /// A verifier that never connects to the feed: every revocation check is an introspection.
    pub fn without_feed(config: Config) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .unwrap_or_default();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = config.leeway.as_secs();
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            inner: Arc::new(Inner {
                keys: jwks::KeyCache::new(format!("{}/.well-known/jwks.json", config.issuer_url)),
                revocations: revocations::Revocations::default(),
                http,
                validation,
                verified: verified_tokens::VerifiedTokens::new(config.verified_token_cache, config.leeway.as_secs()),
                admissions: AtomicU32::new(0),
                config,
            }),
        }
    }

    /// `true` while the feed is connected, caught up and not silent: revocations are then
    /// answered from memory.
    pub fn feed_is_live(&self) -> bool {
        self.inner.revocations.is_live(self.inner.config.feed_silence_limit)
    }

    /// Tokens held verified in memory.
    pub fn verified_tokens_held(&self) -> usize {
        self.inner.verified.len()
    }

    /// Signature and claims only: no revocation check. For comparison and for routes that
    /// knowingly accept a revoked token until it expires. A token verified before comes from
    /// memory while the JWKS in hand, still fresh, publishes its key; `exp` and `nbf` are
    /// checked again.
    pub async fn verify_signature(&self, token: &str) -> Result<Claims, Rejection> {
        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|byte| *byte == b'.').count() != 2 {
            return Err(Rejection::Malformed);
        }
        match self.inner.verified.get(token, now_millis()) {
            Some(Ok(entry)) if entry.kid.as_deref().is_some_and(|kid| self.inner.keys.publishes(kid)) => {
                return Ok(entry.claims.clone());
            }
            Some(Err(verified_tokens::TimeCheck::Expired)) => return Err(Rejection::Expired),
            Some(Err(verified_tokens::TimeCheck::NotYetValid)) => return Err(Rejection::NotYetValid),
            // Not cached, or the JWKS must be read again first: verify it in full.
            _ => {}
        }
        let (claims, kid) = self.verify_in_full(token).await?;
        if !self.inner.verified.is_enabled() {
            return Ok(claims);
        }
        if self.inner.admissions.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY_ADMISSIONS == 0 {
            self.inner.verified.purge_expired(now_millis());
        }
        let entry = self.inner.verified.admit(
            token,
            verified_tokens::Verified {
                expires_at: claims.exp,
                not_before: claims.nbf,
                claims,
                kid: Some(kid.into_boxed_str()),
                key_verifies_until: None,
            },
        );
        Ok(entry.claims.clone())
    }

    /// Signature and claims, with the key the JWKS publishes; the claims and that key's `kid`.
    async fn verify_in_full(&self, token: &str) -> Result<(Claims, String), Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(Rejection::BadSignature);
        }
        if header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(TOKEN_TYPE) {
            return Err(Rejection::Malformed);
        }
        let kid = header.kid.ok_or(Rejection::BadSignature)?;
        let verified = &self.inner.verified;
        let key = self
            .inner
            .keys
            .key(&self.inner.http, &kid, |published| {
                // A key no longer published stops verifying: its tokens leave the cache.
                verified.retain_keys(|kid, _| kid.is_some_and(|kid| published.contains_key(kid)));
            })
            .await?
            .ok_or(Rejection::BadSignature)?;
        jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map(|data| (data.claims, kid))
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => Rejection::BadSignature,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidAudience => Rejection::WrongAudience,
                ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                _ => Rejection::Malformed,
            })
    }

    /// Signature, claims, and revocation: from the feed's state while it is live, else by
    /// introspection.
    pub async fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let claims = self.verify_signature(token).await?;
        let limit = self.inner.config.feed_silence_limit;
        match self.inner.revocations.check(&claims, limit) {
            revocations::Answer::Revoked(reason) => Err(reason),
            revocations::Answer::Valid => Ok(claims),
            revocations::Answer::Unknown => match self.introspect(token).await {
                Ok(true) => Ok(claims),
                Ok(false) => Err(Rejection::Inactive),
                Err(error) => {
                    tracing::warn!(error = %error, "introspection failed while the revocation feed is down");
                    Err(Rejection::Unavailable)
                }
            },
        }
    }

    /// RFC 7662: is the token active? Only `active` is read.
    pub async fn introspect(&self, token: &str) -> Result<bool, reqwest::Error> {
        #[derive(Deserialize)]
        struct Answer {
            active: bool,
        }
        let config = &self.inner.config;
        let answer: Answer = self
            .inner
            .http
            .post(format!("{}/oauth/introspect", config.issuer_url))
            .basic_auth(&config.client_id, Some(&config.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer.active)
    }
}
