//! Sudo mode: a sensitive action asks for the password (or a second-factor code) again when the
//! browser's last proof is older than `SUDO_TTL`, through a short confirmation page.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::account::Accounts;
use crate::auth::strategy::AUTHENTICATED_AT_KEY;
use crate::routes::browser_session;
use crate::routes::web::format::relative_time;
use crate::routes::web::layout::{Layout, render_with_status};
use crate::routes::web::page::{PageError, WebUser, find_user};

fn proved_at(user: &WebUser) -> i64 {
    user.session()
        .get::<i64>(AUTHENTICATED_AT_KEY)
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Where a sensitive action stands on the password proof.
pub enum Sudo {
    Confirmed,
    /// The proof is too old and no password (or code) came with the form.
    Needed,
    /// A password (or a code) came with the form and it is wrong.
    Wrong,
}

/// The one re-authentication rule (`account::require_recent_proof`), told apart for the
/// page: fresh sudo, no password yet, or a wrong one. With two-step verification on, a code
/// from the authenticator may stand in for the password.
pub async fn confirm_sudo(
    accounts: &Accounts,
    user: &WebUser,
    password_given: Option<String>,
    code_given: Option<String>,
    origin: &crate::store::events::Origin,
) -> Result<Sudo, PageError> {
    let password = password_given.filter(|given| !given.is_empty());
    let code = code_given.filter(|given| !given.trim().is_empty());
    let had_proof = password.is_some() || code.is_some();
    let proof = crate::account::Proof { password, code };
    match crate::account::require_recent_proof(accounts, &user.0, proof, origin).await {
        Ok(proved) => {
            browser_session::record_renewed_proof(user.session(), &proved)?;
            Ok(Sudo::Confirmed)
        }
        Err(crate::error::ApiError::ReauthenticationRequired(_)) if had_proof => Ok(Sudo::Wrong),
        Err(crate::error::ApiError::ReauthenticationRequired(_)) => Ok(Sudo::Needed),
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "confirm_password.html")]
struct ConfirmPasswordPage {
    layout: Layout,
    action: &'static str,
    purpose: &'static str,
    last_proved: String,
    error: Option<&'static str>,
    /// Fields the form carries back unchanged, as `(name, value)`.
    carried: Vec<(&'static str, &'static str)>,
    /// Two-step verification is on: a code is accepted in place of the password.
    accepts_code: bool,
}

/// The short step that asks for the password again before a sensitive action, and why.
pub async fn ask_for_password(
    accounts: &Accounts,
    user: &WebUser,
    sudo: Sudo,
    action: &'static str,
    purpose: &'static str,
    carried: Vec<(&'static str, &'static str)>,
) -> Result<HttpResponse, PageError> {
    let account = find_user(accounts, &user.0.user_id).await?;
    let proved_at = proved_at(user);
    let page = ConfirmPasswordPage {
        layout: Layout::new(user.session(), Some(account.email))?,
        action,
        purpose,
        last_proved: if proved_at > 0 {
            format!(
                "you last entered your password {}",
                relative_time(proved_at, accounts.now())
            )
        } else {
            "this browser has not proved your password yet".to_owned()
        },
        error: matches!(sudo, Sudo::Wrong).then_some("That password is not correct. Try again."),
        carried,
        accepts_code: crate::account::second_factor::is_enabled(accounts, &user.0.user_id).await?,
    };
    let status = if matches!(sudo, Sudo::Wrong) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render_with_status(&page, status)
}
