//! Sign-up, log out everywhere, password change.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::auth::client;
use crate::auth::login::{self, check_credentials};
use crate::auth::password;
use crate::auth::strategy::{AUTHENTICATED_AT_KEY, BearerOrCookie, Credential, LAST_SEEN_KEY};
use crate::domain::{Email, Password, now_millis};
use crate::error::ApiError;
use crate::routes::api::{required, token::TokenResponse};
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent};
use crate::store::login_sessions::EndReason;
use crate::store::{self, users::Inserted};

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

/// Creates an account; the parsing rules are shared with the HTML form.
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: String,
    origin: &store::events::Origin,
) -> Result<store::users::User, ApiError> {
    let email = Email::parse(email).map_err(|message| ApiError::invalid_field("email", message))?;
    let password = Password::parse(password).map_err(|message| ApiError::invalid_field("password", message))?;
    if store::users::find_by_email(&state.db, &email).await?.is_some() {
        return Err(ApiError::Conflict("an account with this email already exists".into()));
    }
    let hash = password::hash(password).await?;
    match store::users::insert(&state.db, &email, &hash).await? {
        Inserted::EmailTaken => Err(ApiError::Conflict("an account with this email already exists".into())),
        Inserted::Created(user) => {
            events::record(
                &state.db,
                NewEvent {
                    user_id: &user.id,
                    kind: EventKind::Registered,
                    session_id: None,
                    other_session_id: None,
                    origin,
                    detail: String::new(),
                },
            )
            .await?;
            Ok(user)
        }
    }
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
    let user = create_account(&state, &email, password, &origin).await?;
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
    let revoked = state
        .revocation
        .revoke_all_sessions(
            &principal.user_id,
            None,
            EndReason::LoggedOutEverywhere,
            Some(&principal.session_id),
            true,
        )
        .await?;
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    events::record(
        &state.db,
        NewEvent {
            user_id: &principal.user_id,
            kind: EventKind::LoggedOutEverywhere,
            session_id: Some(&principal.session_id),
            other_session_id: None,
            origin: &origin,
            detail: format!("{} devices", revoked.sessions.len()),
        },
    )
    .await?;
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

/// Verifies the current password, stores the new one, bumps `token_version` and revokes every
/// other login session. The caller's own session survives; `token_version` moved, so a Bearer
/// caller needs a fresh access token, which is returned.
pub async fn change_password_for(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    current: String,
    new: String,
    origin: &store::events::Origin,
) -> Result<usize, ApiError> {
    let user = store::users::find_by_id(&state.db, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !password::verify(current, Some(user.password_hash.clone())).await? {
        return Err(ApiError::invalid_field(
            "current_password",
            "the current password is not correct",
        ));
    }
    let new = Password::parse(new).map_err(|message| ApiError::invalid_field("new_password", message))?;
    let hash = password::hash(new).await?;
    store::users::change_password(&state.db, user_id, &hash).await?;
    let revoked = state
        .revocation
        .revoke_all_sessions(
            user_id,
            Some(session_id),
            EndReason::PasswordChanged,
            Some(session_id),
            false,
        )
        .await?;
    events::record(
        &state.db,
        NewEvent {
            user_id,
            kind: EventKind::PasswordChanged,
            session_id: Some(session_id),
            other_session_id: None,
            origin,
            detail: format!("{} other devices signed out", revoked.sessions.len()),
        },
    )
    .await?;
    Ok(revoked.sessions.len())
}

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
    change_password_for(&state, &principal.user_id, &principal.session_id, current, new, &origin).await?;
    match &principal.credential {
        Credential::Bearer(claims) => {
            // The old access token carries the old `ver`; it goes on the denylist and a new pair
            // replaces it, in the same login session.
            state.revocation.denylist_token(&claims.jti, claims.exp * 1000).await?;
            let user = store::users::find_by_id(&state.db, &principal.user_id)
                .await?
                .ok_or(ApiError::NotFound)?;
            let session = store::login_sessions::find(&state.db, &principal.session_id)
                .await?
                .ok_or(ApiError::NotFound)?;
            store::refresh_tokens::delete_for_session(&state.db, &session.id).await?;
            let pair = login::issue_pair(&state, &user, &session).await?;
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

/// Used by the JSON and HTML log-in alike: a generic refusal for unknown email and wrong password.
pub async fn authenticate(state: &AppState, email: &str, password: &str) -> Result<store::users::User, ApiError> {
    check_credentials(state, email, password)
        .await?
        .ok_or_else(|| ApiError::InvalidGrant("the email or password is not correct".into()))
}

#[derive(Deserialize)]
pub struct DeleteAccountRequest {
    password: Option<String>,
}

/// Deletes the caller's account after checking the password: every login session is revoked
/// first (so tokens are denylisted and cookie state deleted), then the user row and, by cascade,
/// everything that belonged to it.
pub async fn delete_account(
    state: web::Data<AppState>,
    BearerOrCookie(principal): BearerOrCookie,
    body: web::Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = required(body.into_inner().password, "password")?;
    let user = store::users::find_by_id(&state.db, &principal.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !password::verify(password, Some(user.password_hash)).await? {
        return Err(ApiError::invalid_field("password", "the password is not correct"));
    }
    state
        .revocation
        .revoke_all_sessions(
            &user.id,
            None,
            EndReason::AccountDeleted,
            Some(&principal.session_id),
            true,
        )
        .await?;
    store::users::delete(&state.db, &user.id).await?;
    if let Credential::Cookie(session) = &principal.credential {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}
