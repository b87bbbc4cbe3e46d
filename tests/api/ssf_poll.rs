//! RFC 8936 poll with acknowledgements, set errors and long polling; subjects left out and
//! disabled streams.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::ssf::{
    SESSION_REVOKED, STREAM_UPDATED, create_stream, event_of, poll, poll_now, receive, ssf_client, verified,
};

#[tokio::test]
async fn poll_hands_events_out_until_acknowledged_and_a_set_error_also_removes_one() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage ssf.read").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": [SESSION_REVOKED] })).await;
    let stream_id = stream["stream_id"].as_str().unwrap();
    let user = app.new_user().await;
    for _ in 0..3 {
        let tokens = app.token_login(&user).await;
        app.bearer_post("/api/logout", &tokens.access, None).await;
    }
    let (first, more) = poll_now(&app, &token, stream_id, json!({ "maxEvents": 2 })).await;
    assert_eq!(first.len(), 2);
    assert!(more);
    // Not acknowledged: handed out again.
    let (again, _) = poll_now(&app, &token, stream_id, json!({ "maxEvents": 2 })).await;
    assert_eq!(again, first);
    let ack = json!({ "ack": [first[0].0], "setErrs": { first[1].0.clone(): { "err": "invalid_request", "description": "test" } }, "maxEvents": 5 });
    let (rest, more) = poll_now(&app, &token, stream_id, ack).await;
    assert_eq!(rest.len(), 1);
    assert!(!more);
    assert!(rest[0].0 != first[0].0 && rest[0].0 != first[1].0);
    verified(&app, &rest[0].1, &client.id).await;
    let (none, _) = poll_now(&app, &token, stream_id, json!({ "ack": [rest[0].0] })).await;
    assert!(none.is_empty());
    let bad = poll(&app, &token, stream_id, json!({ "maxEvents": "ten" })).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Long poll: the wait ends when an event comes.
    let waiting = poll(&app, &token, stream_id, json!({ "returnImmediately": false }));
    let revoking = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let tokens = app.token_login(&user).await;
        app.bearer_post("/api/logout", &tokens.access, None).await;
    };
    let (answer, ()) = tokio::join!(waiting, revoking);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["sets"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn a_removed_subject_is_left_out_and_a_disabled_stream_drops_events() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": [SESSION_REVOKED] })).await;
    let stream_id = stream["stream_id"].as_str().unwrap();
    let quiet = app.new_user().await;
    let heard = app.new_user().await;
    let removed = app
        .bearer_post(
            "/ssf/subjects/remove",
            &token,
            Some(json!({ "stream_id": stream_id, "subject": { "format": "email", "email": quiet.email } })),
        )
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    for user in [&quiet, &heard] {
        let tokens = app.token_login(user).await;
        app.bearer_post("/api/logout", &tokens.access, None).await;
    }
    let events = receive(&app, &token, stream_id, &client.id, 1).await;
    assert_eq!(events[0]["sub_id"]["user"]["sub"], heard.id.as_str());
    let added = app.bearer_post("/ssf/subjects/add", &token, Some(json!({ "stream_id": stream_id, "subject": { "format": "iss_sub", "iss": app.state.settings.issuer(), "sub": quiet.id } }))).await;
    assert_eq!(added.status(), StatusCode::OK);
    let unknown_format = app
        .bearer_post(
            "/ssf/subjects/add",
            &token,
            Some(json!({ "stream_id": stream_id, "subject": { "format": "phone_number" } })),
        )
        .await;
    assert_eq!(unknown_format.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.bearer_post(
        "/ssf/status",
        &token,
        Some(json!({ "stream_id": stream_id, "status": "disabled" })),
    )
    .await;
    let tokens = app.token_login(&quiet).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    app.bearer_post(
        "/ssf/status",
        &token,
        Some(json!({ "stream_id": stream_id, "status": "enabled" })),
    )
    .await;
    let tokens = app.token_login(&quiet).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    // The log-out while disabled is dropped; the status changes and the last log-out come.
    let events = receive(&app, &token, stream_id, &client.id, 3).await;
    assert_eq!(
        event_of(&events[0]),
        (STREAM_UPDATED.to_owned(), json!({ "status": "disabled" }))
    );
    assert_eq!(
        event_of(&events[1]),
        (STREAM_UPDATED.to_owned(), json!({ "status": "enabled" }))
    );
    assert_eq!(events[2]["sub_id"]["session"]["id"], tokens.session_id.as_str());
}
