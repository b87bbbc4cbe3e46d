//! RFC 7662 introspection and RFC 7009 revocation of access and refresh tokens.
//!
//! A person's access token is active only if every check passes: signature and claims, `ver`
//! equal to the user's `token_version`, `jti` not denylisted, and its login session live. A
//! client's own token (client credentials) is active while it verifies and its client still
//! exists. Both answer `token_type: "Bearer"` (the RFC 6749 type) and the `client_id` they were
//! issued to: the client, or `revocable` itself for people's tokens.
//!
//! A refresh token is not something a resource server may accept, and a stock validator (authlib's
//! `IntrospectTokenValidator` checks only `active`, `exp` and `scope`) would take any active answer
//! for an access token. So a refresh token is answered active only to a caller that says it is
//! asking about one (`token_type_hint=refresh_token`), and then with `token_type:
//! "refresh_token"`: while it is unused, unexpired and its login session is live. Without the
//! hint it is inactive. Anything else, including garbage, is simply inactive. A backing service
//! that is down is an error (503), never a guess.

use serde::Serialize;

use crate::auth::client::describe_device;
use crate::auth::jwt::{AccessToken, Claims, ClientClaims, FIRST_PARTY_CLIENT_ID, JwtKeys};
use crate::domain::RefreshToken;
use crate::error::ApiError;
use crate::revocation::Revocation;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::login_sessions::EndReason;
use crate::store::oauth_clients::Client;
use crate::store::{self, Db};

/// The RFC 7662 answer. Only `active` is present for an inactive token.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `Bearer` for an access token; `refresh_token` for a refresh token asked about with
    /// `token_type_hint=refresh_token`.
    #[schema(value_type = Option<String>, nullable = false, example = "Bearer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ver: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub exp: Option<i64>,
    /// The client the token was issued to: a registered client's id for its own token,
    /// `revocable` for the tokens people get by logging in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    /// A client's own token: its scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// What the caller says it is asking about (RFC 7662 section 2.1, RFC 7009 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = TokenTypeHint, rename_all = "snake_case")]
pub enum Hint {
    AccessToken,
    RefreshToken,
}

impl Hint {
    /// The hint named, or none for no hint or one this server does not know: such a hint is
    /// ignored, as the RFCs allow.
    pub fn parse(hint: Option<&str>) -> Option<Self> {
        match hint? {
            "access_token" => Some(Self::AccessToken),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }

    fn access(claims: Claims) -> Self {
        Self {
            active: true,
            token_type: Some("Bearer"),
            sub: Some(claims.sub),
            sid: Some(claims.sid),
            jti: Some(claims.jti),
            ver: Some(claims.ver),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            exp: Some(claims.exp),
            client_id: Some(claims.client_id),
            scope: None,
        }
    }

    fn client(claims: ClientClaims) -> Self {
        Self {
            active: true,
            token_type: Some("Bearer"),
            sub: Some(claims.sub),
            jti: Some(claims.jti),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            exp: Some(claims.exp),
            client_id: Some(claims.client_id),
            scope: Some(claims.scope),
            ..Self::default()
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
    if !revocation.version_is_current(&claims.sub, claims.ver).await? {
        return Ok(false);
    }
    if revocation.is_denylisted(&claims.jti).await? {
        return Ok(false);
    }
    let now = revocation.clock().now_millis();
    Ok(revocation
        .session(&claims.sid, now)
        .await?
        .is_some_and(|session| session.is_live(now) && session.user_id == claims.sub))
}

pub async fn introspect(
    keys: &JwtKeys,
    revocation: &Revocation,
    db: &Db,
    token: &str,
    hint: Option<Hint>,
) -> Result<Introspection, ApiError> {
    Ok(match classify(token) {
        Presented::Access(token) => match keys.validate_any(&token) {
            Ok(AccessToken::User(claims)) if access_token_is_live(revocation, &claims).await? => {
                Introspection::access(claims)
            }
            Ok(AccessToken::Client(claims)) if store::oauth_clients::find(db, &claims.client_id).await?.is_some() => {
                Introspection::client(claims)
            }
            _ => Introspection::inactive(),
        },
        // Only to a caller that asked about a refresh token: see the module's documentation.
        Presented::Refresh(_) if hint != Some(Hint::RefreshToken) => Introspection::inactive(),
        Presented::Refresh(refresh) => match revocation.live_refresh_token(&refresh.hash()).await? {
            Some(live) => Introspection {
                active: true,
                token_type: Some("refresh_token"),
                sub: Some(live.user_id),
                sid: Some(live.session_id),
                iat: Some(live.created_at / 1000),
                exp: Some(live.expires_at / 1000),
                client_id: Some(FIRST_PARTY_CLIENT_ID.to_owned()),
                ..Introspection::default()
            },
            None => Introspection::inactive(),
        },
        Presented::Unrecognised => Introspection::inactive(),
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
                    .denylist_token(&claims.jti, &claims.sid, &claims.sub, claims.exp * 1000)
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
