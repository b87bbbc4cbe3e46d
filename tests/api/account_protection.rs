//! Protection of the account itself: password rules (NIST SP 800-63B), the per-account limit on
//! failed log-ins, and one re-authentication rule on every route.

use std::time::Duration;

use reqwest::StatusCode;
use revocable::domain::RandomId;
use serde_json::json;

use crate::helpers::{error_body, spawn_app, spawn_app_with};

async fn refused_field(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = error_body(response).await;
    (
        body["field"].as_str().unwrap_or_default().to_owned(),
        body["error_description"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn common_and_breached_passwords_are_refused_at_sign_up_with_the_reason() {
    let app = spawn_app().await;
    for weak in ["password", "12345678", "password1234", "qwerty123", "iloveyou"] {
        let response = app.register("weak@example.com", weak).await;
        let (field, description) = refused_field(response).await;
        assert_eq!(field, "password", "{weak}");
        assert!(description.contains("too easy to guess"), "{weak}: {description}");
    }
}

#[tokio::test]
async fn password_length_is_counted_in_characters_with_a_clear_maximum() {
    let app = spawn_app().await;
    // Six characters of twelve bytes: too short, whatever the bytes say.
    let (field, description) = refused_field(app.register("short@example.com", "éàüöçñ").await).await;
    assert_eq!(field, "password");
    assert!(description.contains("at least 8 characters"), "{description}");

    let long: String = (0..4).map(|_| RandomId::secret()).collect::<String>();
    let at_most: String = long.chars().take(128).collect();
    let response = app.register("longest@example.com", &at_most).await;
    assert_eq!(response.status(), StatusCode::CREATED, "128 characters are allowed");
    let too_long: String = long.chars().take(129).collect();
    let (field, description) = refused_field(app.register("too-long@example.com", &too_long).await).await;
    assert_eq!(field, "password");
    assert!(description.contains("at most 128 characters"), "{description}");
}

#[tokio::test]
async fn the_new_password_must_differ_from_the_current_one_and_be_strong() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let same = app
        .bearer_post(
            "/api/password",
            &tokens.access,
            Some(json!({ "current_password": user.password, "new_password": user.password })),
        )
        .await;
    let (field, description) = refused_field(same).await;
    assert_eq!(field, "new_password");
    assert!(description.contains("differ"), "{description}");
    let common = app
        .bearer_post(
            "/api/password",
            &tokens.access,
            Some(json!({ "current_password": user.password, "new_password": "password1234" })),
        )
        .await;
    assert_eq!(refused_field(common).await.0, "new_password");
    assert_eq!(
        app.status_of("version", &tokens.access).await,
        StatusCode::OK,
        "nothing changed"
    );
}

#[tokio::test]
async fn the_sign_up_and_password_pages_say_why_a_password_was_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser
        .submit(
            "/register",
            "/register",
            &[
                ("email", "page@example.com"),
                ("password", "password1234"),
                ("password_confirmation", "password1234"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("too easy to guess"));

    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let response = browser.change_password(&user.password, "12345678", "12345678").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("too easy to guess"));
    let response = browser
        .change_password(&user.password, &user.password, &user.password)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("must differ from the current one")
    );
}

#[tokio::test]
async fn failed_log_ins_lock_new_password_log_ins_to_the_account_but_not_its_devices() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "3"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let device = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;

    let wrong = json!({ "email": user.email, "password": "not the password" });
    for attempt in 1..=3 {
        let response = app.post_json("/api/token", &wrong).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let right = json!({ "email": user.email, "password": user.password });
    let response = app.post_json("/api/token", &right).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked, even with the right password"
    );
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(error_body(response).await["error"], "rate_limited");

    // The form is locked too, and says so as a page.
    let form = app.browser();
    let response = form
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let page = response.text().await.unwrap();
    assert!(
        page.contains("log-ins from browsers it does not know are paused"),
        "the page says why: {page}"
    );
    assert!(
        page.contains(r#"<a href="/password/forgot">Forgot password?</a>"#),
        "{page}"
    );

    // What was already logged in keeps working.
    assert_eq!(app.status_of("allowlist", &device.access).await, StatusCode::OK);
    let refreshed = app.refresh(&device.refresh).await;
    assert_eq!(
        refreshed.status(),
        StatusCode::OK,
        "the device's refresh token still works"
    );
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);

    // And the owner is told.
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(
        dashboard.contains("3 failed log-in attempts since your last visit"),
        "{dashboard}"
    );
}

#[tokio::test]
async fn the_account_lock_holds_on_every_instance() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let other_instance = app.restart().await;
    let user = app.new_user().await;
    let wrong = json!({ "email": user.email, "password": "not the password" });
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        other_instance.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let right = json!({ "email": user.email, "password": user.password });
    assert_eq!(
        app.post_json("/api/token", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        other_instance.post_json("/api/token", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_unknown_email_is_locked_like_a_known_one() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2")]).await;
    let wrong = json!({ "email": "nobody-here@example.com", "password": "not the password" });
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_successful_log_in_forgets_earlier_failures() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2")]).await;
    let user = app.new_user().await;
    let wrong = json!({ "email": user.email, "password": "not the password" });
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.token_login(&user).await;
    assert_eq!(
        app.post_json("/api/token", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.token_login(&user).await;
}

async fn stale_proof_app() -> crate::helpers::TestApp {
    spawn_app_with(&[("SUDO_TTL", "1s")]).await
}

#[tokio::test]
async fn logging_out_everywhere_through_the_api_needs_the_password_once_the_proof_is_old() {
    let app = stale_proof_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    app.advance(Duration::from_millis(1_500)).await;

    let without = app.bearer_post("/api/logout-all", &tokens.access, None).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(without).await["error"], "reauthentication_required");
    let wrong = app
        .bearer_post(
            "/api/logout-all",
            &tokens.access,
            Some(json!({ "password": "not the password" })),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(wrong).await["error"], "reauthentication_required");
    assert_eq!(
        app.status_of("version", &tokens.access).await,
        StatusCode::OK,
        "nothing happened"
    );

    let right = app
        .bearer_post(
            "/api/logout-all",
            &tokens.access,
            Some(json!({ "password": user.password })),
        )
        .await;
    assert_eq!(right.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_fresh_token_logs_out_everywhere_in_one_step() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let response = app.bearer_post("/api/logout-all", &tokens.access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_stolen_cookie_cannot_log_out_everywhere_through_the_api_without_the_password() {
    let app = stale_proof_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    app.advance(Duration::from_millis(1_500)).await;
    let origin = browser.origin();
    let without = browser.api_post("/api/logout-all", None, Some(&origin)).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(without).await["error"], "reauthentication_required");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::OK);
    let with = browser
        .api_post(
            "/api/logout-all",
            Some(json!({ "password": user.password })),
            Some(&origin),
        )
        .await;
    assert_eq!(with.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn signing_out_one_device_stays_one_step_whatever_the_age_of_the_proof() {
    let app = stale_proof_app().await;
    let user = app.new_user().await;
    let caller = app.token_login(&user).await;
    let other = app.token_login(&user).await;
    app.advance(Duration::from_millis(1_500)).await;
    let response = app
        .bearer_delete(&format!("/api/sessions/{}", other.session_id), &caller.access)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.bearer_post("/api/logout", &caller.access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

const KNOWN_BROWSER: &str = "revocable_known_browser";

async fn log_out(browser: &crate::helpers::Browser) {
    let response = browser.submit("/dashboard", "/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_account_lock_ends_once_its_window_has_passed_on_the_app_clock() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    lock_for_strangers(&app, &user.email, 2).await;
    let right = json!({ "email": user.email, "password": user.password });
    let response = app.post_json("/api/token", &right).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((590..=600).contains(&retry_after), "Retry-After: {retry_after}");

    app.advance(Duration::from_secs(300)).await;
    let response = app.post_json("/api/token", &right).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "half-way through the window"
    );
    app.advance(Duration::from_secs(301)).await;
    assert_eq!(app.post_json("/api/token", &right).await.status(), StatusCode::OK);
}

/// `ACCOUNT_LOCK_AFTER` wrong passwords through the API, from a client the account does not know.
async fn lock_for_strangers(app: &crate::helpers::TestApp, email: &str, count: usize) {
    let wrong = json!({ "email": email, "password": "not the password" });
    for _ in 0..count {
        assert_eq!(
            app.post_json("/api/token", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_browser_that_logged_in_before_is_not_locked_out_by_failures_elsewhere() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "3"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let usual = app.browser();
    usual.login(&user).await;
    assert!(usual.cookie(KNOWN_BROWSER).is_some(), "a log-in remembers the browser");
    log_out(&usual).await;

    lock_for_strangers(&app, &user.email, 3).await;
    let right = json!({ "email": user.email, "password": user.password });
    assert_eq!(
        app.post_json("/api/token", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a client the account does not know is locked out"
    );
    assert_eq!(
        app.browser()
            .submit(
                "/login",
                "/login",
                &[("email", &user.email), ("password", &user.password)]
            )
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "so is a new browser"
    );
    usual.login(&user).await;
    assert_eq!(
        usual.cookie_me().await.status(),
        StatusCode::OK,
        "the owner's browser logs in"
    );
}

#[tokio::test]
async fn a_known_browser_that_guesses_is_locked_on_its_own_count() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "3"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let stolen = app.browser();
    stolen.login(&user).await;
    log_out(&stolen).await;
    for _ in 0..3 {
        let response = stolen
            .submit(
                "/login",
                "/login",
                &[("email", &user.email), ("password", "not the password")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = stolen
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the browser's own count"
    );
    assert!(response.text().await.unwrap().contains("from this browser"));
    // Its failures were not the account's: everyone else may still log in.
    app.token_login(&user).await;
}

#[tokio::test]
async fn a_forged_or_foreign_device_cookie_is_a_stranger() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let usual = app.browser();
    usual.login(&owner).await;
    let genuine = usual.cookie(KNOWN_BROWSER).unwrap();
    lock_for_strangers(&app, &owner.email, 2).await;

    let forged = app.browser();
    // One character of the signature changed, well inside it.
    let mut altered: Vec<char> = genuine.chars().collect();
    let at = altered.len() - 10;
    altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    forged.set_cookie(KNOWN_BROWSER, &altered);
    let response = forged
        .submit(
            "/login",
            "/login",
            &[("email", &owner.email), ("password", &owner.password)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "a forged entry");

    // A cookie remembered for another account vouches for nothing here.
    let elsewhere = app.browser();
    elsewhere.login(&other).await;
    log_out(&elsewhere).await;
    let response = elsewhere
        .submit(
            "/login",
            "/login",
            &[("email", &owner.email), ("password", &owner.password)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another account's entry"
    );
    // One browser remembers both accounts after logging in to each.
    elsewhere.login(&other).await;
    log_out(&elsewhere).await;
    usual.login(&owner).await;
}

#[tokio::test]
async fn after_a_password_change_no_browser_is_known_until_it_logs_in_with_the_new_one() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "2"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let mut user = app.new_user().await;
    // Whoever knew the password had logged in from their own browser.
    let intruder = app.browser();
    intruder.login(&user).await;
    log_out(&intruder).await;
    let owner = app.browser();
    owner.login(&user).await;
    let new_password = format!("{}-renewed", user.password);
    let response = owner
        .change_password(&user.password, &new_password, &new_password)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let old_password = std::mem::replace(&mut user.password, new_password);
    lock_for_strangers(&app, &user.email, 2).await;

    let response = intruder
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &old_password)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the intruder's browser is a stranger now"
    );
    log_out(&owner).await;
    owner.login(&user).await;
}

#[tokio::test]
async fn a_hundred_wrong_passwords_at_once_check_no_more_than_the_limit() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "10"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let wrong = json!({ "email": user.email, "password": "not the password" });
    let attempts = (0..100).map(|_| app.post_json("/api/token", &wrong));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|response| response.status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked, 10, "{statuses:?}");
    assert_eq!(refused, 90, "{statuses:?}");
    let recorded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = 'login_failed'")
            .bind(&user.id)
            .fetch_one(&app.db().await)
            .await
            .unwrap();
    assert_eq!(recorded, 10, "one security event per password checked");
}

#[tokio::test]
async fn wrong_passwords_to_re_authenticate_are_counted_for_that_session_alone() {
    let app = stale_proof_app().await;
    let user = app.new_user().await;
    let stolen = app.token_login(&user).await;
    let own = app.token_login(&user).await;
    app.advance(Duration::from_millis(1_500)).await;
    for _ in 0..10 {
        let response = app
            .bearer_post(
                "/api/logout-all",
                &stolen.access,
                Some(json!({ "password": "not the password" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let response = app
        .bearer_post(
            "/api/logout-all",
            &stolen.access,
            Some(json!({ "password": user.password })),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "that session's count is spent"
    );
    // The account's count and the owner's session are untouched: the owner re-authenticates.
    let response = app
        .bearer_post(
            "/api/logout-all",
            &own.access,
            Some(json!({ "password": user.password })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
