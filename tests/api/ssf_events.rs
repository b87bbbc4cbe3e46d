//! Each revocation becomes its standard SET: CAEP session-revoked (a session, a user, one
//! token), credential-change, RISC account-purged.

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
