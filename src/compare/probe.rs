//! The account the checks are timed with, made on the measuring instance (and gone with it):
//! one token login with an access token, one revoked access token, one cookie login with its
//! server-side state.

use std::collections::HashMap;

use actix_session::storage::SessionStore;

use crate::auth::login;
use crate::auth::password;
use crate::auth::strategy::{LAST_SEEN_KEY, USER_KEY};
use crate::domain::{Email, Password, RandomId, now_millis};
use crate::error::ApiError;
use crate::revocation::MintedAccess;
use crate::revocation::cookie_state::LOGIN_SESSION_KEY;
use crate::state::AppState;
use crate::store::events::Origin;
use crate::store::login_sessions::Kind;
use crate::store::{self, users::Inserted};

pub struct Probe {
    pub access_token: String,
    /// The cookie login's session key: what its cookie would carry.
    pub session_key: String,
    pub token_session: String,
    pub cookie_session: String,
    pub revoked_jti: String,
}

fn internal(message: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{message}"))
}

/// Makes the probe account and its logins on `state`, the measuring instance's.
pub async fn create(state: &AppState) -> Result<Probe, ApiError> {
    let email = Email::parse(&format!(
        "probe-{}@revocable.invalid",
        RandomId::generate().to_lowercase()
    ))
    .map_err(internal)?;
    let secret = Password::parse(RandomId::secret()).map_err(internal)?;
    let hash = password::hash(secret).await?;
    let Inserted::Created(user) = store::users::insert(&state.db, &email, &hash).await? else {
        return Err(internal("probe email collided"));
    };
    let origin = Origin {
        ip: "127.0.0.1".into(),
        user_agent: "revocable-compare-probe".into(),
    };
    let issuer = &state.issuer;
    let token_session = login::open_login_session(issuer, &user, Kind::Token, &origin).await?;
    let access = state
        .keys
        .issue_for(&user.id, &token_session.id, user.token_version, 600)?;
    state
        .revocation
        .record_access_token(
            &token_session.id,
            &MintedAccess {
                jti: access.claims.jti.clone(),
                expires_at: access.claims.exp * 1000,
                token: (),
            },
        )
        .await?;
    let revoked = login::issue_access_token(issuer, &user.id, &token_session.id, user.token_version).await?;
    state
        .revocation
        .denylist_token(
            &revoked.claims.jti,
            &token_session.id,
            &user.id,
            revoked.claims.exp * 1000,
        )
        .await?;
    let cookie_session = login::open_login_session(issuer, &user, Kind::Cookie, &origin).await?;
    let session_state: HashMap<String, String> = HashMap::from([
        (USER_KEY.to_owned(), serde_json::to_string(&user.id).map_err(internal)?),
        (
            LOGIN_SESSION_KEY.to_owned(),
            serde_json::to_string(&cookie_session.id).map_err(internal)?,
        ),
        (LAST_SEEN_KEY.to_owned(), now_millis().to_string()),
    ]);
    let ttl = actix_web::cookie::time::Duration::seconds(300);
    let key = state.web_sessions.save(session_state, &ttl).await.map_err(internal)?;
    Ok(Probe {
        access_token: access.token,
        session_key: key.into(),
        token_session: token_session.id,
        cookie_session: cookie_session.id,
        revoked_jti: revoked.claims.jti,
    })
}
