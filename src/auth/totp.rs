//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), and the sealing of TOTP secrets at rest.
//!
//! A TOTP secret has to be readable by the server to check codes, so it cannot be hashed like a
//! token. It is sealed instead: AES-256-GCM under a key derived (HKDF-SHA-256) from
//! `MFA_ENCRYPTION_KEY`, or, when that is unset, from a key generated once and persisted in the
//! database's `secrets` table (as `JWT_SECRET`'s default is). The account id is the associated
//! data, so a sealed secret copied onto another account's row does not open. With the key kept
//! outside the database (`MFA_ENCRYPTION_KEY`), a copy of the database alone reveals no secret.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hkdf::Hkdf;
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};

use crate::config::Settings;
use crate::domain::RandomId;
use crate::store::{self, Db};

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// The issuer shown by authenticator apps.
const ISSUER: &str = "revocable";
/// The version prefix of a sealed secret, so that another scheme can be added beside it.
const SEALED_PREFIX: &str = "v1.";

/// The key TOTP secrets are sealed with.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SealingKey(**redacted**)")
    }
}

impl SealingKey {
    /// From `MFA_ENCRYPTION_KEY`, else from the key the database keeps (made on first start).
    pub async fn load(settings: &Settings, db: &Db) -> Result<Self, sqlx::Error> {
        let material = match &settings.mfa_encryption_key {
            Some(key) => key.expose().to_owned(),
            None => store::secrets::get_or_create(db, "mfa_sealing_key", RandomId::secret).await?,
        };
        Ok(Self::derive(material.as_bytes()))
    }

    fn derive(material: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"revocable totp secrets"), material)
            .expand(b"aes-256-gcm v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        Self(Aes256Gcm::new(&key.into()))
    }

    /// `v1.` + base64(nonce ‖ ciphertext ‖ tag), bound to `user_id`.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a TOTP secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(out)))
    }

    /// The secret `seal` sealed for `user_id`; an error for anything else (another key, another
    /// account, a damaged value).
    pub fn open(&self, user_id: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| anyhow::anyhow!("a sealed TOTP secret of an unknown version"))?;
        let bytes = STANDARD_NO_PAD.decode(encoded)?;
        if bytes.len() < 12 + 16 {
            anyhow::bail!("a sealed TOTP secret is too short");
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into()?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("a sealed TOTP secret does not open with this key (was MFA_ENCRYPTION_KEY changed?)")
            })
    }
}

/// 160 random bits, the length RFC 4226 recommends.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// The secret as authenticator apps take it typed in: base32 without padding.
pub fn secret_text(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

fn totp(secret: &[u8], account_name: &str) -> anyhow::Result<Totp> {
    // A colon would end the label's issuer part; an email never has one, but be safe.
    let account_name = account_name.replace(':', "");
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .with_account_name(account_name)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|error| anyhow::anyhow!("building the TOTP: {error}"))
}

/// `otpauth://totp/revocable:EMAIL?secret=…&issuer=revocable&…`, what the QR code carries.
pub fn otpauth_uri(secret: &[u8], account_name: &str) -> anyhow::Result<String> {
    totp(secret, account_name)?
        .to_url()
        .map_err(|error| anyhow::anyhow!("the otpauth URI: {error}"))
}

/// The step `code` belongs to, if it is the code of the current step or the one before or after
/// (clock skew) and that step is newer than `last_used_step`: a code already accepted, or one
/// older than it, is a replay. Every candidate is compared in constant time.
pub fn accepted_step(secret: &[u8], code: &str, now_seconds: u64, last_used_step: i64) -> anyhow::Result<Option<u64>> {
    let totp = totp(secret, "")?;
    let current = now_seconds / STEP_SECONDS;
    let mut accepted = None;
    for step in current.saturating_sub(1)..=current + 1 {
        let expected = totp.generate(step * STEP_SECONDS).to_string();
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if matches && i64::try_from(step).is_ok_and(|step| step > last_used_step) {
            accepted = Some(step);
        }
    }
    Ok(accepted)
}

/// The QR code of `uri` as an inline `<svg>` element (no XML prolog), to sit in the page itself.
pub fn qr_svg(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|error| anyhow::anyhow!("the QR code: {error}"))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        r#"<svg role="img" aria-label="QR code for your authenticator app" "#,
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::{SealingKey, accepted_step, otpauth_uri, qr_svg, secret_text};

    /// RFC 6238 appendix B: the SHA-1 secret is "12345678901234567890"; at T = 59 s the 8-digit
    /// code is 94287082, so the 6-digit one is its last six digits.
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = b"12345678901234567890";
        assert_eq!(accepted_step(secret, "287082", 59, 0).unwrap(), Some(1));
        assert_eq!(
            accepted_step(secret, "081804", 1_111_111_109, 0).unwrap(),
            Some(37_037_036)
        );
    }

    #[test]
    fn the_neighbouring_steps_are_accepted_and_no_further() {
        let secret = b"12345678901234567890";
        // The code of step 1 (T = 30..59), checked at steps 0, 2 and 3.
        assert_eq!(accepted_step(secret, "287082", 10, 0).unwrap(), Some(1));
        assert_eq!(accepted_step(secret, "287082", 65, 0).unwrap(), Some(1));
        assert_eq!(accepted_step(secret, "287082", 95, 0).unwrap(), None);
    }

    #[test]
    fn a_code_of_a_step_already_used_is_a_replay() {
        let secret = b"12345678901234567890";
        assert_eq!(accepted_step(secret, "287082", 59, 1).unwrap(), None);
        assert_eq!(accepted_step(secret, "287082", 59, 2).unwrap(), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let key = SealingKey::derive(b"a key of at least thirty-two bytes!!");
        let other = SealingKey::derive(b"another key of thirty-two bytes or more");
        let sealed = key.seal("ann", b"the secret").unwrap();
        assert!(!sealed.contains("the secret"));
        assert_eq!(key.open("ann", &sealed).unwrap(), b"the secret");
        assert!(key.open("bob", &sealed).is_err());
        assert!(other.open("ann", &sealed).is_err());
        assert!(key.open("ann", "v1.AAAA").is_err());
        assert!(key.open("ann", "garbage").is_err());
    }

    #[test]
    fn the_uri_and_the_qr_code_carry_the_secret() {
        let secret = b"12345678901234567890";
        let uri = otpauth_uri(secret, "ann@example.com").unwrap();
        assert!(uri.starts_with("otpauth://totp/revocable:ann%40example.com?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", secret_text(secret))), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg role=\"img\""), "{svg}");
        assert!(svg.ends_with("</svg>"));
    }
}
