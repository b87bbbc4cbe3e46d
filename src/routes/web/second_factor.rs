//! Two-step verification as pages: the dashboard's section, enrolling an authenticator (QR code
//! and secret, a first code, the recovery codes shown once), turning it off, and the second step
//! of the log-in form (`/login/mfa`).

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::account::Proof;
use crate::account::second_factor::{self, MAX_WRONG_CODES_PER_LOG_IN};
use crate::auth::RequestSettings;
use crate::auth::client::ClientAddress;
use crate::auth::csrf::AnonymousCsrf;
use crate::auth::login::Issuer;
use crate::error::ApiError;
use crate::routes::browser_session::{self, put};
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::format::{exact_time, iso_time, relative_time};
use crate::routes::web::layout::{Layout, flash, redirect, render_form, render_with_status};
use crate::routes::web::login::finish_browser_log_in;
use crate::routes::web::page::{PageError, WebUser, email_of};
use crate::routes::web::sudo::{Sudo, ask_for_password};

/// The state key of a browser whose password was right and whose second step is pending: the
/// hash of its challenge. The session holds no login session yet, so it is not logged in.
pub const PENDING_LOG_IN_KEY: &str = "mfa_pending";

/// The dashboard's "Two-step verification" section.
pub struct DashboardSection {
    pub on: bool,
    pub since_relative: String,
    pub since_exact: String,
    pub since_iso: String,
    pub recovery_codes_left: i64,
}

impl DashboardSection {
    pub async fn of(accounts: &Accounts, user_id: &str) -> Result<Self, ApiError> {
        let status = second_factor::status(accounts, user_id).await?;
        let since = status.enabled_since.unwrap_or(0);
        Ok(Self {
            on: status.enabled_since.is_some(),
            since_relative: relative_time(since, accounts.now()),
            since_exact: exact_time(since),
            since_iso: iso_time(since),
            recovery_codes_left: status.recovery_codes_left,
        })
    }
}

#[derive(Deserialize)]
pub struct ProofForm {
    password: Option<String>,
    code: Option<String>,
}

impl ProofForm {
    /// The proof, and what a refusal of it means for the page: a wrong one, or none given yet.
    fn into_proof(self) -> (Proof, Sudo) {
        let given = |value: &Option<String>| value.as_deref().is_some_and(|value| !value.trim().is_empty());
        let refusal = if given(&self.password) || given(&self.code) {
            Sudo::Wrong
        } else {
            Sudo::Needed
        };
        let proof = Proof {
            password: self.password,
            code: self.code,
        };
        (proof, refusal)
    }
}

/// `POST /mfa/totp`: after a fresh proof, a new pending enrolment, shown by `enrol_page`.
pub async fn start(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<ProofForm>,
) -> Result<HttpResponse, PageError> {
    let (proof, refusal) = form.into_proof();
    let proved = match crate::account::require_recent_proof(&accounts, &user.0, proof, &origin).await {
        Ok(proved) => proved,
        Err(ApiError::ReauthenticationRequired(_)) => {
            return ask_for_password(
                &accounts,
                &user,
                refusal,
                "/mfa/totp",
                "to set up two-step verification",
                Vec::new(),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    browser_session::record_renewed_proof(user.session(), &proved)?;
    match second_factor::start_enrolment(&accounts, &user.0, &proved).await {
        Ok(_) => Ok(redirect("/mfa/totp")),
        Err(ApiError::Conflict(message)) => {
            flash(user.session(), "warning", message);
            Ok(redirect("/dashboard"))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "mfa_enrol.html")]
struct EnrolPage {
    layout: Layout,
    qr_svg: String,
    secret: String,
    error: Option<String>,
}

async fn render_enrol_page(
    accounts: &Accounts,
    user: &WebUser,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let Some(enrolment) = second_factor::pending_enrolment(accounts, &user.0.user_id).await? else {
        flash(
            user.session(),
            "warning",
            "No set-up of two-step verification is waiting: start it again.",
        );
        return Ok(redirect("/dashboard"));
    };
    let page = EnrolPage {
        layout: Layout::new(user.session(), Some(email_of(accounts, user).await?))?,
        qr_svg: enrolment.qr_svg()?,
        secret: enrolment.secret,
        error,
    };
    render_with_status(&page, status)
}

/// `GET /mfa/totp`: the pending enrolment's QR code, its secret as text, and the field for a
/// first code.
pub async fn enrol_page(accounts: web::Data<Accounts>, user: WebUser) -> Result<HttpResponse, PageError> {
    render_enrol_page(&accounts, &user, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa_recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
}

/// `POST /mfa/totp/confirm`: a right code turns it on and shows the recovery codes, once.
pub async fn confirm(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let code = form.code.unwrap_or_default();
    match second_factor::confirm_enrolment(&accounts, &user.0, &code, &origin).await {
        Ok(codes) => {
            let page = RecoveryCodesPage {
                layout: Layout::new(user.session(), Some(email_of(&accounts, &user).await?))?,
                codes,
            };
            render_with_status(&page, StatusCode::OK)
        }
        Err(ApiError::InvalidField { message, .. }) => {
            render_enrol_page(&accounts, &user, Some(message), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(ApiError::Conflict(message)) => {
            flash(user.session(), "warning", message);
            Ok(redirect("/dashboard"))
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /mfa/totp/disable`: after a fresh proof, two-step verification is off.
pub async fn disable(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<ProofForm>,
) -> Result<HttpResponse, PageError> {
    let (proof, refusal) = form.into_proof();
    let proved = match crate::account::require_recent_proof(&accounts, &user.0, proof, &origin).await {
        Ok(proved) => proved,
        Err(ApiError::ReauthenticationRequired(_)) => {
            return ask_for_password(
                &accounts,
                &user,
                refusal,
                "/mfa/totp/disable",
                "to turn off two-step verification",
                Vec::new(),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    browser_session::record_renewed_proof(user.session(), &proved)?;
    match second_factor::disable(&accounts, &user.0, &proved, &origin).await {
        Ok(()) => flash(user.session(), "success", "Two-step verification is off."),
        Err(ApiError::NotFound) => flash(user.session(), "warning", "Two-step verification was not on."),
        Err(other) => return Err(other.into()),
    }
    Ok(redirect("/dashboard"))
}

/// `POST /mfa/recovery-codes`: after a fresh proof, ten new recovery codes, shown once; the
/// earlier ones stop working.
pub async fn replace_recovery_codes(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<ProofForm>,
) -> Result<HttpResponse, PageError> {
    let (proof, refusal) = form.into_proof();
    let proved = match crate::account::require_recent_proof(&accounts, &user.0, proof, &origin).await {
        Ok(proved) => proved,
        Err(ApiError::ReauthenticationRequired(_)) => {
            return ask_for_password(
                &accounts,
                &user,
                refusal,
                "/mfa/recovery-codes",
                "to make new recovery codes",
                Vec::new(),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    browser_session::record_renewed_proof(user.session(), &proved)?;
    match second_factor::replace_recovery_codes(&accounts, &user.0, &proved, &origin).await {
        Ok(codes) => {
            let page = RecoveryCodesPage {
                layout: Layout::new(user.session(), Some(email_of(&accounts, &user).await?))?,
                codes,
            };
            render_with_status(&page, StatusCode::OK)
        }
        Err(ApiError::NotFound) => {
            flash(
                user.session(),
                "warning",
                "Two-step verification is not on, so there are no recovery codes to replace.",
            );
            Ok(redirect("/dashboard"))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct CodeStepPage {
    layout: Layout,
    error: Option<String>,
    tries: i64,
}

fn pending_challenge(session: &Session) -> Option<String> {
    session.get::<String>(PENDING_LOG_IN_KEY).ok().flatten()
}

/// After a right password, for an account with a second factor: the browser is sent to the code
/// step, and nothing about it is logged in yet.
pub fn begin_code_step(session: &Session, challenge_hash: String) -> Result<HttpResponse, PageError> {
    put(session, PENDING_LOG_IN_KEY, challenge_hash)?;
    Ok(redirect("/login/mfa"))
}

fn start_over(session: &Session, message: &str) -> HttpResponse {
    session.remove(PENDING_LOG_IN_KEY);
    flash(session, "error", message);
    redirect("/login")
}

fn render_code_step(
    request: &HttpRequest,
    session: &Session,
    anonymous_csrf: &AnonymousCsrf,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(request, session, anonymous_csrf)?;
    let page = CodeStepPage {
        layout,
        error,
        tries: MAX_WRONG_CODES_PER_LOG_IN,
    };
    render_form(&page, status, cookie)
}

/// `GET /login/mfa`: the code field, while a pending second step is open; else back to `/login`.
pub async fn code_step(
    request: HttpRequest,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let Some(challenge) = pending_challenge(&session) else {
        return Ok(redirect("/login"));
    };
    if !second_factor::challenge_is_open(&accounts, &challenge).await? {
        return Ok(start_over(&session, "That log-in took too long: log in again."));
    }
    render_code_step(&request, &session, &anonymous_csrf, None, StatusCode::OK)
}

/// `POST /login/mfa`: a right code starts the browser session (under a new session key); a wrong
/// one shows the form again with the error at the field (401), until the challenge is spent.
pub async fn submit_code(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    settings: web::Data<RequestSettings>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let session = request.get_session();
    let Some(challenge) = pending_challenge(&session) else {
        return Ok(redirect("/login"));
    };
    let code = form.code.unwrap_or_default();
    let known_browser = accounts.known_browsers.presented(&request);
    match second_factor::finish_log_in(&accounts, &challenge, &code, known_browser.as_deref(), &origin).await {
        Ok(user) => {
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
        Err(ApiError::LoginRefused(why)) => Ok(start_over(&session, &why)),
        Err(ApiError::InvalidGrant(_)) => {
            if !second_factor::challenge_is_open(&accounts, &challenge).await? {
                return Ok(start_over(
                    &session,
                    "Too many wrong codes, or the log-in took too long: log in again.",
                ));
            }
            render_code_step(
                &request,
                &session,
                &anonymous_csrf,
                Some("That code is not correct. Try again.".to_owned()),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(other) => Err(other.into()),
    }
}
