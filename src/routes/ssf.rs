//! The Shared Signals transmitter's endpoints (SSF 1.0 sections 7 and 8): its metadata, stream
//! configuration, status, subjects and verification, and the RFC 8936 poll endpoint.
//!
//! Each is called with a client's own access token (`POST /oauth/token`, client credentials):
//! scope `ssf.manage` to configure streams, `ssf.read` or `ssf.manage` to poll one's events.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::jwt::AccessToken;
use crate::auth::strategy::bearer_token;
use crate::domain::{Scope, Scopes};
use crate::error::{ApiError, RejectReason};
use crate::oauth::ClientEndpoints;
use crate::ssf::{Ssf, delivery, metadata};
use crate::store;

/// The client a client-credentials access token names, with the scopes the token carries. The
/// token is checked like any access token (signature, `typ`, issuer, audience, lifetime), must
/// not be revoked, and its client must still exist.
pub struct ServiceClient {
    pub client_id: String,
    scopes: Scopes,
}

impl ServiceClient {
    fn require(&self, any_of: &[Scope]) -> Result<(), ApiError> {
        if any_of.iter().any(|scope| self.scopes.contains(*scope)) {
            return Ok(());
        }
        let names: Vec<&str> = any_of.iter().map(|scope| scope.as_str()).collect();
        Err(ApiError::InsufficientScope(format!(
            "this token needs the scope {}",
            names.join(" or ")
        )))
    }
}

impl FromRequest for ServiceClient {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let endpoints = request
                .app_data::<web::Data<ClientEndpoints>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("ClientEndpoints is registered in startup")))?;
            let token = bearer_token(&request).map_err(ApiError::bearer)?;
            let claims = match endpoints.keys.validate_any(token).map_err(ApiError::bearer)? {
                AccessToken::Client(claims) => claims,
                AccessToken::User(_) => {
                    return Err(ApiError::InsufficientScope(
                        "a client's own token (client credentials) is required here".into(),
                    ));
                }
            };
            let revoked = endpoints.revocation.is_denylisted(&claims.jti).await?;
            if revoked {
                return Err(ApiError::bearer(RejectReason::RevokedJti));
            }
            if store::oauth_clients::find(&endpoints.db, &claims.client_id)
                .await?
                .is_none()
            {
                return Err(ApiError::bearer(RejectReason::RevokedSession));
            }
            let scopes = Scopes::parse(&claims.scope).map_err(|_| ApiError::bearer(RejectReason::Malformed))?;
            Ok(Self {
                client_id: claims.client_id,
                scopes,
            })
        })
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The stream asked about; absent on `GET /ssf/streams`: every stream of the caller.
    stream_id: Option<String>,
}

fn required(query: &StreamQuery) -> Result<&str, ApiError> {
    query
        .stream_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the stream_id parameter is required".into()))
}

fn no_store(mut response: actix_web::HttpResponseBuilder, body: &Value) -> HttpResponse {
    response.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

/// SSF 1.0 section 7.1 transmitter metadata.
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "ssf", operation_id = "ssf_configuration",
    summary = "Shared Signals transmitter metadata (SSF 1.0 section 7.1)",
    responses((status = 200, description = "where every stream endpoint is", body = metadata::TransmitterMetadata)))]
pub async fn configuration(ssf: web::Data<Ssf>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(metadata::document(ssf.issuer(), ssf.origin()))
}

/// Creates a stream (SSF 1.0 section 8.1.1.1).
#[utoipa::path(post, path = "/ssf/streams", tag = "ssf", operation_id = "create_stream",
    summary = "Create a stream: events_requested, delivery (push endpoint_url and authorization_header, or poll), description",
    request_body(content = Object, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 201, description = "the stream's configuration"),
        (status = 400, description = "not a JSON object (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with `ssf.manage` (`insufficient_scope`)"),
        (status = 422, description = "a field is invalid (`invalid_field`)"),
        (status = 503, description = "the database does not answer"),
        (status = 413, description = "the body is over 16 KiB")))]
pub async fn create_stream(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    let document = ssf.create(&client.client_id, &body).await?;
    Ok(no_store(HttpResponse::Created(), &document))
}

/// Reads one stream, or lists the caller's streams (SSF 1.0 section 8.1.1.2).
#[utoipa::path(get, path = "/ssf/streams", tag = "ssf", operation_id = "read_streams",
    summary = "One stream's configuration (`stream_id`), or every stream of the caller",
    params(StreamQuery), security(("bearer" = [])),
    responses((status = 200, description = "the configuration, or an array of them"),
        (status = 401, description = "no valid token"), (status = 403, description = "no `ssf.manage`"),
        (status = 404, description = "the caller has no such stream (`not_found`)"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn read_streams(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    let body = match query.stream_id.as_deref() {
        Some(stream_id) => ssf.read(&client.client_id, stream_id).await?,
        None => Value::Array(ssf.list(&client.client_id).await?),
    };
    Ok(no_store(HttpResponse::Ok(), &body))
}

/// Changes the fields sent (SSF 1.0 section 8.1.1.3).
#[utoipa::path(patch, path = "/ssf/streams", tag = "ssf", operation_id = "update_stream",
    summary = "Change some receiver-supplied fields of a stream", request_body(content = Object, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "the configuration"), (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "a field is invalid"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn update_stream(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    let document = ssf.update(&client.client_id, &body, false).await?;
    Ok(no_store(HttpResponse::Ok(), &document))
}

/// Replaces the receiver-supplied configuration (SSF 1.0 section 8.1.1.4).
#[utoipa::path(put, path = "/ssf/streams", tag = "ssf", operation_id = "replace_stream",
    summary = "Replace a stream's receiver-supplied configuration", request_body(content = Object, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "the configuration"), (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "a field is invalid"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn replace_stream(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    let document = ssf.update(&client.client_id, &body, true).await?;
    Ok(no_store(HttpResponse::Ok(), &document))
}

/// Deletes a stream and its undelivered events (SSF 1.0 section 8.1.1.5).
#[utoipa::path(delete, path = "/ssf/streams", tag = "ssf", operation_id = "delete_stream",
    summary = "Delete a stream", params(StreamQuery), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, description = "the caller has no such stream"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn delete_stream(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    ssf.delete(&client.client_id, required(&query)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A stream's status (SSF 1.0 section 8.1.2.1).
#[utoipa::path(get, path = "/ssf/status", tag = "ssf", operation_id = "read_stream_status",
    summary = "A stream's status: enabled, paused or disabled", params(StreamQuery), security(("bearer" = [])),
    responses((status = 200, description = "`stream_id`, `status`, `reason`"), (status = 404, description = "the caller has no such stream"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn read_status(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage, Scope::SsfRead])?;
    let status = ssf.status(&client.client_id, required(&query)?).await?;
    Ok(no_store(HttpResponse::Ok(), &status))
}

/// Sets a stream's status (SSF 1.0 section 8.1.2.2); a change sends `stream-updated`.
#[utoipa::path(post, path = "/ssf/status", tag = "ssf", operation_id = "update_stream_status",
    summary = "Enable, pause (events held) or disable (events dropped) a stream",
    request_body(content = Object, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 200, description = "the new status"), (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "an unknown status"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn update_status(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    let status = ssf.set_status(&client.client_id, &body).await?;
    Ok(no_store(HttpResponse::Ok(), &status))
}

/// Includes a subject again (SSF 1.0 section 8.1.3.2); streams include every subject at first.
#[utoipa::path(post, path = "/ssf/subjects/add", tag = "ssf", operation_id = "add_stream_subject",
    summary = "Include a subject's events", request_body(content = Object, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "added (also for a subject unknown here)"), (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "not a subject identifier this transmitter reads"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn add_subject(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    ssf.set_subject(&client.client_id, &body, true).await?;
    Ok(HttpResponse::Ok().finish())
}

/// Leaves a subject's events out (SSF 1.0 section 8.1.3.3).
#[utoipa::path(post, path = "/ssf/subjects/remove", tag = "ssf", operation_id = "remove_stream_subject",
    summary = "Leave a subject's events out", request_body(content = Object, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 204, description = "removed (also for a subject unknown here)"), (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "not a subject identifier this transmitter reads"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn remove_subject(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    ssf.set_subject(&client.client_id, &body, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Asks for a verification event carrying `state` (SSF 1.0 section 8.1.4.2).
#[utoipa::path(post, path = "/ssf/verify", tag = "ssf", operation_id = "verify_stream",
    summary = "Send a verification event with the receiver's state", request_body(content = Object, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 204, description = "the event is queued"), (status = 404, description = "the caller has no such stream"),
        (status = 429, description = "sooner than the stream's `min_verification_interval` after its last verification request (`rate_limited`); `Retry-After` says when to ask again"),
        (status = 422, description = "`state` is not a string of at most 1000 bytes"),
        (status = 400, description = "the request could not be read (`invalid_request`)"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 403, description = "not a client token with the scope this needs (`insufficient_scope`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn verify(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfManage])?;
    ssf.verify(&client.client_id, &body).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 8936 poll: acknowledge, report errors, and receive events.
#[utoipa::path(post, path = "/ssf/poll/{stream_id}", tag = "ssf", operation_id = "poll_stream",
    summary = "Poll a stream's SETs (RFC 8936): maxEvents, returnImmediately, ack, setErrs",
    params(("stream_id" = String, Path, description = "the stream")),
    request_body(content = Object, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 200, description = "`sets` (jti → SET) and `moreAvailable`"),
        (status = 400, description = "a push stream, or not a JSON object"),
        (status = 403, description = "no `ssf.read` or `ssf.manage`"),
        (status = 404, description = "the caller has no such stream"),
        (status = 422, description = "a field is invalid"),
        (status = 401, description = "no valid token (`invalid_token`)"),
        (status = 413, description = "the body is over 16 KiB"),
        (status = 503, description = "a backing service is down; `Retry-After`")))]
pub async fn poll(
    client: ServiceClient,
    ssf: web::Data<Ssf>,
    endpoints: web::Data<ClientEndpoints>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    client.require(&[Scope::SsfRead, Scope::SsfManage])?;
    let answer = delivery::poll(&ssf, &client.client_id, &path, &body, endpoints.stopping()).await?;
    Ok(no_store(HttpResponse::Ok(), &answer))
}
