//! The Shared Signals transmitter: its metadata, the stream lifecycle, one client's streams out of
//! every other's reach, each revocation as its SET, and RFC 8936 poll with acknowledgements.

use reqwest::StatusCode;
use serde_json::{Value, json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use crate::oauth::{TestClient, add_client};

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub const ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
pub const POLL: &str = "urn:ietf:rfc:8936";
pub const PUSH: &str = "urn:ietf:rfc:8935";

/// A client of its own and an access token for `scope`.
pub async fn ssf_client(app: &TestApp, scope: &str) -> (TestClient, String) {
    let client = add_client(app).await;
    let response = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    (client, token)
}

pub fn every_event() -> Value {
    json!([SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_PURGED])
}

pub async fn create_stream(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.bearer_post("/ssf/streams", token, Some(body.clone())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub async fn poll(app: &TestApp, token: &str, stream_id: &str, body: Value) -> reqwest::Response {
    app.bearer_post(&format!("/ssf/poll/{stream_id}"), token, Some(body))
        .await
}

/// Polls without waiting: the SETs (jti → token) and `moreAvailable`.
pub async fn poll_now(app: &TestApp, token: &str, stream_id: &str, body: Value) -> (Vec<(String, String)>, bool) {
    let mut body = body;
    body["returnImmediately"] = true.into();
    let response = poll(app, token, stream_id, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let sets = answer["sets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(jti, set)| (jti.clone(), set.as_str().unwrap().to_owned()))
        .collect();
    (sets, answer["moreAvailable"].as_bool().unwrap())
}

/// Verifies a SET with the RS256 key of the JWKS: header, signature, `iss`, `aud`; returns the
/// claims after checking there is exactly one event.
pub async fn verified(app: &TestApp, set: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(set).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let kid = header.kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("the SET's key is in the JWKS");
    assert_eq!(jwk["kty"], "RSA");
    let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap().len();
    let key =
        jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    assert!(modulus >= 256, "a 2048-bit key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.state.settings.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(set, &key, &validation).unwrap().claims;
    assert_eq!(claims["events"].as_object().unwrap().len(), 1, "one event per SET");
    assert!(claims["jti"].is_string() && claims["iat"].is_i64());
    claims
}

/// The event type and payload of a SET's one event.
pub fn event_of(claims: &Value) -> (String, Value) {
    let (name, payload) = claims["events"].as_object().unwrap().iter().next().unwrap();
    (name.clone(), payload.clone())
}

/// Polls, acknowledging, until `count` SETs have come; returns their verified claims in order.
pub async fn receive(app: &TestApp, token: &str, stream_id: &str, audience: &str, count: usize) -> Vec<Value> {
    let mut received = Vec::new();
    for _ in 0..400 {
        // One at a time: `sets` is a JSON object, whose members have no order.
        let (sets, _) = poll_now(app, token, stream_id, json!({ "maxEvents": 1 })).await;
        let ack: Vec<String> = sets.iter().map(|(jti, _)| jti.clone()).collect();
        for (_, set) in &sets {
            received.push(verified(app, set, audience).await);
        }
        if !ack.is_empty() {
            poll_now(app, token, stream_id, json!({ "ack": ack, "maxEvents": 0 })).await;
        }
        if received.len() >= count {
            break;
        }
        if sets.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    assert_eq!(received.len(), count, "{received:#?}");
    received
}

#[tokio::test]
async fn the_transmitter_metadata_names_every_endpoint_and_both_delivery_methods() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/ssf-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = response.json().await.unwrap();
    let origin = app.state.settings.public_origin();
    assert_eq!(metadata["spec_version"], "1_0");
    assert_eq!(metadata["issuer"], app.state.settings.issuer());
    assert_eq!(metadata["jwks_uri"], format!("{origin}/.well-known/jwks.json"));
    assert_eq!(metadata["delivery_methods_supported"], json!([PUSH, POLL]));
    assert_eq!(metadata["configuration_endpoint"], format!("{origin}/ssf/streams"));
    for field in [
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ] {
        assert!(metadata[field].as_str().unwrap().starts_with(&origin), "{field}");
    }
    assert_eq!(metadata["default_subjects"], "ALL");
}

#[tokio::test]
async fn a_stream_is_created_read_updated_replaced_paused_verified_and_deleted() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let created = create_stream(
        &app,
        &token,
        &json!({ "events_requested": [SESSION_REVOKED, "urn:example:unknown"], "delivery": { "method": POLL }, "description": "one" }),
    )
    .await;
    let stream_id = created["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(created["aud"], client.id.as_str());
    assert_eq!(created["iss"], app.state.settings.issuer());
    assert_eq!(created["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(
        created["delivery"]["endpoint_url"],
        app.url(&format!("/ssf/poll/{stream_id}"))
            .replace(&app.address, &app.state.settings.public_origin())
    );
    assert_eq!(created["events_supported"], every_event());

    let read: Value = app
        .api
        .get(app.url(&format!("/ssf/streams?stream_id={stream_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);
    let listed: Value = app
        .api
        .get(app.url("/ssf/streams"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([created]));

    let patch = |body: Value| {
        app.api
            .patch(app.url("/ssf/streams"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let updated: Value = patch(json!({ "stream_id": stream_id, "description": "two" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["description"], "two");
    assert_eq!(updated["events_requested"], created["events_requested"]);
    let refused = patch(json!({ "stream_id": stream_id, "aud": "someone-else" }))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let replaced: Value = app
        .api
        .put(app.url("/ssf/streams"))
        .bearer_auth(&token)
        .json(&json!({ "stream_id": stream_id, "events_requested": every_event(), "delivery": { "method": POLL } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        replaced.get("description").is_none(),
        "PUT replaces the whole configuration"
    );
    assert_eq!(replaced["events_delivered"], every_event());

    // Pausing sends stream-updated; a paused stream hands nothing out but keeps its events.
    let paused = app
        .bearer_post(
            "/ssf/status",
            &token,
            Some(json!({ "stream_id": stream_id, "status": "paused", "reason": "maintenance" })),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    assert_eq!(paused.json::<Value>().await.unwrap()["status"], "paused");
    let status: Value = app
        .api
        .get(app.url(&format!("/ssf/status?stream_id={stream_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({ "stream_id": stream_id, "status": "paused", "reason": "maintenance" })
    );
    let verify = app
        .bearer_post(
            "/ssf/verify",
            &token,
            Some(json!({ "stream_id": stream_id, "state": "abc-123" })),
        )
        .await;
    assert_eq!(verify.status(), StatusCode::NO_CONTENT);
    assert!(poll_now(&app, &token, &stream_id, json!({})).await.0.is_empty());
    app.bearer_post(
        "/ssf/status",
        &token,
        Some(json!({ "stream_id": stream_id, "status": "enabled" })),
    )
    .await;
    let events = receive(&app, &token, &stream_id, &client.id, 3).await;
    let kinds: Vec<(String, Value)> = events.iter().map(event_of).collect();
    assert_eq!(
        kinds[0],
        (
            STREAM_UPDATED.to_owned(),
            json!({ "status": "paused", "reason": "maintenance" })
        )
    );
    assert_eq!(kinds[1], (VERIFICATION.to_owned(), json!({ "state": "abc-123" })));
    assert_eq!(kinds[2], (STREAM_UPDATED.to_owned(), json!({ "status": "enabled" })));
    assert_eq!(events[1]["sub_id"], json!({ "format": "opaque", "id": stream_id }));

    let bad_status = app
        .bearer_post(
            "/ssf/status",
            &token,
            Some(json!({ "stream_id": stream_id, "status": "asleep" })),
        )
        .await;
    assert_eq!(bad_status.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = app
        .api
        .delete(app.url(&format!("/ssf/streams?stream_id={stream_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app
        .api
        .get(app.url(&format!("/ssf/streams?stream_id={stream_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stream_is_invisible_to_every_other_client_and_needs_the_right_token() {
    let app = spawn_app().await;
    let (_, owner) = ssf_client(&app, "ssf.manage").await;
    let (_, other) = ssf_client(&app, "ssf.manage ssf.read").await;
    let stream = create_stream(&app, &owner, &json!({ "events_requested": every_event() })).await;
    let stream_id = stream["stream_id"].as_str().unwrap();
    let by_id = format!("/ssf/streams?stream_id={stream_id}");
    assert_eq!(
        app.api
            .get(app.url(&by_id))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let listed: Value = app
        .api
        .get(app.url("/ssf/streams"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    for (path, body) in [
        ("/ssf/status", json!({ "stream_id": stream_id, "status": "disabled" })),
        ("/ssf/verify", json!({ "stream_id": stream_id })),
        (
            "/ssf/subjects/remove",
            json!({ "stream_id": stream_id, "subject": { "format": "opaque", "id": "x" } }),
        ),
        (&format!("/ssf/poll/{stream_id}"), json!({ "returnImmediately": true })),
    ] {
        assert_eq!(
            app.bearer_post(path, &other, Some(body)).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let patched = app
        .api
        .patch(app.url("/ssf/streams"))
        .bearer_auth(&other)
        .json(&json!({ "stream_id": stream_id, "description": "mine" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.api
            .delete(app.url(&by_id))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api
            .get(app.url(&by_id))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // ssf.read polls but does not configure; a person's token and no token are refused.
    let (_, reader) = ssf_client(&app, "ssf.read").await;
    let refused = app.bearer_post("/ssf/streams", &reader, Some(json!({}))).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(refused).await["error"], "insufficient_scope");
    let user = app.new_user().await;
    let person = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/ssf/streams", &person.access, Some(json!({})))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let anonymous = app
        .api
        .post(app.url("/ssf/streams"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Bad configurations get a clear error.
    for body in [
        json!({ "delivery": { "method": PUSH, "endpoint_url": "ftp://example.com/x" } }),
        json!({ "delivery": { "method": PUSH } }),
        json!({ "delivery": { "method": "carrier-pigeon" } }),
        json!({ "events_requested": "all" }),
    ] {
        assert_eq!(
            app.bearer_post("/ssf/streams", &owner, Some(body.clone()))
                .await
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    assert_eq!(
        app.bearer_post("/ssf/streams", &owner, Some(json!([1]))).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_verification_sooner_than_min_verification_interval_is_answered_429() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": every_event() })).await;
    assert_eq!(stream["min_verification_interval"], 30, "the default, in seconds");
    let stream_id = stream["stream_id"].as_str().unwrap().to_owned();
    let verify = |stream_id: String, state: &'static str| {
        app.bearer_post(
            "/ssf/verify",
            &token,
            Some(json!({ "stream_id": stream_id, "state": state })),
        )
    };

    assert_eq!(
        verify(stream_id.clone(), "first").await.status(),
        StatusCode::NO_CONTENT
    );
    let again = verify(stream_id.clone(), "too soon").await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = again.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(error_body(again).await["error"], "rate_limited", "JSON, not a page");

    // Each stream counts its own requests.
    let other = create_stream(&app, &token, &json!({ "events_requested": every_event() })).await;
    let other_id = other["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(verify(other_id, "other").await.status(), StatusCode::NO_CONTENT);

    // Once the interval has passed since the last request, the next one is welcome.
    sqlx::query("UPDATE ssf_streams SET verification_requested_at = verification_requested_at - 30000 WHERE id = $1")
        .bind(&stream_id)
        .execute(&app.db().await)
        .await
        .unwrap();
    assert_eq!(
        verify(stream_id.clone(), "later").await.status(),
        StatusCode::NO_CONTENT
    );

    // The transmitter supplies it; a receiver cannot shorten it.
    let shorter = app
        .api
        .patch(app.url("/ssf/streams"))
        .bearer_auth(&token)
        .json(&json!({ "stream_id": stream_id, "min_verification_interval": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(shorter.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let events = receive(&app, &token, &stream_id, &client.id, 2).await;
    let states: Vec<Value> = events.iter().map(|event| event_of(event).1["state"].clone()).collect();
    assert_eq!(
        states,
        vec![json!("first"), json!("later")],
        "the refused request queued nothing"
    );
}

#[tokio::test]
async fn a_min_verification_interval_of_zero_lets_every_verification_through() {
    let app = spawn_app_with(&[("SSF_MIN_VERIFICATION_INTERVAL", "0")]).await;
    let (_, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(&app, &token, &json!({ "events_requested": every_event() })).await;
    assert_eq!(stream["min_verification_interval"], 0);
    for _ in 0..2 {
        let verify = app
            .bearer_post("/ssf/verify", &token, Some(json!({ "stream_id": stream["stream_id"] })))
            .await;
        assert_eq!(verify.status(), StatusCode::NO_CONTENT);
    }
}
