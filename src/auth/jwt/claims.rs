//! What an access token says: a person's claims, a client's, and the two read back as one.

use serde::{Deserialize, Serialize};

use super::FIRST_PARTY_CLIENT_ID;
use crate::error::RejectReason;

fn first_party_client_id() -> String {
    FIRST_PARTY_CLIENT_ID.to_owned()
}

/// A person's access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub ver: i64,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Tokens issued before the claim existed were first-party too.
    #[serde(default = "first_party_client_id")]
    pub client_id: String,
}

/// A client's own access token (client credentials, RFC 6749 section 4.4): it names no person
/// and no login session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientClaims {
    pub iss: String,
    pub aud: String,
    /// The client id, as RFC 9068 asks when no person is involved.
    pub sub: String,
    pub client_id: String,
    /// Space-separated scopes (RFC 6749 section 3.3).
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// A verified access token of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessToken {
    User(Claims),
    Client(ClientClaims),
}

/// The claims as they arrive, before the token's kind is known.
#[derive(Deserialize)]
pub(super) struct TokenClaims {
    pub(super) iss: String,
    pub(super) aud: String,
    pub(super) sub: String,
    #[serde(default)]
    pub(super) sid: Option<String>,
    #[serde(default)]
    pub(super) ver: Option<i64>,
    pub(super) jti: String,
    pub(super) iat: i64,
    pub(super) nbf: i64,
    pub(super) exp: i64,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default)]
    pub(super) scope: Option<String>,
}

impl TokenClaims {
    /// A person's token has `sid` and `ver`; a client's has neither, and `scope`, and its own id
    /// as both `sub` and `client_id`. Anything in between is malformed.
    pub(super) fn into_access_token(self) -> Result<AccessToken, RejectReason> {
        match (self.sid, self.ver, self.client_id, self.scope) {
            (Some(sid), Some(ver), client_id, _) => Ok(AccessToken::User(Claims {
                iss: self.iss,
                aud: self.aud,
                sub: self.sub,
                sid,
                ver,
                jti: self.jti,
                iat: self.iat,
                nbf: self.nbf,
                exp: self.exp,
                client_id: client_id.unwrap_or_else(first_party_client_id),
            })),
            (None, None, Some(client_id), Some(scope)) if client_id == self.sub => {
                Ok(AccessToken::Client(ClientClaims {
                    iss: self.iss,
                    aud: self.aud,
                    sub: self.sub,
                    client_id,
                    scope,
                    jti: self.jti,
                    iat: self.iat,
                    nbf: self.nbf,
                    exp: self.exp,
                }))
            }
            _ => Err(RejectReason::Malformed),
        }
    }
}

pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}
