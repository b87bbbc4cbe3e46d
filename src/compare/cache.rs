//! The last report, and when a new one may be measured: at start-up (`COMPARE_AT_START`) and when
//! a logged-in user asks, at most once a minute; any visitor is served the last report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::RwLock;

use super::instance::{self, Launch};
use super::report::Report;
use crate::config::Settings;
use crate::domain::now_millis;
use crate::store::Backend;

/// How long a report stands before a logged-in user may ask for a new one.
pub const REPORT_LIFETIME: Duration = Duration::from_secs(60);

/// Registered by `startup` as app data of its own, which the `/compare` route extracts;
/// `AppState` does not hold it, so nothing below `compare` knows of it.
pub struct CompareCache {
    report: RwLock<Option<Arc<Report>>>,
    running: AtomicBool,
    launch: Launch,
    served: Served,
}

/// The instance that serves `/compare`: what the page says it runs on, and the settings a
/// measurement copies for the instance it measures on.
pub struct Served {
    pub settings: Settings,
    pub backend: Backend,
    pub redis: bool,
}

/// What a request to measure again came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    AlreadyRunning,
    /// The last report is younger than `REPORT_LIFETIME`; this many seconds are left.
    TooSoon(u64),
}

/// Marks the cache idle again when the measuring thread ends, even by a panic.
struct Running(Arc<CompareCache>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

impl CompareCache {
    /// No report yet; measurements start instances with `launch`, from `served`'s settings.
    pub fn new(launch: Launch, served: Served) -> Self {
        Self {
            report: RwLock::new(None),
            running: AtomicBool::new(false),
            launch,
            served,
        }
    }

    pub fn served(&self) -> &Served {
        &self.served
    }

    /// The last report, and whether a new one is being measured.
    pub async fn current(&self) -> (Option<Arc<Report>>, bool) {
        (self.report.read().await.clone(), self.running.load(Ordering::Acquire))
    }

    /// Starts a measurement unless one runs or the last report is under a minute old.
    pub async fn measure_again(self: &Arc<Self>) -> Started {
        if let Some(report) = &*self.report.read().await {
            let age = (now_millis() - report.measured_at).max(0) as u64;
            let lifetime = REPORT_LIFETIME.as_millis() as u64;
            if age < lifetime {
                return Started::TooSoon((lifetime - age).div_ceil(1000));
            }
        }
        self.start()
    }

    /// Starts a measurement on a thread and runtime of its own, unless one runs already.
    pub fn start(self: &Arc<Self>) -> Started {
        if self.running.swap(true, Ordering::AcqRel) {
            return Started::AlreadyRunning;
        }
        let served = self.served.settings.clone();
        let launch = self.launch;
        let running = Running(Arc::clone(self));
        let spawned = std::thread::Builder::new().name("compare".into()).spawn(move || {
            // Dropping the runtime at the end cancels every task the measuring instance
            // spawned (its purge, its revocation sync, its mailer): nothing outlives it.
            let report = actix_web::rt::System::new().block_on(instance::measure(&served, launch));
            *running.0.report.blocking_write() = Some(Arc::new(report));
        });
        if let Err(error) = spawned {
            tracing::warn!(error = %error, "cannot start a /compare measurement");
        }
        Started::Now
    }
}
