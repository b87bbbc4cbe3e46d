//! RFC 8935 push: SETs reach a receiver the test runs, with the stream's authorization header,
//! in order and exactly once, through a receiver outage and through a restart of revocable; over
//! https to a receiver whose certificate a CA of `SSF_PUSH_CA_FILE` signed, and never to one whose
//! certificate nothing trusted signed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::ssf::{PUSH, SESSION_REVOKED, create_stream, event_of, ssf_client, verified};

/// What the receiver was sent: (Authorization, Content-Type, body) per request.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, String, String)>>,
    /// Requests still to answer with 503.
    refuse: AtomicUsize,
    /// How many it was told to refuse.
    refused_at_start: AtomicUsize,
}

struct Receiver {
    url: String,
    received: Arc<Received>,
    server: actix_web::dev::ServerHandle,
}

async fn accept(request: HttpRequest, body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let entry = (
        header("authorization"),
        header("content-type"),
        String::from_utf8_lossy(&body).into_owned(),
    );
    received.requests.lock().unwrap().push(entry);
    let refusing = received
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    if refusing {
        HttpResponse::ServiceUnavailable().finish()
    } else {
        HttpResponse::Accepted().finish()
    }
}

/// A certificate authority made for one test, and a server certificate for 127.0.0.1 it signed.
struct PrivateCa {
    ca_pem: String,
    server: rustls::ServerConfig,
}

impl PrivateCa {
    fn generate() -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "revocable test receivers' CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server_certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .unwrap();
        Self {
            ca_pem: ca.pem(),
            server,
        }
    }

    /// The CA certificate in a PEM file of its own, for `SSF_PUSH_CA_FILE`.
    fn write_ca_file(&self) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "revocable-test-ca-{}.pem",
            revocable::domain::RandomId::generate()
        ));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

impl Receiver {
    /// A receiver on `listener` that first answers `refuse` requests with 503.
    fn start(listener: std::net::TcpListener, refuse: usize) -> Self {
        Self::serve(listener, refuse, None)
    }

    /// A receiver answering over TLS with `tls`'s certificate.
    fn start_https(listener: std::net::TcpListener, tls: rustls::ServerConfig) -> Self {
        Self::serve(listener, 0, Some(tls))
    }

    fn serve(listener: std::net::TcpListener, refuse: usize, tls: Option<rustls::ServerConfig>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/events", listener.local_addr().unwrap());
        let received = Arc::new(Received::default());
        received.refuse.store(refuse, Ordering::SeqCst);
        received.refused_at_start.store(refuse, Ordering::SeqCst);
        let data = web::Data::from(received.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/events", web::post().to(accept))
        })
        .workers(1)
        .disable_signals();
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            received,
            server: handle,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.received
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, body)| body.clone())
            .collect()
    }

    /// Waits until `count` requests were answered 202 (every 503 comes before them).
    async fn wait_for_delivered(&self, count: usize) -> Vec<String> {
        for _ in 0..1200 {
            let requests = self.received.requests.lock().unwrap().len();
            let refused_left = self.received.refuse.load(Ordering::SeqCst);
            if refused_left == 0 && requests >= count && self.accepted().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.accepted()
    }

    /// The bodies answered 202: every request after the refused ones.
    fn accepted(&self) -> Vec<String> {
        self.received
            .requests
            .lock()
            .unwrap()
            .iter()
            .skip(self.received.refused_at_start.load(Ordering::SeqCst))
            .map(|(_, _, body)| body.clone())
            .collect()
    }
}

async fn push_stream(app: &TestApp, token: &str, receiver_url: &str) -> Value {
    create_stream(
        app,
        token,
        &json!({
            "events_requested": [SESSION_REVOKED],
            "delivery": { "method": PUSH, "endpoint_url": receiver_url, "authorization_header": "Bearer receiver-secret" },
        }),
    )
    .await
}

async fn log_out_times(app: &TestApp, times: usize) -> Vec<String> {
    let user = app.new_user().await;
    let mut sessions = Vec::new();
    for _ in 0..times {
        let tokens = app.token_login(&user).await;
        app.bearer_post("/api/logout", &tokens.access, None).await;
        sessions.push(tokens.session_id);
    }
    sessions
}

/// The session ids the SETs name, after checking each one.
async fn sessions_named(app: &TestApp, audience: &str, sets: &[String]) -> Vec<String> {
    let mut sessions = Vec::new();
    for set in sets {
        let claims = verified(app, set, audience).await;
        assert_eq!(event_of(&claims).0, SESSION_REVOKED);
        sessions.push(claims["sub_id"]["session"]["id"].as_str().unwrap().to_owned());
    }
    sessions
}

#[tokio::test]
async fn pushed_sets_survive_a_receiver_outage_each_arriving_once_and_in_order() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = Receiver::start(listener, 2);
    push_stream(&app, &token, &receiver.url).await;
    let sessions = log_out_times(&app, 3).await;
    let delivered = receiver.wait_for_delivered(3).await;
    let requests = receiver.received.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 5, "two refused attempts, then each SET once");
    // A refused SET is sent again before any later one.
    assert_eq!(requests[0].2, requests[1].2);
    assert_eq!(requests[1].2, requests[2].2);
    for (authorization, content_type, _) in &requests {
        assert_eq!(authorization, "Bearer receiver-secret");
        assert_eq!(content_type, "application/secevent+jwt");
    }
    assert_eq!(sessions_named(&app, &client.id, &delivered).await, sessions);
    receiver.server.stop(false).await;
}

#[tokio::test]
async fn undelivered_sets_are_pushed_after_revocable_restarts() {
    let app = spawn_app().await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    // A receiver that is down: its port is known, nothing listens there yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/events");
    let stream = push_stream(&app, &token, &url).await;
    let stream_id = stream["stream_id"].as_str().unwrap().to_owned();
    let sessions = log_out_times(&app, 2).await;
    // Wait until the events are stored and a push has failed, then stop this instance.
    let db = app.db().await;
    for _ in 0..400 {
        let tried: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssf_events WHERE stream_id = $1 AND attempts > 0")
            .bind(&stream_id)
            .fetch_one(&db)
            .await
            .unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssf_events WHERE stream_id = $1")
            .bind(&stream_id)
            .fetch_one(&db)
            .await
            .unwrap();
        if tried >= 1 && stored == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.state.stopping.send_replace(true);
    let restarted = app.restart().await;
    drop(app);
    let receiver = Receiver::start(std::net::TcpListener::bind(address).unwrap(), 0);
    let delivered = receiver.wait_for_delivered(2).await;
    assert_eq!(receiver.bodies().len(), 2, "each SET once");
    assert_eq!(sessions_named(&restarted, &client.id, &delivered).await, sessions);
    receiver.server.stop(false).await;
}

#[tokio::test]
async fn a_set_is_pushed_over_https_to_a_receiver_whose_certificate_the_configured_ca_signed() {
    let ca = PrivateCa::generate();
    let ca_file = ca.write_ca_file();
    let app = spawn_app_with(&[("SSF_PUSH_CA_FILE", ca_file.to_str().unwrap())]).await;
    let (client, token) = ssf_client(&app, "ssf.manage").await;
    let receiver = Receiver::start_https(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), ca.server);
    assert!(receiver.url.starts_with("https://"));
    let stream = push_stream(&app, &token, &receiver.url).await;
    assert_eq!(stream["delivery"]["endpoint_url"], receiver.url.as_str());
    let sessions = log_out_times(&app, 1).await;
    let delivered = receiver.wait_for_delivered(1).await;
    assert_eq!(sessions_named(&app, &client.id, &delivered).await, sessions);
    let requests = receiver.received.requests.lock().unwrap().clone();
    assert_eq!(requests[0].0, "Bearer receiver-secret");
    receiver.server.stop(false).await;
    std::fs::remove_file(ca_file).unwrap();
}

#[tokio::test]
async fn a_receiver_whose_certificate_nothing_trusted_signed_gets_nothing_and_its_set_stays_queued() {
    // The receiver's CA is in neither the system's trust store nor SSF_PUSH_CA_FILE.
    let app = spawn_app().await;
    let (_, token) = ssf_client(&app, "ssf.manage").await;
    let receiver = Receiver::start_https(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        PrivateCa::generate().server,
    );
    let stream = push_stream(&app, &token, &receiver.url).await;
    let stream_id = stream["stream_id"].as_str().unwrap().to_owned();
    log_out_times(&app, 1).await;
    let db = app.db().await;
    let mut queued = (0, None);
    for _ in 0..400 {
        queued = sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT attempts, last_error FROM ssf_events WHERE stream_id = $1",
        )
        .bind(&stream_id)
        .fetch_optional(&db)
        .await
        .unwrap()
        .unwrap_or((0, None));
        if queued.0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (attempts, last_error) = queued;
    assert!(
        attempts >= 2,
        "the SET is kept and tried again, {attempts} attempts so far"
    );
    let last_error = last_error.unwrap();
    assert!(
        last_error.contains("TLS with the receiver failed") && last_error.contains("SSF_PUSH_CA_FILE"),
        "{last_error}"
    );
    assert!(
        receiver.received.requests.lock().unwrap().is_empty(),
        "nothing was sent over an untrusted TLS connection"
    );
    receiver.server.stop(false).await;
}
