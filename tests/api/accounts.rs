//! Sign-up: every error code of the register endpoint, uniqueness, persistence, the stored hash.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_body, spawn_app};

#[tokio::test]
async fn registering_returns_201_with_the_id_and_email() {
    let app = spawn_app().await;
    let response = app.register("Ann@Example.com", "correct horse").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["email"], "Ann@Example.com");
    assert!(body["id"].as_str().is_some_and(|id| id.len() >= 22));
}

#[tokio::test]
async fn an_email_is_taken_whatever_its_letter_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("Ann@Example.com", "correct horse").await.status(),
        StatusCode::CREATED
    );
    let response = app.register("ann@EXAMPLE.com", "another password").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_body(response).await["error"], "conflict");
}

#[tokio::test]
async fn an_invalid_email_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    for email in ["", "not-an-address", "ann@", "ann@example"] {
        let response = app.register(email, "correct horse").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{email:?}");
        let body = error_body(response).await;
        assert_eq!(body["error"], "invalid_field");
        assert_eq!(body["field"], "email");
    }
}

#[tokio::test]
async fn passwords_shorter_than_8_or_longer_than_128_characters_are_refused() {
    let app = spawn_app().await;
    let random: String = (0..4).map(|_| revocable::domain::RandomId::secret()).collect();
    for password in ["1234567".to_owned(), random.chars().take(129).collect()] {
        let response = app.register("ann@example.com", &password).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = error_body(response).await;
        assert_eq!(body["field"], "password");
        assert!(body["error_description"].as_str().unwrap().contains("password"));
    }
    assert_eq!(
        app.register("ann@example.com", &random.chars().take(128).collect::<String>())
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_missing_field_is_a_422() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/register", &json!({ "email": "ann@example.com" }))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_body(response).await["field"], "password");
}

#[tokio::test]
async fn malformed_json_is_a_400_in_the_json_error_shape() {
    let app = spawn_app().await;
    for body in [
        r#"{"email": "ann@example.com", "#,
        "not json at all",
        r#"{"email": 42, "password": []}"#,
    ] {
        let response = app
            .api
            .post(app.url("/api/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_body(response).await["error"], "invalid_request");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let app = spawn_app().await;
    let response = app
        .api
        .post(app.url("/api/register"))
        .header("content-type", "text/plain")
        .body("email=ann@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    error_body(response).await;
}

#[tokio::test]
async fn a_body_over_16_kib_is_a_413() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/register",
            &json!({ "email": "ann@example.com", "password": "x".repeat(17 * 1024) }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(response).await["error"], "payload_too_large");
}

#[tokio::test]
async fn accounts_survive_a_restart_of_the_application() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("ann@example.com", "correct horse").await.status(),
        StatusCode::CREATED
    );
    let restarted = app.restart().await;
    let response = restarted.register("ANN@example.com", "correct horse").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_stored_hash_is_argon2id_with_owasp_parameters() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let db = app.db().await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(&user.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(&user.password));
}

#[tokio::test]
async fn a_new_account_starts_at_token_version_zero() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    assert_eq!(app.token_version(&user.id).await, 0);
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let wrong_password = app
        .post_json(
            "/api/token",
            &json!({ "email": user.email, "password": "not the password" }),
        )
        .await;
    let unknown_email = app
        .post_json(
            "/api/token",
            &json!({ "email": "nobody@example.com", "password": "not the password" }),
        )
        .await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(wrong_password).await, error_body(unknown_email).await);
}

#[tokio::test]
async fn deleting_an_account_needs_the_password_and_removes_everything() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let wrong = app
        .api
        .delete(app.url("/api/account"))
        .bearer_auth(&tokens.access)
        .json(&json!({ "password": "not it at all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = app
        .api
        .delete(app.url("/api/account"))
        .bearer_auth(&tokens.access)
        .json(&json!({ "password": user.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.status_of("allowlist", &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.register(&user.email, &user.password).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn too_many_attempts_from_one_address_are_a_429_with_retry_after() {
    let app = crate::helpers::spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app
            .post_json(
                "/api/token",
                &json!({ "email": "nobody@example.com", "password": "whatever it is" }),
            )
            .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(error_body(response).await["error"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_address_in_composed_or_decomposed_form_is_one_account_and_invisible_characters_are_refused() {
    let app = spawn_app().await;
    let decomposed = "Rene\u{301}@example.com";
    let composed = "ren\u{e9}@example.com";
    let response = app.register(decomposed, "correct horse battery").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["email"], "Ren\u{e9}@example.com", "stored composed");

    let taken = app.register(composed, "correct horse battery").await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let login = app
        .post_json(
            "/api/token",
            &json!({"email": composed, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);

    for invisible in ["ren\u{e9}\u{200b}@example.com", "\u{feff}ren\u{e9}@example.com"] {
        let refused = app.register(invisible, "correct horse battery").await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{invisible:?}");
        assert_eq!(error_body(refused).await["field"], "email");
        let login = app
            .post_json(
                "/api/token",
                &json!({"email": invisible, "password": "correct horse battery"}),
            )
            .await;
        assert_ne!(login.status(), StatusCode::OK, "{invisible:?}");
    }
}

#[tokio::test]
async fn an_account_stored_before_addresses_were_composed_is_still_found() {
    let app = spawn_app().await;
    let created = app.register("ann@example.com", "correct horse battery").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    // A row keyed as sign-up keyed it before NFC: lower case only, the accent decomposed.
    let legacy = "ane\u{301}@example.com";
    sqlx::query("UPDATE users SET email = $1, email_normalized = $1 WHERE email_normalized = 'ann@example.com'")
        .bind(legacy)
        .execute(&app.db().await)
        .await
        .unwrap();
    let login = app
        .post_json(
            "/api/token",
            &json!({"email": legacy, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}
