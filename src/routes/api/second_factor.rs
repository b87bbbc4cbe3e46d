//! Two-step verification over JSON: enrolling an authenticator, turning it off, and the second
//! step of `/api/token` (`/api/token/mfa`).

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account::second_factor;
use crate::account::{self, Accounts, Proof};
use crate::auth::client::ClientAddress;
use crate::auth::login::{self, Issuer};
use crate::auth::strategy::BearerOrCookie;
use crate::domain::MfaToken;
use crate::error::ApiError;
use crate::routes::api::required;
use crate::routes::api::token::TokenResponse;
use crate::routes::browser_session;

/// A re-authentication proof: the password, or a code from the authenticator (or a recovery
/// code) for an account that has one. Needed once the last proof is older than `SUDO_TTL`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ProofRequest {
    password: Option<String>,
    code: Option<String>,
}

impl From<Option<web::Json<ProofRequest>>> for Proof {
    fn from(body: Option<web::Json<ProofRequest>>) -> Self {
        let body = body.map(web::Json::into_inner).unwrap_or_default();
        Self {
            password: body.password,
            code: body.code,
        }
    }
}

/// A started enrolment: the secret (base32, to type into an authenticator app) and the
/// `otpauth://` URI a QR code would carry.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentStarted {
    secret: String,
    otpauth_uri: String,
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}

#[utoipa::path(
    post,
    path = "/api/mfa/totp",
    tag = "api",
    summary = "Start enrolling an authenticator app (TOTP); pending until confirmed",
    request_body = Option<ProofRequest>,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "a pending enrolment: its secret and otpauth URI", body = EnrolmentStarted),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "`reauthentication_required`: the last proof is older than SUDO_TTL and `password` (or `code`) is missing or wrong; or a cookie request from another site (`csrf_failed`)", body = crate::error::ErrorResponse),
        (status = 409, description = "two-step verification is already on", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited, or the account is locked after failed attempts; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn start_enrolment(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    session: Session,
    body: Option<web::Json<ProofRequest>>,
) -> Result<HttpResponse, ApiError> {
    let proved = account::require_recent_proof(&accounts, &principal, body.into(), &origin).await?;
    browser_session::record_renewed_proof(&session, &proved)?;
    let enrolment = second_factor::start_enrolment(&accounts, &principal, &proved).await?;
    Ok(no_store().json(EnrolmentStarted {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmRequest {
    /// The 6-digit code the authenticator app shows now.
    code: Option<String>,
}

/// Ten single-use recovery codes, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentConfirmed {
    recovery_codes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/mfa/totp/confirm",
    tag = "api",
    summary = "Confirm the pending authenticator with a code: two-step verification is on",
    request_body = ConfirmRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "on; ten recovery codes, shown once", body = EnrolmentConfirmed),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "a cookie request from another site (`csrf_failed`)", body = crate::error::ErrorResponse),
        (status = 409, description = "no enrolment is pending (none started, expired after 15 minutes, or already confirmed)", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "`code` missing or not the authenticator's current code", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn confirm_enrolment(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    body: web::Json<ConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = required(body.into_inner().code, "code")?;
    let recovery_codes = second_factor::confirm_enrolment(&accounts, &principal, &code, &origin).await?;
    Ok(no_store().json(EnrolmentConfirmed { recovery_codes }))
}

#[utoipa::path(
    delete,
    path = "/api/mfa/totp",
    tag = "api",
    summary = "Turn two-step verification off (the authenticator and every recovery code)",
    request_body = Option<ProofRequest>,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "off"),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "`reauthentication_required`: the last proof is older than SUDO_TTL and `password` (or `code`) is missing or wrong; or a cookie request from another site (`csrf_failed`)", body = crate::error::ErrorResponse),
        (status = 404, description = "two-step verification is not on", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited, or the account is locked after failed attempts; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn disable(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    session: Session,
    body: Option<web::Json<ProofRequest>>,
) -> Result<HttpResponse, ApiError> {
    let proved = account::require_recent_proof(&accounts, &principal, body.into(), &origin).await?;
    browser_session::record_renewed_proof(&session, &proved)?;
    second_factor::disable(&accounts, &principal, &proved, &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ten new single-use recovery codes, shown this once; the earlier ones no longer work.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesReplaced {
    recovery_codes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/mfa/recovery-codes",
    tag = "api",
    summary = "Replace the recovery codes: ten new ones, and every earlier one stops working",
    request_body = Option<ProofRequest>,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "ten new recovery codes, shown once", body = RecoveryCodesReplaced),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "no credential, or a refused one (`reason` says why)", body = crate::error::ErrorResponse),
        (status = 403, description = "`reauthentication_required`: the last proof is older than SUDO_TTL and `password` (or `code`) is missing or wrong; or a cookie request from another site (`csrf_failed`)", body = crate::error::ErrorResponse),
        (status = 404, description = "two-step verification is not on", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited, or the account is locked after failed attempts; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn replace_recovery_codes(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    BearerOrCookie(principal): BearerOrCookie,
    session: Session,
    body: Option<web::Json<ProofRequest>>,
) -> Result<HttpResponse, ApiError> {
    let proved = account::require_recent_proof(&accounts, &principal, body.into(), &origin).await?;
    browser_session::record_renewed_proof(&session, &proved)?;
    let recovery_codes = second_factor::replace_recovery_codes(&accounts, &principal, &proved, &origin).await?;
    Ok(no_store().json(RecoveryCodesReplaced { recovery_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MfaLogInRequest {
    /// What `/api/token` answered with `mfa_required`.
    mfa_token: Option<String>,
    /// A 6-digit code from the authenticator, or an unused recovery code.
    code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/token/mfa",
    tag = "api",
    summary = "The second step of a password log-in: a token pair in a new login session",
    request_body = MfaLogInRequest,
    responses(
        (status = 200, description = "a token pair", body = TokenResponse),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 401, description = "`invalid_grant`: the mfa_token is unknown, used, expired (5 minutes) or spent by 5 wrong codes; or the code is wrong", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "a field is missing (`field` names it)", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited per address, or the account is locked after failed attempts; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn finish_log_in(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    issuer: web::Data<Issuer>,
    body: web::Json<MfaLogInRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mfa_token = required(body.mfa_token, "mfa_token")?;
    let code = required(body.code, "code")?;
    let token = MfaToken::parse(&mfa_token)
        .ok_or_else(|| ApiError::InvalidGrant("the mfa_token is not valid: log in again".into()))?;
    let known_client = accounts.known_browsers.presented(&request);
    let user = second_factor::finish_log_in(&accounts, &token.hash(), &code, known_client.as_deref(), &origin).await?;
    let pair = login::open_token_session(&issuer, &user, &origin).await?;
    // Remembered like a password log-in's client (`auth::known_browser`).
    let known = accounts
        .known_browsers
        .remember(known_client.as_deref(), &user, accounts.now());
    Ok(no_store().cookie(known).json(TokenResponse::from_pair(&issuer, pair)))
}
