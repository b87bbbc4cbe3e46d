//! The forgotten password, as JSON: ask for a reset link, and set a new password with it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account::Accounts;
use crate::auth::client::ClientAddress;
use crate::error::ApiError;
use crate::routes::api::required;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ForgotPasswordRequest {
    email: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ForgotPasswordAccepted {
    /// The same words whether or not the address has an account.
    status: &'static str,
}

/// What every accepted request is answered, account or not.
pub const FORGOT_ACCEPTED: &str = "if an account uses this address, a link to reset its password is on its way";

#[utoipa::path(
    post,
    path = "/api/password/forgot",
    tag = "api",
    summary = "Email a single-use password reset link (valid 30 minutes)",
    description = "Answers 202 with the same body whether or not an account uses the address, and does the same work either way.",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "accepted; a message is on its way to the address", body = ForgotPasswordAccepted),
        (status = 400, description = "the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "`email` is missing or not an address", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited per client address; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn forgot(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    body: web::Json<ForgotPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = required(body.into_inner().email, "email")?;
    crate::recovery::request_password_reset(&accounts, &email, &origin).await?;
    Ok(HttpResponse::Accepted().json(ForgotPasswordAccepted {
        status: FORGOT_ACCEPTED,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetPasswordRequest {
    token: Option<String>,
    new_password: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/password/reset",
    tag = "api",
    summary = "Set a new password with an emailed reset link's token",
    description = "Ends every login session of the account (reason `password_reset`), bumps `token_version`, and spends every other reset link of the account.",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "the password is set; every device is signed out"),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired; or the body is not JSON of this shape", body = crate::error::ErrorResponse),
        (status = 413, description = "the body is over 16 KiB", body = crate::error::ErrorResponse),
        (status = 422, description = "a field is missing, or `new_password` breaks the password rules (`field` names it)", body = crate::error::ErrorResponse),
        (status = 429, description = "rate limited per client address; `Retry-After`", body = crate::error::ErrorResponse),
        (status = 503, description = "a backing service is down; `Retry-After`", body = crate::error::ErrorResponse)
    )
)]
pub async fn reset(
    ClientAddress(origin): ClientAddress,
    accounts: web::Data<Accounts>,
    body: web::Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let token = required(body.token, "token")?;
    let new_password = required(body.new_password, "new_password")?;
    crate::recovery::reset_password(&accounts, &token, new_password, &origin).await?;
    Ok(HttpResponse::NoContent().finish())
}
