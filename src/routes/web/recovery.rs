//! The pages of account recovery by email: `GET/POST /password/forgot`, `GET/POST
//! /password/reset?token=…`, `GET /verify-email?token=…`, `GET/POST /not-me?token=…`, and the
//! dashboard's "send the link again". Every form carries a CSRF token (the pre-log-in kind on
//! the pages a visitor reaches from a message); a GET of an emailed link never changes anything,
//! except the verification link, which only marks the address verified.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::auth::client::ClientAddress;
use crate::auth::client::describe_device;
use crate::auth::csrf::AnonymousCsrf;
use crate::error::ApiError;
use crate::recovery::{self, Resent};
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::format::exact_time;
use crate::routes::web::layout::{Layout, flash, redirect, render_form};
use crate::routes::web::login::NoFields;
use crate::routes::web::page::{PageError, WebUser};

/// A page that says what happened to a link, with a way forward.
#[derive(Template)]
#[template(path = "link_outcome.html")]
struct LinkOutcomePage<'a> {
    layout: Layout,
    title: &'a str,
    message: String,
    next_href: &'a str,
    next_label: &'a str,
}

fn outcome(
    request: &HttpRequest,
    session: &Session,
    anonymous_csrf: &AnonymousCsrf,
    status: StatusCode,
    title: &str,
    message: String,
    next: (&str, &str),
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(request, session, anonymous_csrf)?;
    let page = LinkOutcomePage {
        layout,
        title,
        message,
        next_href: next.0,
        next_label: next.1,
    };
    render_form(&page, status, cookie)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPasswordPage {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub async fn forgot_form(
    request: HttpRequest,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
    let page = ForgotPasswordPage {
        layout,
        email: String::new(),
        error: None,
    };
    render_form(&page, StatusCode::OK, cookie)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: Option<String>,
}

pub async fn forgot_submit(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<HttpResponse, PageError> {
    let email = form.email.unwrap_or_default();
    match recovery::request_password_reset(&accounts, &email, &origin).await {
        Ok(()) => outcome(
            &request,
            &session,
            &anonymous_csrf,
            StatusCode::OK,
            "Check your email",
            format!(
                "If an account uses {email}, a link to reset its password is on its way. It works once, for {} minutes.",
                recovery::RESET_TTL.as_secs() / 60
            ),
            ("/login", "Back to log in"),
        ),
        Err(ApiError::InvalidField { message, .. }) => {
            let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
            let page = ForgotPasswordPage {
                layout,
                email,
                error: Some(format!("{message}.")),
            };
            render_form(&page, StatusCode::UNPROCESSABLE_ENTITY, cookie)
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPasswordPage {
    layout: Layout,
    token: String,
    email: String,
    error: Option<String>,
}

fn link_gone(
    request: &HttpRequest,
    session: &Session,
    anonymous_csrf: &AnonymousCsrf,
    what: &str,
) -> Result<HttpResponse, PageError> {
    outcome(
        request,
        session,
        anonymous_csrf,
        StatusCode::BAD_REQUEST,
        "This link no longer works",
        format!("This {what} link is unknown, has already been used or has expired."),
        ("/password/forgot", "Ask for a new password reset link"),
    )
}

pub async fn reset_form(
    request: HttpRequest,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token.unwrap_or_default();
    match recovery::reset_link_owner(&accounts, &token).await {
        Ok(user) => {
            let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
            let page = ResetPasswordPage {
                layout,
                token,
                email: user.email,
                error: None,
            };
            render_form(&page, StatusCode::OK, cookie)
        }
        Err(ApiError::InvalidLinkToken(_)) => link_gone(&request, &session, &anonymous_csrf, "password reset"),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: Option<String>,
    new_password: Option<String>,
    new_password_confirmation: Option<String>,
}

pub async fn reset_submit(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    query: web::Query<TokenQuery>,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let token = form.token.or(query.into_inner().token).unwrap_or_default();
    let new_password = form.new_password.unwrap_or_default();
    let refuse = |message: String, email: String| {
        let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
        let page = ResetPasswordPage {
            layout,
            token: token.clone(),
            email,
            error: Some(message),
        };
        render_form(&page, StatusCode::UNPROCESSABLE_ENTITY, cookie)
    };
    let owner = match recovery::reset_link_owner(&accounts, &token).await {
        Ok(user) => user,
        Err(ApiError::InvalidLinkToken(_)) => return link_gone(&request, &session, &anonymous_csrf, "password reset"),
        Err(other) => return Err(other.into()),
    };
    if form
        .new_password_confirmation
        .is_some_and(|confirmation| confirmation != new_password)
    {
        return refuse("The two passwords do not match.".into(), owner.email);
    }
    match recovery::reset_password(&accounts, &token, new_password, &origin).await {
        Ok(count) => {
            // This browser's own log-in, if it had one, has just ended with the others.
            session.purge();
            outcome(
                &request,
                &session,
                &anonymous_csrf,
                StatusCode::OK,
                "Your password has been changed",
                format!(
                    "The new password is set for {}, and {} signed out. Log in with the new password.",
                    owner.email,
                    crate::account::count_devices(count, false)
                ),
                ("/login", "Log in"),
            )
        }
        Err(ApiError::InvalidField { message, .. }) => refuse(format!("{message}."), owner.email),
        Err(ApiError::InvalidLinkToken(_)) => link_gone(&request, &session, &anonymous_csrf, "password reset"),
        Err(other) => Err(other.into()),
    }
}

pub async fn verify_email(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token.unwrap_or_default();
    match recovery::verify_email(&accounts, &token, &origin).await {
        Ok(email) => outcome(
            &request,
            &session,
            &anonymous_csrf,
            StatusCode::OK,
            "Email address verified",
            format!("Thank you: {email} is verified."),
            ("/dashboard", "Go to your devices"),
        ),
        Err(ApiError::InvalidLinkToken(_)) => outcome(
            &request,
            &session,
            &anonymous_csrf,
            StatusCode::BAD_REQUEST,
            "This link no longer works",
            "This verification link is unknown, has already been used or has expired. Log in and ask for a new one \
             from your devices page."
                .into(),
            ("/dashboard", "Go to your devices"),
        ),
        Err(other) => Err(other.into()),
    }
}

/// The dashboard's "send the link again".
pub async fn resend_verification(
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    match recovery::resend_verification(&accounts, &user.0.user_id).await? {
        Resent::Sent => flash(
            user.session(),
            "success",
            format!(
                "A new verification link is on its way. It works once, for {} hours.",
                recovery::VERIFY_TTL.as_secs() / 3600
            ),
        ),
        Resent::AlreadyVerified => flash(user.session(), "success", "Your email address is already verified."),
    }
    Ok(redirect("/dashboard"))
}

#[derive(Template)]
#[template(path = "not_me.html")]
struct NotMePage {
    layout: Layout,
    token: String,
    device: String,
    ip: String,
    when: String,
}

fn not_me_gone(
    request: &HttpRequest,
    session: &Session,
    anonymous_csrf: &AnonymousCsrf,
) -> Result<HttpResponse, PageError> {
    outcome(
        request,
        session,
        anonymous_csrf,
        StatusCode::BAD_REQUEST,
        "This link no longer works",
        "This \"this wasn't me\" link is unknown, has already been used or has expired. If you think someone else \
         knows your password, reset it."
            .into(),
        ("/password/forgot", "Reset your password"),
    )
}

/// The confirmation page behind a "this wasn't me" link: reading it changes nothing (mail
/// scanners fetch links), its button does.
pub async fn not_me_form(
    request: HttpRequest,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token.unwrap_or_default();
    match recovery::reported_sign_in(&accounts, &token).await {
        Ok(reported) => {
            let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
            let (device, ip, when) = match &reported.session {
                Some(login) => (
                    describe_device(&login.user_agent),
                    login.ip.clone(),
                    exact_time(login.created_at),
                ),
                None => ("a device".into(), "an unknown address".into(), "recently".into()),
            };
            let page = NotMePage {
                layout,
                token,
                device,
                ip,
                when,
            };
            render_form(&page, StatusCode::OK, cookie)
        }
        Err(ApiError::InvalidLinkToken(_)) => not_me_gone(&request, &session, &anonymous_csrf),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct NotMeForm {
    token: Option<String>,
}

pub async fn not_me_confirm(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
    query: web::Query<TokenQuery>,
    CsrfForm(form): CsrfForm<NotMeForm>,
) -> Result<HttpResponse, PageError> {
    let token = form.token.or(query.into_inner().token).unwrap_or_default();
    match recovery::report_sign_in(&accounts, &token, &origin).await {
        Ok(count) => {
            session.purge();
            outcome(
                &request,
                &session,
                &anonymous_csrf,
                StatusCode::OK,
                "Your account is secured",
                format!(
                    "{} signed out, and logging in with the current password is blocked. We have sent you a link to \
                     set a new password; it works once, for {} minutes.",
                    capitalized(&crate::account::count_devices(count, false)),
                    recovery::RESET_TTL.as_secs() / 60
                ),
                ("/password/forgot", "Did not get the link? Ask for another"),
            )
        }
        Err(ApiError::InvalidLinkToken(_)) => not_me_gone(&request, &session, &anonymous_csrf),
        Err(other) => Err(other.into()),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
