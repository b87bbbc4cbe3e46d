//! Access tokens: claims, keys, issuing, and validation against a server-side algorithm allow-list.
//!
//! The algorithm is never taken from the token: `Validation::algorithms` holds exactly the one the
//! server is configured with, `typ` must be `at+jwt`, and `iss`, `aud`, `exp`, `nbf` are required
//! and checked; `exp` and `nbf` against the app's clock (`domain::Clock`), here rather than by
//! jsonwebtoken, which reads the system's. Every failure maps to one `RejectReason`.
//!
//! Two kinds of access token share the keys: a person's (`sub` a user, `sid` the login session,
//! `ver` the token version) and a client's own, from the client-credentials grant (`sub` and
//! `client_id` the client, `scope`, no login session). Both carry `client_id` (RFC 9068). The
//! user-facing strategies take only the first kind: `validate` refuses a client's token as
//! `client_token`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, TokenData, Validation};
use revocable_verifier::verified_tokens::{TimeCheck, Verified, VerifiedTokens};

use crate::auth::keys::{self, KeyRing, KeyState};
use crate::config::{JwtAlgorithm, Settings};
use crate::domain::{Clock, RandomId};
use crate::error::RejectReason;
use crate::store::{self, Db};

mod claims;
mod issue;

use claims::TokenClaims;
pub use claims::{AccessToken, Claims, ClientClaims, IssuedToken};

pub const TOKEN_TYPE: &str = "at+jwt";
/// Longest token accepted before any parsing: a real one is a few hundred bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `client_id` of the tokens revocable issues to people through its own log-in: revocable is
/// its own first-party client. Registered clients have random ids, never this one.
pub const FIRST_PARTY_CLIENT_ID: &str = "revocable";

/// The keys a token may be signed or verified with.
enum KeyMaterial {
    /// One shared secret; no `kid`.
    Hmac {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    /// Ed25519 keys by `kid`, swapped whole when they are reloaded.
    Ed25519(RwLock<Arc<LoadedRing>>),
}

struct LoadedRing {
    ring: KeyRing,
    by_kid: HashMap<String, (EncodingKey, DecodingKey)>,
}

impl LoadedRing {
    fn new(ring: KeyRing) -> anyhow::Result<Self> {
        let by_kid = ring
            .keys()
            .iter()
            .map(|key| Ok((key.kid.clone(), (key.encoding_key()?, key.decoding_key()?))))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { ring, by_kid })
    }
}

pub struct JwtKeys {
    algorithm: Algorithm,
    material: KeyMaterial,
    /// A token named a `kid` this instance does not know: reload the keys soon.
    unknown_kid_seen: AtomicBool,
    settings: Settings,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime_seconds: i64,
    /// Tokens verified before, by the digest of their bytes (`VERIFIED_TOKEN_CACHE`).
    verified: VerifiedTokens<AccessToken>,
    /// `JWT_LEEWAY`, in seconds: how far past `exp` (or before `nbf`) a token is still accepted.
    leeway_seconds: i64,
    clock: Clock,
}

/// A verified token's claims and the key that verified it.
struct Decoded {
    data: TokenData<TokenClaims>,
    kid: Option<String>,
    key_verifies_until: Option<i64>,
}

impl JwtKeys {
    /// HS256: `JWT_SECRET`, or a secret generated once and kept in the database's `secrets`
    /// table. EdDSA: the key ring of `auth::keys` (database, `JWT_KEYS` or `JWT_KEYS_FILE`).
    pub async fn load(settings: &Settings, db: &Db, clock: Clock) -> anyhow::Result<Self> {
        let (algorithm, material) = match settings.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = match &settings.jwt_secret {
                    Some(secret) => secret.expose().to_owned(),
                    None => store::secrets::get_or_create(db, "jwt_hs256", RandomId::secret).await?,
                };
                (
                    Algorithm::HS256,
                    KeyMaterial::Hmac {
                        encoding: EncodingKey::from_secret(secret.as_bytes()),
                        decoding: DecodingKey::from_secret(secret.as_bytes()),
                    },
                )
            }
            JwtAlgorithm::EdDsa => {
                let ring = LoadedRing::new(keys::load(settings, db).await?)?;
                (Algorithm::EdDSA, KeyMaterial::Ed25519(RwLock::new(Arc::new(ring))))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = settings.jwt_leeway.as_secs();
        // Checked in `check_times`, against the app's clock; still required to be present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let issuer = settings.issuer();
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            algorithm,
            material,
            unknown_kid_seen: AtomicBool::new(false),
            settings: settings.clone(),
            validation,
            issuer,
            audience: settings.jwt_audience.clone(),
            lifetime_seconds: settings.access_ttl.as_secs() as i64,
            verified: VerifiedTokens::new(settings.verified_token_cache, settings.jwt_leeway.as_secs()),
            leeway_seconds: i64::try_from(settings.jwt_leeway.as_secs()).unwrap_or(i64::MAX),
            clock,
        })
    }

    /// Re-reads the Ed25519 keys (a rotation by another process, an edited `JWT_KEYS_FILE`).
    /// A failure keeps the keys in use.
    pub async fn reload(&self, db: &Db) -> anyhow::Result<()> {
        if let KeyMaterial::Ed25519(current) = &self.material {
            let ring = Arc::new(LoadedRing::new(keys::load(&self.settings, db).await?)?);
            *current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = ring.clone();
            self.forget_tokens_of_changed_keys(&ring);
        }
        self.unknown_kid_seen.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// A key gone from the ring, or whose end of verification moved, takes every token it
    /// verified out of the verified-token cache.
    fn forget_tokens_of_changed_keys(&self, ring: &LoadedRing) {
        self.verified.retain_keys(|kid, until| {
            kid.is_some_and(|kid| ring.by_kid.contains_key(kid) && ring.ring.verifies_until(kid) == until)
        });
    }

    /// Drops the verified tokens that have expired, and those whose key stopped verifying.
    pub fn purge_verified_tokens(&self) {
        self.verified.purge_expired(self.clock.now_millis());
    }

    /// Tokens held verified in memory.
    pub fn verified_tokens_held(&self) -> usize {
        self.verified.len()
    }

    /// `true` once a token has named an unknown `kid` since the last reload.
    pub fn wants_reload(&self) -> bool {
        self.unknown_kid_seen.load(Ordering::Relaxed)
    }

    fn ring(&self) -> Option<Arc<LoadedRing>> {
        match &self.material {
            KeyMaterial::Hmac { .. } => None,
            KeyMaterial::Ed25519(current) => {
                Some(current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
            }
        }
    }

    /// Checks that the Ed25519 key named `kid` verifies now, and returns the ring that holds it.
    fn ring_verifying(&self, kid: Option<&str>) -> Result<Arc<LoadedRing>, RejectReason> {
        let ring = self.ring().ok_or(RejectReason::BadSignature)?;
        let kid = kid.ok_or(RejectReason::BadSignature)?;
        if !ring.by_kid.contains_key(kid) {
            self.unknown_kid_seen.store(true, Ordering::Relaxed);
            return Err(RejectReason::BadSignature);
        }
        if ring
            .ring
            .verifies_until(kid)
            .is_some_and(|until| until <= self.clock.now_millis())
        {
            return Err(RejectReason::BadSignature);
        }
        Ok(ring)
    }

    /// Decodes and verifies with the key this token's header names, under `validation`.
    fn decode(&self, token: &str, validation: &Validation) -> Result<Decoded, RejectReason> {
        let decoded = match &self.material {
            // One key: jsonwebtoken reads the header itself (and refuses any other algorithm).
            KeyMaterial::Hmac { decoding, .. } => {
                jsonwebtoken::decode::<TokenClaims>(token, decoding, validation).map(|data| Decoded {
                    data,
                    kid: None,
                    key_verifies_until: None,
                })
            }
            KeyMaterial::Ed25519(_) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| Self::unreadable_header(token))?;
                if header.alg != self.algorithm {
                    return Err(RejectReason::BadSignature);
                }
                let ring = self.ring_verifying(header.kid.as_deref())?;
                let Some((kid, (_, decoding))) = header.kid.and_then(|kid| ring.by_kid.get(&kid).map(|key| (kid, key)))
                else {
                    return Err(RejectReason::BadSignature);
                };
                let key_verifies_until = ring.ring.verifies_until(&kid);
                jsonwebtoken::decode::<TokenClaims>(token, decoding, validation).map(|data| Decoded {
                    data,
                    kid: Some(kid),
                    key_verifies_until,
                })
            }
        };
        decoded.map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => RejectReason::BadSignature,
            ErrorKind::ExpiredSignature => RejectReason::Expired,
            ErrorKind::ImmatureSignature => RejectReason::NotYetValid,
            ErrorKind::InvalidAudience => RejectReason::WrongAudience,
            ErrorKind::InvalidIssuer => RejectReason::WrongIssuer,
            _ if jsonwebtoken::decode_header(token).is_err() => Self::unreadable_header(token),
            _ => RejectReason::Malformed,
        })
    }

    /// Signature, algorithm, `typ`, `kid`, `iss`, `aud`, `exp`, `nbf`: everything a token says
    /// about itself. Nothing stored is consulted. A client's own token is refused: it names no
    /// person and no login session.
    pub fn validate(&self, token: &str) -> Result<Claims, RejectReason> {
        match self.validate_any(token)? {
            AccessToken::User(claims) => Ok(claims),
            AccessToken::Client(_) => Err(RejectReason::ClientToken),
        }
    }

    /// As `validate`, for a token of either kind: what introspection answers about. A token
    /// verified before comes from the verified-token cache, its `exp` and `nbf` checked again.
    pub fn validate_any(&self, token: &str) -> Result<AccessToken, RejectReason> {
        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(RejectReason::Malformed);
        }
        if let Some(cached) = self.verified.get(token, self.clock.now_millis()) {
            return match cached {
                Ok(entry) => Ok(entry.claims.clone()),
                Err(TimeCheck::Expired) => Err(RejectReason::Expired),
                Err(TimeCheck::NotYetValid) => Err(RejectReason::NotYetValid),
            };
        }
        let Decoded {
            data,
            kid,
            key_verifies_until,
        } = self.decode(token, &self.validation)?;
        // Read from the verified header: a token of another type is not an access token.
        if !data
            .header
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case(TOKEN_TYPE))
        {
            return Err(RejectReason::Malformed);
        }
        let (expires_at, not_before) = (data.claims.exp, data.claims.nbf);
        self.check_times(expires_at, not_before, 0)?;
        let claims = data.claims.into_access_token()?;
        if !self.verified.is_enabled() {
            return Ok(claims);
        }
        let entry = self.verified.admit(
            token,
            Verified {
                claims,
                kid: kid.map(String::into_boxed_str),
                key_verifies_until,
                expires_at,
                not_before,
            },
        );
        Ok(entry.claims.clone())
    }

    /// `exp` and `nbf` against the app's clock moved `seconds_later` ahead, with `JWT_LEEWAY`
    /// either way, as jsonwebtoken would check them against the system's: expired once `exp` is
    /// more than the leeway behind, not yet valid while `nbf` is more than the leeway ahead.
    fn check_times(&self, expires_at: i64, not_before: i64, seconds_later: i64) -> Result<(), RejectReason> {
        let now = self.clock.now_seconds().saturating_add(seconds_later);
        if expires_at < now.saturating_sub(self.leeway_seconds) {
            return Err(RejectReason::Expired);
        }
        if not_before > now.saturating_add(self.leeway_seconds) {
            return Err(RejectReason::NotYetValid);
        }
        Ok(())
    }

    /// Validates as `validate` does, but as if the clock were `seconds_later` ahead: how `/compare`
    /// observes what happens to a real token once its lifetime has passed, without waiting for it.
    pub fn validate_later(&self, token: &str, seconds_later: u64) -> Result<Claims, RejectReason> {
        let later = i64::try_from(seconds_later).unwrap_or(i64::MAX);
        match self.decode(token, &self.validation).and_then(|decoded| {
            self.check_times(decoded.data.claims.exp, decoded.data.claims.nbf, later)?;
            Ok(decoded.data.claims.into_access_token())
        }) {
            Ok(Ok(AccessToken::User(claims))) => Ok(claims),
            Err(RejectReason::Expired) => Err(RejectReason::Expired),
            _ => Err(RejectReason::Malformed),
        }
    }

    /// A header jsonwebtoken cannot read: an algorithm it does not know (`none` above all) is a
    /// missing signature; anything else is malformed.
    fn unreadable_header(token: &str) -> RejectReason {
        let names_an_algorithm = token
            .split('.')
            .next()
            .and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|header| header["alg"].is_string());
        if names_an_algorithm {
            RejectReason::BadSignature
        } else {
            RejectReason::Malformed
        }
    }

    /// The JWKS document: every Ed25519 key that signs, will sign or still verifies; an empty set
    /// for HS256, whose secret is never published.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = match self.ring() {
            None => Vec::new(),
            Some(ring) => ring
                .ring
                .states(self.clock.now_millis())
                .into_iter()
                .filter(|(_, state)| *state != KeyState::Retired)
                .map(|(key, _)| key.public_jwk())
                .collect(),
        };
        serde_json::json!({ "keys": keys })
    }

    /// How long clients may cache the JWKS (`JWKS_MAX_AGE`).
    pub fn jwks_max_age(&self) -> std::time::Duration {
        self.settings.jwks_max_age
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::EdDSA => "EdDSA",
            _ => "HS256",
        }
    }
}

#[cfg(test)]
mod tests;
