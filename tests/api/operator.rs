//! What an operator does for a person: `revocable users show|sign-out|lock|unlock`, and the cap on
//! concurrent login sessions (`MAX_SESSIONS_PER_USER`).

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};

/// `revocable users ARGS` against the app's own database (and Redis, when it has one).
fn users(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let settings = &app.state.settings;
    let mut command = Command::new(env!("CARGO_BIN_EXE_revocable"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database.url)
        .env("DATABASE_MAX_CONNECTIONS", "2")
        .arg("users")
        .args(args);
    if let Some(url) = &settings.redis_url {
        command
            .env("REDIS_URL", url)
            .env("REDIS_PREFIX", &settings.redis_prefix);
    }
    let output = command.output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn revoke_reason(app: &TestApp, session_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT revoke_reason FROM login_sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

/// Polls until the app refuses the token: the command line is another process, and the app
/// learns of its revocations from the database's log within its lease.
async fn until_refused(app: &TestApp, strategy: &str, access_token: &str) -> StatusCode {
    for _ in 0..100 {
        let status = app.status_of(strategy, access_token).await;
        if status != StatusCode::OK {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    StatusCode::OK
}

#[tokio::test]
async fn an_operator_sees_an_account_and_signs_it_out_everywhere() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;

    let (ok, shown, stderr) = users(&app, &["show", &user.email]);
    assert!(ok, "{stderr}");
    assert!(shown.contains(&user.email) && shown.contains(&user.id), "{shown}");
    assert!(shown.contains("live login sessions: 2"), "{shown}");
    assert!(shown.contains(&tokens.session_id), "{shown}");
    assert!(shown.contains("locked         no"), "{shown}");
    assert!(shown.contains("verified       no"), "{shown}");
    assert!(shown.contains("two-step       off"), "{shown}");

    let (ok, said, stderr) = users(&app, &["sign-out", &user.email]);
    assert!(ok, "{stderr}");
    assert!(said.contains("2 devices"), "{said}");
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(
            until_refused(&app, strategy, &tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "{strategy}"
        );
    }
    assert_eq!(
        revoke_reason(&app, &tokens.session_id).await.as_deref(),
        Some("signed_out_by_admin")
    );
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    // The owner is told why, on the log-in page and on the dashboard once back in.
    let (_, login_page) = browser.get_text("/login").await;
    assert!(login_page.contains("signed out by an administrator"), "{login_page}");
    browser.login(&user).await;
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("Signed out by an administrator"), "{dashboard}");
    // Logging in again works: a sign-out is not a lock.
    app.token_login(&user).await;
}

#[tokio::test]
async fn a_locked_account_cannot_log_in_until_it_is_unlocked() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;

    let (ok, said, stderr) = users(&app, &["lock", &user.email]);
    assert!(ok, "{stderr}");
    assert!(said.contains("locked"), "{said}");
    assert_eq!(
        until_refused(&app, "allowlist", &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    let right = json!({ "email": user.email, "password": user.password });
    let refused = app.post_json("/api/token", &right).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(refused).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("locked by an administrator"),
        "{body}"
    );
    // A wrong password is answered as any wrong password: the lock is told only to the owner.
    let wrong = json!({ "email": user.email, "password": "not the password" });
    let body = error_body(app.post_json("/api/token", &wrong).await).await;
    assert!(
        !body["error_description"].as_str().unwrap().contains("locked"),
        "{body}"
    );
    // The form says so too.
    let browser = app.browser();
    let response = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("This account is locked by an administrator")
    );
    let (_, shown, _) = users(&app, &["show", &user.email]);
    assert!(shown.contains("(log-ins refused)"), "{shown}");

    let (ok, said, stderr) = users(&app, &["unlock", &user.email]);
    assert!(ok, "{stderr}");
    assert!(said.contains("unlocked"), "{said}");
    app.token_login(&user).await;
    assert_eq!(
        app.status_of("allowlist", &tokens.access).await,
        StatusCode::UNAUTHORIZED,
        "what the lock signed out stays signed out"
    );
}

#[tokio::test]
async fn an_unknown_email_is_a_clear_error_for_the_operator() {
    let app = spawn_app().await;
    for command in ["show", "sign-out", "lock", "unlock"] {
        let (ok, _, stderr) = users(&app, &[command, "nobody@example.com"]);
        assert!(!ok, "{command}");
        assert!(stderr.contains("no account with the email"), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn a_log_in_past_the_limit_ends_the_least_recently_active_session() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "2")]).await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = app.token_login(&user).await;
    // The first is used after the second (a refresh records its activity at once), so the
    // second is the least recently active.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let first = TestApp::refreshed(app.refresh(&first.refresh).await).await;

    let third = app.token_login(&user).await;
    assert_eq!(
        until_refused(&app, "allowlist", &second.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        revoke_reason(&app, &second.session_id).await.as_deref(),
        Some("session_limit")
    );
    assert_eq!(app.status_of("allowlist", &first.access).await, StatusCode::OK);
    assert_eq!(app.status_of("allowlist", &third.access).await, StatusCode::OK);
    assert_eq!(app.sessions(&third.access).await.len(), 2);
}

#[tokio::test]
async fn without_a_limit_every_session_stays() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut all = Vec::new();
    for _ in 0..4 {
        all.push(app.token_login(&user).await);
    }
    for tokens in &all {
        assert_eq!(app.status_of("allowlist", &tokens.access).await, StatusCode::OK);
    }
}
