//! `GET/POST /login`, `POST /logout`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::client;
use crate::auth::login::open_login_session;
use crate::auth::session_store::LOGIN_SESSION_KEY;
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, LAST_SEEN_KEY, USER_KEY, WebUser};
use crate::domain::now_millis;
use crate::error::{ApiError, PageError};
use crate::routes::web::{CsrfForm, Layout, redirect, render_form};
use crate::state::AppState;
use crate::store::events::Origin;
use crate::store::login_sessions::Kind;
use crate::store::users::User;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    ended: Option<String>,
    count: Option<u32>,
}

/// Messages a redirect to `/login` may ask for; the session that would have carried a flash is gone.
fn notice(query: &NoticeQuery) -> Option<String> {
    let devices = crate::account::count_devices(query.count.unwrap_or(0) as usize, false);
    match query.ended.as_deref()? {
        "everywhere" => Some(format!("Logged out everywhere: {devices}")),
        "logout" => Some("You have been logged out.".to_owned()),
        _ => None,
    }
}

pub async fn form(
    request: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(&request, &session, &state)?;
    let page = LoginPage {
        layout,
        email: String::new(),
        error: None,
        notice: notice(&query),
    };
    render_form(&page, StatusCode::OK, cookie)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
}

/// Starts a browser session for a user whose password was just checked: a new session key (the
/// key sent before log-in never works after it), a new CSRF token, a new login session row.
pub async fn start_browser_session(
    state: &AppState,
    session: &Session,
    user: &User,
    origin: &Origin,
) -> Result<(), ApiError> {
    let login_session = open_login_session(state, user, Kind::Cookie, origin).await?;
    session.clear();
    session.renew();
    let now = now_millis();
    put(session, USER_KEY, &user.id)?;
    put(session, LOGIN_SESSION_KEY, &login_session.id)?;
    put(session, LAST_SEEN_KEY, now)?;
    put(session, AUTHENTICATED_AT_KEY, now)?;
    crate::auth::csrf::rotate(session)?;
    Ok(())
}

pub fn put(session: &Session, key: &str, value: impl serde::Serialize) -> Result<(), ApiError> {
    session
        .insert(key, value)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("{error}")))
}

pub async fn submit(
    request: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let email = form.email.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    match crate::account::authenticate(&state, &email, &password, &origin).await {
        Ok(user) => {
            start_browser_session(&state, &session, &user, &origin).await?;
            Ok(redirect("/dashboard"))
        }
        Err(ApiError::InvalidGrant(_)) => {
            let (layout, cookie) = Layout::for_form(&request, &session, &state)?;
            let page = LoginPage {
                layout,
                email,
                error: Some("Incorrect email or password.".to_owned()),
                notice: None,
            };
            render_form(&page, StatusCode::UNAUTHORIZED, cookie)
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

/// Ends this login session: the row is revoked and the server-side state deleted.
pub async fn logout(
    request: HttpRequest,
    state: web::Data<AppState>,
    user: WebUser,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    crate::account::log_out(&state, &user.0, &origin, "browser session").await?;
    user.session().purge();
    Ok(redirect("/login?ended=logout"))
}
