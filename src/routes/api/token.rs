//! Token log-in, refresh with rotation, and Bearer log-out.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::account;
use crate::auth::client;
use crate::auth::login::{self, TokenPair};
use crate::auth::strategy::{Authenticated, Credential, Strict};
use crate::error::ApiError;
use crate::routes::api::required;
use crate::state::AppState;
use crate::store::login_sessions::Kind;

#[derive(Deserialize)]
pub struct TokenRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    session_id: String,
}

impl TokenResponse {
    pub fn from_pair(state: &AppState, pair: TokenPair) -> Self {
        Self {
            access_token: pair.access.token,
            token_type: "Bearer",
            expires_in: state.settings.access_ttl.as_secs(),
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

pub async fn issue(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = required(body.email, "email")?;
    let password = required(body.password, "password")?;
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let user = account::authenticate(&state, &email, &password).await?;
    let session = login::open_login_session(&state, &user, Kind::Token, &origin).await?;
    let pair = login::issue_pair(&state, &user, &session).await?;
    Ok(no_store(TokenResponse::from_pair(&state, pair)))
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

pub async fn refresh(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = required(body.into_inner().refresh_token, "refresh_token")?;
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    let pair = login::rotate(&state, &presented, &origin).await?;
    Ok(no_store(TokenResponse::from_pair(&state, pair)))
}

/// Ends this token's login session: the session and its refresh tokens are revoked and every
/// unexpired access token of the session (this one included) goes on the denylist.
pub async fn logout(
    request: HttpRequest,
    state: web::Data<AppState>,
    user: Authenticated<Strict>,
) -> Result<HttpResponse, ApiError> {
    if let Credential::Bearer(claims) = &user.credential {
        state
            .revocation
            .denylist_token(&claims.jti, &claims.sid, claims.exp * 1000)
            .await?;
    }
    let origin = client::origin(&request, &state.settings.trusted_proxies);
    account::log_out(&state, &user.principal, &origin, "API token").await?;
    Ok(HttpResponse::NoContent().finish())
}
