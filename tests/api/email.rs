//! Email and account recovery: the verification link sent at sign-up, the forgotten password,
//! the new-sign-in message and its "this wasn't me" link, and the outbox behind them (SMTP down,
//! several instances). Every message is read back from where it really went: the suite's SMTP
//! server when `TEST_SMTP_URL` is set, else the `.eml` files of the app's own `MAIL_OUTBOX`.

use std::time::Duration;

use reqwest::StatusCode;
use revocable::domain::RandomId;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_body, spawn_app, spawn_app_with};
use crate::mailbox::SmtpServer;

const CHROME_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn unique_email() -> String {
    format!("mail-{}@example.com", RandomId::generate().to_lowercase())
}

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json("/api/password/forgot", &json!({ "email": email })).await
}

async fn reset(app: &TestApp, token: &str, new_password: &str) -> reqwest::Response {
    app.post_json(
        "/api/password/reset",
        &json!({ "token": token, "new_password": new_password }),
    )
    .await
}

async fn token_login_status(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    let response = app
        .post_json("/api/token", &json!({ "email": email, "password": password }))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn revoke_reasons(app: &TestApp, user_id: &str) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT revoke_reason FROM login_sessions WHERE user_id = $1 ORDER BY created_at")
        .bind(user_id)
        .fetch_all(&app.db().await)
        .await
        .unwrap()
}

/// Waits until `count` reset messages have reached `address`.
async fn reset_messages(app: &TestApp, address: &str, count: usize) -> Vec<crate::mailbox::Mail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let resets: Vec<_> = app
            .messages_to(address)
            .into_iter()
            .filter(|mail| mail.subject == "Reset your password")
            .collect();
        if resets.len() >= count {
            return resets;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} reset messages",
            resets.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delivers what is due and waits until the outbox is empty: every message a request queued has
/// then been handed to the mail server, and one that was never queued will not arrive later.
async fn all_queued_mail_sent(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        app.state.mailer.deliver_due().await.unwrap();
        let pending = revocable::store::mail_outbox::pending(&app.state.db).await.unwrap();
        if pending.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages still queued: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn signing_up_emails_a_verification_link_that_verifies_the_address_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mail = app.message_to(&user.email, "Confirm your email address").await;
    assert!(
        mail.html.contains("/verify-email?token="),
        "the HTML part has the link too"
    );
    let browser = app.browser();
    browser.login(&user).await;
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("is not verified yet"), "{dashboard}");

    let (status, page) = browser.get_text(&mail.path_of_link("/verify-email")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("is verified"), "{page}");
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(
        dashboard.contains(&format!("{} is verified", user.email)),
        "{dashboard}"
    );
    assert!(dashboard.contains("Email address verified"), "the activity lists it");

    let (status, page) = browser.get_text(&mail.path_of_link("/verify-email")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a verification link works once");
    assert!(page.contains("has already been used or has expired"), "{page}");
    for bad in ["", "?token=", "?token=short", &format!("?token={}", "A".repeat(43))] {
        let (status, page) = browser.get_text(&format!("/verify-email{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.contains("no longer works"), "{bad}: {page}");
    }
}

#[tokio::test]
async fn the_dashboard_sends_the_verification_link_again_and_limits_how_often() {
    let app = spawn_app().await;
    let email = unique_email();
    let password = format!("pw-{}", RandomId::generate());
    let browser = app.browser();
    let response = browser
        .submit(
            "/register",
            "/register",
            &[
                ("email", &email),
                ("password", &password),
                ("password_confirmation", &password),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let first = app.message_to(&email, "Confirm your email address").await;

    let response = browser.submit("/dashboard", "/email/verification", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(
        dashboard.contains("A new verification link is on its way"),
        "{dashboard}"
    );
    let both = crate::mailbox::wait_for(&app.mail_directory(), &email, 2).await;
    assert_ne!(both[0].link("/verify-email"), both[1].link("/verify-email"));

    // Three more at once, then one every 20 s.
    for _ in 0..2 {
        let response = browser.submit("/dashboard", "/email/verification", &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let response = browser.submit("/dashboard", "/email/verification", &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));

    // Either link works (each once), and afterwards there is nothing to send.
    let (status, _) = browser.get_text(&first.path_of_link("/verify-email")).await;
    assert_eq!(status, StatusCode::OK);
    let response = browser.submit("/dashboard", "/email/verification", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = browser.get_text("/dashboard").await;
    assert!(dashboard.contains("already verified"), "{dashboard}");
}

#[tokio::test]
async fn asking_for_a_reset_answers_the_same_whether_or_not_the_account_exists() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let nobody = unique_email();

    let known = forgot(&app, &user.email).await;
    let unknown = forgot(&app, &nobody).await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let header_names = |response: &reqwest::Response| {
        let mut names: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&known), header_names(&unknown));
    let known_body = known.bytes().await.unwrap();
    let unknown_body = unknown.bytes().await.unwrap();
    assert_eq!(known_body, unknown_body, "the same bytes either way");

    // The same work either way: exactly one message each, and the link only for the account.
    let reset_mail = app.message_to(&user.email, "Reset your password").await;
    assert!(reset_mail.find_link("/password/reset").is_some());
    let note = app.message_to(&nobody, "Reset your password").await;
    assert!(
        note.find_link("/password/reset").is_none(),
        "no link without an account"
    );
    assert!(
        note.text.contains("there is no account with this address"),
        "{}",
        note.text
    );
    all_queued_mail_sent(&app).await;
    assert_eq!(app.messages_to(&nobody).len(), 1);
    assert_eq!(
        app.messages_to(&user.email)
            .iter()
            .filter(|mail| mail.subject == "Reset your password")
            .count(),
        1
    );

    // The page says the same words for both.
    let browser = app.browser();
    let (_, known_page) = {
        let response = browser
            .submit("/password/forgot", "/password/forgot", &[("email", &user.email)])
            .await;
        (response.status(), response.text().await.unwrap())
    };
    let response = browser
        .submit("/password/forgot", "/password/forgot", &[("email", &nobody)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let unknown_page = response.text().await.unwrap();
    assert_eq!(
        known_page.replace(&user.email, "ADDRESS"),
        unknown_page.replace(&nobody, "ADDRESS")
    );
    assert!(unknown_page.contains("Check your email"));

    // Bad input is refused the same for any address.
    let response = forgot(&app, "not an address").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(response).await["field"], "email");
    let response = app.post_json("/api/password/forgot", &json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn past_three_requests_for_one_address_nothing_more_is_sent_and_the_answer_does_not_change() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for _ in 0..5 {
        assert_eq!(forgot(&app, &user.email).await.status(), StatusCode::ACCEPTED);
    }
    app.nth_message_to(&user.email, 4).await;
    all_queued_mail_sent(&app).await;
    let resets = app
        .messages_to(&user.email)
        .iter()
        .filter(|mail| mail.subject == "Reset your password")
        .count();
    assert_eq!(resets, 3, "three reset links, then none until the limit allows");
}

#[tokio::test]
async fn a_reset_link_sets_the_password_signs_out_every_device_and_works_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;
    let version_before = app.token_version(&user.id).await;

    assert_eq!(forgot(&app, &user.email).await.status(), StatusCode::ACCEPTED);
    assert_eq!(forgot(&app, &user.email).await.status(), StatusCode::ACCEPTED);
    let links = reset_messages(&app, &user.email, 2).await;
    let (first, second) = (&links[0], &links[1]);
    assert_ne!(
        first.token_of_link("/password/reset"),
        second.token_of_link("/password/reset")
    );

    let new_password = format!("new-{}", RandomId::generate());
    let response = reset(&app, &second.token_of_link("/password/reset"), &new_password).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Every device is signed out, whatever strategy checks it.
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(
            app.status_of(strategy, &tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "{strategy}"
        );
    }
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.token_version(&user.id).await, version_before + 1);
    let reasons = revoke_reasons(&app, &user.id).await;
    assert!(
        reasons.iter().all(|reason| reason.as_deref() == Some("password_reset")),
        "{reasons:?}"
    );

    // The new password works, the old one does not.
    let (status, _) = token_login_status(&app, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = token_login_status(&app, &user.email, &new_password).await;
    assert_eq!(status, StatusCode::OK);

    // The link is spent, and so is every other reset link of the account.
    for spent in [second, first] {
        let response = reset(&app, &spent.token_of_link("/password/reset"), "another-Passw0rd-here").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_body(response).await["error"], "invalid_token");
    }
    let events: Vec<String> = sqlx::query_scalar("SELECT kind FROM security_events WHERE user_id = $1")
        .bind(&user.id)
        .fetch_all(&app.db().await)
        .await
        .unwrap();
    assert!(events.contains(&"password_reset_requested".to_owned()), "{events:?}");
    assert!(events.contains(&"password_reset".to_owned()), "{events:?}");
}

#[tokio::test]
async fn a_reset_refuses_bad_tokens_and_weak_passwords_without_spending_the_link() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    forgot(&app, &user.email).await;
    let mail = app.message_to(&user.email, "Reset your password").await;
    let token = mail.token_of_link("/password/reset");

    for bad in ["", "short", &"A".repeat(43), &format!("{}\u{0}", &token[..42])] {
        let response = reset(&app, bad, "a-perfectly-fine-Passw0rd").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(error_body(response).await["error"], "invalid_token");
    }
    let response = reset(&app, &token, "password").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(response).await["field"], "new_password");
    let response = reset(&app, &token, &user.email).await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the sign-up rules apply"
    );
    let response = app.post_json("/api/password/reset", &json!({ "token": token })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .api
        .post(app.url("/api/password/reset"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = reset(&app, &token, "a-perfectly-fine-Passw0rd").await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "the refusals did not spend the link"
    );
}

#[tokio::test]
async fn a_reset_link_expires() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    forgot(&app, &user.email).await;
    let mail = app.message_to(&user.email, "Reset your password").await;
    assert!(mail.text.contains("30 minutes"), "{}", mail.text);
    // Thirty minutes later.
    app.advance(revocable::recovery::RESET_TTL + Duration::from_secs(1))
        .await;
    let response = reset(
        &app,
        &mail.token_of_link("/password/reset"),
        "a-perfectly-fine-Passw0rd",
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(response).await["error"], "invalid_token");
    let (status, page) = app.browser().get_text(&mail.path_of_link("/password/reset")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("href=\"/password/forgot\""),
        "a way to ask for a new one: {page}"
    );
}

#[tokio::test]
async fn the_forgotten_password_works_through_the_pages_alone() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    let (_, login) = browser.get_text("/login").await;
    assert!(
        login.contains("href=\"/password/forgot\""),
        "the log-in page links to it"
    );

    let response = browser
        .submit("/password/forgot", "/password/forgot", &[("email", &user.email)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mail = app.message_to(&user.email, "Reset your password").await;
    let path = mail.path_of_link("/password/reset");
    let (status, form) = browser.get_text(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Set a new password"), "{form}");

    let token = mail.token_of_link("/password/reset");
    let response = browser
        .submit(
            &path,
            &path,
            &[
                ("token", &token),
                ("new_password", "one-Passw0rd-long"),
                ("new_password_confirmation", "another-Passw0rd-long"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("do not match"));
    let response = browser
        .submit(
            &path,
            &path,
            &[
                ("token", &token),
                ("new_password", "password"),
                ("new_password_confirmation", "password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let new_password = format!("new-{}", RandomId::generate());
    let response = browser
        .submit(
            &path,
            &path,
            &[
                ("token", &token),
                ("new_password", &new_password),
                ("new_password_confirmation", &new_password),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Your password has been changed")
    );
    browser
        .login(&TestUser {
            password: new_password,
            ..user.clone()
        })
        .await;

    let (status, page) = app.browser().get_text(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "used");
    assert!(page.contains("has already been used or has expired"));
    // Without the CSRF token the form is refused.
    let response = app
        .browser()
        .post_form(&path, &[("token", &token), ("new_password", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_log_in_from_a_known_device_sends_no_sign_in_message() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    app.browser().login(&user).await;
    app.message_to(&user.email, "Confirm your email address").await;
    all_queued_mail_sent(&app).await;
    let subjects: Vec<String> = app
        .messages_to(&user.email)
        .into_iter()
        .map(|mail| mail.subject)
        .collect();
    assert_eq!(
        subjects,
        ["Confirm your email address"],
        "the first log-in and a known device are not news"
    );
}

#[tokio::test]
async fn a_token_log_in_from_a_new_device_is_emailed_with_its_device_place_and_time() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.browser().login(&user).await;
    app.token_login(&user).await;
    let mail = app.message_to(&user.email, "New sign-in").await;
    assert!(mail.text.contains("API token"), "{}", mail.text);
    assert!(
        mail.text.contains("address 127.0.0.1"),
        "the place, by address without GeoIP: {}",
        mail.text
    );
    assert!(mail.text.contains(" UTC"), "{}", mail.text);
    assert!(mail.find_link("/not-me").is_some());
    assert!(!mail.html.is_empty() && mail.html.contains("This wasn't me"));
    assert!(mail.raw.contains("multipart/alternative"), "plain text and HTML");
}

#[tokio::test]
async fn this_wasnt_me_from_the_email_signs_out_everywhere_and_blocks_the_password_until_a_reset() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let owner = app.browser();
    owner.login(&user).await;
    let intruder = app.browser().with_user_agent(CHROME_ON_WINDOWS);
    intruder.login(&user).await;
    let tokens = app.token_login(&user).await;
    let mail = app.message_to(&user.email, "New sign-in: Chrome").await;
    let path = mail.path_of_link("/not-me");

    // Opening the link (as a mail scanner would) changes nothing.
    let reader = app.browser();
    let (status, page) = reader.get_text(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Chrome") && page.contains("Windows"), "{page}");
    assert_eq!(owner.cookie_me().await.status(), StatusCode::OK);
    assert_eq!(intruder.cookie_me().await.status(), StatusCode::OK);
    // The POST needs the page's CSRF token.
    let response = reader
        .post_form("/not-me", &[("token", &mail.token_of_link("/not-me"))])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(owner.cookie_me().await.status(), StatusCode::OK);

    let response = reader
        .submit(&path, "/not-me", &[("token", &mail.token_of_link("/not-me"))])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("3 devices signed out"), "{page}");

    assert_eq!(owner.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(intruder.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);

    // The right password is refused, saying why; a wrong one gets the usual answer.
    let (status, body) = token_login_status(&app, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("reset is required"),
        "{body}"
    );
    let (status, body) = token_login_status(&app, &user.email, "not-the-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !body["error_description"].as_str().unwrap().contains("reset"),
        "tells a guesser nothing: {body}"
    );
    let response = app
        .browser()
        .submit(
            "/login",
            "/login",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("id=\"reset-required\"") && page.contains("href=\"/password/forgot\""),
        "{page}"
    );

    // The link is spent; the reset link arrived at once and lifts the block.
    let (status, page) = app.browser().get_text(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("no longer works"));
    let reset_mail = app.message_to(&user.email, "Your account was secured").await;
    let new_password = format!("new-{}", RandomId::generate());
    let response = reset(&app, &reset_mail.token_of_link("/password/reset"), &new_password).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = token_login_status(&app, &user.email, &new_password).await;
    assert_eq!(status, StatusCode::OK);

    let events: Vec<String> = sqlx::query_scalar("SELECT kind FROM security_events WHERE user_id = $1")
        .bind(&user.id)
        .fetch_all(&app.db().await)
        .await
        .unwrap();
    for kind in ["reported_not_you", "password_reset_requested", "password_reset"] {
        assert!(events.contains(&kind.to_owned()), "{kind} in {events:?}");
    }
    // The reported pair is flagged on its next log-in.
    let later = app.browser().with_user_agent(CHROME_ON_WINDOWS);
    later
        .login(&TestUser {
            password: new_password,
            ..user.clone()
        })
        .await;
    let (_, dashboard) = later.get_text("/dashboard").await;
    assert!(dashboard.contains("reported as not you before"), "{dashboard}");
}

#[tokio::test]
async fn a_not_me_link_that_is_unknown_or_expired_says_so() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.browser().login(&user).await;
    app.token_login(&user).await;
    let mail = app.message_to(&user.email, "New sign-in").await;
    app.advance(revocable::auth::sign_in_mail::NOT_ME_TTL + Duration::from_secs(1))
        .await;
    let browser = app.browser();
    for path in [
        mail.path_of_link("/not-me"),
        "/not-me".to_owned(),
        format!("/not-me?token={}", "B".repeat(43)),
    ] {
        let (status, page) = browser.get_text(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            page.contains("no longer works") && page.contains("/password/forgot"),
            "{path}: {page}"
        );
    }
    let response = browser
        .submit("/login", "/not-me", &[("token", &mail.token_of_link("/not-me"))])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) = token_login_status(&app, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::OK, "an expired report changes nothing");
}

#[tokio::test]
async fn with_smtp_down_a_log_in_succeeds_and_its_message_goes_once_the_server_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap();
    let directory = std::env::temp_dir().join(format!("revocable-smtp-{}", RandomId::generate()));
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[
        ("SMTP_URL", &smtp_url),
        ("TEST_MAIL_DIRECTORY", &directory.display().to_string()),
        ("MAIL_RETRY_AFTER", "300ms"),
    ])
    .await;
    let user = app.new_user().await;
    app.browser().login(&user).await;
    let tokens = app.token_login(&user).await;
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::OK);

    // Queued, tried, failed, kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let pending = loop {
        let pending = revocable::store::mail_outbox::pending(&app.state.db).await.unwrap();
        if pending
            .iter()
            .any(|(_, _, attempts, error)| *attempts >= 1 && error.is_some())
        {
            break pending;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed attempt recorded: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        pending.len(),
        2,
        "the verification and the new-sign-in messages wait: {pending:?}"
    );

    let server = SmtpServer::start(port, &directory).await;
    let mail = app.message_to(&user.email, "New sign-in").await;
    assert!(mail.find_link("/not-me").is_some());
    app.message_to(&user.email, "Confirm your email address").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !revocable::store::mail_outbox::pending(&app.state.db)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "sent messages leave the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    all_queued_mail_sent(&app).await;
    assert_eq!(app.messages_to(&user.email).len(), 2, "each message once");
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_once() {
    let a = spawn_app().await;
    let b = a.restart().await;
    let recipients: Vec<String> = (0..30).map(|_| unique_email()).collect();
    for recipient in &recipients {
        let message = revocable::mail::messages::no_account(recipient, "http://example.com/register").unwrap();
        revocable::mail::enqueue(&a.state.db, &message).await.unwrap();
    }
    // Both instances' tasks poll; both are also told to deliver at once, racing for every row.
    let (sent_by_a, sent_by_b) = tokio::join!(a.state.mailer.deliver_due(), b.state.mailer.deliver_due());
    let (sent_by_a, sent_by_b) = (sent_by_a.unwrap(), sent_by_b.unwrap());
    assert!(sent_by_a + sent_by_b <= recipients.len(), "{sent_by_a} + {sent_by_b}");
    for recipient in &recipients {
        a.last_message_to(recipient).await;
    }
    all_queued_mail_sent(&a).await;
    for recipient in &recipients {
        assert_eq!(a.messages_to(recipient).len(), 1, "{recipient} got one message");
    }
    assert!(
        revocable::store::mail_outbox::pending(&a.state.db)
            .await
            .unwrap()
            .is_empty(),
        "every row was claimed, sent and deleted"
    );
}

#[tokio::test]
async fn messages_to_a_bad_address_are_given_up_on_and_their_links_dropped() {
    let app = spawn_app().await;
    let message = revocable::mail::Message {
        to: "not an address".into(),
        subject: "Reset your password".into(),
        text: "secret link".into(),
        html: "<p>secret link</p>".into(),
    };
    revocable::mail::enqueue(&app.state.db, &message).await.unwrap();
    app.state.mailer.deliver_due().await.unwrap();
    let rows: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT text_body, given_up_at FROM mail_outbox WHERE recipient = 'not an address'")
            .fetch_all(&app.db().await)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "", "the body (and its secrets) is gone");
    assert!(rows[0].1.is_some());
}
