//! Each revocation becomes its standard SET: CAEP session-revoked (a session, a user, one
//! token), credential-change (a password, a second factor), RISC account-purged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestUser, spawn_app};
use crate::ssf::{
    ACCOUNT_PURGED, CREDENTIAL_CHANGE, SESSION_REVOKED, create_stream, event_of, every_event, receive, ssf_client,
};

const NEW_PASSWORD: &str = "a whole new passphrase 42";

fn token_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn each_revocation_becomes_its_standard_event_with_a_subject_in_an_ssf_format() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": every_event() })).await;
    let stream_id = stream["stream_id"].as_str().unwrap();
    let issuer = app.state.settings.issuer();
    let user = app.new_user().await;
    let user_subject = json!({ "format": "iss_sub", "iss": issuer, "sub": user.id });

    // One device logs out: session-revoked for the user and that session, once.
    let first = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout", &first.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let events = receive(&app, &token, stream_id, &client.id, 1).await;
    let (kind, payload) = event_of(&events[0]);
    assert_eq!(kind, SESSION_REVOKED);
    assert_eq!(
        events[0]["sub_id"],
        json!({ "format": "complex", "user": user_subject, "session": { "format": "opaque", "id": first.session_id } })
    );
    assert_eq!(payload["initiating_entity"], "user");
    assert_eq!(payload["reason_admin"]["en"], "The user logged out.");
    assert!(payload["event_timestamp"].is_i64());
    assert!(events[0]["txn"].is_string());

    // One access token revoked by a service: session-revoked naming the token by jwt_id.
    let second = app.token_login(&user).await;
    let jti = token_claims(&second.access)["jti"].as_str().unwrap().to_owned();
    let revoked = app
        .api
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", second.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let events = receive(&app, &token, stream_id, &client.id, 1).await;
    assert_eq!(event_of(&events[0]).0, SESSION_REVOKED);
    assert_eq!(
        events[0]["sub_id"]["session"],
        json!({ "format": "jwt_id", "iss": issuer, "jti": jti })
    );

    // A password change: credential-change for the user.
    let third = app.token_login(&user).await;
    let changed = app
        .bearer_post(
            "/api/password",
            &third.access,
            Some(json!({ "current_password": user.password, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let fresh: Value = changed.json().await.unwrap();
    let user = TestUser {
        password: NEW_PASSWORD.into(),
        ..user
    };
    // The second session (whose one token alone was revoked) ends with the change.
    let events = receive(&app, &token, stream_id, &client.id, 2).await;
    let (kind, payload) = event_of(&events[0]);
    assert_eq!(kind, CREDENTIAL_CHANGE);
    assert_eq!(events[1]["sub_id"]["session"]["id"], second.session_id.as_str());
    assert_eq!(
        event_of(&events[1]).1["reason_admin"]["en"],
        "The user changed their password."
    );
    assert_eq!(events[0]["sub_id"], user_subject);
    assert_eq!(
        (payload["credential_type"].as_str(), payload["change_type"].as_str()),
        (Some("password"), Some("update"))
    );

    // Log out everywhere: one session-revoked for the whole user.
    let access = fresh["access_token"].as_str().unwrap().to_owned();
    app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout-all", &access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let events = receive(&app, &token, stream_id, &client.id, 1).await;
    assert_eq!(event_of(&events[0]).0, SESSION_REVOKED);
    assert_eq!(events[0]["sub_id"], user_subject);

    // Account deletion: RISC account-purged.
    let last = app.token_login(&user).await;
    let deleted = app
        .api
        .delete(app.url("/api/account"))
        .bearer_auth(&last.access)
        .json(&json!({ "password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let events = receive(&app, &token, stream_id, &client.id, 1).await;
    assert_eq!(event_of(&events[0]), (ACCOUNT_PURGED.to_owned(), json!({})));
    assert_eq!(events[0]["sub_id"], user_subject);
}

#[tokio::test]
async fn second_factor_changes_are_credential_changes_of_the_authenticator_app() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": every_event() })).await;
    let stream_id = stream["stream_id"].as_str().unwrap();
    let issuer = app.state.settings.issuer();
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let password = json!({ "password": user.password });

    // Turned on: the app credential is created.
    let started = app
        .bearer_post("/api/mfa/totp", &tokens.access, Some(password.clone()))
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let started: Value = started.json().await.unwrap();
    let secret = started["secret"].as_str().unwrap();
    let confirmed = app
        .bearer_post(
            "/api/mfa/totp/confirm",
            &tokens.access,
            Some(json!({ "code": crate::second_factor::code(secret, 0) })),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    // New recovery codes: an update of that credential.
    let replaced = app
        .bearer_post("/api/mfa/recovery-codes", &tokens.access, Some(password.clone()))
        .await;
    let status = replaced.status();
    assert_eq!(status, StatusCode::OK, "{}", replaced.text().await.unwrap());
    // Turned off: the credential is deleted.
    let off = app
        .api
        .delete(app.url("/api/mfa/totp"))
        .bearer_auth(&tokens.access)
        .json(&password)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NO_CONTENT);

    let events = receive(&app, &token, stream_id, &client.id, 3).await;
    let mut changes = Vec::new();
    for event in &events {
        let (kind, payload) = event_of(event);
        assert_eq!(kind, CREDENTIAL_CHANGE);
        assert_eq!(
            event["sub_id"],
            json!({ "format": "iss_sub", "iss": issuer, "sub": user.id })
        );
        assert_eq!(payload["initiating_entity"], "user");
        assert!(payload["reason_admin"]["en"].as_str().unwrap().ends_with('.'));
        changes.push((
            payload["credential_type"].as_str().unwrap().to_owned(),
            payload["change_type"].as_str().unwrap().to_owned(),
        ));
    }
    let expected = [("app", "create"), ("app", "update"), ("app", "delete")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(changes, expected);
    // A second factor's change revokes nothing: the token that made them still works.
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::OK);
    assert_eq!(app.status_of("denylist", &tokens.access).await, StatusCode::OK);
}
