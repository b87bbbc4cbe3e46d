//! What HTML handlers return and take: `PageError` (a page, or a redirect to the log-in form) and
//! `WebUser` (a logged-in browser). The JSON side's `ApiError` knows nothing of pages; this is
//! where one becomes a page.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use crate::account::Accounts;
use crate::auth::strategy::{Cookie, Principal};
use crate::error::ApiError;

/// Errors of HTML handlers: a page, or a redirect to the log-in form.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("login required")]
    LoginRequired,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(error.into())
    }
}

impl From<crate::revocation::Error> for PageError {
    fn from(error: crate::revocation::Error) -> Self {
        Self::Api(error.into())
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        Self::Api(error.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired => StatusCode::SEE_OTHER,
            Self::Api(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::LoginRequired => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish(),
            Self::Api(ApiError::Unauthorized { .. }) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish(),
            Self::Api(ApiError::RateLimited { retry_after_seconds }) => {
                super::error_pages::rate_limited_page(*retry_after_seconds)
            }
            Self::Api(error) => {
                let status = error.status_code();
                let message = match error {
                    ApiError::Internal(cause) => {
                        tracing::error!(error.cause_chain = ?cause, "internal error");
                        "Something went wrong on our side.".to_owned()
                    }
                    ApiError::CsrfFailed(_) => {
                        "This form has expired. Open it again for a fresh one, then send it.".to_owned()
                    }
                    other => other.to_string(),
                };
                let mut response = super::error_pages::error_page(status, &message);
                if matches!(error, ApiError::CsrfFailed(_)) {
                    response.extensions_mut().insert(super::error_pages::StaleForm);
                }
                response
            }
        }
    }
}

/// A logged-in browser on an HTML page, checked by the `Cookie` strategy; anything else is sent
/// to `/login`. A page that works logged in or not takes `Option<WebUser>`.
pub struct WebUser(pub Principal, Session);

impl WebUser {
    /// The browser's session, for the route to write what changed (flash messages, sudo proof).
    pub fn session(&self) -> &Session {
        &self.1
    }
}

impl FromRequest for WebUser {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            match Cookie::authenticate(&request).await {
                Ok(principal) => Ok(Self(principal, request.get_session())),
                Err(ApiError::Unauthorized { .. }) => Err(PageError::LoginRequired),
                Err(other) => Err(PageError::Api(other)),
            }
        })
    }
}

/// The account of a logged-in browser; a user deleted meanwhile is sent to log in again.
pub async fn find_user(accounts: &Accounts, user_id: &str) -> Result<crate::store::users::User, PageError> {
    crate::store::users::find_by_id(&accounts.db, user_id)
        .await?
        .ok_or(PageError::LoginRequired)
}

/// The email of a logged-in browser's account, for the page header.
pub async fn email_of(accounts: &Accounts, user: &WebUser) -> Result<String, PageError> {
    Ok(find_user(accounts, &user.0.user_id).await?.email)
}
