//! `spawn_app` and the clients the tests speak through: `TestApp` for JSON (`app`), `Browser` for
//! pages (`browser`); a Redis server of a test's own (`own_redis`) and a PostgreSQL proxy a test can
//! cut (`database_proxy`). Here: the database and Redis prefix each test gets, and dropping them.

mod app;
mod browser;
mod database_proxy;
mod own_redis;

pub use app::{
    TestApp, TestUser, Tokens, spawn_app, spawn_app_on_sqlite, spawn_app_with, spawn_app_without_redis, start_on,
};
pub use browser::{Browser, location};
pub use database_proxy::{CutMode, DatabaseProxy, postgres_address, spawn_app_behind_database_proxy};
pub use own_redis::OwnRedis;

use reqwest::Response;
use revocable::domain::RandomId;
use serde_json::Value;

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// A database of this test's own, dropped when the last app using it is gone (a PostgreSQL one on
/// a thread of its own, see `drop_in_background`).
pub struct TestDatabase {
    pub url: String,
    pub(super) cleanup: Cleanup,
}

pub(super) enum Cleanup {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A PostgreSQL database named for this test that does not exist yet (the application creates
    /// it), dropped at the end like the others; `None` without `TEST_DATABASE_URL`.
    pub fn postgres_not_created() -> Option<Self> {
        let admin_url = postgres_url()?;
        let name = test_database_name();
        let (base, _) = admin_url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
        Some(Self {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    pub(super) async fn create() -> Self {
        match postgres_url() {
            None => {
                let path = std::env::temp_dir().join(format!("revocable-test-{}.db", RandomId::generate()));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    cleanup: Cleanup::Sqlite(path),
                }
            }
            Some(admin_url) => {
                use sqlx::Connection;
                let template = template_database(&admin_url).await;
                let name = test_database_name();
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL answers");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#
                )))
                .execute(&mut admin)
                .await
                .expect("create the test database");
                let (base, _) = admin_url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }
}

/// Test databases are named for the process that made them (`revocable_test_p{pid}_…`), so that a
/// later run can tell the ones a finished process left behind.
fn test_database_name() -> String {
    format!(
        "revocable_test_p{}_{}",
        std::process::id(),
        RandomId::generate().to_lowercase().replace('-', "_")
    )
}

/// The database every PostgreSQL test database of this process is copied from: made and migrated
/// once, then never connected to again (`CREATE DATABASE … TEMPLATE` needs it idle). A copy takes a
/// fraction of the half second the migrations take on an empty database. Making it also sweeps
/// away what earlier processes left behind.
async fn template_database(admin_url: &str) -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            use sqlx::Connection;
            let name = format!("revocable_template_p{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("TEST_DATABASE_URL answers");
            let existing: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'revocable\\_test\\_p%' \
                 OR datname LIKE 'revocable\\_template\\_p%'",
            )
            .fetch_all(&mut admin)
            .await
            .expect("list the test databases");
            for left in existing.into_iter().filter(|left| made_by_a_finished_process(left)) {
                drop_in_background(admin_url.to_owned(), left);
            }
            // Two statements, two round trips: `DROP DATABASE` refuses to run inside the implicit
            // transaction a multi-statement query is.
            for statement in [
                format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
                format!(r#"CREATE DATABASE "{name}""#),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut admin)
                    .await
                    .expect("create the template database");
            }
            let (base, _) = admin_url.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
            let template = revocable::store::connect(&format!("{base}/{name}"))
                .await
                .expect("connect to the template database");
            revocable::store::migrate(&template)
                .await
                .expect("migrate the template database");
            template.close().await;
            name
        })
        .await
}

/// Whether `name` is a test database whose process has ended (on this machine: `/proc`).
fn made_by_a_finished_process(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("revocable_test_p")
        .or_else(|| name.strip_prefix("revocable_template_p"))
    else {
        return false;
    };
    let pid = rest.split('_').next().unwrap_or_default();
    pid.parse::<u32>().is_ok_and(|pid| {
        pid != std::process::id()
            && std::path::Path::new("/proc").is_dir()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Drops a test database on a thread of its own, without waiting: `DROP DATABASE` waits for a
/// checkpoint, a second or two under the suite's load, and no test need wait for that. A drop the
/// process does not live to finish is swept by the next run (`template_database`), and by CI.
fn drop_in_background(admin_url: String, name: String) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .execute(&mut admin)
            .await
            .ok()
        })
    });
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => drop_in_background(admin_url.clone(), name.clone()),
        }
    }
}

/// This test's Redis keys: a prefix of its own, deleted at the end.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

/// Reads a JSON error body and checks API.md's shape.
pub async fn error_body(response: Response) -> Value {
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["error"].is_string(), "no `error` in {body}");
    assert!(
        body["error_description"].is_string(),
        "no `error_description` in {body}"
    );
    body
}
