//! Sign-up, log out everywhere, password change, account deletion: the JSON side of `account`.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account;
use crate::auth::client;
use crate::auth::login;
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, BearerOrCookie, Credential, LAST_SEEN_KEY};
use crate::domain::now_millis;
use crate::error::ApiError;
use crate::routes::api::{required, token::TokenResponse};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
pub struct RegisteredUser {
    id: String,
    email: String,
}

pub async fn register(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = required(body.email, "email")?;
    let password = required(body.password, "password")?;
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let user = account::create(&state, &email, password, &origin).await?;
    Ok(HttpResponse::Created().json(RegisteredUser {
        id: user.id,
        email: user.email,
    }))
}

pub async fn logout_all(
    request: HttpRequest,
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
) -> Result<HttpResponse, ApiError> {
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    account::log_out_everywhere(&state, &principal, &origin).await?;
    if let Credential::Cookie(session) = &principal.credential {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Changes the password. `token_version` moved, so a Bearer caller gets a fresh pair in its own
/// login session; a cookie caller keeps its session under a new key.
pub async fn change_password(
    request: HttpRequest,
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let current = required(body.current_password, "current_password")?;
    let new = required(body.new_password, "new_password")?;
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    account::change_password(&state, &principal, current, new, &origin).await?;
    match &principal.credential {
        Credential::Bearer(_) => {
            // The caller's tokens carry the old `ver`: all of its login session's tokens are
            // replaced by a new pair, in the same login session.
            let pair = login::reissue_pair(&state, &principal.session_id).await?;
            Ok(HttpResponse::Ok().json(TokenResponse::from_pair(&state, pair)))
        }
        Credential::Cookie(session) => {
            session.renew();
            let now = now_millis();
            let _ = session.insert(AUTHENTICATED_AT_KEY, now);
            let _ = session.insert(LAST_SEEN_KEY, now);
            let csrf = crate::auth::csrf::rotate(&request.get_session())?;
            Ok(HttpResponse::Ok().json(serde_json::json!({ "session_id": principal.session_id, "csrf_token": csrf })))
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteAccountRequest {
    password: Option<String>,
}

pub async fn delete_account(
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
    body: web::Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = required(body.into_inner().password, "password")?;
    account::delete(&state, &principal, password).await?;
    if let Credential::Cookie(session) = &principal.credential {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}
