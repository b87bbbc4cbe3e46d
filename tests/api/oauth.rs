//! What other services call: client authentication, RFC 7662 introspection, RFC 7009
//! revocation, the revocation feed, and signing-key rotation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};

pub struct TestClient {
    pub id: String,
    pub secret: String,
}

pub async fn add_client(app: &TestApp) -> TestClient {
    let client = revocable::oauth::clients::add(
        &app.state.db,
        &format!("service-{}", revocable::domain::RandomId::generate()),
    )
    .await
    .unwrap();
    TestClient {
        id: client.id,
        secret: client.secret,
    }
}

pub async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    introspect_with_hint(app, client, token, None).await
}

pub async fn introspect_with_hint(app: &TestApp, client: &TestClient, token: &str, hint: Option<&str>) -> Value {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    let response = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn revoke(app: &TestApp, client: &TestClient, token: &str, hint: &str) -> reqwest::Response {
    app.api
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn introspection_and_revocation_refuse_a_client_that_does_not_authenticate() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let anonymous = app
            .api
            .post(app.url(path))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            anonymous.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(error_body(anonymous).await["error"], "invalid_client");

        let wrong_secret = app
            .api
            .post(app.url(path))
            .basic_auth(&client.id, Some("not-the-secret"))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_body(wrong_secret).await["error"], "invalid_client");

        let unknown_client = app
            .api
            .post(app.url(path))
            .form(&[
                ("token", "x"),
                ("client_id", "nobody"),
                ("client_secret", &client.secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(unknown_client.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_live_access_token_introspects_active_with_its_claims_and_inactive_once_revoked() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;

    let answer = introspect(&app, &client, &tokens.access).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["sub"], user.id.as_str());
    assert_eq!(answer["sid"], tokens.session_id.as_str());
    assert_eq!(
        answer["client_id"], "revocable",
        "a person's token was issued to revocable itself"
    );
    for claim in ["jti", "exp", "iat", "nbf", "iss", "aud", "ver"] {
        assert!(!answer[claim].is_null(), "{claim} missing from {answer}");
    }

    assert_eq!(
        app.bearer_post("/api/logout-all", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let answer = introspect(&app, &client, &tokens.access).await;
    assert_eq!(answer, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn a_refresh_token_introspects_through_client_secret_post_until_it_is_used() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let response = app
        .api
        .post(app.url("/oauth/introspect"))
        .form(&[
            ("token", tokens.refresh.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["sid"], tokens.session_id.as_str());
    assert_eq!(answer["sub"], user.id.as_str());

    TestApp::refreshed(app.refresh(&tokens.refresh).await).await;
    assert_eq!(
        introspect_with_hint(&app, &client, &tokens.refresh, Some("refresh_token")).await["active"],
        false
    );
}

#[tokio::test]
async fn malformed_unknown_expired_and_foreign_tokens_are_simply_inactive() {
    let app = spawn_app_with(&[("ACCESS_TTL", "1s")]).await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let other = spawn_app().await;
    let foreign = other.token_login(&other.new_user().await).await;
    for token in [
        "garbage",
        "a.b.c",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        &foreign.access,
        &foreign.refresh,
        &"x".repeat(9000),
    ] {
        assert_eq!(
            introspect(&app, &client, token).await,
            serde_json::json!({ "active": false }),
            "{token}"
        );
    }
    app.advance(Duration::from_millis(2100)).await;
    assert_eq!(introspect(&app, &client, &tokens.access).await["active"], false);
}

#[tokio::test]
async fn revoking_an_access_token_denylists_its_jti_only() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;

    let response = revoke(&app, &client, &tokens.access, "access_token").await;
    assert_eq!(response.status(), StatusCode::OK);
    let refused = app.me("denylist", &tokens.access).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(refused).await["reason"], "revoked_jti");
    assert_eq!(introspect(&app, &client, &tokens.access).await["active"], false);
    // The login session itself lives on: its refresh token still works.
    let fresh = TestApp::refreshed(app.refresh(&tokens.refresh).await).await;
    assert_eq!(app.status_of("denylist", &fresh.access).await, StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_whole_login_session() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let other_device = app.token_login(&user).await;

    let response = revoke(&app, &client, &tokens.refresh, "refresh_token").await;
    assert_eq!(response.status(), StatusCode::OK);
    let refused = app.me("allowlist", &tokens.access).await;
    assert_eq!(error_body(refused).await["reason"], "revoked_session");
    assert_eq!(
        app.status_of("denylist", &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.status_of("allowlist", &other_device.access).await, StatusCode::OK);
    let ended = app.sessions(&other_device.access).await;
    assert!(ended.iter().all(|session| session["id"] != tokens.session_id.as_str()));
}

#[tokio::test]
async fn revoking_an_unknown_or_invalid_token_is_200_and_bad_requests_are_400_in_the_rfc_shape() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    for token in ["garbage", "a.b.c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        assert_eq!(
            revoke(&app, &client, token, "").await.status(),
            StatusCode::OK,
            "{token}"
        );
    }
    let missing = app
        .api
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(missing).await["error"], "invalid_request");
    let json_body = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.id, Some(&client.secret))
        .json(&serde_json::json!({ "token": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(json_body).await["error"], "invalid_request");
}

/// A server-sent-events reader: the events of one connection, as (id, name, data).
pub struct Feed {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub id: Option<i64>,
    pub name: String,
    pub data: Value,
}

impl Feed {
    pub async fn open(app: &TestApp, client: &TestClient, last_event_id: Option<i64>) -> reqwest::Response {
        let mut request = app
            .api
            .get(app.url("/oauth/revocations"))
            .basic_auth(&client.id, Some(&client.secret));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        request.send().await.unwrap()
    }

    pub async fn connect(app: &TestApp, client: &TestClient, last_event_id: Option<i64>) -> Self {
        let response = Self::open(app, client, last_event_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    pub async fn next(&mut self) -> FeedEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = FeedEvent {
                    id: None,
                    name: String::new(),
                    data: Value::Null,
                };
                for line in frame.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        event.id = Some(id.parse().unwrap());
                    } else if let Some(name) = line.strip_prefix("event: ") {
                        event.name = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).unwrap();
                    }
                }
                return event;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("the feed sends within 10 s")
                .unwrap()
                .expect("the feed stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event that is not a heartbeat.
    pub async fn next_change(&mut self) -> FeedEvent {
        loop {
            let event = self.next().await;
            if event.name != "heartbeat" {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn the_revocation_feed_needs_client_credentials() {
    let app = spawn_app().await;
    let anonymous = app.get("/oauth/revocations").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(anonymous).await["error"], "invalid_client");
    let client = add_client(&app).await;
    assert_eq!(Feed::open(&app, &client, None).await.status(), StatusCode::OK);
    let garbage = app
        .api
        .get(app.url("/oauth/revocations"))
        .basic_auth(&client.id, Some(&client.secret))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_feed_pushes_revocations_as_caep_events_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let phone = app.token_login(&user).await;
    let laptop = app.token_login(&user).await;
    let mut feed = Feed::connect(&app, &client, None).await;
    assert_eq!(feed.next_change().await.name, "ready");

    // One device signed out: its session, then its access token.
    assert_eq!(
        app.bearer_delete(&format!("/api/sessions/{}", phone.session_id), &laptop.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let revoked = feed.next_change().await;
    assert_eq!(revoked.name, "session-revoked", "{revoked:?}");
    assert_eq!(revoked.data["type"], revocable::oauth::feed::SESSION_REVOKED);
    assert_eq!(revoked.data["subject"]["session"]["id"], phone.session_id.as_str());
    assert_eq!(revoked.data["subject"]["user"]["id"], user.id.as_str());
    let jti = feed.next_change().await;
    assert_eq!(jti.name, "jti-revoked");
    assert_eq!(jti.id, Some(revoked.id.unwrap() + 1));

    // Log out everywhere: the token_version moves.
    app.bearer_post("/api/logout-all", &laptop.access, None).await;
    let claims = feed.next_change().await;
    assert_eq!(claims.name, "token-claims-change");
    assert_eq!(claims.data["claims"]["ver"], 1);
    assert_eq!(claims.data["subject"]["user"]["id"], user.id.as_str());

    // A receiver that saw the first event resumes right after it.
    let mut resumed = Feed::connect(&app, &client, revoked.id).await;
    let first = resumed.next_change().await;
    assert_eq!(first.id, jti.id, "{first:?}");
    assert_eq!(first.name, "jti-revoked");
}

#[tokio::test]
async fn a_new_receiver_is_sent_what_still_matters_and_never_cookie_state() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let tokens = app.token_login(&user).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;

    let mut feed = Feed::connect(&app, &client, None).await;
    let mut names = Vec::new();
    loop {
        let event = feed.next_change().await;
        if event.name == "ready" {
            break;
        }
        names.push(event.name);
    }
    assert!(names.contains(&"session-revoked".to_owned()), "{names:?}");
    assert!(names.contains(&"jti-revoked".to_owned()), "{names:?}");
    assert!(names.iter().all(|name| !name.contains("web")), "{names:?}");
}

#[tokio::test]
async fn a_receiver_hears_a_heartbeat_while_nothing_is_revoked() {
    let app = spawn_app_with(&[("FEED_HEARTBEAT", "200ms")]).await;
    let client = add_client(&app).await;
    let mut feed = Feed::connect(&app, &client, None).await;
    assert_eq!(feed.next().await.name, "ready");
    let started = Instant::now();
    assert_eq!(feed.next().await.name, "heartbeat");
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn tokens_from_before_and_after_a_rotation_verify_until_the_old_key_retires() {
    let app = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "0"), ("ACCESS_TTL", "4s")]).await;
    let user = app.new_user().await;
    let before = app.token_login(&user).await;

    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=0");
    let jwks: Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    revocable::auth::keys::rotate(&app.state.settings, &app.state.db, &app.state.revocation)
        .await
        .unwrap();
    app.state.keys.reload(&app.state.db).await.unwrap();
    // It signs JWKS_MAX_AGE (0) plus REVOCATION_MAX_STALENESS (1 s) after its publication.
    app.advance(Duration::from_millis(1100)).await;
    let after = app.token_login(&user).await;
    assert_ne!(kid_of(&before.access).await, kid_of(&after.access).await);
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "both keys are published during the overlap"
    );
    assert_eq!(app.status_of("stateless", &before.access).await, StatusCode::OK);
    assert_eq!(app.status_of("stateless", &after.access).await, StatusCode::OK);

    // The overlap is one token lifetime (4 s) + leeway (0) + the reload interval (1 s).
    app.advance(Duration::from_millis(5300)).await;
    let refused = app.me("stateless", &before.access).await;
    assert_eq!(error_body(refused).await["reason"], "bad_signature");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        1,
        "the old key has left the JWKS"
    );
    let fresh = TestApp::refreshed(app.refresh(&after.refresh).await).await;
    assert_eq!(app.status_of("stateless", &fresh.access).await, StatusCode::OK);
}

#[tokio::test]
async fn several_instances_agree_on_a_rotated_key_before_it_signs() {
    let first = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "4s")]).await;
    let second = first.restart().await;
    let user = first.new_user().await;

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_revocable"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("DATABASE_URL", &first.database.url)
        .env("JWT_ALG", "EdDSA")
        .env("JWKS_MAX_AGE", "4s")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let new_kid = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();

    // Published on both within their reload interval (2 s), before it signs (4 s).
    let rotated = Instant::now();
    for app in [&first, &second] {
        loop {
            let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
            let published = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|key| key["kid"] == new_kid.as_str());
            if published {
                break;
            }
            assert!(
                rotated.elapsed() < Duration::from_secs(4),
                "the new key was not published before it signs"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // It signs JWKS_MAX_AGE (4 s) plus REVOCATION_MAX_STALENESS (1 s) after its publication.
    // The command line read `signs_from` off the system's clock, which the deployment's runs with.
    first.advance(Duration::from_millis(5300)).await;
    let from_first = first.token_login(&user).await;
    let from_second = second.token_login(&user).await;
    assert_eq!(kid_of(&from_first.access).await, new_kid);
    assert_eq!(kid_of(&from_second.access).await, new_kid);
    assert_eq!(second.status_of("version", &from_first.access).await, StatusCode::OK);
    assert_eq!(first.status_of("version", &from_second.access).await, StatusCode::OK);
}

#[tokio::test]
async fn keys_from_jwt_keys_sign_with_the_first_and_verify_with_every_one() {
    let signing = revocable::auth::keys::Ed25519Key::generate(0, 0);
    let older = revocable::auth::keys::Ed25519Key::generate(0, 0);
    let set = serde_json::json!({ "keys": [signing.private_jwk(), older.private_jwk()] }).to_string();
    let app = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWT_KEYS", &set)]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(kid_of(&tokens.access).await, signing.kid);
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![signing.kid.as_str(), older.kid.as_str()]);
    assert!(
        jwks["keys"].as_array().unwrap().iter().all(|key| key["d"].is_null()),
        "no private part is published"
    );
}

#[tokio::test]
async fn clients_add_prints_a_secret_once_and_stores_only_its_hash() {
    let app = spawn_app().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_revocable"))
            .args(args)
            .env_clear()
            .env("DATABASE_URL", &app.database.url)
            .output()
            .unwrap()
    };
    let added = run(&["clients", "add", "billing"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let stdout = String::from_utf8_lossy(&added.stdout).to_string();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let client = TestClient {
        id: field("client_id:"),
        secret: field("client_secret:"),
    };
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM oauth_clients WHERE id = $1")
        .bind(&client.id)
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_ne!(stored, client.secret);
    assert_eq!(introspect(&app, &client, "garbage").await["active"], false);

    let listed = String::from_utf8_lossy(&run(&["clients", "list"]).stdout).to_string();
    assert!(listed.contains("billing") && listed.contains(&client.id) && !listed.contains(&client.secret));
    assert!(run(&["clients", "remove", "billing"]).status.success());
    let refused = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(!run(&["clients", "remove", "billing"]).status.success());
}

#[tokio::test]
async fn a_revocation_by_a_client_appears_in_the_accounts_security_activity_naming_the_client() {
    let app = spawn_app().await;
    let name = format!("billing-{}", revocable::domain::RandomId::generate());
    let created = revocable::oauth::clients::add(&app.state.db, &name).await.unwrap();
    let client = TestClient {
        id: created.id,
        secret: created.secret,
    };
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let access_only = app.token_login(&user).await;
    let whole_session = app.token_login(&user).await;

    assert_eq!(
        revoke(&app, &client, &access_only.access, "access_token")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        revoke(&app, &client, &whole_session.refresh, "refresh_token")
            .await
            .status(),
        StatusCode::OK
    );
    // Nothing revoked, nothing recorded.
    assert_eq!(
        revoke(&app, &client, "not-a-token", "access_token").await.status(),
        StatusCode::OK
    );

    let (status, dashboard) = browser.get_text("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let by_client = format!("by the service &#34;{name}&#34;");
    let lines: Vec<&str> = dashboard
        .lines()
        .filter(|line| line.contains("Revoked through a connected service"))
        .collect();
    assert_eq!(lines.len(), 2, "{dashboard}");
    assert!(
        lines.iter().any(|line| line.contains("an access token of")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|line| line.contains("the login session of")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|line| line.contains(&by_client)), "{lines:?}");
}
