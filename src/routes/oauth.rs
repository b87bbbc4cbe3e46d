//! `/oauth/token` (the client-credentials grant), `/oauth/introspect` (RFC 7662), `/oauth/revoke`
//! (RFC 7009) and `/oauth/revocations`, the revocation feed: the endpoints other services call
//! with their client credentials; and `/.well-known/oauth-authorization-server` (RFC 8414), which
//! tells them where these are.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::auth::client::ClientAddress;
use crate::auth::rate_limit::Decision;
use crate::error::ApiError;
use crate::oauth::clients::{self, Presented};
use crate::oauth::introspection::Hint;
use crate::oauth::{ClientEndpoints, feed, introspection, metadata, token};
use crate::store::oauth_clients::Client;

/// The form body RFC 7662 and RFC 7009 define, with `client_secret_post` credentials.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// The token asked about or to revoke.
    token: Option<String>,
    /// Introspection: a refresh token is answered active only with `refresh_token` here.
    /// Revocation: ignored, a token's shape already says what it is.
    #[schema(value_type = Option<Hint>, nullable = false)]
    token_type_hint: Option<String>,
    /// With `client_secret`, instead of HTTP Basic (`client_secret_post`).
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

/// The client-credentials grant (RFC 6749 section 4.4.2).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ClientCredentialsForm {
    /// `client_credentials`, the only grant offered.
    #[schema(example = "client_credentials")]
    grant_type: Option<String>,
    /// Space-separated scopes among `ssf.manage`, `ssf.read`, `introspect`, `revoke`; absent:
    /// every scope the client may have.
    #[schema(nullable = false)]
    scope: Option<String>,
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

/// RFC 6749 section 5.1: no refresh token comes with a client's own token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientTokenResponse {
    /// An RFC 9068 JWT (`typ: at+jwt`): `sub` and `client_id` the client, `scope`, no login session.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

fn read_form<T: serde::de::DeserializeOwned>(request: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::BadRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|error| ApiError::BadRequest(format!("the form could not be read: {error}")))
}

fn basic_header(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::InvalidClient("client authentication failed".into()))
        })
        .transpose()
}

/// Authenticates the client, unless this client id has failed to authenticate from this address
/// too often of late: each failure counts against `CLIENT_AUTH_FAILURES_PER_MINUTE` (in Redis when
/// configured, so across instances), and successes count for nothing, so a service that
/// authenticates is never slowed. The count is per client id *and* address: per address alone,
/// one client's bad secrets would lock out every genuine service behind the same NAT; per id
/// alone, anyone could lock a real service out of the calls that keep revocation working (an id
/// is public). A 256-bit secret cannot be guessed either way.
async fn authenticate_client(
    endpoints: &ClientEndpoints,
    request: &HttpRequest,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<Client, ApiError> {
    let address = crate::auth::client::limit_key(&crate::auth::client::address(request));
    let presented = basic_header(request).map(|basic| Presented {
        basic,
        form_id,
        form_secret,
    });
    let client_id = presented
        .as_ref()
        .map_or_else(|_| String::new(), Presented::client_id_hash);
    let key = format!("{address} {client_id}");
    if let Decision::Limited { retry_after_seconds } = endpoints.client_auth_failures.check(&key).await {
        return Err(ApiError::RateLimited { retry_after_seconds });
    }
    let result = match presented {
        Ok(presented) => clients::authenticate(&endpoints.db, &presented).await,
        Err(error) => Err(error),
    };
    if let Err(ApiError::InvalidClient(_)) = &result {
        endpoints.client_auth_failures.attempt(&key).await;
    }
    result
}

/// Authenticates the client, then returns it, the `token` field and the hint.
async fn authenticated_token(
    endpoints: &ClientEndpoints,
    request: &HttpRequest,
    body: &[u8],
) -> Result<(Client, String, Option<Hint>), ApiError> {
    let form: TokenForm = read_form(request, body)?;
    let hint = Hint::parse(form.token_type_hint.as_deref());
    let client = authenticate_client(endpoints, request, form.client_id, form.client_secret).await?;
    let token = form
        .token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the token parameter is required".into()))?;
    Ok((client, token, hint))
}

/// RFC 7662 token introspection, for clients (other services).
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    operation_id = "introspect_token",
    summary = "Is this token active? (RFC 7662)",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "`token`, optional `token_type_hint`, and `client_id` + `client_secret` unless HTTP Basic is used"),
    security(("client" = [])),
    responses(
        (status = 200, description = "the token's claims with `active: true`; only `active: false` for anything revoked, expired, malformed or unknown, and for a refresh token unless `token_type_hint=refresh_token`", body = introspection::Introspection),
        (status = 400, description = "not a form, or no `token` (`invalid_request`)", body = crate::error::ErrorResponse),
        (status = 401, description = "the client did not authenticate (`invalid_client`, with `WWW-Authenticate: Basic`)", body = crate::error::ErrorResponse),
        (status = 429, description = "too many failed client authentications from this address; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "the database does not answer", body = crate::error::ErrorResponse)
    )
)]
pub async fn introspect(
    request: HttpRequest,
    endpoints: web::Data<ClientEndpoints>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (_, token, hint) = authenticated_token(&endpoints, &request, &body).await?;
    let answer = introspection::introspect(&endpoints.keys, &endpoints.revocation, &endpoints.db, &token, hint).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// RFC 7009 token revocation, for clients (other services).
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    operation_id = "revoke_token",
    summary = "Revoke an access token (its jti) or a refresh token (its login session) (RFC 7009)",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "`token`, optional `token_type_hint`, and `client_id` + `client_secret` unless HTTP Basic is used"),
    security(("client" = [])),
    responses(
        (status = 200, description = "revoked, or the token was unknown or invalid (as the RFC requires)"),
        (status = 400, description = "not a form, or no `token` (`invalid_request`)", body = crate::error::ErrorResponse),
        (status = 401, description = "the client did not authenticate (`invalid_client`, with `WWW-Authenticate: Basic`)", body = crate::error::ErrorResponse),
        (status = 429, description = "too many failed client authentications from this address; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "the database does not answer", body = crate::error::ErrorResponse)
    )
)]
pub async fn revoke(
    request: HttpRequest,
    ClientAddress(origin): ClientAddress,
    endpoints: web::Data<ClientEndpoints>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (client, token, _) = authenticated_token(&endpoints, &request, &body).await?;
    let revoked = introspection::revoke(
        &endpoints.keys,
        &endpoints.revocation,
        &endpoints.db,
        &token,
        &client,
        &origin,
    )
    .await?;
    tracing::info!(client_id = client.id, revoked = ?revoked, "token revocation requested by a client");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `GET /oauth/revocations`: the revocation feed as server-sent events, HTTP Basic client auth.
#[utoipa::path(
    get,
    path = "/oauth/revocations",
    tag = "oauth",
    summary = "The revocation feed: server-sent events, resumable with `Last-Event-ID`",
    params(("Last-Event-ID" = Option<i64>, Header, description = "the last event this receiver saw")),
    security(("client" = [])),
    responses(
        (status = 200, description = "`text/event-stream`: `session-revoked`, `token-claims-change`, `account-purged`, `jti-revoked`, `reset`, `ready`, `heartbeat`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`Last-Event-ID` is not an event id this feed sends (a whole number, 0 or more) (`invalid_request`)", body = crate::error::ErrorResponse),
        (status = 401, description = "the client did not authenticate (`invalid_client`, with `WWW-Authenticate: Basic`)", body = crate::error::ErrorResponse),
        (status = 429, description = "too many failed client authentications from this address; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "the database does not answer", body = crate::error::ErrorResponse)
    )
)]
pub async fn revocations(
    request: HttpRequest,
    endpoints: web::Data<ClientEndpoints>,
) -> Result<HttpResponse, ApiError> {
    authenticate_client(&endpoints, &request, None, None).await?;
    let last_event_id = match request.headers().get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be an event id this feed sent".into()))?,
        ),
    };
    let start = feed::start(&endpoints.db, last_event_id, endpoints.feed_window).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(256);
    tokio::spawn(feed::run(
        endpoints.db.clone(),
        endpoints.revocation.clone(),
        start,
        endpoints.feed_heartbeat,
        endpoints.stopping(),
        sender,
    ));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), receiver))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// The client-credentials grant: a client's own access token (RFC 6749 section 4.4).
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    operation_id = "client_credentials_token",
    summary = "A client's own access token (client credentials, RFC 6749 section 4.4)",
    request_body(content = ClientCredentialsForm, content_type = "application/x-www-form-urlencoded", description = "`grant_type=client_credentials`, optional `scope`, and `client_id` + `client_secret` unless HTTP Basic is used"),
    security(("client" = [])),
    responses(
        (status = 200, description = "the token; `Cache-Control: no-store`", body = ClientTokenResponse),
        (status = 400, description = "not a form or no `grant_type` (`invalid_request`), another grant (`unsupported_grant_type`), or a scope unknown or not allowed to this client (`invalid_scope`)", body = crate::error::ErrorResponse),
        (status = 401, description = "the client did not authenticate (`invalid_client`, with `WWW-Authenticate: Basic`)", body = crate::error::ErrorResponse),
        (status = 429, description = "too many failed client authentications from this address; `Retry-After` says for how long", body = crate::error::ErrorResponse),
        (status = 503, description = "the database does not answer", body = crate::error::ErrorResponse)
    )
)]
pub async fn client_token(
    request: HttpRequest,
    endpoints: web::Data<ClientEndpoints>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let form: ClientCredentialsForm = read_form(&request, &body)?;
    let client = authenticate_client(&endpoints, &request, form.client_id, form.client_secret).await?;
    let granted = token::grant(
        &endpoints.keys,
        &client,
        form.grant_type.as_deref(),
        form.scope.as_deref(),
        token::lifetime(endpoints.access_ttl),
    )?;
    tracing::info!(client_id = client.id, scope = %granted.scope, "client token issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(ClientTokenResponse {
            access_token: granted.access_token,
            token_type: "Bearer",
            expires_in: granted.expires_in,
            scope: granted.scope.to_string(),
        }))
}

/// RFC 8414 authorization server metadata: fixed at start-up (`metadata::document`), and
/// registered as app data of its own.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    operation_id = "authorization_server_metadata",
    summary = "Where the token, introspection and revocation endpoints and the JWKS are (RFC 8414)",
    responses(
        (status = 200, description = "the metadata; `issuer` is the `iss` of every token", body = metadata::Metadata)
    )
)]
pub async fn authorization_server_metadata(document: web::Data<metadata::Metadata>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(&**document)
}
