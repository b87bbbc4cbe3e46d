//! What HTML handlers return and take: `PageError` (a page, or a redirect to the log-in form) and
//! `WebUser` (a logged-in browser). The JSON side's `ApiError` knows nothing of pages; this is
//! where one becomes a page.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::strategy::{Credential, Principal, check_cookie};
use crate::error::ApiError;
use crate::state::AppState;

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

/// A logged-in browser on an HTML page; anything else is sent to `/login`.
pub struct WebUser(pub Principal);

impl WebUser {
    pub fn session(&self) -> &Session {
        match &self.0.credential {
            Credential::Cookie(session) => session,
            Credential::Bearer(_) => unreachable!("WebUser is only built from a cookie"),
        }
    }
}

impl FromRequest for WebUser {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = request
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered in startup::build")
                .clone();
            match check_cookie(
                &state.revocation,
                state.settings.session_idle_ttl,
                request.get_session(),
            )
            .await
            {
                Ok(principal) => Ok(Self(principal)),
                Err(ApiError::Unauthorized { .. }) => Err(PageError::LoginRequired),
                Err(other) => Err(PageError::Api(other)),
            }
        })
    }
}

/// The account of a logged-in browser; a user deleted meanwhile is sent to log in again.
pub async fn find_user(state: &AppState, user_id: &str) -> Result<crate::store::users::User, PageError> {
    crate::store::users::find_by_id(&state.db, user_id)
        .await?
        .ok_or(PageError::LoginRequired)
}
