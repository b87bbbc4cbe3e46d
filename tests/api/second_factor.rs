//! Two-step verification over HTTP: enrolment after a fresh proof, the code step of both log-in
//! paths, recovery codes, replays, limits, and turning it off. The codes are computed here from
//! the secret the server hands out, as the person's authenticator app would.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret, Totp};

use crate::helpers::{TestApp, TestUser, error_body, location, spawn_app, spawn_app_with};

/// The other authenticator: the same RFC 6238 computation from the secret the server gave out.
fn authenticator(secret: &str) -> Totp {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret).expect("the secret is base32"))
        .build()
        .expect("an RFC 6238 TOTP")
}

/// The code `steps` 30-second steps from now: 0 is the current one, 1 the next (accepted for
/// clock skew). Two uses per test (0, then 1) stay valid even if a step boundary passes meanwhile.
pub fn code(secret: &str, steps: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    authenticator(secret).generate((now + steps * 30) as u64).to_string()
}

async fn post(app: &TestApp, path: &str, access_token: &str, body: Value) -> Response {
    app.bearer_post(path, access_token, Some(body)).await
}

async fn delete_factor(app: &TestApp, access_token: &str, body: Value) -> Response {
    app.api
        .delete(app.url("/api/mfa/totp"))
        .bearer_auth(access_token)
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

struct Enrolled {
    secret: String,
    recovery_codes: Vec<String>,
}

/// Logs in with the password, enrols an authenticator and confirms it with the current code.
async fn enrol(app: &TestApp, user: &TestUser) -> Enrolled {
    let tokens = app.token_login(user).await;
    let started = post(
        app,
        "/api/mfa/totp",
        &tokens.access,
        json!({ "password": user.password }),
    )
    .await;
    let status = started.status();
    let started: Value = started.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{started}");
    let secret = started["secret"].as_str().unwrap().to_owned();
    let confirmed = post(
        app,
        "/api/mfa/totp/confirm",
        &tokens.access,
        json!({ "code": code(&secret, 0) }),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: Value = confirmed.json().await.unwrap();
    let recovery_codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    Enrolled { secret, recovery_codes }
}

/// `/api/token` for an enrolled account: 401 `mfa_required` and the token for the second step.
async fn mfa_token(app: &TestApp, user: &TestUser) -> String {
    let response = app
        .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(response).await;
    assert_eq!(body["error"], "mfa_required");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    body["mfa_token"].as_str().expect("an mfa_token").to_owned()
}

async fn second_step(app: &TestApp, mfa_token: &str, code: &str) -> Response {
    app.post_json("/api/token/mfa", &json!({ "mfa_token": mfa_token, "code": code }))
        .await
}

async fn login_sessions_of(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

async fn events_of(app: &TestApp, user_id: &str, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind)
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn enrolment_needs_a_fresh_proof_of_the_password() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let without = app.bearer_post("/api/mfa/totp", &tokens.access, None).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(without).await["error"], "reauthentication_required");
    let wrong = post(&app, "/api/mfa/totp", &tokens.access, json!({ "password": "not it" })).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let right = post(
        &app,
        "/api/mfa/totp",
        &tokens.access,
        json!({ "password": user.password }),
    )
    .await;
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(right.headers()["cache-control"], "no-store");
    let body: Value = right.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/revocable:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let stored: String = sqlx::query_scalar("SELECT sealed_secret FROM totp_factors WHERE user_id = $1")
        .bind(&user.id)
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert!(!stored.contains(secret), "the secret is stored sealed, not as it is");
    // Pending: the password alone still logs in.
    app.token_login(&user).await;
}

#[tokio::test]
async fn a_wrong_code_does_not_confirm_enrolment_and_a_right_one_gives_ten_recovery_codes() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let started: Value = post(&app, "/api/mfa/totp", &tokens.access, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let secret = started["secret"].as_str().unwrap();
    let right = code(secret, 0);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let refused = post(&app, "/api/mfa/totp/confirm", &tokens.access, json!({ "code": wrong })).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(refused).await["field"], "code");
    app.token_login(&user).await;

    let confirmed = post(&app, "/api/mfa/totp/confirm", &tokens.access, json!({ "code": right })).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = confirmed.json().await.unwrap();
    let codes: Vec<&str> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    let mut distinct = codes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM recovery_codes WHERE user_id = $1")
        .bind(&user.id)
        .fetch_all(&app.db().await)
        .await
        .unwrap();
    assert_eq!(stored.len(), 10);
    assert!(
        codes
            .iter()
            .all(|code| !stored.iter().any(|hash| hash.contains(&code.replace('-', "")))),
        "only hashes are stored"
    );
    assert_eq!(events_of(&app, &user.id, "second_factor_enabled").await, 1);
    mfa_token(&app, &user).await;
    let again = post(&app, "/api/mfa/totp", &tokens.access, json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "on already: no second enrolment");
}

#[tokio::test]
async fn an_api_log_in_asks_for_the_code_and_its_mfa_token_works_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let sessions_before = login_sessions_of(&app, &user.id).await;
    let token = mfa_token(&app, &user).await;
    assert_eq!(
        login_sessions_of(&app, &user.id).await,
        sessions_before,
        "no login session is opened before the code"
    );
    let response = second_step(&app, &token, &code(&enrolled.secret, 1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].is_string() && body["session_id"].is_string());
    assert_eq!(app.status_of("version", access).await, StatusCode::OK);
    assert_eq!(login_sessions_of(&app, &user.id).await, sessions_before + 1);

    let reused = second_step(&app, &token, &enrolled.recovery_codes[0]).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED, "an mfa_token is single use");
    assert_eq!(error_body(reused).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_code_is_refused_with_401_and_issues_nothing() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let token = mfa_token(&app, &user).await;
    let right = code(&enrolled.secret, 1);
    let wrong = if right == "123456" { "654321" } else { "123456" };
    for bad in [wrong, "not a code", "", "0000-0000-0000-0000"] {
        let response = second_step(&app, &token, bad).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(error_body(response).await["error"], "invalid_grant");
    }
    assert_eq!(events_of(&app, &user.id, "second_factor_failed").await, 4);
    let missing = app.post_json("/api/token/mfa", &json!({ "mfa_token": token })).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(missing).await["field"], "code");
    let forged = second_step(&app, "not-a-token", &right).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // After the wrong ones, the right code still works on the same token (fewer than five).
    assert_eq!(second_step(&app, &token, &right).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_mfa_token_is_refused_even_with_the_right_code() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let token = mfa_token(&app, &user).await;
    sqlx::query("UPDATE mfa_challenges SET expires_at = created_at - 1 WHERE user_id = $1")
        .bind(&user.id)
        .execute(&app.db().await)
        .await
        .unwrap();
    let response = second_step(&app, &token, &code(&enrolled.secret, 1)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(response).await["error"], "invalid_grant");
    let expires_in: i64 =
        sqlx::query_scalar("SELECT MAX(expires_at - created_at) FROM mfa_challenges WHERE user_id = $1")
            .bind(&user.id)
            .fetch_one(&app.db().await)
            .await
            .unwrap();
    assert!(expires_in <= 0);
    let fresh = mfa_token(&app, &user).await;
    let lifetime: i64 =
        sqlx::query_scalar("SELECT MAX(expires_at - created_at) FROM mfa_challenges WHERE user_id = $1")
            .bind(&user.id)
            .fetch_one(&app.db().await)
            .await
            .unwrap();
    assert_eq!(lifetime, 5 * 60 * 1000, "an mfa_token lives five minutes");
    assert_eq!(
        second_step(&app, &fresh, &code(&enrolled.secret, 1)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_recovery_code_logs_in_exactly_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let recovery = &enrolled.recovery_codes[3];
    let first = second_step(&app, &mfa_token(&app, &user).await, &recovery.to_uppercase()).await;
    assert_eq!(first.status(), StatusCode::OK, "case and dashes do not matter");
    let again = second_step(&app, &mfa_token(&app, &user).await, recovery).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(events_of(&app, &user.id, "recovery_code_used").await, 1);
    let used: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NOT NULL")
            .bind(&user.id)
            .fetch_one(&app.db().await)
            .await
            .unwrap();
    assert_eq!(used, 1);
    let other = second_step(&app, &mfa_token(&app, &user).await, &enrolled.recovery_codes[4]).await;
    assert_eq!(other.status(), StatusCode::OK, "the others still work");
}

#[tokio::test]
async fn a_totp_code_already_used_is_refused_as_a_replay() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let next = code(&enrolled.secret, 1);
    assert_eq!(
        second_step(&app, &mfa_token(&app, &user).await, &next).await.status(),
        StatusCode::OK
    );
    let replayed = second_step(&app, &mfa_token(&app, &user).await, &next).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    // The code that confirmed enrolment is older still: refused too.
    let older = second_step(&app, &mfa_token(&app, &user).await, &code(&enrolled.secret, 0)).await;
    assert_eq!(older.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_codes_lock_the_code_step_and_a_right_password_does_not_unlock_it() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "3"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let right = code(&enrolled.secret, 1);
    let wrong = if right == "999999" { "888888" } else { "999999" };
    for _ in 0..3 {
        // A fresh token each time, after a right password: the count goes on all the same.
        let token = mfa_token(&app, &user).await;
        assert_eq!(
            second_step(&app, &token, wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let token = mfa_token(&app, &user).await;
    let locked = second_step(&app, &token, &right).await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(error_body(locked).await["error"], "rate_limited");
    assert_eq!(
        events_of(&app, &user.id, "second_factor_failed").await,
        3,
        "the refused attempt was not checked"
    );
}

#[tokio::test]
async fn an_mfa_token_is_spent_after_five_wrong_codes() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "50")]).await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let token = mfa_token(&app, &user).await;
    let right = code(&enrolled.secret, 1);
    let wrong = if right == "424242" { "242424" } else { "424242" };
    for _ in 0..5 {
        assert_eq!(
            second_step(&app, &token, wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let late = second_step(&app, &token, &right).await;
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "the token is spent");
    assert_eq!(
        second_step(&app, &mfa_token(&app, &user).await, &right).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_code_step_is_rate_limited_per_address() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    let token = "A".repeat(43);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(second_step(&app, &token, "123456").await.status());
    }
    assert!(
        statuses[..3].iter().all(|status| *status == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[tokio::test]
async fn turning_it_off_needs_a_fresh_proof_which_a_code_may_give_and_is_recorded() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let started: Value = post(
        &app,
        "/api/mfa/totp",
        &tokens.access,
        json!({ "password": user.password }),
    )
    .await
    .json()
    .await
    .unwrap();
    let secret = started["secret"].as_str().unwrap().to_owned();
    let confirmed = post(
        &app,
        "/api/mfa/totp/confirm",
        &tokens.access,
        json!({ "code": code(&secret, 0) }),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);

    let without = delete_factor(&app, &tokens.access, json!({})).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(without).await["error"], "reauthentication_required");
    let wrong = delete_factor(&app, &tokens.access, json!({ "code": "000000" })).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    mfa_token(&app, &user).await;
    let with_code = delete_factor(&app, &tokens.access, json!({ "code": code(&secret, 1) })).await;
    assert_eq!(with_code.status(), StatusCode::NO_CONTENT);
    assert_eq!(events_of(&app, &user.id, "second_factor_disabled").await, 1);
    // The owner is told out of band, both times, with a way to act if it was not them.
    let on = app.message_to(&user.email, "Two-step verification turned on").await;
    assert!(on.text.contains("turned on"), "{}", on.text);
    let off = app.message_to(&user.email, "Two-step verification turned off").await;
    assert!(
        off.text.contains("From now on your password alone logs in."),
        "{}",
        off.text
    );
    assert!(
        off.text
            .lines()
            .any(|line| line.starts_with("http") && line.ends_with("/password/forgot")),
        "{}",
        off.text
    );
    app.token_login(&user).await;
    let again = delete_factor(&app, &tokens.access, json!({ "password": user.password })).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "it is off already");
}

#[tokio::test]
async fn a_browser_log_in_asks_for_the_code_before_any_session_starts() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let browser = app.browser();
    let response = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login/mfa");
    let pending = browser.session_cookie().expect("the pending step has a session");
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(dashboard.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&dashboard), "/login", "not logged in before the code");
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);

    let right = code(&enrolled.secret, 1);
    let wrong = if right == "111111" { "222222" } else { "111111" };
    let refused = browser.submit("/login/mfa", "/login/mfa", &[("code", wrong)]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"code-error\""), "the error is at the field: {page}");
    assert_eq!(browser.session_cookie().as_deref(), Some(pending.as_str()));

    let accepted = browser.submit("/login/mfa", "/login/mfa", &[("code", &right)]).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted), "/dashboard");
    let logged_in = browser.session_cookie().expect("a session cookie");
    assert_ne!(logged_in, pending, "the session id is renewed at the code, not before");
    let (status, page) = browser.get_text("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Two-step verification"));
    assert!(page.contains("10 recovery codes left"), "{page}");

    browser.set_session_cookie(&pending);
    let old = browser.get("/dashboard").await;
    assert_eq!(location(&old), "/login", "the key of the pending step never logs in");
}

#[tokio::test]
async fn the_code_step_page_sends_a_browser_without_a_pending_log_in_back() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser.get("/login/mfa").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
}

/// The secret shown as text on the enrolment page.
fn secret_on(page: &str) -> String {
    let marker = "id=\"totp-secret\" class=\"secret\">";
    let start = page.find(marker).expect("the secret is on the page") + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    page[start..end].to_owned()
}

#[tokio::test]
async fn enrolling_and_turning_it_off_from_the_dashboard_without_javascript() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("Two-step verification") && dashboard.contains("action=\"/mfa/totp\""));

    let asked = browser.submit("/dashboard", "/mfa/totp", &[]).await;
    assert_eq!(asked.status(), StatusCode::OK, "the proof is asked for first");
    assert!(asked.text().await.unwrap().contains("name=\"password\""));
    let started = browser
        .submit("/dashboard", "/mfa/totp", &[("password", &user.password)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&started), "/mfa/totp");
    let (status, page) = browser.get_text("/mfa/totp").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg"), "the QR code is inline SVG");
    assert!(!page.contains("<script>"));
    let secret = secret_on(&page);

    let wrong = browser
        .submit("/mfa/totp", "/mfa/totp/confirm", &[("code", "12")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains("id=\"code-error\""));
    let shown = browser
        .submit("/mfa/totp", "/mfa/totp/confirm", &[("code", &code(&secret, 0))])
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    let page = shown.text().await.unwrap();
    assert_eq!(page.matches("<li><code>").count(), 10, "ten recovery codes, shown once");
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("10 recovery codes left"));
    assert!(dashboard.contains("Two-step verification turned on"));

    // Turning it off asks for the proof again; the page offers the code field too.
    let asked = browser.submit("/dashboard", "/mfa/totp/disable", &[]).await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(asked.text().await.unwrap().contains("name=\"code\""));
    let off = browser
        .submit("/dashboard", "/mfa/totp/disable", &[("code", &code(&secret, 1))])
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("Two-step verification is off."));
    assert!(dashboard.contains("Two-step verification turned off"));
    app.token_login(&user).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_second_factor_routes() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for (path, method) in [
        ("/api/token/mfa", "post"),
        ("/api/mfa/totp", "post"),
        ("/api/mfa/totp", "delete"),
        ("/api/mfa/totp/confirm", "post"),
        ("/api/mfa/recovery-codes", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} is not documented");
    }
    let schemas = &document["components"]["schemas"];
    assert!(schemas["ErrorCode"].to_string().contains("mfa_required"));
    assert!(schemas["ErrorResponse"]["properties"]["mfa_token"].is_object());
}

#[tokio::test]
async fn under_another_encryption_key_totp_codes_are_refused_without_an_error_and_recovery_codes_still_work() {
    let first_key = "a key of at least thirty-two bytes, the first";
    let app = spawn_app_with(&[("MFA_ENCRYPTION_KEY", first_key)]).await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let moved = crate::helpers::start_on(
        app.database.clone(),
        &[("MFA_ENCRYPTION_KEY", "another key of at least thirty-two bytes")],
    )
    .await;
    let refused = second_step(&moved, &mfa_token(&moved, &user).await, &code(&enrolled.secret, 1)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "a 401, not a 500");
    let recovered = second_step(&moved, &mfa_token(&moved, &user).await, &enrolled.recovery_codes[0]).await;
    assert_eq!(recovered.status(), StatusCode::OK);
}

/// Password, then code, in a browser; the code step's answer.
async fn browser_log_in(browser: &crate::helpers::Browser, user: &TestUser, code: &str) -> Response {
    let response = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(location(&response), "/login/mfa");
    browser.submit("/login/mfa", "/login/mfa", &[("code", code)]).await
}

#[tokio::test]
async fn whoever_knows_the_password_cannot_lock_the_owners_browser_out_of_the_code_step() {
    let app = spawn_app_with(&[("ACCOUNT_LOCK_AFTER", "3"), ("ACCOUNT_LOCK_WINDOW", "10m")]).await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let owner = app.browser();
    let response = browser_log_in(&owner, &user, &code(&enrolled.secret, 1)).await;
    assert_eq!(location(&response), "/dashboard");
    assert_eq!(
        owner.submit("/dashboard", "/logout", &[]).await.status(),
        StatusCode::SEE_OTHER
    );

    // Someone with the password but not the authenticator guesses codes from elsewhere.
    for _ in 0..3 {
        let token = mfa_token(&app, &user).await;
        assert_eq!(
            second_step(&app, &token, "000000").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let token = mfa_token(&app, &user).await;
    assert_eq!(
        second_step(&app, &token, &enrolled.recovery_codes[0]).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "clients the account does not know wait"
    );
    // The owner's browser, known to the account, is counted on its own.
    let response = browser_log_in(&owner, &user, &enrolled.recovery_codes[1]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/dashboard");
}

#[tokio::test]
async fn spent_challenges_are_purged_and_open_ones_kept() {
    let app = spawn_app_with(&[("PURGE_INTERVAL", "1s")]).await;
    let gone = app.new_user().await;
    let gone_factor = enrol(&app, &gone).await;
    let spent = mfa_token(&app, &gone).await;
    assert_eq!(
        second_step(&app, &spent, &gone_factor.recovery_codes[0]).await.status(),
        StatusCode::OK
    );
    // Another account's log-in, still waiting for its code (a new log-in of the first account
    // would clear its spent challenge by itself: only the purge may do it here).
    let waiting = app.new_user().await;
    let waiting_factor = enrol(&app, &waiting).await;
    let open = mfa_token(&app, &waiting).await;
    let db = app.db().await;
    let count = |user_id: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM mfa_challenges WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let mut left = 1;
    for _ in 0..50 {
        left = count(gone.id.clone()).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the spent challenge is purged");
    assert_eq!(count(waiting.id.clone()).await, 1, "the open one is kept");
    assert_eq!(
        second_step(&app, &open, &waiting_factor.recovery_codes[0])
            .await
            .status(),
        StatusCode::OK,
        "and still works"
    );
}

#[tokio::test]
async fn new_recovery_codes_need_a_fresh_proof_replace_every_earlier_one_and_are_told_to_the_owner() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    // Not on yet: nothing to replace, whatever the proof.
    let none = post(
        &app,
        "/api/mfa/recovery-codes",
        &tokens.access,
        json!({ "password": user.password }),
    )
    .await;
    drop(tokens);
    assert_eq!(none.status(), StatusCode::NOT_FOUND);

    let enrolled = enrol(&app, &user).await;
    let spent = second_step(&app, &mfa_token(&app, &user).await, &enrolled.recovery_codes[0]).await;
    assert_eq!(spent.status(), StatusCode::OK);
    let spent: Value = spent.json().await.unwrap();
    let tokens = spent["access_token"].as_str().unwrap().to_owned();

    let without = post(&app, "/api/mfa/recovery-codes", &tokens, json!({})).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(without).await["error"], "reauthentication_required");
    let wrong = post(
        &app,
        "/api/mfa/recovery-codes",
        &tokens,
        json!({ "password": "not the password" }),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    let replaced = post(
        &app,
        "/api/mfa/recovery-codes",
        &tokens,
        json!({ "password": user.password }),
    )
    .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(replaced.headers()["cache-control"], "no-store");
    let body: Value = replaced.json().await.unwrap();
    let fresh: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|code| !enrolled.recovery_codes.contains(code)));
    let unused: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(&user.id)
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(unused, 10, "only the new codes are left");

    // An earlier, unused code no longer logs in; a new one does, once.
    let old = second_step(&app, &mfa_token(&app, &user).await, &enrolled.recovery_codes[5]).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = second_step(&app, &mfa_token(&app, &user).await, &fresh[2]).await;
    assert_eq!(new.status(), StatusCode::OK);
    assert_eq!(events_of(&app, &user.id, "recovery_codes_replaced").await, 1);
    let told = app
        .message_to(&user.email, "New recovery codes for two-step verification")
        .await;
    assert!(
        told.text.contains("Your earlier recovery codes no longer work"),
        "{}",
        told.text
    );
    assert!(
        fresh
            .iter()
            .all(|code| !told.text.contains(code.as_str()) && !told.html.contains(code.as_str())),
        "the codes themselves are never mailed"
    );
}

#[tokio::test]
async fn new_recovery_codes_from_the_dashboard_are_shown_once_after_the_proof() {
    let app = spawn_app_with(&[("SUDO_TTL", "0")]).await;
    let user = app.new_user().await;
    let enrolled = enrol(&app, &user).await;
    let browser = app.browser();
    let pending = browser
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(location(&pending), "/login/mfa");
    let in_ = browser
        .submit("/login/mfa", "/login/mfa", &[("code", &code(&enrolled.secret, 1))])
        .await;
    assert_eq!(
        in_.status(),
        StatusCode::SEE_OTHER,
        "the next step's code: enrolment spent this one's"
    );
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("action=\"/mfa/recovery-codes\""), "{dashboard}");

    let asked = browser.submit("/dashboard", "/mfa/recovery-codes", &[]).await;
    assert_eq!(asked.status(), StatusCode::OK, "the proof is asked for first");
    let asked = asked.text().await.unwrap();
    assert!(
        asked.contains("to make new recovery codes") && asked.contains("name=\"password\""),
        "{asked}"
    );
    let shown = browser
        .submit("/dashboard", "/mfa/recovery-codes", &[("password", &user.password)])
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    let page = shown.text().await.unwrap();
    assert_eq!(
        page.matches("<li><code>").count(),
        10,
        "ten new recovery codes, shown once"
    );
    assert!(enrolled.recovery_codes.iter().all(|code| !page.contains(code.as_str())));
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("10 recovery codes left"));
    assert!(dashboard.contains("New recovery codes made"));
}
