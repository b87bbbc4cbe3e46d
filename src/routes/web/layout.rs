//! The shared layout of every page: the header's user and log-out token, flash messages, and
//! rendering a template (with the form's CSRF cookie when there is one).

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::csrf;
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
        anonymous_csrf: &csrf::AnonymousCsrf,
    ) -> Result<(Self, Option<actix_web::cookie::Cookie<'static>>), ApiError> {
        let (csrf_token, cookie) = if csrf::uses_session_token(session) {
            (csrf::token(session)?, None)
        } else {
            anonymous_csrf.token(request)
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

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
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

pub async fn local_time_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/local-time.js"))
}
