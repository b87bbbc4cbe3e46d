//! What other services expect of an authorization server, checked as they check it: RFC 8414
//! metadata, the client-credentials grant and its errors, RFC 7662 / RFC 9068 introspection
//! answers, a key rotation every instance publishes at once, a feed that lets the server stop,
//! one event per revocation, and an OpenAPI document a generator can use.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use crate::oauth::{Feed, TestClient, add_client, introspect, introspect_with_hint};

/// The claims of a JWT, read without verifying it (the server verified it when it signed).
fn payload(token: &str) -> Value {
    let encoded = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
}

async fn client_token(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    app.api
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn granted(app: &TestApp, client: &TestClient, scope: Option<&str>) -> Value {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = client_token(app, client, &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn metadata(app: &TestApp) -> Value {
    let response = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_metadata_names_the_issuer_every_endpoint_and_how_clients_authenticate() {
    let app = spawn_app().await;
    let document = metadata(&app).await;
    assert_eq!(document["issuer"], app.address.as_str(), "{document}");
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("revocation_endpoint", "/oauth/revoke"),
    ] {
        assert_eq!(document[field], format!("{}{path}", app.address), "{field}");
    }
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(
            document[field],
            serde_json::json!(["client_secret_basic", "client_secret_post"]),
            "{field}"
        );
    }
    assert_eq!(
        document["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(document["response_types_supported"], serde_json::json!([]));
    assert_eq!(
        document["scopes_supported"],
        serde_json::json!(["ssf.manage", "ssf.read", "introspect", "revoke"])
    );

    // RFC 9068: a person's access token names the same issuer, and the client it was issued to.
    let tokens = app.token_login(&app.new_user().await).await;
    let claims = payload(&tokens.access);
    assert_eq!(claims["iss"], document["issuer"]);
    assert_eq!(claims["client_id"], "revocable");
    // The endpoints it names are the ones that answer.
    let jwks = app
        .api
        .get(document["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
}

#[tokio::test]
async fn public_url_becomes_the_issuer_and_jwt_issuer_still_overrides_it() {
    let app = spawn_app_with(&[("PUBLIC_URL", "https://accounts.example.com/")]).await;
    let document = metadata(&app).await;
    assert_eq!(document["issuer"], "https://accounts.example.com");
    assert_eq!(document["token_endpoint"], "https://accounts.example.com/oauth/token");
    let tokens = app.token_login(&app.new_user().await).await;
    assert_eq!(payload(&tokens.access)["iss"], "https://accounts.example.com");
    assert_eq!(app.status_of("version", &tokens.access).await, StatusCode::OK);

    let named = spawn_app_with(&[
        ("PUBLIC_URL", "https://accounts.example.com"),
        ("JWT_ISSUER", "revocable"),
    ])
    .await;
    let document = metadata(&named).await;
    assert_eq!(document["issuer"], "revocable");
    assert_eq!(
        document["introspection_endpoint"],
        "https://accounts.example.com/oauth/introspect"
    );
    let tokens = named.token_login(&named.new_user().await).await;
    assert_eq!(payload(&tokens.access)["iss"], "revocable");
    assert_eq!(named.status_of("version", &tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn a_client_gets_an_rfc_9068_token_of_its_own_through_either_authentication_method() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let answer = granted(&app, &client, Some("introspect ssf.read")).await;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "ssf.read introspect");
    let expires_in = answer["expires_in"].as_u64().unwrap();
    assert!((1..=300).contains(&expires_in), "short-lived: {expires_in}");
    assert!(
        answer.get("refresh_token").is_none(),
        "no refresh token (RFC 6749 4.4.3)"
    );
    let token = answer["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = payload(token);
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "ssf.read introspect");
    assert_eq!(claims["iss"], app.address.as_str());
    assert!(claims.get("sid").is_none() && claims.get("ver").is_none(), "{claims}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        expires_in as i64
    );

    // client_secret_post, and no scope: every scope the client may have.
    let response = app
        .api
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["scope"], "ssf.manage ssf.read introspect revoke");

    // Introspection tells a resource server what it is.
    let about = introspect(&app, &client, token).await;
    assert_eq!(about["active"], true, "{about}");
    assert_eq!(about["token_type"], "Bearer");
    assert_eq!(about["client_id"], client.id.as_str());
    assert_eq!(about["sub"], client.id.as_str());
    assert_eq!(about["scope"], "ssf.read introspect");
}

#[tokio::test]
async fn a_clients_own_token_is_refused_by_every_user_facing_strategy_with_a_reason() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let token = granted(&app, &client, None).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for strategy in ["stateless", "version", "denylist", "allowlist"] {
        let response = app.me(strategy, &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{strategy}");
        assert_eq!(error_body(response).await["reason"], "client_token", "{strategy}");
    }
    for path in ["/api/logout", "/api/logout-all"] {
        let response = app.bearer_post(path, &token, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(error_body(response).await["reason"], "client_token", "{path}");
    }
    let sessions = app
        .api
        .get(app.url("/api/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_endpoint_answers_each_mistake_with_its_rfc_6749_error() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form, StatusCode, &str); 5] = [
        (&[("scope", "revoke")], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            &[("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            &[("grant_type", "authorization_code")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            &[("grant_type", "client_credentials"), ("scope", "admin")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            &[("grant_type", "client_credentials"), ("scope", "revoke REVOKE")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ];
    for (form, status, error) in cases {
        let response = client_token(&app, &client, form).await;
        assert_eq!(response.status(), status, "{form:?}");
        assert_eq!(error_body(response).await["error"], error, "{form:?}");
    }
    let wrong_secret = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong_secret.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_body(wrong_secret).await["error"], "invalid_client");
    let anonymous = app
        .api
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(anonymous).await["error"], "invalid_client");
    let json = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(json).await["error"], "invalid_request");
}

fn revocable_command(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_revocable"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("JWT_ALG", "EdDSA")
        .env("JWKS_MAX_AGE", "60s")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_client_added_with_scopes_may_ask_only_for_those() {
    let app = spawn_app().await;
    let name = format!("limited-{}", revocable::domain::RandomId::generate());
    let added = revocable_command(
        &app.database.url,
        &["clients", "add", &name, "--scope", "introspect,revoke"],
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let stdout = String::from_utf8_lossy(&added.stdout).to_string();
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(field("scopes:"), "introspect revoke");
    let client = TestClient {
        id: field("client_id:"),
        secret: field("client_secret:"),
    };
    assert_eq!(granted(&app, &client, None).await["scope"], "introspect revoke");
    assert_eq!(granted(&app, &client, Some("revoke")).await["scope"], "revoke");
    let refused = client_token(
        &app,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "ssf.manage")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body = error_body(refused).await;
    assert_eq!(body["error"], "invalid_scope");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("introspect revoke"),
        "{body}"
    );

    let listed =
        String::from_utf8_lossy(&revocable_command(&app.database.url, &["clients", "list"]).stdout).to_string();
    let line = listed.lines().find(|line| line.contains(&name)).unwrap();
    assert!(line.ends_with("introspect revoke"), "{listed}");
    let unknown = revocable_command(&app.database.url, &["clients", "add", "other", "--scope", "admin"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown scope \"admin\""));
}

#[tokio::test]
async fn a_stock_validator_never_takes_a_refresh_token_for_an_access_token() {
    let app = spawn_app().await;
    let client = add_client(&app).await;
    let tokens = app.token_login(&app.new_user().await).await;
    // authlib's IntrospectTokenValidator reads `active`, `exp` and `scope` and sends no hint, or
    // the hint of what it expects: an access token.
    for hint in [None, Some("access_token"), Some("something_else")] {
        let answer = introspect_with_hint(&app, &client, &tokens.refresh, hint).await;
        assert_eq!(answer, serde_json::json!({ "active": false }), "{hint:?}");
    }
    // Asked about a refresh token, it is answered as one.
    let answer = introspect_with_hint(&app, &client, &tokens.refresh, Some("refresh_token")).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], "revocable");
    // An access token is one whatever the hint says.
    for hint in [None, Some("refresh_token")] {
        let answer = introspect_with_hint(&app, &client, &tokens.access, hint).await;
        assert_eq!(answer["active"], true, "{hint:?}");
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(
            answer["client_id"], "revocable",
            "the client it was issued to, not the caller"
        );
        assert_ne!(answer["client_id"], client.id.as_str());
    }
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rotated_key_is_in_the_jwks_of_every_running_instance_at_once() {
    // JWKS_MAX_AGE=60s: the timed reload comes only every 30 s.
    let first = spawn_app_with(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "60s")]).await;
    let second = first.restart().await;
    assert_eq!(published_kids(&first).await.len(), 1);

    let output = revocable_command(&first.database.url, &["keys", "rotate"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rotated = Instant::now();
    let new_kid = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    for app in [&first, &second] {
        while !published_kids(app).await.contains(&new_kid) {
            assert!(
                rotated.elapsed() < Duration::from_secs(3),
                "the new key is not in an instance's JWKS {:?} after the rotation",
                rotated.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // It signs a full JWKS_MAX_AGE (plus REVOCATION_MAX_STALENESS, 1 s) after its publication.
    let (created_at, signs_from): (i64, i64) =
        sqlx::query_as("SELECT created_at, signs_from FROM signing_keys WHERE kid = $1")
            .bind(&new_kid)
            .fetch_one(&first.db().await)
            .await
            .unwrap();
    assert_eq!(signs_from - created_at, 61_000);
    let user = first.new_user().await;
    let tokens = first.token_login(&user).await;
    assert_ne!(
        jsonwebtoken::decode_header(&tokens.access).unwrap().kid.unwrap(),
        new_kid
    );
}

#[tokio::test]
async fn one_log_out_announces_its_access_token_once() {
    let app = spawn_app_with(&[("FEED_HEARTBEAT", "300ms")]).await;
    let client = add_client(&app).await;
    let tokens = app.token_login(&app.new_user().await).await;
    let jti = payload(&tokens.access)["jti"].as_str().unwrap().to_owned();
    let mut feed = Feed::connect(&app, &client, None).await;
    assert_eq!(feed.next_change().await.name, "ready");

    assert_eq!(
        app.bearer_post("/api/logout", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let mut events = Vec::new();
    loop {
        let event = feed.next().await;
        if event.name == "heartbeat"
            && events
                .iter()
                .any(|(name, _): &(String, Value)| name == "session-revoked")
        {
            break;
        }
        if event.name != "heartbeat" {
            events.push((event.name, event.data));
        }
    }
    let announced: Vec<_> = events
        .iter()
        .filter(|(name, data)| name == "jti-revoked" && data["subject"]["jti"]["id"] == jti.as_str())
        .collect();
    assert_eq!(announced.len(), 1, "{events:?}");
    // And the token is refused, as before.
    assert_eq!(
        error_body(app.me("denylist", &tokens.access).await).await["reason"],
        "revoked_jti"
    );
}

/// `revocable serve` in a directory of its own, with its log lines as they come.
struct Served {
    child: std::process::Child,
    address: String,
    /// Held so that the threads reading the child's output keep a place to send it.
    _lines: std::sync::mpsc::Receiver<String>,
    /// Everything logged before it said where it listens.
    before_listening: Vec<String>,
    directory: std::path::PathBuf,
}

impl Served {
    fn start(extra: &[(&str, &str)]) -> Self {
        let directory = std::env::temp_dir().join(format!(
            "revocable-standards-{}",
            revocable::domain::RandomId::generate()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_revocable"));
        command
            .current_dir(&directory)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in extra {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut before_listening = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                if let Some(address) = line.split("\"address\":\"").nth(1) {
                    let address = format!("http://{}", address.split('"').next().unwrap());
                    return Self {
                        child,
                        address,
                        _lines: lines,
                        before_listening,
                        directory,
                    };
                }
                before_listening.push(line);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not say where it listens: {before_listening:?}");
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}/revocable.db?mode=rwc", self.directory.display())
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[tokio::test]
async fn a_jwks_max_age_under_a_minute_is_warned_of_at_start_up() {
    let short = Served::start(&[("JWT_ALG", "EdDSA"), ("JWKS_MAX_AGE", "10s")]);
    assert!(
        short
            .before_listening
            .iter()
            .any(|line| line.contains("WARN") && line.contains("JWKS_MAX_AGE is under a minute")),
        "{:?}",
        short.before_listening
    );
    let default = Served::start(&[("JWT_ALG", "EdDSA")]);
    assert!(
        default
            .before_listening
            .iter()
            .all(|line| !line.contains("JWKS_MAX_AGE")),
        "{:?}",
        default.before_listening
    );
}

#[tokio::test]
async fn sigterm_with_a_feed_client_connected_stops_within_the_normal_shutdown_time() {
    let mut served = Served::start(&[]);
    let added = Command::new(env!("CARGO_BIN_EXE_revocable"))
        .args(["clients", "add", "feed-reader"])
        .env_clear()
        .env("DATABASE_URL", served.database_url())
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let stdout = String::from_utf8_lossy(&added.stdout).to_string();
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut feed = reqwest::Client::new()
        .get(format!("{}/oauth/revocations", served.address))
        .basic_auth(field("client_id:"), Some(field("client_secret:")))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    let mut received = String::new();
    while !received.contains("event: ready") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), feed.chunk())
            .await
            .expect("the feed sends its ready event")
            .unwrap()
            .expect("the feed stays open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }

    served.terminate();
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(4),
            "the server still runs {:?} after SIGTERM with a feed client connected",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    // The receiver saw its stream end, not a reset: it resumes elsewhere with Last-Event-ID.
    let end = tokio::time::timeout(Duration::from_secs(2), feed.chunk())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn the_openapi_document_has_unique_operation_ids_and_typed_oauth_bodies() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut operation_ids = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            operation_ids.push(id.to_owned());
        }
    }
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operationIds repeat: {operation_ids:?}");

    let schemas = &document["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => schemas[reference.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let body =
            &document["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
        let body = resolve(body);
        assert_eq!(body["type"], "object", "{path}: {body}");
        assert!(body["properties"]["client_id"].is_object(), "{path}: {body}");
    }
    let introspection = resolve(
        &document["paths"]["/oauth/introspect"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
    );
    for field in ["active", "token_type", "client_id", "scope", "exp", "sub"] {
        assert!(
            introspection["properties"][field].is_object(),
            "{field}: {introspection}"
        );
    }
    assert_eq!(introspection["required"], serde_json::json!(["active"]));
    assert!(document["paths"]["/oauth/revocations"]["get"]["responses"]["400"].is_object());
    assert!(document["paths"]["/.well-known/oauth-authorization-server"]["get"].is_object());
    let token = resolve(
        &document["paths"]["/oauth/token"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
    );
    assert!(token["properties"]["scope"].is_object(), "{token}");
}
