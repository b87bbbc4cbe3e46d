//! Unit tests for access tokens: issuing, the algorithm allow-list, times, keys and the verified-token cache.

use super::*;
use std::collections::HashMap;

async fn keys_and_db(pairs: &[(&str, &str)]) -> (JwtKeys, Db) {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let settings = Settings::from_lookup(|name| map.get(name).cloned()).unwrap();
    let path = std::env::temp_dir().join(format!("revocable-jwt-{}.db", RandomId::generate()));
    let db = store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store::migrate(&db).await.unwrap();
    (JwtKeys::load(&settings, &db, Clock::System).await.unwrap(), db)
}

async fn keys(pairs: &[(&str, &str)]) -> JwtKeys {
    keys_and_db(pairs).await.0
}

async fn keys_with_secret(secret: &str) -> JwtKeys {
    keys(&[("JWT_SECRET", secret)]).await
}

#[tokio::test]
async fn a_token_round_trips_with_every_claim() {
    let keys = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).await;
    let issued = keys.issue("user", "session", 3).unwrap();
    let claims = keys.validate(&issued.token).unwrap();
    assert_eq!(claims, issued.claims);
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
}

#[tokio::test]
async fn a_token_is_expired_once_its_lifetime_has_passed() {
    let keys = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef"), ("JWT_LEEWAY", "0")]).await;
    let token = keys.issue("user", "session", 0).unwrap().token;
    assert!(keys.validate_later(&token, 60).is_ok());
    assert_eq!(keys.validate_later(&token, 15 * 60 + 1), Err(RejectReason::Expired));
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_a_bad_signature() {
    let ours = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).await;
    let theirs = keys(&[("JWT_SECRET", "ffffffffffffffffffffffffffffffff")]).await;
    let token = theirs.issue("user", "session", 0).unwrap().token;
    assert_eq!(ours.validate(&token), Err(RejectReason::BadSignature));
}

#[tokio::test]
async fn eddsa_tokens_carry_a_kid_and_publish_a_jwk() {
    let keys = keys(&[("JWT_ALG", "EdDSA")]).await;
    let issued = keys.issue("user", "session", 0).unwrap();
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert!(header.kid.is_some());
    assert_eq!(keys.validate(&issued.token).unwrap().sub, "user");
    assert_eq!(keys.jwks()["keys"][0]["kty"], "OKP");
    assert_eq!(keys.jwks()["keys"][0]["kid"], header.kid.unwrap());
}

#[tokio::test]
async fn only_verified_tokens_enter_the_verified_token_cache() {
    let keys = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).await;
    let theirs = keys_with_secret("ffffffffffffffffffffffffffffffff").await;
    let good = keys.issue("user", "session", 0).unwrap();
    assert_eq!(keys.validate(&good.token).unwrap(), good.claims);
    assert_eq!(keys.verified_tokens_held(), 1);
    // Forged, altered and garbage tokens: each refused, none kept, the good one still there.
    let forged = theirs.issue("user", "session", 0).unwrap().token;
    let mut altered = good.token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for _ in 0..3 {
        assert_eq!(keys.validate(&forged), Err(RejectReason::BadSignature));
        assert!(keys.validate(&altered).is_err());
    }
    for index in 0..1000 {
        assert!(keys.validate(&format!("garbage{index}.x.y")).is_err());
    }
    assert_eq!(keys.verified_tokens_held(), 1);
    assert_eq!(keys.validate(&good.token).unwrap(), good.claims);
}

#[tokio::test]
async fn a_cached_token_is_still_refused_once_expired() {
    let keys = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef"), ("JWT_LEEWAY", "0")]).await;
    let now = chrono::Utc::now().timestamp();
    let mut claims = keys.issue("user", "session", 0).unwrap().claims;
    // Expires in the second that is ending: verified now, expired a moment later.
    claims.exp = now + 1;
    let token = keys.sign(&claims).unwrap();
    assert!(keys.validate(&token).is_ok());
    assert_eq!(keys.verified_tokens_held(), 1);
    while chrono::Utc::now().timestamp() <= now + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(keys.validate(&token), Err(RejectReason::Expired));
    assert_eq!(keys.verified_tokens_held(), 0);
}

#[tokio::test]
async fn a_key_removed_from_the_ring_empties_the_cache_of_its_tokens() {
    let file = std::env::temp_dir().join(format!("revocable-keys-{}.json", RandomId::generate()));
    let first = keys::Ed25519Key::generate(0, 0);
    let second = keys::Ed25519Key::generate(0, 0);
    let write = |keys: &[&keys::Ed25519Key]| {
        let set = serde_json::json!({ "keys": keys.iter().map(|key| key.private_jwk()).collect::<Vec<_>>() });
        std::fs::write(&file, set.to_string()).unwrap();
    };
    write(&[&first]);
    let path = file.display().to_string();
    let (keys, db) = keys_and_db(&[("JWT_ALG", "EdDSA"), ("JWT_KEYS_FILE", &path)]).await;
    let token = keys.issue("user", "session", 0).unwrap().token;
    assert!(keys.validate(&token).is_ok());
    assert_eq!(keys.verified_tokens_held(), 1);
    write(&[&second]);
    keys.reload(&db).await.unwrap();
    assert_eq!(keys.verified_tokens_held(), 0);
    assert_eq!(keys.validate(&token), Err(RejectReason::BadSignature));
    std::fs::remove_file(&file).ok();
}

#[tokio::test]
async fn with_the_cache_off_nothing_is_kept() {
    let keys = keys(&[
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("VERIFIED_TOKEN_CACHE", "0"),
    ])
    .await;
    let issued = keys.issue("user", "session", 0).unwrap();
    assert_eq!(keys.validate(&issued.token).unwrap(), issued.claims);
    assert_eq!(keys.validate(&issued.token).unwrap(), issued.claims);
    assert_eq!(keys.verified_tokens_held(), 0);
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_eddsa_server() {
    let hmac = keys(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).await;
    let eddsa = keys(&[("JWT_ALG", "EdDSA")]).await;
    let token = hmac.issue("user", "session", 0).unwrap().token;
    assert_eq!(eddsa.validate(&token), Err(RejectReason::BadSignature));
}
