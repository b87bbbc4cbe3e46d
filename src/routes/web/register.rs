//! `GET/POST /register`.

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::auth::RequestSettings;
use crate::auth::client::ClientAddress;
use crate::auth::csrf::AnonymousCsrf;
use crate::auth::login::Issuer;
use crate::error::ApiError;
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::layout::{Layout, flash, render_form};
use crate::routes::web::login::start_browser_session;
use crate::routes::web::page::PageError;

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub async fn form(
    request: HttpRequest,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
    let page = RegisterPage {
        layout,
        email: String::new(),
        error: None,
    };
    render_form(&page, StatusCode::OK, cookie)
}

#[derive(Deserialize)]
pub struct RegisterForm {
    email: Option<String>,
    password: Option<String>,
    password_confirmation: Option<String>,
}

pub async fn submit(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    anonymous_csrf: web::Data<AnonymousCsrf>,
    settings: web::Data<RequestSettings>,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<HttpResponse, PageError> {
    let session = request.get_session();
    let email = form.email.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let refuse = |message: String, status: StatusCode| {
        let (layout, cookie) = Layout::for_form(&request, &session, &anonymous_csrf)?;
        let page = RegisterPage {
            layout,
            email: email.clone(),
            error: Some(message),
        };
        render_form(&page, status, cookie)
    };
    if form
        .password_confirmation
        .is_some_and(|confirmation| confirmation != password)
    {
        return refuse(
            "The two passwords do not match.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    match crate::account::create(&accounts, &email, password, &origin).await {
        Ok(user) => {
            crate::recovery::send_verification(&accounts, &user).await?;
            let login_session_id = start_browser_session(&issuer, &session, &user, &origin).await?;
            flash(
                &session,
                "success",
                "Welcome! Your account is ready. We have sent you a link to confirm your email address.",
            );
            crate::routes::web::login::redirect_remembering_device(
                "/dashboard",
                &settings,
                &issuer.lifetimes,
                &login_session_id,
            )
        }
        Err(error @ (ApiError::InvalidField { .. } | ApiError::Conflict(_))) => {
            let status = actix_web::ResponseError::status_code(&error);
            let message = match &error {
                ApiError::InvalidField { message, .. } => capitalize(message),
                _ => "An account with this email already exists.".to_owned(),
            };
            refuse(message, status)
        }
        Err(other) => Err(other.into()),
    }
}

fn capitalize(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
