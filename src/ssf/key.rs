//! The RS256 key that signs Security Event Tokens: the CAEP interoperability profile asks
//! transmitters for RS256 with keys of at least 2048 bits, so SETs are signed with RSA while
//! access tokens keep their Ed25519 keys. Both sit in the one JWKS at `jwks_uri`.
//!
//! The key is generated the first time a stream is created (a 2048-bit key takes a moment to
//! find) and kept in `secrets`, so every instance and every restart signs with the same one.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::store::Db;

const SECRET_NAME: &str = "ssf_rsa_private_key";
const BITS: usize = 2048;
/// The `typ` of every SET (RFC 8417 section 2.3).
pub const SET_TYPE: &str = "secevent+jwt";

/// One loaded RSA key.
pub struct RsaKey {
    pub kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RsaKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    fn from_private(private: &rsa::RsaPrivateKey) -> anyhow::Result<Self> {
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        let kid = format!("ssf-{}", URL_SAFE_NO_PAD.encode(&Sha256::digest(n.as_bytes())[..12]));
        let der = private.to_pkcs1_der()?;
        Ok(Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: serde_json::json!({ "kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig" }),
            kid,
        })
    }

    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        Self::from_private(&rsa::RsaPrivateKey::from_pkcs8_pem(pem)?)
    }

    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Signs `claims` as a SET.
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(SET_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The key once some instance has made it; shared by the handlers and the delivery task.
#[derive(Clone, Default)]
pub struct SetKey {
    loaded: Arc<OnceCell<Arc<RsaKey>>>,
}

impl SetKey {
    async fn stored(db: &Db) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(SECRET_NAME)
            .fetch_optional(db)
            .await
    }

    /// The key if one exists, without making one: what the JWKS publishes.
    pub async fn published(&self, db: &Db) -> Option<Arc<RsaKey>> {
        if let Some(key) = self.loaded.get() {
            return Some(key.clone());
        }
        let pem = Self::stored(db).await.ok()??;
        match RsaKey::from_pem(&pem) {
            Ok(key) => Some(self.loaded.get_or_init(|| async { Arc::new(key) }).await.clone()),
            Err(error) => {
                tracing::error!(error = %error, "the stored SET signing key cannot be read");
                None
            }
        }
    }

    /// The key, made and stored first if no instance has made one yet (the first insert wins).
    pub async fn get_or_create(&self, db: &Db) -> anyhow::Result<Arc<RsaKey>> {
        if let Some(key) = self.published(db).await {
            return Ok(key);
        }
        let pem = tokio::task::spawn_blocking(|| -> anyhow::Result<String> {
            let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, BITS)?;
            Ok(private.to_pkcs8_pem(LineEnding::LF)?.to_string())
        })
        .await??;
        sqlx::query("INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(SECRET_NAME)
            .bind(&pem)
            .bind(crate::domain::now_millis())
            .execute(db)
            .await?;
        let pem = Self::stored(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the SET signing key was not stored"))?;
        let key = Arc::new(RsaKey::from_pem(&pem)?);
        Ok(self.loaded.get_or_init(|| async { key }).await.clone())
    }
}
