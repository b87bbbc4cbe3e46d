//! CSRF protection.
//!
//! Logged-in forms use the synchronizer-token pattern: a random token kept in the server-side
//! session, echoed in a hidden field. Forms shown before log-in (log-in, sign-up) use a signed
//! double-submit cookie instead — the field carries an HMAC of a random value kept in a cookie —
//! so that a visitor who has not logged in makes the server store nothing. Both are compared in
//! constant time. JSON routes under cookie authentication accept a state-changing request only
//! when its `Origin` is this site or it carries the session's token in `X-CSRF-Token`;
//! SameSite=Lax on the cookies is the second line.

use actix_session::Session;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::RequestSettings;
use crate::domain::RandomId;
use crate::error::ApiError;
use crate::revocation::cookie_state::LOGIN_SESSION_KEY;

const SESSION_KEY: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";

/// The signing key of the double-submit tokens and the names of their cookie.
#[derive(Clone)]
pub struct AnonymousCsrf {
    key: Vec<u8>,
    cookie_name: &'static str,
    secure: bool,
}

impl AnonymousCsrf {
    pub fn new(key: Vec<u8>, secure: bool) -> Self {
        Self {
            key,
            cookie_name: if secure {
                "__Host-revocable-csrf"
            } else {
                "revocable_csrf"
            },
            secure,
        }
    }

    fn sign(&self, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(nonce.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn nonce(&self, request: &HttpRequest) -> Option<String> {
        request
            .cookie(self.cookie_name)
            .map(|cookie| cookie.value().to_owned())
            .filter(|value| value.len() == 43)
    }

    /// The token for a form shown before log-in, and the cookie to set when the browser has none.
    pub fn token(&self, request: &HttpRequest) -> (String, Option<Cookie<'static>>) {
        match self.nonce(request) {
            Some(nonce) => (self.sign(&nonce), None),
            None => {
                let nonce = RandomId::secret();
                let cookie = Cookie::build(self.cookie_name, nonce.clone())
                    .path("/")
                    .http_only(true)
                    .secure(self.secure)
                    .same_site(SameSite::Lax)
                    .finish();
                (self.sign(&nonce), Some(cookie))
            }
        }
    }

    fn matches(&self, request: &HttpRequest, presented: &str) -> bool {
        self.nonce(request)
            .is_some_and(|nonce| bool::from(self.sign(&nonce).as_bytes().ct_eq(presented.as_bytes())))
    }
}

/// The session's token, created on first use. Only for sessions that are logged in: before
/// log-in, forms take `AnonymousCsrf::token`.
pub fn token(session: &Session) -> Result<String, ApiError> {
    if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
        return Ok(token);
    }
    let token = RandomId::secret();
    session
        .insert(SESSION_KEY, &token)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))?;
    Ok(token)
}

/// Replaces the token, as at log-in.
pub fn rotate(session: &Session) -> Result<String, ApiError> {
    session.remove(SESSION_KEY);
    token(session)
}

fn matches_session(session: &Session, presented: &str) -> bool {
    match session.get::<String>(SESSION_KEY) {
        Ok(Some(expected)) => !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes())),
        _ => false,
    }
}

/// Whether a form shown to this session carries the session's token (logged in) or a signed
/// double-submit token (not yet): the page and the check must agree, so both ask here.
pub fn uses_session_token(session: &Session) -> bool {
    session.contains_key(LOGIN_SESSION_KEY)
}

/// A form's hidden field: the session's token once logged in, the signed cookie before.
pub fn verify_form(
    request: &HttpRequest,
    session: &Session,
    anonymous: &AnonymousCsrf,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    let presented = presented.unwrap_or("");
    let valid = if uses_session_token(session) {
        matches_session(session, presented)
    } else {
        !presented.is_empty() && anonymous.matches(request, presented)
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::CsrfFailed("missing or invalid CSRF token".into()))
    }
}

/// The host and the scheme this request was sent with, as the browser saw them: the `Host`
/// header, or what a trusted proxy forwarded. `X-Forwarded-Host`, `X-Forwarded-Proto` and
/// `Forwarded` from anyone else are ignored, or an attacker could name their own site there and
/// pass the same-origin check.
fn own_host(request: &HttpRequest, trusted_proxies: &[ipnet::IpNet]) -> Option<(String, String)> {
    let from_trusted_proxy = request
        .peer_addr()
        .is_some_and(|peer| trusted_proxies.iter().any(|net| net.contains(&peer.ip())));
    if from_trusted_proxy {
        let info = request.connection_info();
        return Some((info.scheme().to_owned(), info.host().to_owned()));
    }
    let host = match request.headers().get(header::HOST) {
        Some(host) => host.to_str().ok().map(str::to_owned),
        None => request.uri().authority().map(|authority| authority.as_str().to_owned()),
    }?;
    Some(("http".to_owned(), host))
}

/// `scheme://host[:port]` in one spelling: lower case, without the scheme's default port.
/// `None` for anything else (a path, user information, an opaque `null`).
fn normalized_origin(scheme: &str, host: &str) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let host = host.strip_suffix(default_port).unwrap_or(&host);
    Some(format!("{scheme}://{host}"))
}

/// Whether the `Origin` header names this site: scheme, host and port all equal to where the
/// request was sent, or to `PUBLIC_URL`. With `COOKIE_SECURE` on, only an `https://` page is this
/// site: a page served over plain HTTP on the same host (one a network attacker can write) is not.
fn origin_is_own(request: &HttpRequest, origin: &str) -> bool {
    let settings = request.app_data::<actix_web::web::Data<RequestSettings>>();
    let Some(presented) = origin
        .split_once("://")
        .and_then(|(scheme, host)| normalized_origin(scheme, host))
    else {
        return false;
    };
    if let Some(public) = settings
        .and_then(|settings| settings.public_origin.as_deref())
        .and_then(|public| public.split_once("://"))
        .and_then(|(scheme, host)| normalized_origin(scheme, host))
        && public == presented
    {
        return true;
    }
    let trusted_proxies = settings.map_or(&[][..], |settings| settings.trusted_proxies.as_slice());
    let Some((scheme, host)) = own_host(request, trusted_proxies) else {
        return false;
    };
    let secure = settings.is_some_and(|settings| settings.cookie_secure);
    let schemes: &[&str] = if secure || scheme.eq_ignore_ascii_case("https") {
        &["https"]
    } else {
        // Cookies that are not Secure travel over plain HTTP anyway; a TLS front this instance
        // was not told about (no TRUSTED_PROXIES) still makes `https://` pages of the same host.
        &["http", "https"]
    };
    schemes
        .iter()
        .filter_map(|scheme| normalized_origin(scheme, &host))
        .any(|own| own == presented)
}

/// What the browser says of where a request comes from: `Sec-Fetch-Site` is `value`.
fn fetch_site_is(request: &HttpRequest, value: &[u8]) -> bool {
    request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(value))
}

/// Whether the `Origin` header names this site; `None` when there is none. One that is not text
/// (an opaque `null` origin included) is not this site.
fn origin_header_is_own(request: &HttpRequest) -> Option<bool> {
    let origin = request.headers().get(header::ORIGIN)?;
    Some(origin.to_str().is_ok_and(|origin| origin_is_own(request, origin)))
}

/// A state-changing form must not come from another site: refused when the browser says so
/// (`Sec-Fetch-Site: cross-site`) or when its `Origin` is not this site (an opaque `null` origin
/// included). Browsers that send neither header still need the token, as every form does.
pub fn verify_same_site(request: &HttpRequest) -> Result<(), ApiError> {
    if fetch_site_is(request, b"cross-site") || origin_header_is_own(request) == Some(false) {
        return Err(ApiError::CsrfFailed("this form was sent from another site".into()));
    }
    Ok(())
}

/// Positive proof that a request comes from this site's own page, where no token can be checked
/// (a log-out whose server-side state, token included, was lost): the browser says
/// `Sec-Fetch-Site: same-origin`, or its `Origin` is this site. Absence of both is a refusal.
pub fn verify_sent_from_own_page(request: &HttpRequest) -> Result<(), ApiError> {
    verify_same_site(request)?;
    if fetch_site_is(request, b"same-origin") || origin_header_is_own(request) == Some(true) {
        Ok(())
    } else {
        Err(ApiError::CsrfFailed(
            "this session's form token was lost; log out from this site's page".into(),
        ))
    }
}

/// A JSON request authenticated by cookie: same-origin `Origin`, or the token in `X-CSRF-Token`.
pub fn verify_api(request: &HttpRequest, session: &Session) -> Result<(), ApiError> {
    if request.method().is_safe() {
        return Ok(());
    }
    if let Some(presented) = request.headers().get(HEADER).and_then(|value| value.to_str().ok())
        && matches_session(session, presented)
    {
        return Ok(());
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    if let Some(origin) = origin
        && origin_is_own(request, origin)
    {
        return Ok(());
    }
    Err(ApiError::CsrfFailed(
        "a cookie-authenticated request must come from this site's pages (Origin) or carry X-CSRF-Token".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::normalized_origin;

    #[test]
    fn origins_are_compared_in_one_spelling() {
        assert_eq!(
            normalized_origin("HTTPS", "Accounts.Example.com:443").as_deref(),
            Some("https://accounts.example.com")
        );
        assert_eq!(
            normalized_origin("http", "127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1")
        );
        assert_eq!(
            normalized_origin("https", "127.0.0.1:8443").as_deref(),
            Some("https://127.0.0.1:8443")
        );
        assert_ne!(normalized_origin("http", "host"), normalized_origin("https", "host"));
        assert_ne!(
            normalized_origin("https", "host:80"),
            normalized_origin("https", "host")
        );
    }

    #[test]
    fn anything_but_a_web_origin_is_no_origin() {
        assert_eq!(normalized_origin("ftp", "host"), None);
        assert_eq!(normalized_origin("https", ""), None);
        assert_eq!(normalized_origin("https", "host/path"), None);
        assert_eq!(normalized_origin("https", "user@host"), None);
    }
}
