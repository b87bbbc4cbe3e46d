//! Token log-in, refresh with rotation, and Bearer log-out.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account::{self, Accounts};
use crate::auth::client::ClientAddress;
use crate::auth::login::{self, Issuer, TokenPair};
use crate::auth::strategy::{Authenticated, Strict};
use crate::error::ApiError;
use crate::routes::api::required;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    session_id: String,
}

impl TokenResponse {
    pub fn from_pair(issuer: &Issuer, pair: TokenPair) -> Self {
        Self {
            access_token: pair.access.token,
            token_type: "Bearer",
            expires_in: issuer.lifetimes.access_ttl.as_secs(),
            refresh_token: pair.refresh.expose().to_owned(),
            session_id: pair.session_id,
        }
    }
}

fn no_store(pair: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(pair)
}

#[utoipa::path(
    post,
    path = "/api/token",
    tag = "api",
    summary = "Log in with a password: a token pair in a new login session",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "a token pair", body = TokenResponse),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "wrong email or password, or (the password being right) an account an operator locked (`invalid_grant`); or `mfa_required` with an `mfa_token` for `/api/token/mfa` when the account has two-step verification", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "a field is missing or invalid (`field` names it)", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited per address, or too many failed log-ins to the account from clients it does not know (a client sending the device cookie of an earlier log-in is counted on its own); `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn issue(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = required(body.email, "email")?;
    let password = required(body.password, "password")?;
    // A client that keeps cookies is remembered like a browser (`auth::known_browser`).
    let known_client = accounts.known_browsers.presented(&request);
    let user = account::authenticate(&accounts, &email, &password, &origin, known_client.as_deref()).await?;
    // Password verified; a second factor needed? Then nothing is issued until `/api/token/mfa`.
    if let Some(mfa_token) = account::second_factor::challenge_if_enrolled(&accounts, &user).await? {
        return Err(ApiError::MfaRequired {
            mfa_token: crate::error::Undisclosed(mfa_token.expose().to_owned()),
        });
    }
    let pair = login::open_token_session(&issuer, &user, &origin).await?;
    let mut response = no_store(TokenResponse::from_pair(&issuer, pair));
    accounts
        .known_browsers
        .remember_on(&mut response, known_client.as_deref(), &user, accounts.now())?;
    Ok(response)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/token/refresh",
    tag = "api",
    summary = "Rotate a refresh token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "a new pair", body = TokenResponse),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "unknown, expired or reused refresh token (`invalid_grant`); a reuse revokes the login session", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "a field is missing or invalid (`field` names it)", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn refresh(
    ClientAddress(origin): ClientAddress,
    issuer: web::Data<Issuer>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = required(body.into_inner().refresh_token, "refresh_token")?;
    let pair = login::rotate(&issuer, &presented, &origin).await?;
    Ok(no_store(TokenResponse::from_pair(&issuer, pair)))
}

/// Ends this token's login session: the session and its refresh tokens are revoked and every
/// unexpired access token of the session (this one included) goes on the denylist.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "api",
    summary = "End this token's login session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "logged out"),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn logout(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    user: Authenticated<Strict>,
) -> Result<HttpResponse, ApiError> {
    // Ending the login session denylists every unexpired access token recorded for it, this one
    // included: denylisting it here too would announce its revocation twice.
    account::log_out(&accounts, &user.principal, &origin, "API token").await?;
    Ok(HttpResponse::NoContent().finish())
}
