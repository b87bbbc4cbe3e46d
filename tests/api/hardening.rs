//! Defences found missing when revocable was attacked: ids that are not ids, cacheable
//! authenticated answers, cross-site forms, forwarded hosts from strangers, and rate limits that
//! answered a browser in JSON.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_body, location, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_id_that_is_not_an_id_is_a_404_on_the_api_before_any_query() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    for not_an_id in [
        "%00",
        "abc%00def",
        "short",
        "aaaaaaaaaaaaaaaaaaaaa%00",
        "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
    ] {
        let response = app
            .bearer_delete(&format!("/api/sessions/{not_an_id}"), &tokens.access)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "DELETE /api/sessions/{not_an_id}"
        );
        assert_eq!(error_body(response).await["error"], "not_found");
    }
    assert_eq!(app.status_of("allowlist", &tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn an_id_that_is_not_an_id_is_a_404_page_on_the_dashboard() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    for not_an_id in ["%00", "abc%00def"] {
        let response = browser
            .submit("/dashboard", &format!("/sessions/{not_an_id}/revoke"), &[])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "/sessions/{not_an_id}/revoke");
        assert!(response.text().await.unwrap().contains("<html"), "a page, not JSON");
    }
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_answer_that_depends_on_a_credential_is_marked_no_store() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    for strategy in ["stateless", "version", "denylist", "allowlist"] {
        let response = app.me(strategy, &tokens.access).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store", "/api/{strategy}/me");
    }
    let sessions = app
        .api
        .get(app.url("/api/sessions"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.headers()["cache-control"], "no-store", "/api/sessions");

    let browser = app.browser();
    browser.login(&user).await;
    let me = browser.cookie_me().await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["cache-control"], "no-store", "/api/cookie/me");
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(dashboard.headers()["cache-control"], "no-store", "/dashboard");
    let stylesheet = browser.get("/static/app.css").await;
    assert_ne!(
        stylesheet.headers()["cache-control"],
        "no-store",
        "public files stay cacheable"
    );
}

#[tokio::test]
async fn a_form_sent_from_another_site_is_refused_even_with_the_right_token() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;
    let (_, page) = browser.get_text("/dashboard").await;
    let token = revocable::compare::client::extract_csrf(&page).unwrap();
    let action = format!("/sessions/{}/revoke", other.session_id);
    let form = [("csrf_token", token.as_str())];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let from_elsewhere = browser
        .send(
            client
                .post(app.url(&action))
                .header("origin", "https://attacker.example")
                .form(&form),
        )
        .await;
    assert_eq!(from_elsewhere.status(), StatusCode::FORBIDDEN, "foreign Origin");
    let cross_site = browser
        .send(
            client
                .post(app.url(&action))
                .header("sec-fetch-site", "cross-site")
                .form(&form),
        )
        .await;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN, "Sec-Fetch-Site: cross-site");
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::OK,
        "nothing was revoked"
    );

    let from_here = browser
        .send(
            client
                .post(app.url(&action))
                .header("origin", browser.origin())
                .header("sec-fetch-site", "same-origin")
                .form(&form),
        )
        .await;
    assert_eq!(from_here.status(), StatusCode::SEE_OTHER, "this site's own form");
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_same_origin_check_ignores_forwarded_hosts_from_a_client_that_is_not_a_trusted_proxy() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let client = reqwest::Client::new();
    for (name, value) in [
        ("x-forwarded-host", "attacker.example"),
        ("forwarded", "host=attacker.example;proto=https"),
    ] {
        let response = browser
            .send(
                client
                    .post(app.url("/api/logout-all"))
                    .header("origin", "https://attacker.example")
                    .header(name, value),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
    }
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK, "still logged in");
}

#[tokio::test]
async fn a_browser_that_hits_the_rate_limit_gets_a_page_whose_wait_matches_retry_after() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2")]).await;
    let browser = app.browser();
    let fields = [("email", "nobody@example.com"), ("password", "not the password")];
    let mut limited = None;
    for _ in 0..4 {
        let response = browser.submit("/login", "/login", &fields).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = limited.expect("the limit is reached within four attempts");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    let page = response.text().await.unwrap();
    let unit = if retry_after == 1 { "second" } else { "seconds" };
    assert!(
        page.contains(&format!("wait {retry_after} {unit}")),
        "the page says the same wait as Retry-After ({retry_after}): {page}"
    );
}

#[tokio::test]
async fn the_api_rate_limit_says_the_same_wait_in_header_and_body() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2")]).await;
    let body = json!({ "email": "nobody@example.com", "password": "not the password" });
    let mut limited = None;
    for _ in 0..4 {
        let response = app.post_json("/api/token", &body).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("the limit is reached within four attempts");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    let body = error_body(response).await;
    assert_eq!(body["error"], "rate_limited");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("retry in {retry_after} s")),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_rate_limit_page_still_lets_the_form_work_later() {
    // The per-address limit refuses the request before anything is checked: a right password sent
    // while limited logs nobody in.
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "1")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    let wrong = [("email", user.email.as_str()), ("password", "not the password")];
    browser.submit("/login", "/login", &wrong).await;
    let right = [("email", user.email.as_str()), ("password", user.password.as_str())];
    let response = browser.submit("/login", "/login", &right).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ne!(location(&response), "/dashboard");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}
