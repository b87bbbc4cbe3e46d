//! Sign-up, log out everywhere, password change, account deletion: the JSON side of `account`.

use actix_session::{Session, SessionExt};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account::{self, Accounts};
use crate::auth::client::ClientAddress;
use crate::auth::login::{self, Issuer};
use crate::auth::strategy::{BearerOrCookie, Credential};
use crate::error::ApiError;
use crate::routes::api::{required, token::TokenResponse};
use crate::routes::browser_session;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredUser {
    id: String,
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/register",
    tag = "api",
    summary = "Create an account",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "created", body = RegisteredUser),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 409, description = "an account with this email exists", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "a field is missing or invalid (`field` names it)", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn register(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = required(body.email, "email")?;
    let password = required(body.password, "password")?;
    let user = account::create(&accounts, &email, password, &origin).await?;
    crate::recovery::send_verification(&accounts, &user).await?;
    Ok(HttpResponse::Created().json(RegisteredUser {
        id: user.id,
        email: user.email,
    }))
}

/// The password, for an action under the re-authentication rule (`account::require_recent_proof`);
/// or, for an account with two-step verification, a `code` from its authenticator instead.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordProof {
    password: Option<String>,
    code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/logout-all",
    tag = "api",
    summary = "Log out everywhere: bump token_version, revoke every login session",
    request_body = Option<PasswordProof>,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "every login session revoked"),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "`reauthentication_required`: the last password proof is older than SUDO_TTL and `password` is missing or wrong; or a cookie request from another site (`csrf_failed`)", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn logout_all(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    session: Session,
    body: Option<web::Json<PasswordProof>>,
) -> Result<HttpResponse, ApiError> {
    let proof = body.map_or_else(account::Proof::default, |body| {
        let body = body.into_inner();
        account::Proof {
            password: body.password,
            code: body.code,
        }
    });
    let proved = account::require_recent_proof(&accounts, &principal, proof, &origin).await?;
    browser_session::record_renewed_proof(&session, &proved)?;
    account::log_out_everywhere(&accounts, &principal, &origin).await?;
    if let Credential::Cookie(_) = principal.credential {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Changes the password. `token_version` moved, so a Bearer caller gets a fresh pair in its own
/// login session; a cookie caller keeps its session under a new key.
#[utoipa::path(
    post,
    path = "/api/password",
    tag = "api",
    summary = "Change the password; every other login session is revoked",
    request_body = ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "a fresh token pair (Bearer) or the renewed cookie session (`session_id`, `csrf_token`)", body = crate::routes::api::account::PasswordChanged),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "a cookie request without this site's Origin or X-CSRF-Token", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "`current_password` wrong, or `new_password` refused by the password rules or equal to the current one", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn change_password(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    BearerOrCookie(principal): BearerOrCookie,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let current = required(body.current_password, "current_password")?;
    let new = required(body.new_password, "new_password")?;
    account::change_password(&accounts, &principal, current, new, &origin).await?;
    match &principal.credential {
        Credential::Bearer(_) => {
            // The caller's tokens carry the old `ver`: all of its login session's tokens are
            // replaced by a new pair, in the same login session.
            let pair = login::reissue_pair(&issuer, &principal.session_id).await?;
            Ok(HttpResponse::Ok().json(PasswordChanged::Bearer(TokenResponse::from_pair(&issuer, pair))))
        }
        Credential::Cookie(_) => {
            let session = request.get_session();
            session.renew();
            let now = accounts.now();
            let _ = browser_session::record_password_proved(&session, now);
            let csrf = crate::auth::csrf::rotate(&session)?;
            Ok(HttpResponse::Ok().json(PasswordChanged::Cookie(CookieRenewed {
                session_id: principal.session_id.clone(),
                csrf_token: csrf,
            })))
        }
    }
}

/// What `POST /api/password` answers, by the kind of credential it was called with.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PasswordChanged {
    Bearer(TokenResponse),
    Cookie(CookieRenewed),
}

/// A cookie caller's renewed session and its new CSRF token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CookieRenewed {
    session_id: String,
    csrf_token: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeleteAccountRequest {
    password: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/account",
    tag = "api",
    summary = "Delete the account after checking the password",
    request_body = DeleteAccountRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "a cookie request without this site's Origin or X-CSRF-Token", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "`password` missing or wrong", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn delete_account(
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    session: Session,
    body: web::Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = required(body.into_inner().password, "password")?;
    account::delete(&accounts, &principal, password).await?;
    if let Credential::Cookie(_) = principal.credential {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}
