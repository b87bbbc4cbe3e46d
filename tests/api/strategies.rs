//! The five strategies side by side: the revocation matrix, observed over HTTP, cell by cell.

use reqwest::StatusCode;
use revocable::compare::matrix::{self, Cell, Event};
use revocable::compare::scenario;
use serde_json::Value;

use crate::helpers::{error_body, spawn_app, spawn_app_with};

/// The matrix this suite holds the server to; README.md shows the same table.
pub const EXPECTED: [(Event, [Cell; 5]); 6] = {
    use Cell::{Accepted as A, NotApplicable as Na, Rejected as R};
    [
        (Event::Logout, [A, A, R, R, R]),
        (Event::LogoutEverywhere, [A, R, R, R, R]),
        (Event::RevokeOtherDevice, [A, A, R, R, R]),
        (Event::PasswordChange, [A, R, R, R, R]),
        (Event::RefreshTokenReuse, [A, A, R, R, Na]),
        (Event::AccessTokenExpired, [R, R, R, R, Na]),
    ]
};

#[tokio::test]
async fn every_event_against_every_strategy_matches_the_documented_matrix() {
    let app = spawn_app_with(&[("ACCESS_TTL", "8s"), ("REFRESH_REUSE_GRACE", "0")]).await;
    let observed = scenario::run(&app.address).await.expect("the scenario runs");
    assert_eq!(observed.rows.len(), EXPECTED.len());
    for (row, (event, cells)) in observed.rows.iter().zip(EXPECTED) {
        assert_eq!(row.event, event);
        for (index, (seen, wanted)) in row.cells.iter().zip(cells).enumerate() {
            assert_eq!(
                *seen,
                wanted,
                "after {:?}, strategy {}",
                event,
                matrix::STRATEGIES[index]
            );
        }
    }
    assert!(observed.differences().is_empty());
    assert_eq!(
        matrix::expected()
            .iter()
            .map(|row| (row.event, row.cells))
            .collect::<Vec<_>>(),
        EXPECTED.to_vec()
    );
}

#[tokio::test]
async fn each_strategy_names_itself_in_its_answer() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    for strategy in ["stateless", "version", "denylist", "allowlist"] {
        let response = app.me(strategy, &tokens.access).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["strategy"], strategy);
        assert_eq!(body["user_id"], user.id.as_str());
        assert_eq!(body["session_id"], tokens.session_id.as_str());
    }
    assert_eq!(app.get("/api/unknown/me").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_revocation_is_refused_with_its_own_reason() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let device = app.token_login(&user).await;
    let other = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout-all", &other.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    for (strategy, reason) in [
        ("version", "revoked_version"),
        ("denylist", "revoked_jti"),
        ("allowlist", "revoked_session"),
    ] {
        let response = app.me(strategy, &device.access).await;
        assert_eq!(error_body(response).await["reason"], reason, "{strategy}");
    }
}

#[tokio::test]
async fn logout_denylists_the_token_until_it_expires_and_no_longer() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let db = app.db().await;
    let expires_at: i64 = sqlx::query_scalar("SELECT expires_at FROM denylist")
        .fetch_one(&db)
        .await
        .unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&tokens.access)
        .unwrap()
        .claims;
    // The suite runs with JWT_LEEWAY=0; a token is accepted until the end of its `exp` second.
    assert_eq!(
        expires_at,
        claims["exp"].as_i64().unwrap() * 1000 + 1000,
        "kept exactly as long as the token could still be accepted"
    );
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_session_list_marks_the_current_one_and_hides_ended_ones() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = app.token_login(&user).await;
    let third = app.token_login(&user).await;
    app.bearer_delete(&format!("/api/sessions/{}", third.session_id), &first.access)
        .await;
    let sessions = app.sessions(&second.access).await;
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.session_id.as_str()) && ids.contains(&second.session_id.as_str()));
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], second.session_id.as_str());
    assert_eq!(current[0]["kind"], "token");
}

#[tokio::test]
async fn another_users_session_id_is_a_404_and_stays_alive() {
    let app = spawn_app().await;
    let ann = app.new_user().await;
    let bob = app.new_user().await;
    let ann_tokens = app.token_login(&ann).await;
    let bob_tokens = app.token_login(&bob).await;
    let response = app
        .bearer_delete(&format!("/api/sessions/{}", bob_tokens.session_id), &ann_tokens.access)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(response).await["error"], "not_found");
    assert_eq!(
        app.bearer_delete("/api/sessions/no-such-session", &ann_tokens.access)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.status_of("allowlist", &bob_tokens.access).await, StatusCode::OK);
}
