//! `GET/POST /password`: change the password; every other device is signed out, this browser
//! stays logged in with a renewed session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::auth::client::ClientAddress;
use crate::error::ApiError;
use crate::routes::browser_session;
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::layout::{Layout, flash, redirect, render, render_with_status};
use crate::routes::web::page::PageError;
use crate::routes::web::page::{WebUser, email_of};
use crate::store;

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    error: Option<String>,
    /// Which field the error is about, so it is shown (and announced) there.
    error_field: &'static str,
    other_devices: usize,
    signed_out_count: String,
}

async fn page(
    accounts: &Accounts,
    user: &WebUser,
    error: Option<(&'static str, String)>,
) -> Result<PasswordPage, PageError> {
    let others = store::login_sessions::list_live(&accounts.db, &user.0.user_id, accounts.now())
        .await?
        .iter()
        .filter(|session| session.id != user.0.session_id)
        .count();
    let (error_field, error) = match error {
        Some((field, message)) => (field, Some(message)),
        None => ("", None),
    };
    Ok(PasswordPage {
        layout: Layout::new(user.session(), Some(email_of(accounts, user).await?))?,
        error,
        error_field,
        other_devices: others,
        signed_out_count: crate::account::count_devices(others, true),
    })
}

/// Why a new password was refused, in words a person can act on.
fn explain_refusal(field: &str, message: &str) -> String {
    use crate::domain::Password;
    match field {
        "current_password" => "That is not your current password, so nothing was changed.".to_owned(),
        _ if message.contains("at least") => format!(
            "The new password is too short: use at least {} characters. Several words together make a strong one.",
            Password::MIN_CHARACTERS
        ),
        _ if message.contains("at most") => format!(
            "The new password is too long: use at most {} characters.",
            Password::MAX_CHARACTERS
        ),
        _ => {
            let mut message = message.to_owned();
            if let Some(first) = message.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            format!("The new password was refused: {message}.")
        }
    }
}

pub async fn form(accounts: web::Data<Accounts>, user: WebUser) -> Result<HttpResponse, PageError> {
    render(&page(&accounts, &user, None).await?)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: Option<String>,
    new_password: Option<String>,
    new_password_confirmation: Option<String>,
}

pub async fn submit(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let new = form.new_password.unwrap_or_default();
    if form
        .new_password_confirmation
        .is_some_and(|confirmation| confirmation != new)
    {
        return refuse(
            &accounts,
            &user,
            "new_password_confirmation",
            "The two new passwords do not match: type the same new password twice.".into(),
        )
        .await;
    }
    let current = form.current_password.unwrap_or_default();
    match crate::account::change_password(&accounts, &user.0, current, new, &origin).await {
        Ok(signed_out) => {
            // A new session key for this browser: whatever copy of the old cookie exists is dead.
            let session = user.session();
            session.renew();
            let now = accounts.now();
            browser_session::record_password_proved(session, now)?;
            crate::auth::csrf::rotate(session)?;
            let devices = crate::account::count_devices(signed_out, true);
            flash(
                session,
                "success",
                format!("Password changed. Signed out of {devices}."),
            );
            // The change ended every browser's standing as known to the account
            // (`auth::known_browser`); the one that made it is known again at once.
            let mut response = redirect("/dashboard");
            if let Some(account) = crate::store::users::find_by_id(&accounts.db, &user.0.user_id).await? {
                let known_browser = accounts.known_browsers.presented(&request);
                accounts.known_browsers.remember_on(
                    &mut response,
                    known_browser.as_deref(),
                    &account,
                    accounts.now(),
                )?;
            }
            Ok(response)
        }
        Err(ApiError::InvalidField { field, message }) => {
            refuse(&accounts, &user, field, explain_refusal(field, &message)).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn refuse(
    accounts: &Accounts,
    user: &WebUser,
    field: &'static str,
    message: String,
) -> Result<HttpResponse, PageError> {
    render_with_status(
        &page(accounts, user, Some((field, message))).await?,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}
