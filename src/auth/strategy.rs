//! The five ways a request's credential is checked, each a type, so that a handler's signature
//! says how its route is protected: `Authenticated<Version>`, `Authenticated<Cookie>`, …
//!
//! | strategy    | checks                                                            |
//! |-------------|-------------------------------------------------------------------|
//! | `Stateless` | the JWT itself (signature, `exp`, `nbf`, `iss`, `aud`, `typ`); no I/O |
//! | `Version`   | + `ver` equals the user's current `token_version`                 |
//! | `Denylist`  | + the `jti` is not denylisted                                     |
//! | `Allowlist` | + the login session (`sid`) is live                               |
//! | `Cookie`    | the server-side session, and its login session is live            |
//!
//! Every lookup goes through `Revocation`, never to a store directly.

use std::marker::PhantomData;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::RequestSettings;
use crate::auth::jwt::{Claims, JwtKeys};
use crate::error::{ApiError, RejectReason};
use crate::revocation::Revocation;
use crate::revocation::cookie_state::LOGIN_SESSION_KEY;

pub const USER_KEY: &str = "user_id";
pub const LAST_SEEN_KEY: &str = "seen";
/// When the session last proved the password (log-in or re-authentication), for sudo mode.
pub const AUTHENTICATED_AT_KEY: &str = "authenticated_at";

/// How the caller proved who they are.
#[derive(Clone)]
pub enum Credential {
    Bearer(Claims),
    Cookie(CookieLogin),
}

/// What the account code needs of a browser's session, read once by the cookie check: the
/// session itself stays with the routes, which are its only writers.
#[derive(Clone, Copy)]
pub struct CookieLogin {
    /// When the browser last proved the password (`AUTHENTICATED_AT_KEY`); 0 when it never did.
    pub authenticated_at: i64,
}

impl CookieLogin {
    pub fn of(session: &Session) -> Self {
        Self {
            authenticated_at: session.get::<i64>(AUTHENTICATED_AT_KEY).ok().flatten().unwrap_or(0),
        }
    }
}

#[derive(Clone)]
pub struct Principal {
    pub user_id: String,
    pub session_id: String,
    pub credential: Credential,
}

pub trait Strategy: 'static {
    const NAME: &'static str;

    fn check(request: HttpRequest) -> impl Future<Output = Result<Principal, ApiError>>;
}

/// What `startup::build` registered as `web::Data<T>`: borrowed from the request, not cloned.
fn registered<T: 'static>(request: &HttpRequest) -> &T {
    match request.app_data::<web::Data<T>>() {
        Some(data) => data.get_ref(),
        None => panic!("{} is registered in startup::build", std::any::type_name::<T>()),
    }
}

/// The token of `Authorization: Bearer …`.
pub fn bearer_token(request: &HttpRequest) -> Result<&str, RejectReason> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(RejectReason::NoCredential)?
        .to_str()
        .map_err(|_| RejectReason::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(RejectReason::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(RejectReason::Malformed);
    }
    Ok(token.trim())
}

fn stateless(request: &HttpRequest) -> Result<Claims, ApiError> {
    let token = bearer_token(request).map_err(ApiError::bearer)?;
    check_stateless(registered(request), token)
}

// The checks below are what each strategy runs once the credential is read from the request:
// the extractors call them, and `/compare` times them directly.

/// The token itself: signature, `exp`, `nbf`, `iss`, `aud`, `typ`.
pub fn check_stateless(keys: &JwtKeys, token: &str) -> Result<Claims, ApiError> {
    keys.validate(token).map_err(ApiError::bearer)
}

fn principal(claims: Claims) -> Principal {
    Principal {
        user_id: claims.sub.clone(),
        session_id: claims.sid.clone(),
        credential: Credential::Bearer(claims),
    }
}

pub async fn check_version(revocation: &Revocation, claims: &Claims) -> Result<(), ApiError> {
    let current = revocation.version_is_current(&claims.sub, claims.ver).await?;
    if !current {
        return Err(ApiError::bearer(RejectReason::RevokedVersion));
    }
    Ok(())
}

pub async fn check_denylist(revocation: &Revocation, claims: &Claims) -> Result<(), ApiError> {
    let denied = revocation.is_denylisted(&claims.jti).await?;
    if denied {
        return Err(ApiError::bearer(RejectReason::RevokedJti));
    }
    Ok(())
}

/// The token's login session is live; its activity is recorded in memory (written to the
/// database at most once a minute, off the request's path).
pub async fn check_allowlist(revocation: &Revocation, claims: &Claims) -> Result<(), ApiError> {
    let now = revocation.clock().now_millis();
    match revocation.session(&claims.sid, now).await? {
        Some(session) if session.is_live(now) && session.user_id == claims.sub => {
            revocation.record_activity(&claims.sid, &session, now, None);
            Ok(())
        }
        _ => Err(ApiError::bearer(RejectReason::RevokedSession)),
    }
}

pub struct Stateless;
pub struct Version;
pub struct Denylist;
pub struct Allowlist;
pub struct Cookie;
/// Every Bearer check at once, for the routes that change an account: version, denylist and
/// allowlist must all pass.
pub struct Strict;

impl Strategy for Stateless {
    const NAME: &'static str = "stateless";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        stateless(&request).map(principal)
    }
}

impl Strategy for Version {
    const NAME: &'static str = "version";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        let claims = stateless(&request)?;
        check_version(registered(&request), &claims).await?;
        Ok(principal(claims))
    }
}

impl Strategy for Denylist {
    const NAME: &'static str = "denylist";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        let claims = stateless(&request)?;
        check_denylist(registered(&request), &claims).await?;
        Ok(principal(claims))
    }
}

impl Strategy for Allowlist {
    const NAME: &'static str = "allowlist";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        let claims = stateless(&request)?;
        check_allowlist(registered(&request), &claims).await?;
        Ok(principal(claims))
    }
}

impl Strategy for Strict {
    const NAME: &'static str = "strict";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        let claims = stateless(&request)?;
        let revocation = registered(&request);
        check_version(revocation, &claims).await?;
        check_denylist(revocation, &claims).await?;
        check_allowlist(revocation, &claims).await?;
        Ok(principal(claims))
    }
}

impl Cookie {
    /// The one cookie check, for the JSON routes (`Strategy::check`, which adds the CSRF check
    /// of a JSON request) and the pages (`routes::web::page::WebUser`, whose forms carry their
    /// own token, checked by `CsrfForm`).
    pub async fn authenticate(request: &HttpRequest) -> Result<Principal, ApiError> {
        let idle_ttl = registered::<RequestSettings>(request).session_idle_ttl;
        check_cookie(registered(request), idle_ttl, request.get_session()).await
    }
}

impl Strategy for Cookie {
    const NAME: &'static str = "cookie";

    async fn check(request: HttpRequest) -> Result<Principal, ApiError> {
        let principal = Cookie::authenticate(&request).await?;
        crate::auth::csrf::verify_api(&request, &request.get_session())?;
        Ok(principal)
    }
}

/// The cookie check: server-side state names a login session that is live, and the session has
/// not been idle longer than `idle_ttl` (`SESSION_IDLE_TTL`). State that names a session no
/// longer live is purged, so the browser's cookie is dropped.
pub async fn check_cookie(
    revocation: &Revocation,
    idle_ttl: std::time::Duration,
    session: Session,
) -> Result<Principal, ApiError> {
    let login_session_id = match session.get::<String>(LOGIN_SESSION_KEY) {
        Ok(Some(id)) => id,
        _ => return Err(ApiError::cookie(RejectReason::NoCredential)),
    };
    let user_id = session
        .get::<String>(USER_KEY)
        .ok()
        .flatten()
        .ok_or(ApiError::cookie(RejectReason::Malformed))?;
    if let Err(error) = check_login_session(revocation, idle_ttl, &login_session_id, &user_id).await {
        if matches!(error, ApiError::Unauthorized { .. }) {
            session.purge();
        }
        return Err(error);
    }
    Ok(Principal {
        user_id,
        session_id: login_session_id,
        credential: Credential::Cookie(CookieLogin::of(&session)),
    })
}

/// The login session a cookie's state names is `user_id`'s and live. Activity moves the idle
/// limit in memory and is written at most once per `last_seen_interval`, off the request's path.
pub async fn check_login_session(
    revocation: &Revocation,
    idle_ttl: std::time::Duration,
    login_session_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    let now = revocation.clock().now_millis();
    let login_session = revocation.session(login_session_id, now).await?;
    let Some(login_session) = login_session.filter(|found| found.user_id == user_id) else {
        return Err(ApiError::cookie(RejectReason::RevokedSession));
    };
    if login_session.revoked {
        return Err(ApiError::cookie(RejectReason::RevokedSession));
    }
    if !login_session.is_live(now) {
        return Err(ApiError::cookie(RejectReason::Expired));
    }
    let idle_limit = idle_ttl.as_millis() as i64;
    let idle_expires_at = (now + idle_limit).min(login_session.expires_at);
    revocation.record_activity(login_session_id, &login_session, now, Some(idle_expires_at));
    Ok(())
}

/// `revocable_checks_total{strategy, outcome, reason}` for `/metrics`: accepted, or refused and why.
fn count_check(strategy: &'static str, checked: &Result<Principal, ApiError>) {
    let (outcome, reason) = match checked {
        Ok(_) => ("accepted", "none"),
        Err(ApiError::Unauthorized { reason, .. }) => ("refused", reason.as_str()),
        Err(_) => ("error", "none"),
    };
    CHECK_COUNTERS.with_borrow_mut(|counters| {
        let labels = [strategy, outcome, reason];
        let same = |held: &[&'static str; 3]| held.iter().zip(&labels).all(|(a, b)| std::ptr::eq(*a, *b));
        match counters.iter().find(|(held, _)| same(held)) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!("revocable_checks_total", "strategy" => strategy, "outcome" => outcome, "reason" => reason);
                counter.increment(1);
                counters.push((labels, counter));
            }
        }
    });
}

thread_local! {
    /// Each worker's handles to the check counters it has used: the label sets are a few dozen
    /// static strings, found by address, so counting a check builds no labels.
    static CHECK_COUNTERS: std::cell::RefCell<Vec<([&'static str; 3], metrics::Counter)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A request authenticated by strategy `S`; the type is the route's protection.
pub struct Authenticated<S> {
    pub principal: Principal,
    _strategy: PhantomData<S>,
}

impl<S> std::ops::Deref for Authenticated<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S: Strategy> FromRequest for Authenticated<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let checked = S::check(request).await;
            count_check(S::NAME, &checked);
            Ok(Self {
                principal: checked?,
                _strategy: PhantomData,
            })
        })
    }
}

/// A Bearer token (all checks, `Strict`) or, when no `Authorization` header is sent, a session
/// cookie: for the routes API.md opens to both.
pub struct BearerOrCookie(pub Principal);

impl FromRequest for BearerOrCookie {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let principal = if request.headers().contains_key(header::AUTHORIZATION) {
                Strict::check(request).await?
            } else {
                Cookie::check(request).await?
            };
            Ok(Self(principal))
        })
    }
}
