//! The HTML side: server-rendered pages over the cookie session, every form with a CSRF token,
//! no JavaScript needed for any action.

pub mod compare;
pub mod dashboard;
pub mod login;
pub mod page;
pub mod password;
pub mod recovery;
pub mod register;
pub mod second_factor;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, error::UrlencodedError, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::{csrf, strategy};
use crate::error::ApiError;
use crate::routes::web::page::PageError;

/// What the shared layout needs: who is logged in, the CSRF token for the log-out button, and
/// the flash messages of the last action.
pub struct Layout {
    pub user_email: Option<String>,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

const FLASH_KEY: &str = "flash";

/// Queues a message for the next page this browser loads.
pub fn flash(session: &Session, kind: &str, message: impl Into<String>) {
    let mut flashes: Vec<Flash> = session.get(FLASH_KEY).ok().flatten().unwrap_or_default();
    flashes.push(Flash {
        kind: kind.to_owned(),
        message: message.into(),
    });
    let _ = session.insert(FLASH_KEY, flashes);
}

impl Layout {
    /// The header of a visitor who is not logged in; no token, no messages.
    pub fn anonymous() -> Self {
        Self {
            user_email: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
        }
    }

    /// Builds the layout and consumes the pending flash messages. Only a logged-in page carries
    /// a token (for the header's log-out form): an anonymous visit stores nothing.
    pub fn new(session: &Session, user_email: Option<String>) -> Result<Self, ApiError> {
        let csrf_token = if user_email.is_some() {
            csrf::token(session)?
        } else {
            String::new()
        };
        Ok(Self {
            user_email,
            csrf_token,
            flashes: take_flashes(session),
        })
    }

    /// The layout of a form that may be shown before log-in (log-in, sign-up): the session's
    /// token when logged in, else a signed double-submit token whose cookie must go with the page.
    pub fn for_form(
        request: &HttpRequest,
        session: &Session,
        state: &crate::state::AppState,
    ) -> Result<(Self, Option<actix_web::cookie::Cookie<'static>>), ApiError> {
        let (csrf_token, cookie) = if csrf::uses_session_token(session) {
            (csrf::token(session)?, None)
        } else {
            state.anonymous_csrf.token(request)
        };
        let layout = Self {
            user_email: None,
            csrf_token,
            flashes: take_flashes(session),
        };
        Ok((layout, cookie))
    }
}

/// The pending flash messages; reading them changes the session only when there were some.
fn take_flashes(session: &Session) -> Vec<Flash> {
    if !session.contains_key(FLASH_KEY) {
        return Vec::new();
    }
    session
        .remove_as::<Vec<Flash>>(FLASH_KEY)
        .and_then(Result::ok)
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
    /// A stale form's page, to open again with a fresh token (a reload would resend the stale one).
    back: Option<&'a str>,
}

/// Marks the 403 of a form whose token is stale, so that `error_pages` links back to its page.
#[derive(Clone)]
pub struct StaleForm;

/// Where a stale form came from: the `Referer`'s path when it is this host's (what the browser
/// showed), else the dashboard (a logged-in browser) or the log-in page.
fn stale_form_page(request: &HttpRequest, logged_in: bool) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let referred = request
        .headers()
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| referer.split_once("://"))
        .and_then(|(_, rest)| {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            (Some(authority) == host && path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
        });
    referred.unwrap_or_else(|| if logged_in { "/dashboard" } else { "/login" }.to_owned())
}

/// The message of an HTML error page, kept on the response so that `error_pages` can render the
/// page again with the header of the browser's logged-in user.
#[derive(Clone)]
struct ErrorMessage(String);

fn error_body(status: StatusCode, message: &str, layout: Layout, back: Option<&str>) -> String {
    let page = ErrorPage {
        layout,
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error"),
        message,
        back,
    };
    page.render().unwrap_or_else(|_| message.to_owned())
}

/// An error page as an anonymous visitor sees it; `error_pages` gives it the logged-in header.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, "5"));
    }
    let mut response = response.body(error_body(status, message, Layout::anonymous(), None));
    response.extensions_mut().insert(ErrorMessage(message.to_owned()));
    response
}

/// What an error page says when the response that caused it carried no words of its own.
fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "There is no page at this address.",
        StatusCode::METHOD_NOT_ALLOWED => "This page cannot be used that way.",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts from your address: wait a minute, then try again.",
        StatusCode::SERVICE_UNAVAILABLE => "A service this page needs is not answering: try again in a few seconds.",
        _ => "Something went wrong with this request.",
    }
}

/// Marks an error page `error_pages` has rendered, so an outer handler does not render it again.
pub struct RenderedErrorPage;

/// The email of the user this browser is logged in as, if any.
pub async fn logged_in_email(state: &crate::state::AppState, session: &Session) -> Option<String> {
    let principal = strategy::check_cookie(&state.revocation, state.settings.session_idle_ttl, session.clone())
        .await
        .ok()?;
    crate::store::users::find_by_id(&state.db, &principal.user_id)
        .await
        .ok()
        .flatten()
        .map(|user| user.email)
}

/// Paths whose callers are programs: their errors keep the JSON shape (the Shared Signals
/// endpoints' 429 and 405 too).
fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/oauth/") || path.starts_with("/ssf/")
}

/// Every error response goes through here (`ErrorHandlers::default_handler`): under `/api` an empty
/// 405 gets the JSON error shape; elsewhere an error page, a rate limiter's or a method refusal
/// becomes a page whose header knows who is logged in, so a stale tab's 403 does not look like a
/// log-out.
pub fn error_pages<B: actix_web::body::MessageBody + 'static>(
    response: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let status = response.status();
    if is_api_path(response.request().path()) {
        if status != StatusCode::METHOD_NOT_ALLOWED {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let (request, _) = response.into_parts();
        let body = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
        let response = actix_web::dev::ServiceResponse::new(request, body).map_into_right_body();
        return Ok(ErrorHandlerResponse::Response(response));
    }
    if response.response().extensions().get::<RenderedErrorPage>().is_some() {
        // Already rendered inside the cookie session's scope, where the header could see who is
        // logged in; the app-wide handler leaves it alone.
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let message = match response.response().extensions().get::<ErrorMessage>() {
        Some(ErrorMessage(message)) => Some(message.clone()),
        // The address limiter's own answer: the page says the wait its `Retry-After` gives.
        None if status == StatusCode::TOO_MANY_REQUESTS => {
            let seconds = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1);
            Some(format!(
                "Too many attempts. Please wait {} before trying again.",
                wait_in_words(seconds)
            ))
        }
        None if status == StatusCode::METHOD_NOT_ALLOWED => Some(default_message(status).to_owned()),
        None => None,
    };
    let Some(message) = message else {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    };
    let stale = response.response().extensions().get::<StaleForm>().is_some();
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        let (request, original) = response.into_parts();
        let session = request.get_session();
        let email = match request.app_data::<web::Data<crate::state::AppState>>() {
            Some(state) => logged_in_email(state, &session).await,
            None => None,
        };
        let logged_in = email.is_some();
        let layout = match email {
            Some(email) => Layout::new(&session, Some(email)).unwrap_or_else(|_| Layout::anonymous()),
            None => Layout::anonymous(),
        };
        let mut page = HttpResponse::build(status);
        page.content_type("text/html; charset=utf-8");
        page.insert_header((header::CACHE_CONTROL, "no-store"));
        for name in [
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-ratelimit-after"),
        ] {
            if let Some(value) = original.headers().get(&name) {
                page.insert_header((name, value.clone()));
            }
        }
        let back = stale.then(|| stale_form_page(&request, logged_in));
        let mut page = page.body(error_body(status, &message, layout, back.as_deref()));
        page.extensions_mut().insert(RenderedErrorPage);
        Ok(actix_web::dev::ServiceResponse::new(request, page).map_into_right_body())
    })))
}

/// "1 second", "40 seconds", "2 minutes", "1 hour": how long to wait, for people.
pub fn wait_in_words(seconds: u64) -> String {
    let plural = |count: u64, unit: &str| format!("{count} {unit}{}", if count == 1 { "" } else { "s" });
    match seconds {
        0..=59 => plural(seconds.max(1), "second"),
        60..=3599 => plural(seconds.div_ceil(60), "minute"),
        _ => plural(seconds.div_ceil(3600), "hour"),
    }
}

/// A 429 as a page: the wait in words, and `Retry-After` with the same number of seconds.
pub fn rate_limited_page(retry_after_seconds: u64) -> HttpResponse {
    let seconds = retry_after_seconds.max(1);
    let message = format!(
        "Too many attempts. Please wait {} before trying again.",
        wait_in_words(seconds)
    );
    let mut response = error_page(StatusCode::TOO_MANY_REQUESTS, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    response
}

/// Unknown paths: JSON under `/api`, a page elsewhere.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    if request.path().starts_with("/api/") {
        return Err(ApiError::NotFound);
    }
    Ok(error_page(StatusCode::NOT_FOUND, "There is no page at this address."))
}

/// A query string or path segment that does not parse: a JSON 400 under `/api`, a page elsewhere.
pub fn extractor_error(message: String, request: &HttpRequest) -> actix_web::Error {
    let error = ApiError::BadRequest(message);
    if request.path().starts_with("/api/") {
        error.into()
    } else {
        PageError::Api(error).into()
    }
}

pub fn form_error(error: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match error {
        UrlencodedError::Overflow { .. } => PageError::Api(ApiError::PayloadTooLarge).into(),
        other => PageError::Api(ApiError::BadRequest(format!("the form could not be read: {other}"))).into(),
    }
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
}

/// The landing page, or the dashboard for a logged-in browser.
pub async fn home(request: HttpRequest, state: web::Data<crate::state::AppState>) -> Result<HttpResponse, PageError> {
    let session = request.get_session();
    if strategy::check_cookie(&state.revocation, state.settings.session_idle_ttl, session.clone())
        .await
        .is_ok()
    {
        return Ok(redirect("/dashboard"));
    }
    render(&HomePage {
        layout: Layout::new(&session, None)?,
    })
}

pub fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    render_with_status(page, StatusCode::OK)
}

/// Renders a form page, with the CSRF cookie when the browser has none yet.
pub fn render_form(
    page: &impl Template,
    status: StatusCode,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, PageError> {
    let mut response = render_with_status(page, status)?;
    if let Some(cookie) = cookie {
        response
            .add_cookie(&cookie)
            .map_err(|error| PageError::Api(ApiError::Internal(anyhow::anyhow!("{error}"))))?;
    }
    Ok(response)
}

pub fn render_with_status(page: &impl Template, status: StatusCode) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|error| PageError::Api(ApiError::Internal(anyhow::anyhow!("template: {error}"))))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/app.css"))
}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

/// A form body whose CSRF token has been checked (see `auth::csrf`): every POST form handler
/// takes one, so none can forget the check. A missing or wrong token is a 403.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = request.get_session();
        let state = request
            .app_data::<web::Data<crate::state::AppState>>()
            .expect("AppState is registered in startup::build")
            .clone();
        let body = web::Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            csrf::verify_same_site(&request)?;
            let body = body.await.map_err(|_| PageError::Api(ApiError::PayloadTooLarge))?;
            let field: CsrfField = serde_urlencoded::from_bytes(&body).map_err(|error| {
                PageError::Api(ApiError::BadRequest(format!("the form could not be read: {error}")))
            })?;
            csrf::verify_form(&request, &session, &state.anonymous_csrf, field.csrf_token.as_deref())?;
            let form = serde_urlencoded::from_bytes(&body).map_err(|error| {
                PageError::Api(ApiError::BadRequest(format!("the form could not be read: {error}")))
            })?;
            Ok(Self(form))
        })
    }
}

/// "3 minutes ago", with the exact time left to a `title` attribute.
pub fn relative_time(millis: i64, now: i64) -> String {
    let seconds = (now - millis).max(0) / 1000;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match seconds {
        0..=9 => "just now".to_owned(),
        10..=59 => plural(seconds, "second"),
        60..=3599 => plural(seconds / 60, "minute"),
        3600..=86_399 => plural(seconds / 3600, "hour"),
        _ => plural(seconds / 86_400, "day"),
    }
}

/// Machine-readable UTC time for a `<time datetime>` (read by `static/local-time.js`).
pub fn iso_time(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A cookie naming this browser's login session, kept after log-out so that the log-in page can
/// say why the browser was signed out. It tells the browser nothing it did not know: the id is
/// only ever looked up to explain the end of that one session.
pub const DEVICE_COOKIE: &str = "revocable_device";

pub fn device_cookie(settings: &crate::config::Settings, login_session_id: &str) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(DEVICE_COOKIE, login_session_id.to_owned())
        .path("/")
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            settings.session_ttl.as_secs().min(i64::MAX as u64) as i64,
        ))
        .finish()
}

/// A redirect after log-in that remembers which login session this browser holds.
pub fn redirect_remembering_device(
    location: &str,
    settings: &crate::config::Settings,
    login_session_id: &str,
) -> Result<HttpResponse, PageError> {
    let mut response = redirect(location);
    response
        .add_cookie(&device_cookie(settings, login_session_id))
        .map_err(|error| PageError::Api(ApiError::Internal(anyhow::anyhow!("{error}"))))?;
    Ok(response)
}

pub async fn local_time_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/local-time.js"))
}

/// Exact UTC time for people: `2026-11-22 13:40 UTC`.
pub fn exact_time(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{relative_time, wait_in_words};

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_in_words(0), "1 second");
        assert_eq!(wait_in_words(1), "1 second");
        assert_eq!(wait_in_words(42), "42 seconds");
        assert_eq!(wait_in_words(60), "1 minute");
        assert_eq!(wait_in_words(61), "2 minutes");
        assert_eq!(wait_in_words(900), "15 minutes");
        assert_eq!(wait_in_words(3600), "1 hour");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 10_000_000_000;
        assert_eq!(relative_time(now - 2_000, now), "just now");
        assert_eq!(relative_time(now - 180_000, now), "3 minutes ago");
        assert_eq!(relative_time(now - 3_600_000, now), "1 hour ago");
        assert_eq!(relative_time(now - 3 * 86_400_000, now), "3 days ago");
    }
}
