//! `CsrfForm<T>`: a form body whose CSRF token has been checked before the handler sees it.

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::csrf;
use crate::error::ApiError;
use crate::routes::web::page::PageError;

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

/// A form body whose CSRF token has been checked (see `auth::csrf`): every POST form handler
/// takes one, so none can forget the check. A missing or wrong token is a 403.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = request.get_session();
        let anonymous_csrf = request
            .app_data::<web::Data<csrf::AnonymousCsrf>>()
            .expect("AnonymousCsrf is registered in startup::build")
            .clone();
        let body = web::Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            csrf::verify_same_site(&request)?;
            let body = body.await.map_err(|_| PageError::Api(ApiError::PayloadTooLarge))?;
            let field: CsrfField = serde_urlencoded::from_bytes(&body).map_err(|error| {
                PageError::Api(ApiError::BadRequest(format!("the form could not be read: {error}")))
            })?;
            csrf::verify_form(&request, &session, &anonymous_csrf, field.csrf_token.as_deref())?;
            let form = serde_urlencoded::from_bytes(&body).map_err(|error| {
                PageError::Api(ApiError::BadRequest(format!("the form could not be read: {error}")))
            })?;
            Ok(Self(form))
        })
    }
}
