//! The throw-away instance a measurement runs on: this build, started with settings that reach
//! nothing outside (its own SQLite file and in-process stores in a directory of its own, any
//! free loopback port), and removed with its directory however the measurement ends — finished,
//! failed, or dropped half-way. A directory left by a process that was killed mid-measurement is
//! removed by the next measurement on the host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web;
use futures_util::future::LocalBoxFuture;

use super::report::{self, Report};
use crate::config::Settings;
use crate::domain::RandomId;
use crate::state::AppState;

/// An instance of this build, serving until `server` is stopped.
pub struct Launched {
    pub state: web::Data<AppState>,
    pub address: std::net::SocketAddr,
    pub server: ServerHandle,
}

/// Starts this build's server on the settings given: `startup` supplies it, so that the harness
/// does not reach up to the route table.
pub type Launch = fn(Settings) -> LocalBoxFuture<'static, anyhow::Result<Launched>>;

/// Each measuring instance's directory: this prefix, the process id, a random part.
const DIRECTORY_PREFIX: &str = "revocable-compare-";

/// Measures on a throw-away instance in the system's temporary directory.
pub async fn measure(served: &Settings, launch: Launch) -> Report {
    measure_in(&std::env::temp_dir(), served, launch).await
}

/// Measures on a throw-away instance whose directory is made in `parent`, with the served
/// settings stripped of everything that reaches the outside.
pub async fn measure_in(parent: &Path, served: &Settings, launch: Launch) -> Report {
    let started = Instant::now();
    remove_abandoned_directories(parent);
    let workspace = match Workspace::create_in(parent) {
        Ok(workspace) => workspace,
        Err(error) => {
            return Report::failed(
                format!("cannot create a directory for the measuring instance: {error}"),
                started.elapsed().as_millis(),
            );
        }
    };
    let mut settings = measuring_settings(served);
    settings.database_url = format!("sqlite://{}?mode=rwc", workspace.path.join("compare.db").display());
    settings.mail_outbox = workspace.path.join("outbox");
    let report = measure_on_instance(settings, launch)
        .await
        .unwrap_or_else(|error| Report::failed(error, started.elapsed().as_millis()));
    drop(workspace);
    report
}

async fn measure_on_instance(settings: Settings, launch: Launch) -> Result<Report, String> {
    let instance = launch(settings)
        .await
        .map_err(|error| format!("the measuring instance did not start: {error}"))?;
    let report = report::measure(&instance.state, &format!("http://{}", instance.address)).await;
    instance.server.stop(false).await;
    Ok(report)
}

/// The served settings, with everything that reaches the outside replaced: its own database
/// and outbox (set by `measure_in`), no Redis, no SMTP, no GeoIP, its own keys and issuer,
/// any free loopback port, and limits that a single measuring client cannot reach.
fn measuring_settings(served: &Settings) -> Settings {
    let mut settings = served.clone();
    settings.redis_url = None;
    settings.smtp_url = None;
    settings.geoip_db = None;
    settings.public_url = None;
    settings.jwt_issuer = None;
    settings.jwt_secret = None;
    settings.jwt_keys = None;
    settings.mfa_encryption_key = None;
    settings.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.trusted_proxies = Vec::new();
    settings.cookie_secure = false;
    settings.login_rate_per_minute = u32::MAX;
    settings.client_auth_failures_per_minute = u32::MAX;
    settings.account_lock_after = u32::MAX;
    settings.max_sessions_per_user = None;
    settings.database_max_connections = None;
    settings.compare_at_start = false;
    settings
}

/// A measuring instance's directory, removed when dropped: at the end of a measurement, on an
/// error, on a panic, or when the measurement's future is dropped before it finishes.
struct Workspace {
    path: PathBuf,
}

impl Workspace {
    fn create_in(parent: &Path) -> std::io::Result<Self> {
        let path = parent.join(format!(
            "{DIRECTORY_PREFIX}{}-{}",
            std::process::id(),
            RandomId::generate().to_lowercase()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }
}

/// How often a workspace's removal is tried, and how long apart: a database connection of an
/// instance dropped half-way closes on its own thread, and may still write its journal files
/// after the directory was listed, so that the first removal finds it not empty.
const REMOVAL_ATTEMPTS: u32 = 20;
const REMOVAL_RETRY: Duration = Duration::from_millis(25);

impl Drop for Workspace {
    fn drop(&mut self) {
        for attempt in 1..=REMOVAL_ATTEMPTS {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => return,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
                Err(error) if attempt == REMOVAL_ATTEMPTS => {
                    tracing::warn!(error = %error, directory = %self.path.display(), "cannot remove the measuring instance's directory");
                }
                Err(_) => std::thread::sleep(REMOVAL_RETRY),
            }
        }
    }
}

/// Directories of measuring instances whose process is gone (killed, or ended mid-measurement).
/// A process is known alive by `/proc`; where there is no `/proc`, nothing is removed.
fn remove_abandoned_directories(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIRECTORY_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
            && let Err(error) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(error = %error, directory = %entry.path().display(), "cannot remove an abandoned measuring directory");
        }
    }
}
