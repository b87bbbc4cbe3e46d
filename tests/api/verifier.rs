//! The example service of `examples/resource_server.rs`, with the verifier crate, beside a real
//! revocable: it accepts a token, refuses it promptly once revoked on revocable, keeps refusing it
//! after its feed connection is cut, and never accepts blindly when it cannot check.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use revocable_verifier::{Config, Verifier};
use serde_json::Value;
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_app_with};
use crate::oauth::add_client;

#[allow(dead_code)]
#[path = "../../examples/resource_server.rs"]
mod resource_server;

/// A TCP proxy in front of revocable whose connections can all be cut at once.
struct Proxy {
    url: String,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn to(target: &str) -> Self {
        let target: SocketAddr = target.trim_start_matches("http://").parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cut, watching) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = watching.clone();
                if *cut.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { url, cut }
    }

    fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

struct Example {
    url: String,
    verifier: Verifier,
    http: reqwest::Client,
    feed: Proxy,
    issuer: Proxy,
}

impl Example {
    /// The example service, reaching revocable through two proxies: one for the feed, one for
    /// the JWKS and introspection.
    async fn beside(app: &TestApp) -> Self {
        let client = add_client(app).await;
        let feed = Proxy::to(&app.address).await;
        let issuer = Proxy::to(&app.address).await;
        let mut config = Config::new(&issuer.url, &client.id, &client.secret);
        // The proxy is not the issuer: tokens name the app's own address.
        config.issuer = app.address.clone();
        config.feed_url = Some(feed.url.clone());
        config.leeway = Duration::ZERO;
        config.feed_silence_limit = Duration::from_secs(2);
        config.request_timeout = Duration::from_secs(1);
        let verifier = Verifier::start(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = resource_server::serve(listener, verifier.clone(), 1).unwrap();
        tokio::spawn(server);
        let example = Self {
            url,
            verifier,
            http: reqwest::Client::new(),
            feed,
            issuer,
        };
        example.wait_for_source("feed").await;
        example
    }

    async fn hello(&self, token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/hello", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn wait_for_source(&self, source: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status: Value = self
                .http
                .get(format!("{}/status", self.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["revocations_from"] == source {
                return;
            }
            assert!(Instant::now() < deadline, "revocations never came from the {source}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the example refuses the token; the refusal's body.
    async fn refused(&self, token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.hello(token).await;
            if status == StatusCode::UNAUTHORIZED {
                return body;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(Instant::now() < deadline, "the example still accepts a revoked token");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn eddsa_app() -> TestApp {
    spawn_app_with(&[("JWT_ALG", "EdDSA"), ("FEED_HEARTBEAT", "500ms")]).await
}

#[tokio::test]
async fn the_example_refuses_a_token_once_its_user_logs_out_everywhere_and_still_after_its_feed_is_cut() {
    let app = eddsa_app().await;
    let example = Example::beside(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let (status, body) = example.hello(&tokens.access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], user.id.as_str());

    assert_eq!(
        app.bearer_post("/api/logout-all", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let refusal = example.refused(&tokens.access).await;
    assert!(refusal["reason"].as_str().unwrap().starts_with("revoked_"), "{refusal}");
    assert!(
        example.verifier.feed_is_live(),
        "refused from the feed's state, not by introspection"
    );

    example.feed.cut();
    example.wait_for_source("introspection").await;
    let (status, body) = example.hello(&tokens.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["reason"], "inactive", "introspected while the feed is cut");

    // Revoked while the feed is cut: introspection still catches it.
    let again = app.token_login(&user).await;
    assert_eq!(example.hello(&again.access).await.0, StatusCode::OK);
    app.bearer_post("/api/logout", &again.access, None).await;
    assert_eq!(example.hello(&again.access).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_example_refuses_only_the_device_that_was_signed_out() {
    let app = eddsa_app().await;
    let example = Example::beside(&app).await;
    let user = app.new_user().await;
    let phone = app.token_login(&user).await;
    let laptop = app.token_login(&user).await;
    assert_eq!(example.hello(&phone.access).await.0, StatusCode::OK);

    assert_eq!(
        app.bearer_delete(&format!("/api/sessions/{}", phone.session_id), &laptop.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let refusal = example.refused(&phone.access).await;
    assert!(
        ["revoked_session", "revoked_jti"].contains(&refusal["reason"].as_str().unwrap()),
        "{refusal}"
    );
    assert_eq!(example.hello(&laptop.access).await.0, StatusCode::OK);

    example.feed.cut();
    example.wait_for_source("introspection").await;
    assert_eq!(example.hello(&phone.access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(example.hello(&laptop.access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn with_neither_feed_nor_introspection_the_example_answers_503_never_200() {
    let app = eddsa_app().await;
    let example = Example::beside(&app).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(example.hello(&tokens.access).await.0, StatusCode::OK);

    example.feed.cut();
    example.issuer.cut();
    example.wait_for_source("introspection").await;
    let response = example
        .http
        .get(format!("{}/hello", example.url))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let signature_only = example
        .http
        .get(format!("{}/hello/signature-only", example.url))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        signature_only.status(),
        StatusCode::OK,
        "the key is cached: signatures still verify"
    );
}

#[tokio::test]
async fn the_example_refuses_forged_and_foreign_tokens_and_follows_a_key_rotation() {
    let app = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "0")]).await;
    let example = Example::beside(&app).await;
    let user = app.new_user().await;
    let before = app.token_login(&user).await;
    assert_eq!(example.hello(&before.access).await.0, StatusCode::OK);

    let hs256 = spawn_app_with(&[]).await;
    let foreign = hs256.token_login(&hs256.new_user().await).await;
    let (_, body) = example.hello(&foreign.access).await;
    assert_eq!(body["reason"], "bad_signature");
    let other_eddsa = eddsa_app().await;
    let stranger = other_eddsa.token_login(&other_eddsa.new_user().await).await;
    assert_eq!(example.hello(&stranger.access).await.1["reason"], "bad_signature");
    assert_eq!(example.hello("not-a-token").await.1["reason"], "malformed");

    // A new key, unknown to the example's cached JWKS: refetched on its unknown kid.
    revocable::auth::keys::rotate(&app.state.settings, &app.state.db, &app.state.revocation)
        .await
        .unwrap();
    app.state.keys.reload(&app.state.db).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = app.token_login(&user).await;
    assert_eq!(example.hello(&after.access).await.0, StatusCode::OK);
    assert_eq!(example.hello(&before.access).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_example_keeps_only_verified_tokens_and_forgets_them_once_their_key_is_withdrawn() {
    let file = std::env::temp_dir().join(format!(
        "revocable-verifier-keys-{}.json",
        revocable::domain::RandomId::generate()
    ));
    let write = |key: &revocable::auth::keys::Ed25519Key| {
        std::fs::write(&file, serde_json::json!({ "keys": [key.private_jwk()] }).to_string()).unwrap();
    };
    write(&revocable::auth::keys::Ed25519Key::generate(0, 0));
    let path = file.display().to_string();
    let app = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "0"), ("JWT_KEYS_FILE", &path)]).await;
    let example = Example::beside(&app).await;
    let user = app.new_user().await;
    let login = app.token_login(&user).await;
    assert_eq!(example.hello(&login.access).await.0, StatusCode::OK);
    assert_eq!(example.hello(&login.access).await.0, StatusCode::OK);
    assert_eq!(example.verifier.verified_tokens_held(), 1);

    // Refused tokens are never kept.
    // One character inside the signature, where all six bits count (the last one carries padding
    // bits, and changing those makes the token malformed rather than wrongly signed).
    let mut altered = login.access.clone().into_bytes();
    let inside = login.access.rfind('.').unwrap() + 10;
    altered[inside] = if altered[inside] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(example.hello(&altered).await.1["reason"], "bad_signature");
    for index in 0..20 {
        assert_eq!(
            example.hello(&format!("garbage{index}.x.y")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(example.verifier.verified_tokens_held(), 1);

    // The key is withdrawn: once the JWKS in hand is stale the example reads it again, and the
    // token it had verified is refused.
    write(&revocable::auth::keys::Ed25519Key::generate(0, 0));
    app.state.keys.reload(&app.state.db).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(example.hello(&login.access).await.1["reason"], "bad_signature");
    assert_eq!(example.verifier.verified_tokens_held(), 0);
    std::fs::remove_file(&file).ok();
}

/// A SET revocable never signed: the claims of a real one, under the kid of revocable's SET key,
/// signed with another RSA key.
fn forged_set(kid: &str, claims: &Value) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let der = other.to_pkcs1_der().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("secevent+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_verifier_on_a_shared_signals_poll_stream_refuses_a_revoked_token_and_ignores_a_forged_set() {
    use crate::ssf::{POLL, create_stream, every_event, ssf_client};
    let app = eddsa_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let stream = create_stream(
        &app,
        &token,
        &serde_json::json!({ "events_requested": every_event(), "delivery": { "method": POLL } }),
    )
    .await;
    let stream_id = stream["stream_id"].as_str().unwrap().to_owned();
    let mut config = Config::new(&app.address, &client.id, &client.secret).revocations_from_ssf_poll(&stream_id);
    config.leeway = Duration::ZERO;
    config.request_timeout = Duration::from_secs(2);
    let verifier = Verifier::start(config);
    let user = app.new_user().await;
    let kept = app.token_login(&user).await;
    let revoked = app.token_login(&user).await;
    assert!(verifier.verify(&kept.access).await.is_ok());

    // First in the stream: a forged session-revoked for the session that must stay.
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let set_kid = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kty"] == "RSA")
        .and_then(|key| key["kid"].as_str())
        .unwrap()
        .to_owned();
    let claims = serde_json::json!({
        "iss": app.state.settings.issuer(),
        "aud": client.id,
        "iat": 1,
        "jti": "forged-1",
        "sub_id": {
            "format": "complex",
            "user": { "format": "iss_sub", "iss": app.state.settings.issuer(), "sub": user.id },
            "session": { "format": "opaque", "id": kept.session_id },
        },
        "events": { crate::ssf::SESSION_REVOKED: { "event_timestamp": 1 } },
    });
    let db = app.db().await;
    let mut transaction = db.begin().await.unwrap();
    revocable::store::ssf_streams::push_event(
        &mut transaction,
        &stream_id,
        "forged-1",
        &forged_set(&set_kid, &claims),
        revocable::domain::now_millis(),
    )
    .await
    .unwrap();
    transaction.commit().await.unwrap();

    // Then a real revocation, delivered after it.
    assert_eq!(
        app.bearer_post("/api/logout", &revoked.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match verifier.verify(&revoked.access).await {
            Err(rejection) if verifier.feed_is_live() => {
                assert!(
                    ["revoked_session", "revoked_jti"].contains(&rejection.reason()),
                    "{rejection}"
                );
                break;
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "the revocation never reached the verifier");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The forged SET came first and was applied to nothing; revocable was told it failed.
    assert!(verifier.feed_is_live());
    assert_eq!(
        verifier.verify(&kept.access).await.map(|claims| claims.sid),
        Ok(kept.session_id.clone())
    );
    // Acknowledgements and errors travel with the next poll.
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssf_events WHERE stream_id = $1")
            .bind(&stream_id)
            .fetch_one(&db)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} SETs neither acknowledged nor reported in setErrs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
