//! The client-credentials grant (RFC 6749 section 4.4): a client's own short-lived access token,
//! an RFC 9068 JWT whose `sub` and `client_id` are the client and whose `scope` is what it asked
//! for, within what it may have.
//!
//! Such a token names no person and no login session, so the user-facing Bearer strategies
//! refuse it (`client_token`); it is for the endpoints other services call. No refresh token
//! comes with it (section 4.4.3): the client asks again with its credentials.

use std::time::Duration;

use crate::auth::jwt::JwtKeys;
use crate::domain::Scopes;
use crate::error::ApiError;
use crate::store::oauth_clients::Client;

/// The longest a client's own token lives: shorter than `ACCESS_TTL` when that is short.
pub const CLIENT_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The only grant the token endpoint offers.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

pub struct ClientToken {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: Scopes,
}

/// How long a client's token lives under an `ACCESS_TTL` of `access_ttl`.
pub fn lifetime(access_ttl: Duration) -> Duration {
    access_ttl.min(CLIENT_TOKEN_LIFETIME)
}

/// The grant itself, for an authenticated `client`. `grant_type` must be `client_credentials`;
/// `requested` is the `scope` parameter: absent, the client gets every scope it may have (the
/// default RFC 6749 section 3.3 lets a server choose); present, each scope must be known and
/// allowed to this client.
pub fn grant(
    keys: &JwtKeys,
    client: &Client,
    grant_type: Option<&str>,
    requested: Option<&str>,
    lifetime: Duration,
) -> Result<ClientToken, ApiError> {
    match grant_type {
        None | Some("") => return Err(ApiError::BadRequest("the grant_type parameter is required".into())),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => {
            return Err(ApiError::UnsupportedGrantType(
                "the only grant_type offered is client_credentials".into(),
            ));
        }
    }
    let allowed = Scopes::parse(&client.scopes).map_err(|unknown| {
        ApiError::Internal(anyhow::anyhow!(
            "client {} has an unknown scope {:?} stored",
            client.id,
            unknown.0
        ))
    })?;
    let scope = match requested.map(str::trim) {
        None | Some("") => allowed.clone(),
        Some(text) => {
            Scopes::parse(text).map_err(|unknown| ApiError::InvalidScope(format!("unknown scope {:?}", unknown.0)))?
        }
    };
    if !scope.is_within(&allowed) {
        return Err(ApiError::InvalidScope(format!(
            "this client may ask only for: {}",
            if allowed.is_empty() {
                "no scope".to_owned()
            } else {
                allowed.to_string()
            }
        )));
    }
    if scope.is_empty() {
        return Err(ApiError::InvalidScope("this client may ask for no scope".into()));
    }
    let seconds = lifetime.as_secs().max(1);
    let (access_token, _) = keys.issue_for_client(&client.id, &scope.to_string(), seconds as i64)?;
    Ok(ClientToken {
        access_token,
        expires_in: seconds,
        scope,
    })
}
