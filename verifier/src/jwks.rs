//! revocable's public keys, cached for as long as the JWKS response's `Cache-Control: max-age`
//! allows (at least a second), and refetched at once when a token names a `kid` not in the cache.
//! revocable publishes a new key `max-age` before it signs with it, so the refetch is rare.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::Rejection;

/// The shortest a JWKS is kept, whatever `max-age` says, so that a stream of tokens with made-up
/// `kid`s costs revocable at most one JWKS request a second.
const MIN_CACHE: Duration = Duration::from_secs(1);
const DEFAULT_CACHE: Duration = Duration::from_secs(300);

struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    max_age: Duration,
}

impl Cached {
    fn is_fresh(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < self.max_age)
    }

    fn fetched_within(&self, window: Duration) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < window)
    }
}

pub struct KeyCache {
    url: String,
    cached: tokio::sync::RwLock<Cached>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    /// RSA: the keys that sign Shared Signals SETs.
    n: Option<String>,
    e: Option<String>,
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .split(',')
                .find_map(|directive| directive.trim().strip_prefix("max-age="))
                .and_then(|seconds| seconds.trim().parse::<u64>().ok())
        })
        .map_or(DEFAULT_CACHE, Duration::from_secs)
        .max(MIN_CACHE)
}

impl KeyCache {
    pub fn new(url: String) -> Self {
        Self {
            url,
            cached: tokio::sync::RwLock::new(Cached {
                keys: HashMap::new(),
                fetched_at: None,
                max_age: DEFAULT_CACHE,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// `true` when the JWKS in hand is fresh and publishes `kid`; `false` when it does not, or
    /// must be fetched again to tell (or is being replaced right now).
    pub fn publishes(&self, kid: &str) -> bool {
        self.cached
            .try_read()
            .is_ok_and(|cached| cached.is_fresh() && cached.keys.contains_key(kid))
    }

    /// The key named `kid`: `None` when revocable does not publish it, `Unavailable` when the
    /// JWKS cannot be fetched and no copy of the key is at hand. `on_fetched` is given every
    /// newly fetched set of keys.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
        on_fetched: impl FnOnce(&HashMap<String, DecodingKey>),
    ) -> Result<Option<DecodingKey>, Rejection> {
        {
            let cached = self.cached.read().await;
            if cached.is_fresh() && (cached.keys.contains_key(kid) || cached.fetched_within(MIN_CACHE)) {
                return Ok(cached.keys.get(kid).cloned());
            }
        }
        let _fetching = self.fetching.lock().await;
        {
            let cached = self.cached.read().await;
            let known_and_fresh = cached.is_fresh() && cached.keys.contains_key(kid);
            if known_and_fresh || cached.fetched_within(MIN_CACHE) {
                return Ok(cached.keys.get(kid).cloned());
            }
        }
        match self.fetch(http).await {
            Ok((keys, max_age)) => {
                let mut cached = self.cached.write().await;
                *cached = Cached {
                    keys,
                    fetched_at: Some(Instant::now()),
                    max_age,
                };
                on_fetched(&cached.keys);
                Ok(cached.keys.get(kid).cloned())
            }
            Err(error) => {
                tracing::warn!(error = %error, url = %self.url, "the JWKS could not be fetched");
                // A key already known stays usable while the JWKS cannot be reached.
                let cached = self.cached.read().await;
                cached.keys.get(kid).cloned().map(Some).ok_or(Rejection::Unavailable)
            }
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(HashMap<String, DecodingKey>, Duration), reqwest::Error> {
        let response = http.get(&self.url).send().await?.error_for_status()?;
        let max_age = max_age(response.headers());
        let jwks: Jwks = response.json().await?;
        let keys = jwks
            .keys
            .into_iter()
            .filter_map(|jwk| {
                // Each use checks the algorithm it expects: EdDSA for access tokens, RS256 for SETs.
                let key = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
                    ("OKP", Some("Ed25519")) => DecodingKey::from_ed_components(jwk.x.as_deref()?).ok()?,
                    ("RSA", _) => DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?,
                    _ => return None,
                };
                Some((jwk.kid?, key))
            })
            .collect();
        Ok((keys, max_age))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_floored() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&headers), DEFAULT_CACHE);
        headers.insert(reqwest::header::CACHE_CONTROL, "public, max-age=120".parse().unwrap());
        assert_eq!(max_age(&headers), Duration::from_secs(120));
        headers.insert(reqwest::header::CACHE_CONTROL, "public, max-age=0".parse().unwrap());
        assert_eq!(max_age(&headers), MIN_CACHE);
    }
}
