//! Ed25519 signing keys and their rotation: where they come from (the database, or a JWK Set the
//! operator supplies in `JWT_KEYS` / `JWT_KEYS_FILE`), which one signs now, and until when a
//! replaced one still verifies.
//!
//! A rotation adds a key that is published in the JWKS at once, on every instance (it is announced
//! in the revocation log, and each instance reloads its keys when it applies the entry), but signs
//! only `JWKS_MAX_AGE` (plus `REVOCATION_MAX_STALENESS`) after that publication, so every verifier
//! that honours the JWKS caching headers has it before the first token signed with it arrives. The key it replaces keeps verifying for one more token lifetime (plus
//! leeway and the instances' reload interval), then leaves the JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::config::{KeysSource, Settings};
use crate::domain::now_millis;
use crate::revocation::Revocation;
use crate::store::signing_keys::StoredKey;
use crate::store::{self, Db};

/// One Ed25519 key pair and its place in the rotation.
#[derive(Clone)]
pub struct Ed25519Key {
    pub kid: String,
    seed: [u8; 32],
    /// base64url public key, the JWK's `x`.
    pub public: String,
    pub created_at: i64,
    /// When it starts signing (unix milliseconds); until then it is only published.
    pub signs_from: i64,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ed25519Key")
            .field("kid", &self.kid)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    pub fn generate(created_at: i64, signs_from: i64) -> Self {
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        Self::from_seed(seed, created_at, signs_from)
    }

    /// The `kid` is derived from the public key, so every instance names a key the same way.
    pub fn from_seed(seed: [u8; 32], created_at: i64, signs_from: i64) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public.as_bytes())[..12]);
        Self {
            kid,
            seed,
            public,
            created_at,
            signs_from,
        }
    }

    fn seed_from_text(text: &str) -> anyhow::Result<[u8; 32]> {
        URL_SAFE_NO_PAD
            .decode(text.trim())?
            .try_into()
            .map_err(|_| anyhow::anyhow!("an Ed25519 private key must be 32 bytes"))
    }

    pub fn encoding_key(&self) -> anyhow::Result<EncodingKey> {
        let der = ed25519_dalek::SigningKey::from_bytes(&self.seed).to_pkcs8_der()?;
        Ok(EncodingKey::from_ed_der(der.as_bytes()))
    }

    pub fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        Ok(DecodingKey::from_ed_components(&self.public)?)
    }

    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": self.public, "kid": self.kid, "alg": "EdDSA", "use": "sig"
        })
    }

    /// The private JWK, for an operator's `JWT_KEYS_FILE`. Printed by `revocable keys generate`.
    pub fn private_jwk(&self) -> serde_json::Value {
        let mut jwk = self.public_jwk();
        jwk["d"] = URL_SAFE_NO_PAD.encode(self.seed).into();
        jwk
    }

    fn from_private_jwk(jwk: &serde_json::Value) -> anyhow::Result<Self> {
        if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
            anyhow::bail!("every key must be an Ed25519 JWK (kty OKP, crv Ed25519)");
        }
        let seed = jwk["d"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("every key needs its private part `d`"))?;
        let key = Self::from_seed(Self::seed_from_text(seed)?, 0, 0);
        if let Some(x) = jwk["x"].as_str()
            && x != key.public
        {
            anyhow::bail!("key {}: `x` does not match `d`", key.kid);
        }
        Ok(match jwk["kid"].as_str() {
            Some(kid) if !kid.is_empty() => Self {
                kid: kid.to_owned(),
                ..key
            },
            _ => key,
        })
    }

    pub fn stored(&self) -> StoredKey {
        StoredKey {
            kid: self.kid.clone(),
            private_key: URL_SAFE_NO_PAD.encode(self.seed),
            public_key: self.public.clone(),
            created_at: self.created_at,
            signs_from: self.signs_from,
        }
    }

    fn from_stored(stored: &StoredKey) -> anyhow::Result<Self> {
        let key = Self::from_seed(
            Self::seed_from_text(&stored.private_key)?,
            stored.created_at,
            stored.signs_from,
        );
        if key.kid != stored.kid {
            anyhow::bail!("signing key {} does not match its private key", stored.kid);
        }
        Ok(key)
    }
}

/// Where a key stands in the rotation at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    Signing,
    /// Replaced; still verifies the tokens it signed until `until`.
    Verifying {
        until: i64,
    },
    /// Out of the JWKS.
    Retired,
}

impl KeyState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Signing => "signing",
            Self::Verifying { .. } => "verifying",
            Self::Retired => "retired",
        }
    }
}

/// The keys in force, in the order they start signing, with the rule of when each one retires.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<Ed25519Key>,
    /// How long a replaced key still verifies; `None` for operator-supplied keys, which verify
    /// until the operator removes them.
    overlap_millis: Option<i64>,
}

impl KeyRing {
    /// The key that signs at `now`: the latest whose `signs_from` has passed. Operator-supplied
    /// keys: the first of the set.
    pub fn signing(&self, now: i64) -> Option<&Ed25519Key> {
        match self.overlap_millis {
            None => self.keys.first(),
            Some(_) => self.keys.iter().rev().find(|key| key.signs_from <= now),
        }
    }

    /// Every key with its state at `now`.
    pub fn states(&self, now: i64) -> Vec<(&Ed25519Key, KeyState)> {
        let signing = self.signing(now).map(|key| key.kid.clone());
        self.keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let state = if Some(&key.kid) == signing.as_ref() {
                    KeyState::Signing
                } else {
                    match (self.overlap_millis, self.keys.get(index + 1)) {
                        (None, _) => KeyState::Verifying { until: i64::MAX },
                        (Some(_), _) if key.signs_from > now => KeyState::Next,
                        (Some(overlap), Some(next)) if next.signs_from + overlap > now => KeyState::Verifying {
                            until: next.signs_from + overlap,
                        },
                        (Some(_), _) => KeyState::Retired,
                    }
                };
                (key, state)
            })
            .collect()
    }

    /// Until when the key verifies: `None` while nothing has replaced it.
    pub fn verifies_until(&self, kid: &str) -> Option<i64> {
        let overlap = self.overlap_millis?;
        let index = self.keys.iter().position(|key| key.kid == kid)?;
        self.keys.get(index + 1).map(|next| next.signs_from + overlap)
    }

    pub fn keys(&self) -> &[Ed25519Key] {
        &self.keys
    }
}

/// How often each instance re-reads its keys: twice per `JWKS_MAX_AGE`, so that a key rotated
/// in with that much notice is known everywhere before it signs.
pub fn reload_interval(settings: &Settings) -> std::time::Duration {
    (settings.jwks_max_age / 2).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(30))
}

/// How long a replaced key keeps verifying: one token lifetime, the leeway, and the time an
/// instance that has not reloaded yet may still sign with it.
fn overlap_millis(settings: &Settings) -> i64 {
    (settings.access_ttl + settings.jwt_leeway + reload_interval(settings)).as_millis() as i64
}

/// The Ed25519 keys in force, from the operator's set or the database. An empty database gets
/// its first key from the seed older versions kept in `secrets`, so their tokens still verify.
pub async fn load(settings: &Settings, db: &Db) -> anyhow::Result<KeyRing> {
    if let Some(source) = &settings.jwt_keys {
        return Ok(KeyRing {
            keys: configured(source)?,
            overlap_millis: None,
        });
    }
    let mut stored = store::signing_keys::all(db).await?;
    if stored.is_empty() {
        let seed = store::secrets::get_or_create(db, "jwt_ed25519_seed", crate::domain::RandomId::secret).await?;
        let first = Ed25519Key::from_seed(Ed25519Key::seed_from_text(&seed)?, now_millis(), 0);
        store::signing_keys::insert(db, &first.stored()).await?;
        stored = store::signing_keys::all(db).await?;
    }
    Ok(KeyRing {
        keys: stored
            .iter()
            .map(Ed25519Key::from_stored)
            .collect::<anyhow::Result<_>>()?,
        overlap_millis: Some(overlap_millis(settings)),
    })
}

/// Parses the operator's JWK Set of private Ed25519 keys.
fn configured(source: &KeysSource) -> anyhow::Result<Vec<Ed25519Key>> {
    let (name, text) = match source {
        KeysSource::Environment(secret) => ("JWT_KEYS".to_owned(), secret.expose().to_owned()),
        KeysSource::File(path) => (
            format!("JWT_KEYS_FILE ({})", path.display()),
            std::fs::read_to_string(path)
                .map_err(|error| anyhow::anyhow!("JWT_KEYS_FILE {}: {error}", path.display()))?,
        ),
    };
    let set: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("{name} is not a JSON JWK Set: {error}"))?;
    let keys = set["keys"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{name} must be a JWK Set: {{\"keys\": [...]}}"))?
        .iter()
        .map(Ed25519Key::from_private_jwk)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    if keys.is_empty() {
        anyhow::bail!("{name} holds no key");
    }
    Ok(keys)
}

/// Adds a key that is published now, everywhere, and signs `JWKS_MAX_AGE` (plus
/// `REVOCATION_MAX_STALENESS`) from its publication.
pub async fn rotate(settings: &Settings, db: &Db, revocation: &Revocation) -> anyhow::Result<Ed25519Key> {
    if settings.jwt_algorithm != crate::config::JwtAlgorithm::EdDsa {
        anyhow::bail!(
            "key rotation is for the Ed25519 keys other services verify (JWT_ALG=EdDSA); an HS256 secret is never shared, change JWT_SECRET instead"
        );
    }
    if settings.jwt_keys.is_some() {
        anyhow::bail!(
            "the keys come from JWT_KEYS or JWT_KEYS_FILE: add a key from `revocable keys generate` to that set (second), then move it first once JWKS caches have it"
        );
    }
    // Makes sure the key in use is stored before the new one, so the new one replaces it.
    load(settings, db).await?;
    let mut key = Ed25519Key::generate(0, 0);
    let published = revocation
        .publish_signing_key(&key.stored(), settings.jwks_max_age)
        .await
        .map_err(|error| anyhow::anyhow!("the key could not be stored: {error}"))?;
    key.created_at = published.created_at;
    key.signs_from = published.signs_from;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(signs_from: &[i64], overlap: i64) -> KeyRing {
        KeyRing {
            keys: signs_from.iter().map(|at| Ed25519Key::generate(0, *at)).collect(),
            overlap_millis: Some(overlap),
        }
    }

    #[test]
    fn the_latest_key_whose_time_has_come_signs() {
        let ring = ring(&[0, 1_000, 5_000], 100);
        assert_eq!(ring.signing(999).unwrap().kid, ring.keys()[0].kid);
        assert_eq!(ring.signing(1_000).unwrap().kid, ring.keys()[1].kid);
        let states: Vec<_> = ring.states(1_050).into_iter().map(|(_, state)| state).collect();
        assert_eq!(
            states,
            vec![KeyState::Verifying { until: 1_100 }, KeyState::Signing, KeyState::Next]
        );
        let later: Vec<_> = ring.states(1_100).into_iter().map(|(_, state)| state).collect();
        assert_eq!(later[0], KeyState::Retired);
    }

    #[test]
    fn a_private_jwk_round_trips_and_a_mismatched_one_is_refused() {
        let key = Ed25519Key::generate(0, 0);
        let parsed = Ed25519Key::from_private_jwk(&key.private_jwk()).unwrap();
        assert_eq!(parsed.kid, key.kid);
        assert_eq!(parsed.public, key.public);
        let mut wrong = key.private_jwk();
        wrong["x"] = Ed25519Key::generate(0, 0).public.into();
        assert!(Ed25519Key::from_private_jwk(&wrong).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let key = Ed25519Key::generate(0, 0);
        let seed = URL_SAFE_NO_PAD.encode(key.seed);
        assert!(!format!("{key:?}").contains(&seed));
    }
}
