//! `DatabaseProxy`: a TCP proxy in front of PostgreSQL that a test can cut, and an app behind one.

use std::sync::Arc;

use revocable::domain::{Clock, RandomId};

use super::app::start;
use super::{TestApp, TestDatabase, TestRedis, postgres_url, redis_url};

/// What a cut database proxy does with a connection opened while it is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Closed at once, as a server that refuses connections.
    Refuse,
    /// Held open and never answered, as a network that drops every packet, until restored.
    Blackhole,
}

/// A TCP proxy in front of PostgreSQL that a test can cut: every open connection is reset, and
/// new ones are refused or held unanswered, until it is restored.
pub struct DatabaseProxy {
    pub port: u16,
    /// `None` while forwarding, `Some(mode)` while cut.
    cut: tokio::sync::watch::Sender<Option<CutMode>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl DatabaseProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = tokio::sync::watch::channel(None);
        let switch = cut.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut state = switch.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mode = *state.borrow_and_update();
                    match mode {
                        Some(CutMode::Refuse) => reset(client),
                        Some(CutMode::Blackhole) => {
                            let _ = state.wait_for(Option::is_none).await;
                            reset(client);
                        }
                        None => {
                            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                                return reset(client);
                            };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = state.wait_for(Option::is_some) => {}
                            }
                            reset(client);
                            reset(server);
                        }
                    }
                });
            }
        });
        Self { port, cut, accepting }
    }

    /// Resets every open connection; new ones are refused or held as `mode` says.
    pub fn cut(&self, mode: CutMode) {
        self.cut.send_replace(Some(mode));
    }

    /// Forwards again: held connections are reset, so their clients retry.
    pub fn restore(&self) {
        self.cut.send_replace(None);
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by this proxy's.
    pub fn route(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("a PostgreSQL URL");
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut.send_replace(Some(CutMode::Refuse));
    }
}

/// Closes with a reset rather than an orderly shutdown, as a cut cable or a killed peer does.
fn reset(stream: tokio::net::TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// The `host:port` a PostgreSQL URL points at.
pub fn postgres_address(url: &str) -> String {
    let url = reqwest::Url::parse(url).expect("a PostgreSQL URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    )
}

/// An app whose PostgreSQL connections all pass through a proxy the test can cut, with Redis
/// (`TEST_REDIS_URL`, when set) or without. The test's own database is created directly (and
/// dropped at the end); only the app goes through the proxy. `None` without `TEST_DATABASE_URL`.
pub async fn spawn_app_behind_database_proxy(
    with_redis: bool,
    overrides: &[(&str, &str)],
) -> Option<(TestApp, DatabaseProxy)> {
    let admin_url = postgres_url()?;
    let proxy = DatabaseProxy::start(postgres_address(&admin_url)).await;
    let database = Arc::new(TestDatabase::create().await);
    let redis = redis_url().filter(|_| with_redis).map(|url| {
        Arc::new(TestRedis {
            url,
            prefix: format!("test:{}:", RandomId::generate()),
        })
    });
    let mut overrides: Vec<(String, String)> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    overrides.push(("DATABASE_URL".into(), proxy.route(&database.url)));
    Some((start(database, redis, overrides, Clock::test()).await, proxy))
}
