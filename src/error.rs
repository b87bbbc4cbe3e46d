//! The one error policy.
//!
//! Every handler under `/api` returns `Result<_, ApiError>`; an `ApiError` becomes the JSON body
//! `{"error", "error_description"}` of API.md (plus `reason` for rejected credentials, `field` for
//! invalid input). HTML handlers return `Result<_, routes::web::page::PageError>`, which renders a page
//! or redirects to `/login`. Storage and Redis failures become `Unavailable` (503) at the point
//! where they are caught; anything else unexpected is `Internal` (500), whose cause chain goes to
//! the log and never to the client.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::{revocation, store};

/// Why a credential was refused; the `reason` field of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    Malformed,
    BadSignature,
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    RevokedVersion,
    RevokedJti,
    RevokedSession,
    NoCredential,
    ClientToken,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::RevokedVersion => "revoked_version",
            Self::RevokedJti => "revoked_jti",
            Self::RevokedSession => "revoked_session",
            Self::NoCredential => "no_credential",
            Self::ClientToken => "client_token",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the credential is not well-formed",
            Self::BadSignature => "the token's signature does not verify",
            Self::Expired => "the credential has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::WrongAudience => "the token was issued for another audience",
            Self::WrongIssuer => "the token was issued by another issuer",
            Self::RevokedVersion => "the token predates a log-out-everywhere or password change",
            Self::RevokedJti => "the token has been revoked",
            Self::RevokedSession => "the login session has been revoked",
            Self::NoCredential => "no credential was presented",
            Self::ClientToken => {
                "a client's own token (client credentials) names no person or login session; it is not accepted here"
            }
        }
    }
}

/// How a credential was presented, so a 401 can carry the right challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Bearer,
    Cookie,
}

/// A secret an error carries to the client (the `mfa_token` of `mfa_required`): request logs
/// print errors with `Debug`, which shows none of it.
pub struct Undisclosed(pub String);

impl std::fmt::Debug for Undisclosed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Undisclosed(…)")
    }
}

/// Who a refused attempt was counted against: tells the page what to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedOut {
    /// Clients the account does not know: every browser but the owner's remembered ones.
    UnknownClients,
    /// This one browser, whose own attempts reached the limit.
    ThisBrowser,
    /// This login session's re-authentications.
    ThisSession,
    /// The account's second-factor codes at log-in (`account::second_factor`).
    SecondFactor,
}

impl LockedOut {
    /// What the client is told, with the wait; it says why and what still works.
    pub fn description(self, retry_after_seconds: u64) -> String {
        let minutes = retry_after_seconds.div_ceil(60);
        let wait = if minutes <= 1 {
            "a minute".to_owned()
        } else {
            format!("{minutes} minutes")
        };
        match self {
            Self::UnknownClients => format!(
                "too many failed log-ins to this account: to protect it, log-ins from browsers and clients it \
                 does not know are paused for {wait}; a browser that has logged in to it before can still log \
                 in, and resetting the password by email works at once"
            ),
            Self::ThisBrowser => {
                format!("too many failed log-ins to this account from this browser: try again in {wait}")
            }
            Self::ThisSession => {
                format!("too many wrong passwords from this login session: try again in {wait}")
            }
            Self::SecondFactor => {
                format!("too many wrong two-step verification codes for this account: try again in {wait}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("credential rejected: {}", reason.as_str())]
    Unauthorized { reason: RejectReason, kind: CredentialKind },
    #[error("{0}")]
    InvalidGrant(String),
    /// The password was right but the account may not log in now (an operator's lock, or a
    /// reset the owner must do first): 401 `invalid_grant`, and a page that says why.
    #[error("{0}")]
    LoginRefused(String),
    /// The password was right, but the account's password must be reset through email first
    /// (after "this wasn't me"): 401 `invalid_grant` like any refused log-in, with its own words.
    #[error("{0}")]
    PasswordResetRequired(String),
    /// An emailed link's token that is unknown, used or expired: 400 `invalid_token`.
    #[error("{0}")]
    InvalidLinkToken(String),
    /// A client (another service) failed to authenticate on `/oauth/*` (RFC 6749 section 5.2).
    #[error("{0}")]
    InvalidClient(String),
    /// A scope the token endpoint does not know or the client may not have (RFC 6749 section 5.2).
    #[error("{0}")]
    InvalidScope(String),
    /// A valid token without the scope the endpoint needs (RFC 6750 section 3.1).
    #[error("{0}")]
    InsufficientScope(String),
    /// A `grant_type` the token endpoint does not offer (RFC 6749 section 5.2).
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    CsrfFailed(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("{field}: {message}")]
    InvalidField { field: &'static str, message: String },
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    #[error("too many attempts; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// Too many failed password attempts against one key (`auth::throttle`).
    #[error("{}", who.description(*retry_after_seconds))]
    AccountLocked { retry_after_seconds: u64, who: LockedOut },
    #[error("{0}")]
    ReauthenticationRequired(String),
    /// The password was right and the account has a second factor: nothing is issued until a
    /// code comes with this token to `/api/token/mfa`.
    #[error("this account has two-step verification: send a code with the mfa_token to /api/token/mfa")]
    MfaRequired { mfa_token: Undisclosed },
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn bearer(reason: RejectReason) -> Self {
        Self::Unauthorized {
            reason,
            kind: CredentialKind::Bearer,
        }
    }

    pub fn cookie(reason: RejectReason) -> Self {
        Self::Unauthorized {
            reason,
            kind: CredentialKind::Cookie,
        }
    }

    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            message: message.into(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthorized { .. } => ErrorCode::InvalidToken,
            Self::InvalidGrant(_) | Self::LoginRefused(_) | Self::PasswordResetRequired(_) => ErrorCode::InvalidGrant,
            Self::InvalidLinkToken(_) => ErrorCode::InvalidToken,
            Self::InvalidClient(_) => ErrorCode::InvalidClient,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::CsrfFailed(_) => ErrorCode::CsrfFailed,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::InvalidField { .. } => ErrorCode::InvalidField,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::RateLimited { .. } | Self::AccountLocked { .. } => ErrorCode::RateLimited,
            Self::ReauthenticationRequired(_) => ErrorCode::ReauthenticationRequired,
            Self::MfaRequired { .. } => ErrorCode::MfaRequired,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

/// Every error's body: `error` is the code, `reason` says why a credential was refused, `field`
/// which input was invalid. A 401 on a Bearer route also sends `WWW-Authenticate: Bearer
/// error="invalid_token"`; a 429 and a 503 send `Retry-After` in seconds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorResponse<'a> {
    error: ErrorCode,
    error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<RejectReason>,
    /// The invalid field, on a 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'static str>,
    /// With `mfa_required`: the token to send with a code to `/api/token/mfa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    mfa_token: Option<&'a str>,
}

/// The machine-readable code of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    InvalidGrant,
    InvalidClient,
    InvalidScope,
    InsufficientScope,
    UnsupportedGrantType,
    CsrfFailed,
    ReauthenticationRequired,
    MfaRequired,
    NotFound,
    Conflict,
    PayloadTooLarge,
    MethodNotAllowed,
    InvalidField,
    RateLimited,
    ServiceUnavailable,
    InternalError,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidLinkToken(_) | Self::InvalidScope(_) | Self::UnsupportedGrantType(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized { .. }
            | Self::InvalidGrant(_)
            | Self::LoginRefused(_)
            | Self::PasswordResetRequired(_)
            | Self::InvalidClient(_)
            | Self::MfaRequired { .. } => StatusCode::UNAUTHORIZED,
            Self::CsrfFailed(_) | Self::ReauthenticationRequired(_) | Self::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } | Self::AccountLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (description, reason, field) = match self {
            Self::Unauthorized { reason, .. } => (reason.description().to_owned(), Some(*reason), None),
            Self::InvalidField { field, message } => (message.clone(), None, Some(*field)),
            Self::NotFound => ("no such resource".to_owned(), None, None),
            Self::Internal(error) => {
                tracing::error!(error.cause_chain = ?error, "internal error");
                ("an unexpected error occurred".to_owned(), None, None)
            }
            Self::Unavailable(service) => {
                tracing::warn!(service, "backing service unavailable");
                (self.to_string(), None, None)
            }
            other => (other.to_string(), None, None),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Unauthorized {
            kind: CredentialKind::Bearer,
            ..
        } = self
        {
            response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
        }
        if let Self::InvalidClient(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="revocable""#));
        }
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Self::RateLimited { retry_after_seconds }
        | Self::AccountLocked {
            retry_after_seconds, ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.json(ErrorResponse {
            error: self.code(),
            error_description: description,
            reason,
            field,
            mfa_token: match self {
                Self::MfaRequired { mfa_token } => Some(mfa_token.0.as_str()),
                _ => None,
            },
        })
    }
}

/// Database errors are a backing service that is down, unless they are a bug in a query
/// (`store::is_unavailable` tells them apart).
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if store::is_unavailable(&error) {
            tracing::warn!(error = %error, "database unavailable");
            return Self::Unavailable("the database");
        }
        Self::Internal(anyhow::Error::new(error))
    }
}

/// What the revocation layer could not do: an outage is a 503, and so is a lock conflict that
/// its retries did not get past (the same request later will likely succeed); a bug is a 500.
impl From<revocation::Error> for ApiError {
    fn from(error: revocation::Error) -> Self {
        match error {
            revocation::Error::Unavailable(service) => Self::Unavailable(service),
            revocation::Error::Conflict(error) => {
                tracing::warn!(error = %error, "transaction lost a lock conflict");
                Self::Unavailable("the database")
            }
            revocation::Error::Internal(error) => Self::Internal(error),
        }
    }
}

/// Code that gathers errors as `anyhow::Error` (building a message, say, around a query) still
/// answers 503 when what failed underneath was the database or Redis being out of reach: the
/// error is classified by what it wraps, not by the road it took.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        let error = match error.downcast::<sqlx::Error>() {
            Ok(error) => return error.into(),
            Err(error) => error,
        };
        let error = match error.downcast::<redis::RedisError>() {
            Ok(error) => return error.into(),
            Err(error) => error,
        };
        let error = match error.downcast::<deadpool_redis::PoolError>() {
            Ok(error) => return error.into(),
            Err(error) => error,
        };
        let error = match error.downcast::<revocation::Error>() {
            Ok(error) => return error.into(),
            Err(error) => error,
        };
        if error.chain().any(revocation::error::is_unavailable_cause) {
            tracing::warn!(error = %error, "backing service unavailable");
            return Self::Unavailable("the database");
        }
        Self::Internal(error)
    }
}

impl From<deadpool_redis::PoolError> for ApiError {
    fn from(error: deadpool_redis::PoolError) -> Self {
        tracing::warn!(error = %error, "redis unavailable");
        Self::Unavailable("redis")
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(error: redis::RedisError) -> Self {
        tracing::warn!(error = %error, "redis unavailable");
        Self::Unavailable("redis")
    }
}

#[cfg(test)]
mod tests;
