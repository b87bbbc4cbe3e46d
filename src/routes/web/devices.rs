//! The actions on devices from the dashboard: sign out one, report it or recognise it, sign out
//! all others, or log out everywhere (the last two behind sudo mode).

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::account::Accounts;
use crate::auth::client::ClientAddress;
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::layout::{Layout, flash, redirect, render};
use crate::routes::web::login::NoFields;
use crate::routes::web::page::{PageError, WebUser, find_user};
use crate::routes::web::sudo::{Sudo, ask_for_password, confirm_sudo};
use crate::store::login_sessions;

pub async fn revoke_one(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let target = path.into_inner();
    let device = crate::account::revoke_own_session(&accounts, &user.0, &target, &origin).await?;
    if target == user.0.session_id {
        user.session().purge();
        return Ok(redirect("/login"));
    }
    flash(user.session(), "info", format!("Signed out of {device}"));
    Ok(redirect("/dashboard"))
}

/// "This wasn't me": the device is signed out and reported, and the user is taken to change the
/// password, since whoever logged in there knew it.
pub async fn report_not_you(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let device = crate::account::report_not_you(&accounts, &user.0, &path.into_inner(), &origin).await?;
    flash(
        user.session(),
        "warning",
        format!(
            "Signed out of {device} and recorded it as not you. Whoever logged in there may know your \
             password: change it now. A later log-in from that device will be flagged."
        ),
    );
    Ok(redirect("/password"))
}

/// "It was me": the device is marked known.
pub async fn recognise(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let device = crate::account::recognise_device(&accounts, &user.0, &path.into_inner(), &origin).await?;
    flash(user.session(), "success", format!("Marked {device} as yours."));
    Ok(redirect("/dashboard"))
}

#[derive(Deserialize)]
pub struct SudoForm {
    password: Option<String>,
    code: Option<String>,
    confirm: Option<String>,
}

pub async fn revoke_others(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<SudoForm>,
) -> Result<HttpResponse, PageError> {
    let sudo = confirm_sudo(&accounts, &user, form.password, form.code, &origin).await?;
    if !matches!(sudo, Sudo::Confirmed) {
        return ask_for_password(
            &accounts,
            &user,
            sudo,
            "/sessions/revoke-others",
            "to sign out all your other devices",
            Vec::new(),
        )
        .await;
    }
    let count = crate::account::sign_out_other_devices(&accounts, &user.0, &origin).await?;
    let signed_out = crate::account::count_devices(count, true);
    flash(user.session(), "info", format!("Signed out of {signed_out}"));
    Ok(redirect("/dashboard"))
}

#[derive(Template)]
#[template(path = "logout_all.html")]
struct LogoutAllPage {
    layout: Layout,
    device_count: usize,
}

/// The confirmation step before logging out everywhere.
pub async fn confirm_logout_all(accounts: web::Data<Accounts>, user: WebUser) -> Result<HttpResponse, PageError> {
    let account = find_user(&accounts, &user.0.user_id).await?;
    let device_count = login_sessions::list_live(&accounts.db, &user.0.user_id, accounts.now())
        .await?
        .len();
    render(&LogoutAllPage {
        layout: Layout::new(user.session(), Some(account.email))?,
        device_count,
    })
}

pub async fn logout_all(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: WebUser,
    CsrfForm(form): CsrfForm<SudoForm>,
) -> Result<HttpResponse, PageError> {
    if form.confirm.as_deref() != Some("yes") {
        return Ok(redirect("/logout-all"));
    }
    let sudo = confirm_sudo(&accounts, &user, form.password, form.code, &origin).await?;
    if !matches!(sudo, Sudo::Confirmed) {
        return ask_for_password(
            &accounts,
            &user,
            sudo,
            "/logout-all",
            "to log out everywhere",
            vec![("confirm", "yes")],
        )
        .await;
    }
    crate::account::log_out_everywhere(&accounts, &user.0, &origin).await?;
    user.session().purge();
    Ok(redirect("/login"))
}
