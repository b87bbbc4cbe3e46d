//! `GET/POST /login`, `POST /logout`.

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::auth::RequestSettings;
use crate::auth::client::ClientAddress;
use crate::auth::csrf::AnonymousCsrf;
use crate::auth::login::{Issuer, Lifetimes, open_login_session};
use crate::auth::strategy::USER_KEY;
use crate::auth::strategy::{CookieLogin, Credential, Principal};
use crate::error::{ApiError, LockedOut};
use crate::revocation::cookie_state::{LOGIN_SESSION_KEY, STATE_LOST_KEY};
use crate::routes::browser_session::{self, put};
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::layout::{Layout, redirect, render_form};
use crate::routes::web::page::PageError;
use crate::routes::web::page::WebUser;
use crate::store::events::Origin;
use crate::store::login_sessions::{self, EndReason, Kind};
use crate::store::users::User;

/// A cookie naming this browser's login session, kept after log-out so that the log-in page can
/// say why the browser was signed out. It tells the browser nothing it did not know: the id is
/// only ever looked up to explain the end of that one session.
pub const DEVICE_COOKIE: &str = "revocable_device";

/// Sent over HTTPS only with `COOKIE_SECURE`; kept as long as a login session can last.
pub fn device_cookie(
    settings: &RequestSettings,
    lifetimes: &Lifetimes,
    login_session_id: &str,
) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(DEVICE_COOKIE, login_session_id.to_owned())
        .path("/")
        .http_only(true)
        .secure(settings.cookie_secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            lifetimes.session_ttl.as_secs().min(i64::MAX as u64) as i64,
        ))
        .finish()
}

/// A redirect after log-in that remembers which login session this browser holds.
pub fn redirect_remembering_device(
    location: &str,
    settings: &RequestSettings,
    lifetimes: &Lifetimes,
    login_session_id: &str,
) -> Result<HttpResponse, PageError> {
    let mut response = redirect(location);
    response
        .add_cookie(&device_cookie(settings, lifetimes, login_session_id))
        .map_err(|error| PageError::Api(ApiError::Internal(anyhow::anyhow!("{error}"))))?;
    Ok(response)
}

/// The end of a log-in in this browser, with the password alone or after a second factor: the
/// browser session, a redirect to the dashboard that remembers the device, and the cookie that
/// makes this browser known to the account (`auth::known_browser`).
pub async fn finish_browser_log_in(
    accounts: &Accounts,
    issuer: &Issuer,
    settings: &RequestSettings,
    session: &Session,
    user: &User,
    origin: &Origin,
    known_browser: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let login_session_id = start_browser_session(issuer, session, user, origin).await?;
    let mut response = redirect_remembering_device("/dashboard", settings, &issuer.lifetimes, &login_session_id)?;
    accounts
        .known_browsers
        .remember_on(&mut response, known_browser, user, accounts.now())?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    /// The error is one a password reset by email gets past.
    offer_reset: bool,
    notice: Option<String>,
    /// The password was right, but it must be reset through email first.
    reset_required: bool,
}

/// Why this browser's last login session ended, in words that tell the browser nothing it did not
/// already know: a report of "this wasn't me" reads like any sign-out from another device.
async fn ended_notice(issuer: &Issuer, request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(cookie) = request.cookie(DEVICE_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = login_sessions::find(&issuer.db, cookie.value()).await? else {
        return Ok(None);
    };
    if session.kind != Kind::Cookie {
        return Ok(None);
    }
    let Some(reason) = session.end_reason(issuer.revocation.clock().now_millis()) else {
        return Ok(None);
    };
    let by_itself = session.revoked_by_session_id.as_deref() == Some(session.id.as_str());
    let idle = issuer.lifetimes.session_idle_ttl.as_secs();
    let message = match reason {
        EndReason::LoggedOut => "You have been logged out.".to_owned(),
        EndReason::LoggedOutEverywhere if by_itself => {
            let count = login_sessions::count_ended_by(&issuer.db, &session.id, EndReason::LoggedOutEverywhere).await?;
            let devices = crate::account::count_devices(count as usize, false);
            format!("Logged out everywhere: {devices}.")
        }
        EndReason::LoggedOutEverywhere => {
            "This browser was signed out when you logged out everywhere from another of your devices.".to_owned()
        }
        EndReason::SignedOutFromAnotherDevice | EndReason::ReportedNotYou => {
            "This browser was signed out from another of your devices.".to_owned()
        }
        EndReason::PasswordChanged => "This browser was signed out because the password was changed.".to_owned(),
        EndReason::IdleTimeout => format!(
            "This browser was signed out after {} without activity.",
            plain_duration(idle)
        ),
        EndReason::AbsoluteTimeout => format!(
            "This browser was signed out because a log-in lasts at most {}.",
            plain_duration(issuer.lifetimes.session_ttl.as_secs())
        ),
        EndReason::RefreshTokenReused => "This browser was signed out to protect the account.".to_owned(),
        EndReason::RevokedByClient => "This browser was signed out by a service connected to this site.".to_owned(),
        EndReason::PasswordReset => "This browser was signed out because the password was reset.".to_owned(),
        EndReason::AccountDeleted => "The account this browser was logged in to was deleted.".to_owned(),
        EndReason::SessionLimit => "This browser was signed out because the account logged in on more devices than \
                                    it may at once; this was the one used least recently."
            .to_owned(),
        EndReason::SignedOutByAdmin => "This browser was signed out by an administrator.".to_owned(),
        EndReason::Replaced => "This browser's earlier log-in ended when it logged in again.".to_owned(),
    };
    Ok(Some(message))
}

/// "30 minutes", "2 hours", "30 days".
fn plain_duration(seconds: u64) -> String {
    let (count, unit) = match seconds {
        0..=119 => (seconds, "second"),
        120..=7_199 => (seconds / 60, "minute"),
        7_200..=172_799 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

pub async fn form(
    request: HttpRequest,
    issuer: web::Data<Issuer>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
    let notice = ended_notice(&issuer, &request).await?;
    let told = notice.is_some();
    let page = LoginPage {
        layout,
        email: String::new(),
        error: None,
        offer_reset: false,
        notice,
        reset_required: false,
    };
    let mut response = render_form(&page, StatusCode::OK, cookie)?;
    if told {
        // Said once: a later visit to the log-in page does not repeat it.
        let removal = actix_web::cookie::Cookie::build(DEVICE_COOKIE, "").path("/").finish();
        response
            .add_removal_cookie(&removal)
            .map_err(|error| PageError::Api(ApiError::Internal(anyhow::anyhow!("{error}"))))?;
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
}

/// Starts a browser session for a user whose password was just checked: a new session key (the
/// key sent before log-in never works after it), a new CSRF token, a new login session row. A
/// login session this browser already held ends (reason `replaced`): once the cookie names the
/// new one, nothing would point at the old one, and it would stay live until its idle limit.
pub async fn start_browser_session(
    issuer: &Issuer,
    session: &Session,
    user: &User,
    origin: &Origin,
) -> Result<String, ApiError> {
    if let Ok(Some(previous)) = session.get::<String>(LOGIN_SESSION_KEY) {
        issuer
            .revocation
            .revoke_session(&previous, EndReason::Replaced, None)
            .await?;
    }
    let login_session = open_login_session(issuer, user, Kind::Cookie, origin).await?;
    session.clear();
    session.renew();
    let now = issuer.revocation.clock().now_millis();
    put(session, USER_KEY, &user.id)?;
    put(session, LOGIN_SESSION_KEY, &login_session.id)?;
    browser_session::record_password_proved(session, now)?;
    crate::auth::csrf::rotate(session)?;
    Ok(login_session.id)
}

pub async fn submit(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    settings: web::Data<RequestSettings>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let session = request.get_session();
    let email = form.email.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let known_browser = accounts.known_browsers.presented(&request);
    let page = |error: Option<String>, offer_reset: bool, reset_required: bool, status: StatusCode| {
        let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
        let page = LoginPage {
            layout,
            email: email.clone(),
            error,
            offer_reset,
            notice: None,
            reset_required,
        };
        render_form(&page, status, cookie)
    };
    let refused = |error: String, offer_reset: bool, status: StatusCode| page(Some(error), offer_reset, false, status);
    match crate::account::authenticate(&accounts, &email, &password, &origin, known_browser.as_deref()).await {
        Ok(user) => {
            // Password verified; a second factor needed? Then the code step, not logged in yet.
            if let Some(challenge) = crate::account::second_factor::challenge_if_enrolled(&accounts, &user).await? {
                return crate::routes::web::second_factor::begin_code_step(&session, challenge.hash());
            }
            finish_browser_log_in(
                &accounts,
                &issuer,
                &settings,
                &session,
                &user,
                &origin,
                known_browser.as_deref(),
            )
            .await
        }
        Err(ApiError::InvalidGrant(_)) => refused(
            "Incorrect email or password.".to_owned(),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        Err(ApiError::LoginRefused(why)) => refused(sentence(&why), false, StatusCode::UNAUTHORIZED),
        Err(ApiError::PasswordResetRequired(_)) => page(None, false, true, StatusCode::UNAUTHORIZED),
        Err(ApiError::AccountLocked {
            retry_after_seconds,
            who,
        }) => {
            let wait = crate::routes::web::format::wait_in_words(retry_after_seconds.max(1));
            let message = match who {
                LockedOut::UnknownClients => format!(
                    "This account has had too many failed log-ins, so log-ins from browsers it does not know are \
                     paused for {wait} to protect it. A browser you have logged in with before can still log in; \
                     or reset your password by email now."
                ),
                LockedOut::SecondFactor => {
                    format!("Too many wrong two-step verification codes for this account. Please wait {wait}.")
                }
                LockedOut::ThisBrowser | LockedOut::ThisSession => format!(
                    "Too many failed log-ins to this account from this browser. Please wait {wait}, or reset your \
                     password by email."
                ),
            };
            let mut response = refused(message, true, StatusCode::TOO_MANY_REQUESTS)?;
            // The log-in form is the page that says why: the generic 429 page must not replace it.
            response
                .extensions_mut()
                .insert(crate::routes::web::error_pages::RenderedErrorPage);
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_seconds.max(1)),
            );
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// "this account is locked…" → "This account is locked…."
fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), characters.as_str()),
        None => String::new(),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

/// Who is logging out: a checked cookie session, or a browser whose server-side state the store
/// lost (Redis restarted empty, flushed or evicted it) and whose cookie still names its login
/// session (`cookie_state::login_session_named_by`).
pub enum LoggingOut {
    SignedIn(WebUser),
    StateLost { login_session_id: String, session: Session },
}

impl actix_web::FromRequest for LoggingOut {
    type Error = PageError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let session = request.get_session();
        let lost = session.get::<String>(STATE_LOST_KEY).ok().flatten();
        let signed_in = WebUser::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            match lost {
                Some(login_session_id) => {
                    crate::auth::csrf::verify_sent_from_own_page(&request)?;
                    Ok(Self::StateLost {
                        login_session_id,
                        session,
                    })
                }
                None => Ok(Self::SignedIn(signed_in.await?)),
            }
        })
    }
}

/// Ends this login session: the row is revoked and the server-side state deleted. A browser
/// whose state was lost ends the login session its cookie names all the same, so a log-out is
/// never a silent no-op; without a token to check, it must prove it comes from this site's page.
pub async fn logout(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    who: LoggingOut,
    form: Result<CsrfForm<NoFields>, PageError>,
) -> Result<HttpResponse, PageError> {
    match who {
        LoggingOut::SignedIn(user) => {
            form?;
            crate::account::log_out(&accounts, &user.0, &origin, "browser session").await?;
            user.session().purge();
        }
        LoggingOut::StateLost {
            login_session_id,
            session,
        } => {
            let now = accounts.now();
            let found = accounts.revocation.session(&login_session_id, now).await?;
            if let Some(found) = found.filter(|found| !found.revoked) {
                let principal = Principal {
                    user_id: found.user_id.to_string(),
                    session_id: login_session_id,
                    credential: Credential::Cookie(CookieLogin::of(&session)),
                };
                crate::account::log_out(&accounts, &principal, &origin, "browser session").await?;
            }
            session.purge();
        }
    }
    Ok(redirect("/login"))
}
