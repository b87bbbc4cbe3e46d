//! The token of a link sent by email (verify the address, reset the password, "this wasn't me"):
//! 256 random bits, URL-safe. Only its SHA-256 is stored; comparing hashes looked up by key leaks
//! nothing about the token (the lookup is by the hash of what was presented).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

pub struct LinkToken(String);

impl LinkToken {
    const LENGTH: usize = 43;

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts what `generate` produces and nothing else.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == Self::LENGTH
            && raw
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    /// For the link itself, and nowhere else (never a log line).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LinkToken(**redacted**)")
    }
}

#[cfg(test)]
mod tests {
    use super::LinkToken;

    #[test]
    fn link_tokens_round_trip_and_refuse_other_shapes() {
        let token = LinkToken::generate();
        let parsed = LinkToken::parse(token.expose()).expect("own tokens parse");
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(token.hash(), token.expose());
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", &"a".repeat(42)),
            &"é".repeat(21),
        ] {
            assert!(LinkToken::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
