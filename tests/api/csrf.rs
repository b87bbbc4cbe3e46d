//! Cross-site request forgery: every form needs its token; cookie-authenticated JSON needs this site's Origin.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_form_post_without_a_csrf_token_is_a_403() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let me: serde_json::Value = browser.cookie_me().await.json().await.unwrap();
    let session_id = me["session_id"].as_str().unwrap().to_owned();
    let revoke = format!("/sessions/{session_id}/revoke");
    for path in [
        "/login",
        "/register",
        "/logout",
        "/sessions/revoke-others",
        "/logout-all",
        "/password",
        revoke.as_str(),
    ] {
        let without = browser
            .post_form(path, &[("email", "x@example.com"), ("confirm", "yes")])
            .await;
        assert_eq!(without.status(), StatusCode::FORBIDDEN, "{path} without a token");
        let wrong = browser
            .post_form(path, &[("csrf_token", "forged"), ("confirm", "yes")])
            .await;
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "{path} with a wrong token");
    }
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK, "nothing was done");
}

#[tokio::test]
async fn a_cookie_authenticated_json_request_from_another_origin_is_a_403() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let foreign = browser
        .api_post("/api/logout-all", None, Some("https://evil.example"))
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(foreign).await["error"], "csrf_failed");
    let no_origin = browser.api_post("/api/logout-all", None, None).await;
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);

    let same_site = browser.api_post("/api/logout-all", None, Some(&browser.origin())).await;
    assert_eq!(same_site.status(), StatusCode::NO_CONTENT);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_secure_cookies_a_plain_http_page_of_the_same_host_is_another_origin() {
    let app = spawn_app_with(&[
        ("COOKIE_SECURE", "true"),
        ("PUBLIC_URL", "https://accounts.example.com"),
    ])
    .await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let plain = browser.origin();
    assert!(plain.starts_with("http://"), "{plain}");
    let refused = browser.api_post("/api/logout-all", None, Some(&plain)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(refused).await["error"], "csrf_failed");
    let (host, _port) = plain.trim_start_matches("http://").rsplit_once(':').unwrap();
    let other_port = format!("https://{host}:1");
    let refused = browser.api_post("/api/logout-all", None, Some(&other_port)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let http_public = browser
        .api_post("/api/logout-all", None, Some("http://accounts.example.com"))
        .await;
    assert_eq!(http_public.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK, "nothing was done");

    let public = browser
        .api_post("/api/logout-all", None, Some("https://accounts.example.com:443"))
        .await;
    assert_eq!(public.status(), StatusCode::NO_CONTENT);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);

    let browser = app.browser();
    browser.login(&user).await;
    let https_same_host = plain.replace("http://", "https://");
    let same_host = browser.api_post("/api/logout-all", None, Some(&https_same_host)).await;
    assert_eq!(same_host.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_cookie_authenticated_json_request_may_carry_the_token_in_a_header() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let (_, page) = browser.get_text("/dashboard").await;
    let token = revocable::compare::client::extract_csrf(&page).unwrap();
    let response = browser
        .send(
            reqwest::Client::new()
                .post(app.url("/api/password"))
                .header("x-csrf-token", token)
                .json(&json!({ "current_password": user.password, "new_password": "a brand new password" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        browser.cookie_me().await.status(),
        StatusCode::OK,
        "the caller stays logged in"
    );
}

#[tokio::test]
async fn forms_before_log_in_need_a_token_signed_for_this_browsers_cookie() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let fields = [("email", user.email.as_str()), ("password", user.password.as_str())];

    let without = app.browser();
    without.get("/login").await;
    assert_eq!(
        without.post_form("/login", &fields).await.status(),
        StatusCode::FORBIDDEN
    );

    // A token from one browser is worthless with another browser's cookie.
    let victim = app.browser();
    victim.get("/login").await;
    let attacker = app.browser();
    let (_, page) = attacker.get_text("/login").await;
    let attacker_token = revocable::compare::client::extract_csrf(&page).unwrap();
    let mut forged = vec![("csrf_token", attacker_token.as_str())];
    forged.extend_from_slice(&fields);
    assert_eq!(
        victim.post_form("/login", &forged).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(victim.session_cookie().is_none());

    // Its own token works.
    victim.login(&user).await;
    assert_eq!(victim.cookie_me().await.status(), StatusCode::OK);
}
