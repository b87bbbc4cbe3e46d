//! Strict access-token validation: each way a token can be wrong is a 401 with its own reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body, spawn_app_with};

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// `JWT_ISSUER` set, so that forged claims can name the issuer without knowing the port.
async fn app() -> TestApp {
    spawn_app_with(&[("JWT_SECRET", SECRET), ("JWT_ISSUER", "revocable")]).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token shaped like the server's own, with `change` applied to its claims.
fn forge(claims: Value, header: Option<Header>, key: &str) -> String {
    let mut header = header.unwrap_or_else(|| Header::new(Algorithm::HS256));
    if header.typ.as_deref() == Some("JWT") {
        header.typ = Some("at+jwt".into());
    }
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

fn claims(user_id: &str, session_id: &str) -> Value {
    json!({
        "iss": "revocable", "aud": "revocable", "sub": user_id, "sid": session_id, "ver": 0,
        "jti": "forged-jti", "iat": now(), "nbf": now(), "exp": now() + 600,
    })
}

async fn assert_rejected(app: &TestApp, token: &str, reason: &str) {
    for strategy in ["stateless", "version", "denylist", "allowlist"] {
        let response = app.me(strategy, token).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{strategy}: expected {reason}"
        );
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="invalid_token""#,
            "{strategy}"
        );
        let body = error_body(response).await;
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["reason"], reason, "{strategy}");
    }
}

#[tokio::test]
async fn a_well_formed_token_signed_with_the_server_key_is_accepted() {
    let app = app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let token = forge(claims(&user.id, &tokens.session_id), None, SECRET);
    assert_eq!(
        app.status_of("stateless", &token).await,
        StatusCode::OK,
        "the forge helper itself is right"
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&user.id, "session").to_string());
    let token = format!("{header}.{payload}.");
    assert_rejected(&app, &token, "bad_signature").await;
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_a_bad_signature() {
    let app = app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let mut parts: Vec<String> = tokens.access.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    assert_rejected(&app, &parts.join("."), "bad_signature").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_a_bad_signature() {
    let app = app().await;
    let user = app.new_user().await;
    let token = forge(
        claims(&user.id, "session"),
        None,
        "another-secret-of-at-least-32-bytes!!",
    );
    assert_rejected(&app, &token, "bad_signature").await;
}

#[tokio::test]
async fn a_token_with_another_algorithm_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut header = Header::new(Algorithm::HS512);
    header.typ = Some("at+jwt".into());
    let token = forge(claims(&user.id, "session"), Some(header), SECRET);
    assert_rejected(&app, &token, "bad_signature").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut expired = claims(&user.id, "session");
    expired["iat"] = json!(now() - 1200);
    expired["nbf"] = json!(now() - 1200);
    expired["exp"] = json!(now() - 600);
    assert_rejected(&app, &forge(expired, None, SECRET), "expired").await;
}

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut early = claims(&user.id, "session");
    early["nbf"] = json!(now() + 600);
    early["exp"] = json!(now() + 1200);
    assert_rejected(&app, &forge(early, None, SECRET), "not_yet_valid").await;
}

#[tokio::test]
async fn a_token_for_another_audience_or_issuer_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut audience = claims(&user.id, "session");
    audience["aud"] = json!("another-service");
    assert_rejected(&app, &forge(audience, None, SECRET), "wrong_audience").await;
    let mut issuer = claims(&user.id, "session");
    issuer["iss"] = json!("someone-else");
    assert_rejected(&app, &forge(issuer, None, SECRET), "wrong_issuer").await;
}

#[tokio::test]
async fn a_token_without_the_access_token_type_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("JWT-id".into());
    assert_rejected(
        &app,
        &forge(claims(&user.id, "session"), Some(header), SECRET),
        "malformed",
    )
    .await;
}

#[tokio::test]
async fn a_token_missing_a_required_claim_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let mut missing = claims(&user.id, "session");
    missing.as_object_mut().unwrap().remove("exp");
    assert_rejected(&app, &forge(missing, None, SECRET), "malformed").await;
    let mut no_session = claims(&user.id, "session");
    no_session.as_object_mut().unwrap().remove("sid");
    assert_rejected(&app, &forge(no_session, None, SECRET), "malformed").await;
}

#[tokio::test]
async fn a_refresh_token_presented_as_an_access_token_is_refused() {
    let app = app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_rejected(&app, &tokens.refresh, "malformed").await;
}

#[tokio::test]
async fn an_oversized_token_is_refused_without_parsing() {
    let app = app().await;
    let token = format!("{}.{}.{}", "a".repeat(3000), "b".repeat(3000), "c".repeat(3000));
    assert_rejected(&app, &token, "malformed").await;
}

#[tokio::test]
async fn garbage_and_missing_credentials_are_refused() {
    let app = app().await;
    assert_rejected(&app, "not-a-token", "malformed").await;
    assert_rejected(&app, "a.b.c", "malformed").await;
    let missing = app.get("/api/version/me").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(missing).await["reason"], "no_credential");
    let basic = app
        .api
        .get(app.url("/api/version/me"))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(basic).await["reason"], "malformed");
}

#[tokio::test]
async fn the_issued_token_carries_every_claim_and_the_at_jwt_type() {
    let app = app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "HS256");
    for claim in ["iss", "aud", "sub", "sid", "ver", "jti", "iat", "nbf", "exp"] {
        assert!(!claims[claim].is_null(), "missing {claim}");
    }
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["sid"], tokens.session_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        15 * 60
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
}
