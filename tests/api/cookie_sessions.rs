//! The stateful half: server-side sessions behind a cookie, and login sessions as devices.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Browser, error_body, location, spawn_app, spawn_app_with};

#[tokio::test]
async fn logging_in_issues_a_new_session_key_and_a_planted_one_never_becomes_the_victims() {
    let app = spawn_app().await;
    let victim = app.new_user().await;
    let attacker = app.new_user().await;
    // The attacker's own session key, planted in the victim's browser before the victim logs in.
    let attacker_browser = app.browser();
    attacker_browser.login(&attacker).await;
    let planted = attacker_browser.session_cookie().unwrap();

    let browser = app.browser();
    browser.set_session_cookie(&planted);
    browser.login(&victim).await;
    let issued = browser.session_cookie().expect("logged in");
    assert_ne!(issued, planted, "log-in issues a new key");
    let me: serde_json::Value = browser.cookie_me().await.json().await.unwrap();
    assert_eq!(me["user_id"], victim.id.as_str());

    let replay = app.browser();
    replay.set_session_cookie(&planted);
    let response = replay.cookie_me().await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the planted key was renewed away"
    );
    assert_eq!(attacker_browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_log_in_form_stores_nothing_before_log_in() {
    let app = spawn_app().await;
    let browser = app.browser();
    for page in ["/", "/login", "/register", "/compare"] {
        assert_eq!(browser.get(page).await.status(), StatusCode::OK, "{page}");
    }
    assert!(browser.session_cookie().is_none(), "no session before log-in");
    assert!(
        browser.jar.lock().unwrap().contains_key("revocable_csrf"),
        "the form's CSRF cookie"
    );
    let db = app.db().await;
    let states: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(states, 0);
}

/// The `Set-Cookie` line of the session cookie among those of the last response.
fn session_set_cookie(browser: &crate::helpers::Browser, prefix: &str) -> String {
    let lines = browser.last_set_cookies.lock().unwrap().clone();
    lines
        .iter()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie in {lines:?}"))
        .clone()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_lax_with_path_root() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let set_cookie = session_set_cookie(&browser, "revocable_session=");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "loopback binds do not set Secure: {set_cookie}"
    );
    let value = browser.session_cookie().unwrap();
    assert!(!value.contains(&user.id), "the cookie holds only an opaque key");
}

#[tokio::test]
async fn secure_cookies_use_the_host_prefix() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.get("/login").await;
    let csrf_cookie = browser.last_set_cookies.lock().unwrap().join("\n");
    assert!(csrf_cookie.starts_with("__Host-revocable-csrf="), "{csrf_cookie}");
    assert!(
        csrf_cookie.contains("Secure") && csrf_cookie.contains("HttpOnly"),
        "{csrf_cookie}"
    );
    // The test browser sends its cookies back over plain HTTP, as a browser would over HTTPS.
    browser.login(&user).await;
    let set_cookie = session_set_cookie(&browser, "__Host-revocable=");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain="), "{set_cookie}");
}

#[tokio::test]
async fn a_cookie_replayed_after_logout_is_refused() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let cookie = browser.session_cookie().unwrap();
    let response = browser.submit("/dashboard", "/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));

    let replay = app.browser();
    replay.set_session_cookie(&cookie);
    assert_eq!(replay.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    let page = replay.get("/dashboard").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/login");
}

#[tokio::test]
async fn logout_deletes_the_server_side_state() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let me: Value = browser.cookie_me().await.json().await.unwrap();
    let login_session_id = me["session_id"].as_str().unwrap().to_owned();
    browser.submit("/dashboard", "/logout", &[]).await;
    assert_eq!(server_side_states(&app, &login_session_id).await, 0);
}

/// How many server-side session states belong to a login session, in whichever store is used.
async fn server_side_states(app: &crate::helpers::TestApp, login_session_id: &str) -> usize {
    match &app.redis {
        None => {
            let db = app.db().await;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE login_session_id = $1")
                .bind(login_session_id)
                .fetch_one(&db)
                .await
                .unwrap();
            count as usize
        }
        Some(redis) => {
            let client = redis::Client::open(redis.url.as_str()).unwrap();
            let mut connection = client.get_connection().unwrap();
            let index: Option<String> = redis::cmd("GET")
                .arg(format!("{}session-of:{login_session_id}", redis.prefix))
                .query(&mut connection)
                .unwrap();
            index.map_or(0, |_| 1)
        }
    }
}

#[tokio::test]
async fn a_session_revoked_by_id_is_refused_on_its_very_next_request() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let me: Value = browser.cookie_me().await.json().await.unwrap();
    let cookie_session = me["session_id"].as_str().unwrap().to_owned();

    let tokens = app.token_login(&user).await;
    let revoked = app
        .bearer_delete(&format!("/api/sessions/{cookie_session}"), &tokens.access)
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server_side_states(&app, &cookie_session).await,
        0,
        "its server-side state is gone"
    );

    let copy = app.browser();
    copy.set_session_cookie(&browser.session_cookie().unwrap());
    let response = browser.cookie_me().await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_body(response).await["reason"].is_string());
    let page = copy.get("/dashboard").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/login");
}

#[tokio::test]
async fn an_idle_session_expires_on_the_server() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "2s")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    app.advance(Duration::from_millis(2600)).await;
    let response = browser.cookie_me().await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn activity_keeps_a_session_alive_past_the_idle_limit() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "3s")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    for _ in 0..5 {
        app.advance(Duration::from_millis(1000)).await;
        assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn the_absolute_limit_ends_even_an_active_session() {
    let app = spawn_app_with(&[("SESSION_TTL", "3s"), ("ACCESS_TTL", "1s"), ("SESSION_IDLE_TTL", "1h")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    for _ in 0..2 {
        app.advance(Duration::from_millis(1000)).await;
        assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    }
    app.advance(Duration::from_millis(1600)).await;
    let response = browser.cookie_me().await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(response).await["reason"], "expired");
}

#[tokio::test]
async fn a_failed_log_in_shows_one_generic_message_for_unknown_email_and_wrong_password() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    let wrong_password = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", "not the password")],
        )
        .await;
    let status = wrong_password.status();
    let wrong_password = wrong_password.text().await.unwrap();
    let unknown = browser
        .submit(
            "/login",
            "/login",
            &[("email", "nobody@example.com"), ("password", "not the password")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = unknown.text().await.unwrap();
    assert!(wrong_password.contains("Incorrect email or password."));
    assert!(unknown.contains("Incorrect email or password."));
}

#[tokio::test]
async fn every_log_in_records_a_login_session_with_user_agent_and_ip() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let firefox = app.browser();
    firefox.login(&user).await;
    let chrome = Browser::new(&app.address).with_user_agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    );
    chrome.login(&user).await;
    let tokens = app.token_login(&user).await;
    let sessions = app.sessions(&tokens.access).await;
    assert_eq!(sessions.len(), 3);
    for session in &sessions {
        assert_eq!(session["ip"], "127.0.0.1");
        assert!(!session["user_agent"].as_str().unwrap().is_empty() || session["kind"] == "token");
        for field in ["created_at", "last_seen_at", "expires_at"] {
            assert!(
                session[field].as_str().unwrap().ends_with('Z'),
                "{field} is RFC 3339 UTC"
            );
        }
    }
    let kinds: Vec<&str> = sessions.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "cookie").count(), 2);
    assert!(sessions.iter().any(|s| s["device"] == "Firefox 128 on Linux"));
    assert!(
        sessions
            .iter()
            .any(|s| s["device"].as_str().unwrap().starts_with("Chrome 126 on Windows"))
    );
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
}

#[tokio::test]
async fn a_restart_keeps_the_user_logged_in() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut browser = app.browser();
    browser.login(&user).await;
    let restarted = app.restart().await;
    browser.rebase(&restarted.address);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_page_that_needs_log_in_redirects_to_the_log_in_form() {
    let app = spawn_app().await;
    for path in ["/dashboard", "/password", "/logout-all"] {
        let response = app.browser().get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/login", "{path}");
    }
}

#[tokio::test]
async fn the_cookie_strategy_without_a_cookie_is_a_401_no_credential() {
    let app = spawn_app().await;
    let response = app.get("/api/cookie/me").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(response).await;
    assert_eq!(body["reason"], "no_credential");
}

#[tokio::test]
async fn the_cookie_strategy_answers_with_the_login_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let me: Value = browser.cookie_me().await.json().await.unwrap();
    assert_eq!(me["user_id"], user.id.as_str());
    assert_eq!(me["strategy"], "cookie");
    assert!(me["session_id"].as_str().unwrap().len() >= 22);
}

#[tokio::test]
async fn registering_in_the_browser_logs_the_new_user_in() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser
        .submit(
            "/register",
            "/register",
            &[
                ("email", "new@example.com"),
                ("password", "correct horse"),
                ("password_confirmation", "correct horse"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/dashboard");
    let (status, page) = browser.get_text("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("new@example.com"));
    let taken = app
        .browser()
        .submit(
            "/register",
            "/register",
            &[
                ("email", "NEW@example.com"),
                ("password", "correct horse"),
                ("password_confirmation", "correct horse"),
            ],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(taken.text().await.unwrap().contains("already exists"));
}

#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.1/32"), "203.0.113.7")] {
        let app = match trusted {
            Some(proxies) => spawn_app_with(&[("TRUSTED_PROXIES", proxies)]).await,
            None => spawn_app().await,
        };
        let user = app.new_user().await;
        let response = app
            .api
            .post(app.url("/api/token"))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .json(&serde_json::json!({ "email": user.email, "password": user.password }))
            .send()
            .await
            .unwrap();
        let access = response.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let sessions = app.sessions(&access).await;
        assert_eq!(sessions[0]["ip"], expected, "TRUSTED_PROXIES={trusted:?}");
    }
}

#[tokio::test]
async fn logging_in_again_in_the_same_browser_ends_its_earlier_login_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other_device = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;
    let me: Value = browser.cookie_me().await.json().await.unwrap();
    let first = me["session_id"].as_str().unwrap().to_owned();
    let first_cookie = browser.session_cookie().unwrap();

    browser.login(&user).await;
    let me: Value = browser.cookie_me().await.json().await.unwrap();
    let second = me["session_id"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let reason: Option<String> = sqlx::query_scalar("SELECT revoke_reason FROM login_sessions WHERE id = $1")
        .bind(&first)
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("replaced"));
    let live: Vec<String> = app
        .sessions(&other_device.access)
        .await
        .iter()
        .map(|session| session["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!live.contains(&first), "{live:?}");
    assert!(
        live.contains(&second) && live.contains(&other_device.session_id),
        "{live:?}"
    );

    let replay = app.browser();
    replay.set_session_cookie(&first_cookie);
    assert_eq!(replay.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    assert_eq!(app.status_of("allowlist", &other_device.access).await, StatusCode::OK);
}
