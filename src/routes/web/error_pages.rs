//! Error pages: an `ApiError` or a bare error status becomes a page whose header knows who is
//! logged in; a stale form's 403 links back to a fresh form; a 429 says the wait in words.

use actix_session::SessionExt;
use actix_web::FromRequest;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, error::UrlencodedError, web};
use askama::Template;

use crate::error::ApiError;
use crate::routes::web::format::wait_in_words;
use crate::routes::web::layout::Layout;
use crate::routes::web::page::{PageError, WebUser};
use crate::store::Db;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
    /// A stale form's page, to open again with a fresh token (a reload would resend the stale one).
    back: Option<&'a str>,
}

/// Marks the 403 of a form whose token is stale, so that `error_pages` links back to its page.
#[derive(Clone)]
pub struct StaleForm;

/// Where a stale form came from: the `Referer`'s path when it is this host's (what the browser
/// showed), else the dashboard (a logged-in browser) or the log-in page.
fn stale_form_page(request: &HttpRequest, logged_in: bool) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let referred = request
        .headers()
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| referer.split_once("://"))
        .and_then(|(_, rest)| {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            (Some(authority) == host && path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
        });
    referred.unwrap_or_else(|| if logged_in { "/dashboard" } else { "/login" }.to_owned())
}

/// The message of an HTML error page, kept on the response so that `error_pages` can render the
/// page again with the header of the browser's logged-in user.
#[derive(Clone)]
struct ErrorMessage(String);

fn error_body(status: StatusCode, message: &str, layout: Layout, back: Option<&str>) -> String {
    let page = ErrorPage {
        layout,
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error"),
        message,
        back,
    };
    page.render().unwrap_or_else(|_| message.to_owned())
}

/// An error page as an anonymous visitor sees it; `error_pages` gives it the logged-in header.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, "5"));
    }
    let mut response = response.body(error_body(status, message, Layout::anonymous(), None));
    response.extensions_mut().insert(ErrorMessage(message.to_owned()));
    response
}

/// What an error page says when the response that caused it carried no words of its own.
fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "There is no page at this address.",
        StatusCode::METHOD_NOT_ALLOWED => "This page cannot be used that way.",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts from your address: wait a minute, then try again.",
        StatusCode::SERVICE_UNAVAILABLE => "A service this page needs is not answering: try again in a few seconds.",
        _ => "Something went wrong with this request.",
    }
}

/// Marks an error page `error_pages` has rendered, so an outer handler does not render it again.
pub struct RenderedErrorPage;

/// The email of the user this browser is logged in as, if any.
pub async fn logged_in_email(db: &Db, user: Option<&WebUser>) -> Option<String> {
    crate::store::users::find_by_id(db, &user?.0.user_id)
        .await
        .ok()
        .flatten()
        .map(|user| user.email)
}

/// Paths whose callers are programs: their errors keep the JSON shape (the Shared Signals
/// endpoints' 429 and 405 too).
fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/oauth/") || path.starts_with("/ssf/")
}

/// Every error response goes through here (`ErrorHandlers::default_handler`): under `/api` an empty
/// 405 gets the JSON error shape; elsewhere an error page, a rate limiter's or a method refusal
/// becomes a page whose header knows who is logged in, so a stale tab's 403 does not look like a
/// log-out.
pub fn error_pages<B: actix_web::body::MessageBody + 'static>(
    response: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let status = response.status();
    if is_api_path(response.request().path()) {
        if status != StatusCode::METHOD_NOT_ALLOWED {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let (request, _) = response.into_parts();
        let body = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
        let response = actix_web::dev::ServiceResponse::new(request, body).map_into_right_body();
        return Ok(ErrorHandlerResponse::Response(response));
    }
    if response.response().extensions().get::<RenderedErrorPage>().is_some() {
        // Already rendered inside the cookie session's scope, where the header could see who is
        // logged in; the app-wide handler leaves it alone.
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let message = match response.response().extensions().get::<ErrorMessage>() {
        Some(ErrorMessage(message)) => Some(message.clone()),
        // The address limiter's own answer: the page says the wait its `Retry-After` gives.
        None if status == StatusCode::TOO_MANY_REQUESTS => {
            let seconds = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1);
            Some(format!(
                "Too many attempts. Please wait {} before trying again.",
                wait_in_words(seconds)
            ))
        }
        None if status == StatusCode::METHOD_NOT_ALLOWED => Some(default_message(status).to_owned()),
        None => None,
    };
    let Some(message) = message else {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    };
    let stale = response.response().extensions().get::<StaleForm>().is_some();
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        let (request, original) = response.into_parts();
        let session = request.get_session();
        let user = WebUser::from_request(&request, &mut Payload::None).await.ok();
        let email = match request.app_data::<web::Data<crate::account::Accounts>>() {
            Some(accounts) => logged_in_email(&accounts.db, user.as_ref()).await,
            None => None,
        };
        let logged_in = email.is_some();
        let layout = match email {
            Some(email) => Layout::new(&session, Some(email)).unwrap_or_else(|_| Layout::anonymous()),
            None => Layout::anonymous(),
        };
        let mut page = HttpResponse::build(status);
        page.content_type("text/html; charset=utf-8");
        page.insert_header((header::CACHE_CONTROL, "no-store"));
        for name in [
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-ratelimit-after"),
        ] {
            if let Some(value) = original.headers().get(&name) {
                page.insert_header((name, value.clone()));
            }
        }
        let back = stale.then(|| stale_form_page(&request, logged_in));
        let mut page = page.body(error_body(status, &message, layout, back.as_deref()));
        page.extensions_mut().insert(RenderedErrorPage);
        Ok(actix_web::dev::ServiceResponse::new(request, page).map_into_right_body())
    })))
}

/// A 429 as a page: the wait in words, and `Retry-After` with the same number of seconds.
pub fn rate_limited_page(retry_after_seconds: u64) -> HttpResponse {
    let seconds = retry_after_seconds.max(1);
    let message = format!(
        "Too many attempts. Please wait {} before trying again.",
        wait_in_words(seconds)
    );
    let mut response = error_page(StatusCode::TOO_MANY_REQUESTS, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    response
}

/// Unknown paths: JSON under `/api`, a page elsewhere.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    if request.path().starts_with("/api/") {
        return Err(ApiError::NotFound);
    }
    Ok(error_page(StatusCode::NOT_FOUND, "There is no page at this address."))
}

/// A query string or path segment that does not parse: a JSON 400 under `/api`, a page elsewhere.
pub fn extractor_error(message: String, request: &HttpRequest) -> actix_web::Error {
    let error = ApiError::BadRequest(message);
    if request.path().starts_with("/api/") {
        error.into()
    } else {
        PageError::Api(error).into()
    }
}

pub fn form_error(error: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match error {
        UrlencodedError::Overflow { .. } => PageError::Api(ApiError::PayloadTooLarge).into(),
        other => PageError::Api(ApiError::BadRequest(format!("the form could not be read: {other}"))).into(),
    }
}
