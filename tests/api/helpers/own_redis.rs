//! `OwnRedis`: a Redis server of one test's own, to stop, restart, fill or cut.

use std::time::Duration;

/// A Redis server of this test's own, on a free port, that the test may stop, restart, fill or
/// kill connections of without touching anyone else's. Stopped when dropped.
pub struct OwnRedis {
    pub port: u16,
    extra: Vec<String>,
    process: Option<std::process::Child>,
}

impl OwnRedis {
    /// `None` (with a note on stderr) when `redis-server` is not installed, unless `CI=true`.
    pub async fn start(extra: &[&str]) -> Option<Self> {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is needed by the fault tests and CI=true"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "redis-server is not installed: this fault test did not run"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let mut redis = Self {
            port,
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
            process: None,
        };
        redis.resume().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again, empty.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(child);
        for _ in 0..100 {
            if self.connection().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the test's own redis-server did not answer on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn connection(&self) -> Option<redis::Connection> {
        let mut connection = redis::Client::open(self.url()).ok()?.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(connection)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
