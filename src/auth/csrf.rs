//! CSRF protection.
//!
//! HTML forms use the synchronizer-token pattern: a random token kept in the server-side session,
//! echoed in a hidden field, compared in constant time. JSON routes under cookie authentication
//! accept a state-changing request only when its `Origin` is this site, or when it carries the
//! session's token in `X-CSRF-Token`; SameSite=Lax on the cookie is the second line.

use actix_session::Session;
use actix_web::HttpRequest;
use actix_web::http::header;
use subtle::ConstantTimeEq;

use crate::domain::RandomId;
use crate::error::ApiError;

const SESSION_KEY: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";

/// The session's token, created on first use.
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

fn matches(session: &Session, presented: &str) -> bool {
    match session.get::<String>(SESSION_KEY) {
        Ok(Some(expected)) => !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes())),
        _ => false,
    }
}

/// A form's hidden field.
pub fn verify_form(session: &Session, presented: Option<&str>) -> Result<(), ApiError> {
    if matches(session, presented.unwrap_or("")) {
        Ok(())
    } else {
        Err(ApiError::CsrfFailed("missing or invalid CSRF token".into()))
    }
}

/// A JSON request authenticated by cookie: same-origin `Origin`, or the token in `X-CSRF-Token`.
pub fn verify_api(request: &HttpRequest, session: &Session) -> Result<(), ApiError> {
    if request.method().is_safe() {
        return Ok(());
    }
    if let Some(presented) = request.headers().get(HEADER).and_then(|value| value.to_str().ok())
        && matches(session, presented)
    {
        return Ok(());
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    let host = request.connection_info().host().to_owned();
    if let Some(origin) = origin
        && let Some((_, rest)) = origin.split_once("://")
        && rest.eq_ignore_ascii_case(&host)
    {
        return Ok(());
    }
    Err(ApiError::CsrfFailed(
        "a cookie-authenticated request must come from this site's pages (Origin) or carry X-CSRF-Token".into(),
    ))
}
