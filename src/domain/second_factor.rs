//! What a person types as a second factor, and the opaque token of a log-in waiting for it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The alphabet of recovery codes: digits and lowercase letters without `i`, `l`, `o`, `u`, so
/// that nothing read off paper is mistaken for something else. 32 symbols, 5 bits each.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 16 symbols: 80 random bits, far beyond guessing even from a stolen hash.
const RECOVERY_LENGTH: usize = 16;

/// A code as typed: a 6-digit TOTP code, or a recovery code (dashes, spaces and case ignored).
#[derive(Clone, PartialEq, Eq)]
pub enum SecondFactorCode {
    Totp(String),
    Recovery(RecoveryCode),
}

impl SecondFactorCode {
    /// `None` for anything that is neither shape, which is then a wrong code like any other.
    pub fn parse(raw: &str) -> Option<Self> {
        let compact: String = raw
            .chars()
            .filter(|character| !character.is_whitespace() && *character != '-')
            .collect();
        if compact.len() == 6 && compact.bytes().all(|byte| byte.is_ascii_digit()) {
            return Some(Self::Totp(compact));
        }
        RecoveryCode::parse(&compact).map(Self::Recovery)
    }
}

impl std::fmt::Debug for SecondFactorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Totp(_) => formatter.write_str("SecondFactorCode::Totp(…)"),
            Self::Recovery(_) => formatter.write_str("SecondFactorCode::Recovery(…)"),
        }
    }
}

/// A single-use recovery code, normalized (16 symbols, lowercase, no dashes). Only its hash is
/// stored; people see it as `xxxx-xxxx-xxxx-xxxx`.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// A new code from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut random = rand::rng();
        let code = (0..RECOVERY_LENGTH)
            .map(|_| char::from(RECOVERY_ALPHABET[(random.next_u32() % 32) as usize]))
            .collect();
        Self(code)
    }

    fn parse(compact: &str) -> Option<Self> {
        let lower = compact.to_ascii_lowercase();
        let valid = lower.len() == RECOVERY_LENGTH && lower.bytes().all(|byte| RECOVERY_ALPHABET.contains(&byte));
        valid.then_some(Self(lower))
    }

    /// `xxxx-xxxx-xxxx-xxxx`, the way it is shown once.
    pub fn display(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// The opaque `mfa_token` of a log-in whose password was right: 256 random bits, stored only as
/// its SHA-256 hash.
pub struct MfaToken(String);

impl MfaToken {
    pub fn generate() -> Self {
        let mut buffer = [0u8; 32];
        rand::rng().fill_bytes(&mut buffer);
        Self(URL_SAFE_NO_PAD.encode(buffer))
    }

    /// Accepts what `generate` produces (43 URL-safe characters) and nothing else.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == 43
            && raw
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RecoveryCode(…)")
    }
}

impl std::fmt::Debug for MfaToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MfaToken(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::{MfaToken, RecoveryCode, SecondFactorCode};

    #[test]
    fn six_digits_are_a_totp_code_spaces_and_all() {
        assert_eq!(
            SecondFactorCode::parse(" 123 456 "),
            Some(SecondFactorCode::Totp("123456".into()))
        );
        assert_eq!(SecondFactorCode::parse("12345"), None);
        assert_eq!(SecondFactorCode::parse("1234567"), None);
        assert_eq!(SecondFactorCode::parse("12345a"), None);
        assert_eq!(SecondFactorCode::parse(""), None);
    }

    #[test]
    fn a_recovery_code_reads_back_whatever_its_case_and_dashes() {
        let code = RecoveryCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        assert_eq!(
            SecondFactorCode::parse(&shown.to_uppercase()),
            Some(SecondFactorCode::Recovery(code.clone()))
        );
        assert_eq!(
            SecondFactorCode::parse(&shown.replace('-', "")),
            Some(SecondFactorCode::Recovery(code))
        );
        assert_eq!(SecondFactorCode::parse("iiii-llll-oooo-uuuu"), None);
    }

    #[test]
    fn recovery_codes_differ_and_hash_stably() {
        let (first, second) = (RecoveryCode::generate(), RecoveryCode::generate());
        assert_ne!(first, second);
        assert_eq!(first.hash(), first.clone().hash());
        assert_ne!(first.hash(), second.hash());
    }

    #[test]
    fn an_mfa_token_is_only_what_generate_makes() {
        let token = MfaToken::generate();
        assert!(MfaToken::parse(token.expose()).is_some());
        assert!(MfaToken::parse("short").is_none());
        assert!(MfaToken::parse(&format!("{}!", &token.expose()[..42])).is_none());
    }
}
