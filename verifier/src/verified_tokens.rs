//! The verified-token cache: a token seen before, byte for byte, is not verified again.
//!
//! Verifying a signature and parsing the claims is most of what a bearer check costs (five times
//! more with EdDSA than with HS256), and a client presents the same access token tens or hundreds
//! of times in its lifetime. An entry holds what verification concluded from one token's bytes —
//! its parsed claims, the `kid` that verified it, and until when that key verifies — under the
//! SHA-256 digest of the whole token, so no other token can be taken for it: two tokens that
//! differ anywhere differ in their digest. What depends on time does not come from memory: every
//! hit checks `exp` and `nbf` against the clock again and that the key still verifies; revocation
//! is checked by the caller on every request, cached token or not.
//!
//! Only verified tokens are admitted (`admit` is called after a successful verification), so a
//! flood of distinct invalid tokens costs a verification each, as without the cache, and evicts
//! nothing. The bound is a number of entries (S3-FIFO eviction, `quick_cache`), and an entry is
//! dropped once its token expires: on the hit that finds it expired, or by `purge_expired`. A key
//! that stops verifying takes its entries with it (`retain_keys`, on every reload of the keys).
//!
//! A lookup hashes a digest the presenter cannot choose, so how long it takes says nothing about
//! which other tokens are cached.

use std::sync::Arc;

use quick_cache::UnitWeighter;
use sha2::{Digest, Sha256};

type TokenDigest = [u8; 32];

/// What one verification of a token concluded, kept for the next presentation of the same bytes.
#[derive(Debug)]
pub struct Verified<T> {
    pub claims: T,
    /// The key that verified the signature (`None` for the single HS256 secret).
    pub kid: Option<Box<str>>,
    /// Until when that key verifies, in Unix milliseconds, as the key ring said at admission;
    /// `None`: no end is set.
    pub key_verifies_until: Option<i64>,
    /// The token's `exp` and `nbf`, in Unix seconds.
    pub expires_at: i64,
    pub not_before: i64,
}

/// Why a cached token is refused without verifying it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeCheck {
    Expired,
    NotYetValid,
}

type Entries<T> = quick_cache::sync::Cache<TokenDigest, Arc<Verified<T>>, UnitWeighter, foldhash::fast::RandomState>;

/// Bounded map from a token's digest to what its verification concluded; capacity 0 keeps
/// nothing (every token is verified every time).
pub struct VerifiedTokens<T> {
    entries: Option<Entries<T>>,
    leeway_seconds: i64,
}

impl<T> VerifiedTokens<T> {
    /// At most `capacity` tokens; `exp` and `nbf` tolerate `leeway_seconds` of clock skew, as the
    /// verification does.
    pub fn new(capacity: usize, leeway_seconds: u64) -> Self {
        let entries = (capacity > 0).then(|| {
            Entries::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                foldhash::fast::RandomState::default(),
                Default::default(),
            )
        });
        Self {
            entries,
            leeway_seconds: leeway_seconds as i64,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// What verifying `token` concluded, if it was verified before and is still to be believed:
    /// `Some(Ok)` a hit, `Some(Err)` a cached token that is now expired or not yet valid, `None`
    /// not cached (verify it). An expired entry and one whose key has stopped verifying are
    /// dropped. `now_millis` is the wall clock in Unix milliseconds.
    pub fn get(&self, token: &str, now_millis: i64) -> Option<Result<Arc<Verified<T>>, TimeCheck>> {
        let entries = self.entries.as_ref()?;
        let digest = Self::digest(token);
        let entry = entries.get(&digest)?;
        if entry.key_verifies_until.is_some_and(|until| until <= now_millis) {
            entries.remove(&digest);
            return None;
        }
        let now = now_millis.div_euclid(1000);
        // The order and the bounds of jsonwebtoken's own checks.
        if entry.expires_at < now - self.leeway_seconds {
            entries.remove(&digest);
            return Some(Err(TimeCheck::Expired));
        }
        if entry.not_before > now + self.leeway_seconds {
            return Some(Err(TimeCheck::NotYetValid));
        }
        Some(Ok(entry))
    }

    /// Keeps what verifying `token` concluded. Call it only once the signature and every claim
    /// have been verified.
    pub fn admit(&self, token: &str, verified: Verified<T>) -> Arc<Verified<T>> {
        let verified = Arc::new(verified);
        if let Some(entries) = &self.entries {
            entries.insert(Self::digest(token), verified.clone());
        }
        verified
    }

    /// Drops every entry whose key no longer verifies as it did: `still_verifies(kid, until)`
    /// answers, from the key ring now in use, whether the key `kid` is still there with the same
    /// end of verification.
    pub fn retain_keys(&self, still_verifies: impl Fn(Option<&str>, Option<i64>) -> bool) {
        if let Some(entries) = &self.entries {
            entries.retain(|_, entry| still_verifies(entry.kid.as_deref(), entry.key_verifies_until));
        }
    }

    /// Drops every entry whose token has expired (past the leeway) or whose key stopped verifying.
    pub fn purge_expired(&self, now_millis: i64) {
        let now = now_millis.div_euclid(1000);
        let leeway = self.leeway_seconds;
        if let Some(entries) = &self.entries {
            entries.retain(|_, entry| {
                entry.expires_at >= now - leeway && entry.key_verifies_until.is_none_or(|until| until > now_millis)
            });
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn verified(claims: &str, kid: Option<&str>, expires_at: i64) -> Verified<String> {
        Verified {
            claims: claims.to_owned(),
            kid: kid.map(Into::into),
            key_verifies_until: None,
            expires_at,
            not_before: NOW / 1000 - 10,
        }
    }

    fn hit(cache: &VerifiedTokens<String>, token: &str, now: i64) -> Option<String> {
        match cache.get(token, now)? {
            Ok(entry) => Some(entry.claims.clone()),
            Err(_) => None,
        }
    }

    #[test]
    fn a_cached_token_answers_with_its_own_claims() {
        let cache = VerifiedTokens::new(16, 0);
        cache.admit("a.b.c", verified("first", None, NOW / 1000 + 60));
        assert_eq!(hit(&cache, "a.b.c", NOW).as_deref(), Some("first"));
    }

    #[test]
    fn a_token_differing_in_one_byte_or_extending_a_cached_one_is_not_a_hit() {
        let cache = VerifiedTokens::new(16, 0);
        cache.admit("header.payload.signature", verified("first", None, NOW / 1000 + 60));
        for other in [
            "header.payload.signaturE",
            "Header.payload.signature",
            "header.payload.signature.",
            "header.payload.signatur",
            "header.payload.signatureX",
        ] {
            assert!(cache.get(other, NOW).is_none(), "{other} was taken for a cached token");
        }
        assert_eq!(hit(&cache, "header.payload.signature", NOW).as_deref(), Some("first"));
    }

    #[test]
    fn a_cached_token_is_refused_once_it_expires_and_dropped() {
        let cache = VerifiedTokens::new(16, 5);
        let exp = NOW / 1000 + 60;
        cache.admit("a.b.c", verified("first", None, exp));
        // Within the leeway it is still accepted; past it, it is expired.
        assert!(hit(&cache, "a.b.c", (exp + 5) * 1000).is_some());
        assert!(matches!(
            cache.get("a.b.c", (exp + 6) * 1000),
            Some(Err(TimeCheck::Expired))
        ));
        assert!(cache.is_empty());
        assert!(cache.get("a.b.c", NOW).is_none());
    }

    #[test]
    fn a_cached_token_before_its_nbf_is_refused() {
        let cache = VerifiedTokens::new(16, 0);
        let mut entry = verified("first", None, NOW / 1000 + 600);
        entry.not_before = NOW / 1000 + 60;
        cache.admit("a.b.c", entry);
        assert!(matches!(cache.get("a.b.c", NOW), Some(Err(TimeCheck::NotYetValid))));
        assert!(hit(&cache, "a.b.c", NOW + 61_000).is_some());
    }

    #[test]
    fn purging_drops_expired_tokens_only() {
        let cache = VerifiedTokens::new(16, 0);
        cache.admit("old.b.c", verified("old", None, NOW / 1000 - 1));
        cache.admit("new.b.c", verified("new", None, NOW / 1000 + 60));
        cache.purge_expired(NOW);
        assert_eq!(cache.len(), 1);
        assert_eq!(hit(&cache, "new.b.c", NOW).as_deref(), Some("new"));
    }

    #[test]
    fn a_key_that_stops_verifying_takes_its_tokens_with_it() {
        let cache = VerifiedTokens::new(16, 0);
        cache.admit("a.one.sig", verified("one", Some("old"), NOW / 1000 + 60));
        cache.admit("a.two.sig", verified("two", Some("old"), NOW / 1000 + 60));
        cache.admit("a.three.sig", verified("three", Some("new"), NOW / 1000 + 60));
        cache.retain_keys(|kid, _| kid == Some("new"));
        assert_eq!(cache.len(), 1);
        assert!(cache.get("a.one.sig", NOW).is_none());
        assert!(cache.get("a.two.sig", NOW).is_none());
        assert_eq!(hit(&cache, "a.three.sig", NOW).as_deref(), Some("three"));
    }

    #[test]
    fn a_token_whose_key_reached_its_end_of_verification_is_not_a_hit() {
        let cache = VerifiedTokens::new(16, 0);
        let mut entry = verified("one", Some("old"), NOW / 1000 + 600);
        entry.key_verifies_until = Some(NOW + 1_000);
        cache.admit("a.one.sig", entry);
        assert!(hit(&cache, "a.one.sig", NOW).is_some());
        assert!(cache.get("a.one.sig", NOW + 1_000).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_number_of_entries_is_bounded() {
        let cache = VerifiedTokens::new(100, 0);
        for index in 0..10_000 {
            cache.admit(&format!("token.{index}.sig"), verified("claims", None, NOW / 1000 + 60));
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
        assert!(cache.len() >= 50, "{} entries", cache.len());
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let cache = VerifiedTokens::new(0, 0);
        assert!(!cache.is_enabled());
        cache.admit("a.b.c", verified("first", None, NOW / 1000 + 60));
        assert!(cache.get("a.b.c", NOW).is_none());
        assert_eq!(cache.len(), 0);
    }
}
