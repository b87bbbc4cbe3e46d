//! Issuing access tokens: a person's, a client's own, and the signature both carry.

use jsonwebtoken::Header;
use serde::Serialize;

use super::{Claims, ClientClaims, FIRST_PARTY_CLIENT_ID, IssuedToken, JwtKeys, KeyMaterial, TOKEN_TYPE};
use crate::domain::RandomId;

impl JwtKeys {
    pub fn issue(&self, user_id: &str, session_id: &str, token_version: i64) -> anyhow::Result<IssuedToken> {
        self.issue_for(user_id, session_id, token_version, self.lifetime_seconds)
    }

    /// A token with a lifetime of its own: `/compare`'s probe must outlive its few thousand checks
    /// even when `ACCESS_TTL` is a couple of seconds.
    pub fn issue_for(
        &self,
        user_id: &str,
        session_id: &str,
        token_version: i64,
        lifetime_seconds: i64,
    ) -> anyhow::Result<IssuedToken> {
        let now = self.clock.now_seconds();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            ver: token_version,
            jti: RandomId::generate(),
            iat: now,
            nbf: now,
            exp: now + lifetime_seconds,
            client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken { token, claims })
    }

    /// A client's own token (client credentials) for `scope`, living `lifetime_seconds`.
    pub fn issue_for_client(
        &self,
        client_id: &str,
        scope: &str,
        lifetime_seconds: i64,
    ) -> anyhow::Result<(String, ClientClaims)> {
        let now = self.clock.now_seconds();
        let claims = ClientClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            jti: RandomId::generate(),
            iat: now,
            nbf: now,
            exp: now + lifetime_seconds,
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs `claims` as an `at+jwt` with the key that signs now.
    pub(super) fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(self.algorithm);
        header.typ = Some(TOKEN_TYPE.to_owned());
        Ok(match &self.material {
            KeyMaterial::Hmac { encoding, .. } => jsonwebtoken::encode(&header, claims, encoding)?,
            KeyMaterial::Ed25519(_) => {
                let ring = self.ring().ok_or_else(|| anyhow::anyhow!("no Ed25519 keys loaded"))?;
                let key = ring
                    .ring
                    .signing(self.clock.now_millis())
                    .ok_or_else(|| anyhow::anyhow!("no Ed25519 key signs yet"))?;
                let (encoding, _) = ring
                    .by_kid
                    .get(&key.kid)
                    .ok_or_else(|| anyhow::anyhow!("the signing key is not loaded"))?;
                header.kid = Some(key.kid.clone());
                jsonwebtoken::encode(&header, claims, encoding)?
            }
        })
    }
}
