//! Unguessable identifiers and opaque tokens from the operating system's CSPRNG.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

fn random_url_safe(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// 128 random bits, URL-safe: ids of users, login sessions, events and token `jti`s.
pub struct RandomId;

impl RandomId {
    pub fn generate() -> String {
        random_url_safe(16)
    }

    /// 256 random bits for keys and secrets.
    pub fn secret() -> String {
        random_url_safe(32)
    }
}

/// The id of a login session, as `RandomId::generate` makes it: 22 URL-safe characters. Anything
/// else (a NUL byte, another length or alphabet) is not an id and never reaches a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    pub const LENGTH: usize = 22;

    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == Self::LENGTH && raw.bytes().all(is_url_safe);
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_url_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// An opaque refresh token: 256 random bits. Only its SHA-256 hash is ever stored.
#[derive(Clone)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Self {
        Self(random_url_safe(32))
    }

    /// Accepts what `generate` produces (43 URL-safe characters) and nothing else.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == 43 && raw.bytes().all(is_url_safe);
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RefreshToken(**redacted**)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_round_trip_and_hash_stably() {
        let token = RefreshToken::generate();
        let parsed = RefreshToken::parse(token.expose()).expect("own tokens parse");
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(token.hash(), token.expose());
    }

    #[test]
    fn refresh_token_parsing_refuses_other_shapes() {
        assert!(RefreshToken::parse("").is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJIUzI1NiJ9.e30.sig").is_none());
        assert!(RefreshToken::parse(&"a".repeat(44)).is_none());
    }

    #[test]
    fn session_ids_parse_only_in_the_shape_they_are_made() {
        let id = RandomId::generate();
        assert_eq!(SessionId::parse(&id).map(|parsed| parsed.as_str().to_owned()), Some(id));
        for not_an_id in [
            "",
            "\0",
            "abc\0def",
            "a".repeat(21).as_str(),
            "a".repeat(23).as_str(),
            "aaaaaaaaaaaaaaaaaaaaa+",
            "aaaaaaaaaaaaaaaaaaaaa\u{e9}",
        ] {
            assert!(SessionId::parse(not_an_id).is_none(), "{not_an_id:?} parsed");
        }
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| RandomId::generate()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
