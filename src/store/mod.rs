//! Every SQL query, a file per table. Functions are named after what they do to the data and take
//! a pool or a transaction; nothing here knows about HTTP or strategies. The queries are portable
//! between SQLite and PostgreSQL (`$n` placeholders, BIGINT unix milliseconds) and run through
//! `sqlx::Any`, so one code path serves both backends.

pub mod access_tokens;
pub mod denylist;
pub mod email_tokens;
pub mod events;
pub mod login_attempts;
pub mod login_sessions;
pub mod mail_outbox;
pub mod mfa_challenges;
pub mod oauth_clients;
pub mod recovery_codes;
pub mod refresh_tokens;
pub mod reported_devices;
pub mod revocation_log;
pub mod secrets;
pub mod signing_keys;
pub mod ssf_streams;
pub mod totp_factors;
pub mod users;
pub mod web_sessions;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub type Db = AnyPool;
pub type Transaction<'a> = sqlx::Transaction<'a, sqlx::Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// Which database a pool opened by `connect` talks to.
pub fn backend_of(db: &Db) -> Backend {
    Backend::of(db.connect_options().database_url.as_str())
}

/// Opens the pool. SQLite gets WAL (readers never wait for the writer), foreign keys and a busy
/// timeout, on every connection.
pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
    connect_with_limit(url, None).await
}

/// The same with at most `max_connections` (`DATABASE_MAX_CONNECTIONS`); the default is 8 on
/// SQLite and 16 on PostgreSQL.
pub async fn connect_with_limit(url: &str, max_connections: Option<u32>) -> Result<Db, sqlx::Error> {
    let backend = Backend::of(url);
    let max = max_connections.unwrap_or(if backend == Backend::Sqlite { 8 } else { 16 });
    pool_options(backend, max, Duration::from_secs(3)).connect(url).await
}

/// A pool of its own for reads that must not queue behind requests (the revocation log's lease):
/// one connection, opened on first use; its reads are short and bounded, and one at a time.
pub fn connect_lazy_reader(url: &str) -> Result<Db, sqlx::Error> {
    pool_options(Backend::of(url), 1, Duration::from_secs(1)).connect_lazy(url)
}

fn pool_options(backend: Backend, max_connections: u32, acquire_timeout: Duration) -> AnyPoolOptions {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(backend != Backend::Sqlite)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    connection
                        .execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;")
                        .await?;
                }
                Ok(())
            })
        })
}

/// Creates the PostgreSQL database the URL names when the server has no such database yet, as
/// `sqlx database create` does; an SQLite file is created by `mode=rwc` on connect. Several
/// instances starting at once race to create it: a creation that fails because another one won
/// is success. (The migrations that follow take PostgreSQL's advisory lock, so they run once.)
pub async fn create_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    if Backend::of(url) != Backend::Postgres || sqlx::Postgres::database_exists(url).await? {
        return Ok(());
    }
    match sqlx::Postgres::create_database(url).await {
        Ok(()) => tracing::info!("created the PostgreSQL database named in DATABASE_URL"),
        Err(error) if sqlx::Postgres::database_exists(url).await.unwrap_or(false) => {
            tracing::info!(error = %error, "another instance created the PostgreSQL database first");
        }
        Err(error) => return Err(error),
    }
    Ok(())
}

/// Whether a database error means the database is out of reach (a pool timed out or closed, a
/// connection cut, the server shutting down, out of resources, SQLite busy or unable to use its
/// files) rather than a bug in a query.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => is_unavailable_database_error(db.as_ref()),
        _ => false,
    }
}

/// Whether the database aborted the transaction to break a lock conflict: SQLSTATE 40001
/// (serialization failure) or 40P01 (deadlock detected). Running it again is the remedy.
pub fn is_lock_conflict(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// PostgreSQL shutting down or refusing connections or out of resources; SQLite busy, locked,
/// read-only, failing to read or write its files, out of disk, or unable to open them.
fn is_unavailable_database_error(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code().unwrap_or_default();
    if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended result codes; the primary code is the low byte.
        const BUSY: i32 = 5;
        const LOCKED: i32 = 6;
        const READONLY: i32 = 8;
        const IOERR: i32 = 10;
        const FULL: i32 = 13;
        const CANTOPEN: i32 = 14;
        return code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN));
    }
    code.starts_with("57P") || code.starts_with("08") || code.starts_with("53")
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn migrate(db: &Db) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(db).await
}
