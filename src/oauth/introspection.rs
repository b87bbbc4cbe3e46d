//! RFC 7662 introspection and RFC 7009 revocation of access and refresh tokens.
//!
//! An access token is active only if every check passes: signature and claims, `ver` equal to the
//! user's `token_version`, `jti` not denylisted, and its login session live. A refresh token is
//! active while it is unused, unexpired and its login session is live. Anything else, including
//! garbage, is simply inactive. A backing service that is down is an error (503), never a guess.

use serde::Serialize;

use crate::auth::client::describe_device;
use crate::auth::jwt::{Claims, JwtKeys};
use crate::domain::{RefreshToken, now_millis};
use crate::error::ApiError;
use crate::revocation::Revocation;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::EndReason;
use crate::store::oauth_clients::Client;
use crate::store::{self, Db};

/// The RFC 7662 answer. Only `active` is present for an inactive token.
#[derive(Debug, Default, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }

    fn access(claims: Claims) -> Self {
        Self {
            active: true,
            token_type: Some("access_token"),
            sub: Some(claims.sub),
            sid: Some(claims.sid),
            jti: Some(claims.jti),
            ver: Some(claims.ver),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            exp: Some(claims.exp),
            client_id: None,
        }
    }
}

/// What a presented token looks like: a JWT has two dots, a refresh token is 43 URL-safe characters.
enum Presented {
    Access(String),
    Refresh(RefreshToken),
    Unrecognised,
}

fn classify(token: &str) -> Presented {
    if token.bytes().filter(|byte| *byte == b'.').count() == 2 {
        Presented::Access(token.to_owned())
    } else {
        RefreshToken::parse(token).map_or(Presented::Unrecognised, Presented::Refresh)
    }
}

/// Every Bearer check of the `Strict` strategy, as one answer.
async fn access_token_is_live(revocation: &Revocation, claims: &Claims) -> Result<bool, ApiError> {
    if !revocation.version_is_current(&claims.sub, claims.ver).await?.0 {
        return Ok(false);
    }
    if revocation.is_denylisted(&claims.jti).await?.0 {
        return Ok(false);
    }
    let now = now_millis();
    Ok(revocation
        .session(&claims.sid)
        .await?
        .0
        .is_some_and(|session| session.is_live(now) && session.user_id == claims.sub))
}

pub async fn introspect(
    keys: &JwtKeys,
    revocation: &Revocation,
    db: &Db,
    token: &str,
    client_id: &str,
) -> Result<Introspection, ApiError> {
    let answer = match classify(token) {
        Presented::Access(token) => match keys.validate(&token) {
            Ok(claims) if access_token_is_live(revocation, &claims).await? => Introspection::access(claims),
            _ => Introspection::inactive(),
        },
        Presented::Refresh(refresh) => {
            let now = now_millis();
            match store::refresh_tokens::find(db, &refresh.hash()).await? {
                Some(stored) if stored.used_at.is_none() && stored.expires_at > now => {
                    match revocation.session(&stored.session_id).await?.0 {
                        Some(session) if session.is_live(now) => Introspection {
                            active: true,
                            token_type: Some("refresh_token"),
                            sub: Some(session.user_id.into()),
                            sid: Some(stored.session_id.clone()),
                            iat: Some(stored.created_at / 1000),
                            exp: Some(stored.expires_at / 1000),
                            ..Introspection::default()
                        },
                        _ => Introspection::inactive(),
                    }
                }
                _ => Introspection::inactive(),
            }
        }
        Presented::Unrecognised => Introspection::inactive(),
    };
    Ok(Introspection {
        client_id: answer.active.then(|| client_id.to_owned()),
        ..answer
    })
}

/// What a revocation did, for the log; the client is told 200 whatever it was (RFC 7009).
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    AccessToken,
    LoginSession,
    Nothing,
}

/// An access token: its `jti` goes on the denylist until it expires. A refresh token: its whole
/// login session is revoked. A token that is unknown, invalid or already expired needs nothing.
/// Whatever was revoked is recorded in the account's security activity, naming the client.
pub async fn revoke(
    keys: &JwtKeys,
    revocation: &Revocation,
    db: &Db,
    token: &str,
    client: &Client,
    origin: &Origin,
) -> Result<Revoked, ApiError> {
    let (revoked, session_id) = match classify(token) {
        Presented::Access(token) => match keys.validate(&token) {
            Ok(claims) => {
                revocation
                    .denylist_token(&claims.jti, &claims.sid, claims.exp * 1000)
                    .await?;
                (Revoked::AccessToken, claims.sid)
            }
            // Not signed by us, or expired: nothing to revoke.
            Err(_) => return Ok(Revoked::Nothing),
        },
        Presented::Refresh(refresh) => match store::refresh_tokens::find(db, &refresh.hash()).await? {
            Some(stored) => {
                revocation
                    .revoke_session(&stored.session_id, EndReason::RevokedByClient, None)
                    .await?;
                (Revoked::LoginSession, stored.session_id)
            }
            None => return Ok(Revoked::Nothing),
        },
        Presented::Unrecognised => return Ok(Revoked::Nothing),
    };
    if let Some(session) = store::login_sessions::find(db, &session_id).await? {
        let what = match revoked {
            Revoked::AccessToken => "an access token",
            _ => "the login session",
        };
        events::record(
            db,
            NewEvent {
                user_id: &session.user_id,
                kind: EventKind::RevokedByClient,
                session_id: None,
                other_session_id: Some(&session.id),
                origin,
                detail: format!(
                    "{what} of {}, by the service \"{}\"",
                    describe_device(&session.user_agent),
                    client.name
                ),
            },
        )
        .await?;
    }
    Ok(revoked)
}
