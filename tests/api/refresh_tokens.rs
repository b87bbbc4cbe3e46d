//! Opaque refresh tokens: rotation, reuse detection, the race, expiry.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_refresh_returns_a_new_pair_and_the_old_refresh_token_is_spent() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = TestApp::refreshed(app.refresh(&first.refresh).await).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(
        second.session_id, first.session_id,
        "the family stays one login session"
    );
    assert_eq!(app.status_of("allowlist", &second.access).await, StatusCode::OK);
    let third = TestApp::refreshed(app.refresh(&second.refresh).await).await;
    assert_eq!(app.status_of("version", &third.access).await, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_are_256_bit_opaque_strings_stored_only_as_hashes() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(tokens.refresh.len(), 43, "32 random bytes, base64url");
    assert!(!tokens.refresh.contains('.'), "not a JWT");
    let db = app.db().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], tokens.refresh);
    use base64::Engine;
    use sha2::Digest;
    let expected =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(tokens.refresh.as_bytes()));
    assert_eq!(stored[0], expected, "SHA-256 of the token");
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_login_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let user = app.new_user().await;
    let stolen = app.token_login(&user).await;
    let legitimate = TestApp::refreshed(app.refresh(&stolen.refresh).await).await;

    let reuse = app.refresh(&stolen.refresh).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(reuse).await["error"], "invalid_grant");
    // Every token of the family is dead: the legitimate holder's refresh and access tokens too.
    assert_eq!(
        app.refresh(&legitimate.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.status_of("allowlist", &legitimate.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.status_of("denylist", &legitimate.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.status_of("denylist", &stolen.access).await,
        StatusCode::UNAUTHORIZED
    );

    let db = app.db().await;
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = 'refresh_token_reused'")
            .bind(&user.id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(events, 1, "the reuse is recorded as a security event");
    let reason: Option<String> = sqlx::query_scalar("SELECT revoke_reason FROM login_sessions WHERE id = $1")
        .bind(&stolen.session_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
}

#[tokio::test]
async fn a_retry_within_the_grace_window_is_refused_without_revoking() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "30s")]).await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = TestApp::refreshed(app.refresh(&first.refresh).await).await;
    let retry = app.refresh(&first.refresh).await;
    assert_eq!(retry.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(retry).await["error"], "invalid_grant");
    assert_eq!(app.status_of("allowlist", &second.access).await, StatusCode::OK);
    TestApp::refreshed(app.refresh(&second.refresh).await).await;
}

#[tokio::test]
async fn of_twenty_concurrent_refreshes_exactly_one_succeeds_and_the_family_survives() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let attempts = (0..20).map(|_| {
        let client = app.api.clone();
        let url = app.url("/api/token/refresh");
        let body = json!({ "refresh_token": tokens.refresh });
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
    });
    let mut winners = Vec::new();
    let mut losers = 0;
    for attempt in attempts {
        let response = attempt.await.unwrap();
        match response.status() {
            StatusCode::OK => winners.push(response.json::<serde_json::Value>().await.unwrap()),
            StatusCode::UNAUTHORIZED => losers += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh wins");
    assert_eq!(losers, 19);
    let winner_refresh = winners[0]["refresh_token"].as_str().unwrap();
    let winner_access = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(app.status_of("allowlist", winner_access).await, StatusCode::OK);
    TestApp::refreshed(app.refresh(winner_refresh).await).await;
}

#[tokio::test]
async fn an_unused_refresh_token_expires_after_refresh_ttl() {
    let app = spawn_app_with(&[("REFRESH_TTL", "2s"), ("ACCESS_TTL", "1s")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    app.advance(Duration::from_millis(2500)).await;
    let response = app.refresh(&tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_refresh_token_never_outlives_the_login_sessions_absolute_limit() {
    let app = spawn_app_with(&[("SESSION_TTL", "3s"), ("REFRESH_TTL", "1h"), ("ACCESS_TTL", "1s")]).await;
    let user = app.new_user().await;
    let mut tokens = app.token_login(&user).await;
    for _ in 0..2 {
        app.advance(Duration::from_millis(1000)).await;
        tokens = TestApp::refreshed(app.refresh(&tokens.refresh).await).await;
    }
    app.advance(Duration::from_millis(1500)).await;
    let response = app.refresh(&tokens.refresh).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no refresh extends SESSION_TTL"
    );
}

#[tokio::test]
async fn unknown_or_malformed_refresh_tokens_are_invalid_grants() {
    let app = spawn_app().await;
    for token in ["", "short", "eyJhbGciOiJIUzI1NiJ9.e30.x", &"A".repeat(43)] {
        let response = app.refresh(token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(error_body(response).await["error"], "invalid_grant");
    }
    let missing = app.post_json("/api/token/refresh", &json!({})).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn token_responses_are_not_cached() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app
        .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
}

/// `POST /api/token/refresh` as a given client (user agent), the way a thief's tool would send it.
async fn refresh_as(app: &TestApp, user_agent: &str, refresh_token: &str) -> reqwest::Response {
    app.api
        .post(app.url("/api/token/refresh"))
        .header(reqwest::header::USER_AGENT, user_agent)
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .expect("request sent")
}

async fn events_of_kind(app: &TestApp, user_id: &str, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind)
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_thief_who_refreshes_first_loses_the_session_when_the_victim_reuses_within_the_grace_window() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "10s")]).await;
    let user = app.new_user().await;
    let victim = app.token_login(&user).await;
    // The thief spends the stolen refresh token first, from another client.
    let thief = TestApp::refreshed(refresh_as(&app, "stolen-token-tool/2.0", &victim.refresh).await).await;
    // The victim's app refreshes a moment later, well within the grace window.
    let reuse = app.refresh(&victim.refresh).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(reuse).await["error"], "invalid_grant");

    // The session is gone, and with it everything the thief holds.
    assert_eq!(
        app.status_of("allowlist", &thief.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.status_of("denylist", &thief.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_as(&app, "stolen-token-tool/2.0", &thief.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let reason: Option<String> = sqlx::query_scalar("SELECT revoke_reason FROM login_sessions WHERE id = $1")
        .bind(&victim.session_id)
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
    assert_eq!(
        events_of_kind(&app, &user.id, "refresh_token_reused").await,
        1,
        "the theft is recorded as a security event"
    );
}

#[tokio::test]
async fn a_reuse_from_another_address_within_the_grace_window_is_theft_too() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "10s"), ("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let from = |address: &'static str, refresh: &str| {
        app.api
            .post(app.url("/api/token/refresh"))
            .header("x-forwarded-for", address)
            .json(&json!({ "refresh_token": refresh }))
            .send()
    };
    // Same user agent, another address.
    let thief: serde_json::Value = from("203.0.113.7", &tokens.refresh)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reuse = from("198.51.100.20", &tokens.refresh).await.unwrap();
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let thief_access = thief["access_token"].as_str().unwrap();
    assert_eq!(app.status_of("allowlist", thief_access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(events_of_kind(&app, &user.id, "refresh_token_reused").await, 1);
}

#[tokio::test]
async fn a_same_client_retry_within_the_grace_window_is_recorded_but_revokes_nothing() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "10s")]).await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = TestApp::refreshed(app.refresh(&first.refresh).await).await;
    // A second tab of the same client presents the spent token.
    let retry = app.refresh(&first.refresh).await;
    assert_eq!(retry.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.status_of("allowlist", &second.access).await, StatusCode::OK);
    TestApp::refreshed(app.refresh(&second.refresh).await).await;
    assert_eq!(
        events_of_kind(&app, &user.id, "refresh_token_retried").await,
        1,
        "every reuse is recorded, even a harmless one"
    );
    assert_eq!(events_of_kind(&app, &user.id, "refresh_token_reused").await, 0);
}

#[tokio::test]
async fn a_password_change_over_the_api_revokes_every_earlier_access_token_of_its_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    // A refresh leaves the first access token valid until it expires.
    let second = TestApp::refreshed(app.refresh(&first.refresh).await).await;
    assert_eq!(app.status_of("denylist", &first.access).await, StatusCode::OK);

    let response = app
        .bearer_post(
            "/api/password",
            &second.access,
            Some(json!({ "current_password": user.password, "new_password": "a new password 123" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let replaced = TestApp::refreshed(response).await;
    assert_eq!(
        replaced.session_id, first.session_id,
        "the caller keeps its login session"
    );

    for (what, token) in [("first", &first.access), ("second", &second.access)] {
        assert_eq!(
            app.status_of("denylist", token).await,
            StatusCode::UNAUTHORIZED,
            "the {what} access token, issued before the password change"
        );
        assert_eq!(app.status_of("version", token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.refresh(&second.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.status_of("denylist", &replaced.access).await, StatusCode::OK);
    assert_eq!(app.status_of("version", &replaced.access).await, StatusCode::OK);
    TestApp::refreshed(app.refresh(&replaced.refresh).await).await;
}
