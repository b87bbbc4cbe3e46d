//! Unit tests for the log follower: staleness, renewal and the cache it loads.

use super::*;
use crate::revocation::cache::Limits;

fn loaded_sync(max_staleness: Duration) -> LogFollower {
    let url = "sqlite::memory:";
    let db = store::connect_lazy_reader(url).expect("a lazy pool");
    let cache = Arc::new(Cache::new(Limits {
        capacity: 16,
        time_to_live: Duration::from_secs(60),
        clock: crate::domain::Clock::System,
    }));
    let settings = SyncSettings {
        backend: Backend::Sqlite,
        database_url: url.to_owned(),
        redis: None,
        push: false,
        poll_interval: Duration::from_millis(50),
        max_staleness,
    };
    let mut sync = LogFollower::new(db, settings, cache, DenylistCopy::Database);
    // As in a process that has run a while: reads may have started before the test did.
    sync.epoch = Instant::now() - Duration::from_secs(60);
    sync.loaded.store(true, Ordering::Release);
    sync
}

#[tokio::test]
async fn the_lease_runs_from_when_the_confirming_read_started_not_when_it_answered() {
    let sync = loaded_sync(Duration::from_millis(300));
    assert!(!sync.is_current(), "never confirmed");
    // A read that started 250 ms ago (a slow answer, or a pause in between) leaves 50 ms.
    sync.confirm(Instant::now() - Duration::from_millis(250), 0);
    assert!(sync.is_current());
    std::thread::sleep(Duration::from_millis(60));
    assert!(!sync.is_current(), "past the bound, whatever happened meanwhile");
    assert!(sync.status().confirmed_millis_ago.unwrap() >= 300);
}

#[tokio::test]
async fn an_older_read_answering_late_never_shortens_a_newer_lease() {
    let sync = loaded_sync(Duration::from_millis(300));
    sync.confirm(Instant::now(), 7);
    sync.confirm(Instant::now() - Duration::from_secs(5), 3);
    assert!(sync.is_current());
    assert!(sync.status().confirmed_millis_ago.unwrap() < 300);
    assert_eq!(sync.status().head_seq, 7, "the head only moves forward");
}

#[tokio::test]
async fn a_process_stopped_past_the_bound_wakes_up_not_current() {
    // The lease is measured on the monotonic clock, which runs while the process is stopped
    // (SIGSTOP) and is not moved by a wall-clock change: a sleep stands in for the pause.
    let sync = loaded_sync(Duration::from_millis(100));
    sync.confirm(Instant::now(), 0);
    assert!(sync.is_current());
    std::thread::sleep(Duration::from_millis(120));
    assert!(!sync.is_current());
}

/// A database file in the temporary directory, removed with its journal files when dropped.
struct ScratchFile(std::path::PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A `Sync` on a database file of its own holding the schema and `rows` denylisted jtis; the file
/// goes when the `ScratchFile` does.
async fn sync_over_rows(capacity: u64, rows: &[(String, i64)]) -> (LogFollower, ScratchFile) {
    let path = std::env::temp_dir().join(format!("revocable-sync-{}.db", crate::domain::RandomId::generate()));
    let scratch = ScratchFile(path.clone());
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let url = url.as_str();
    let db = store::connect(url).await.expect("a pool");
    store::migrate(&db).await.expect("the schema");
    for (jti, expires_at) in rows {
        store::denylist::insert(&db, jti, *expires_at, 0).await.expect("a row");
    }
    let cache = Arc::new(Cache::new(Limits {
        capacity,
        time_to_live: Duration::from_secs(60),
        clock: crate::domain::Clock::System,
    }));
    let settings = SyncSettings {
        backend: Backend::Sqlite,
        database_url: url.to_owned(),
        redis: None,
        push: false,
        poll_interval: Duration::from_millis(50),
        max_staleness: Duration::from_secs(60),
    };
    (LogFollower::new(db, settings, cache, DenylistCopy::Database), scratch)
}

#[tokio::test]
async fn a_load_holds_every_unexpired_row_and_no_expired_one() {
    let now = now_millis();
    let live: Vec<String> = (0..50).map(|_| crate::domain::RandomId::generate()).collect();
    let expired = crate::domain::RandomId::generate();
    let mut rows: Vec<(String, i64)> = live.iter().map(|jti| (jti.clone(), now + 60_000)).collect();
    rows.push((expired.clone(), now - 1));
    rows.push(("not-an-issued-id".to_owned(), now + 60_000));
    let (sync, _scratch) = sync_over_rows(1000, &rows).await;
    sync.load().await.expect("loaded");
    let cache = &sync.cache;
    assert!(cache.denylist_is_complete());
    for jti in live.iter().map(String::as_str).chain(["not-an-issued-id"]) {
        assert_eq!(cache.is_denylisted(jti, now_millis()), Some(true), "{jti}");
    }
    assert_eq!(cache.sizes().denylist, 51, "the expired row is not held");
    assert_eq!(cache.is_denylisted(&expired, now_millis()), Some(false));
    assert_eq!(
        cache.is_denylisted(&crate::domain::RandomId::generate(), now_millis()),
        Some(false)
    );
}

#[tokio::test]
async fn a_load_past_the_bound_is_not_trusted_for_absence() {
    let now = now_millis();
    let rows: Vec<(String, i64)> = (0..20)
        .map(|_| (crate::domain::RandomId::generate(), now + 60_000))
        .collect();
    let (sync, _scratch) = sync_over_rows(10, &rows).await;
    sync.load().await.expect("loaded");
    assert!(!sync.cache.denylist_is_complete());
    assert_eq!(sync.cache.sizes().denylist, 10);
    assert_eq!(
        sync.cache
            .is_denylisted(&crate::domain::RandomId::generate(), now_millis()),
        None,
        "the database answers"
    );
}

#[tokio::test]
async fn nothing_is_current_before_the_denylist_is_loaded() {
    let sync = loaded_sync(Duration::from_secs(1));
    sync.loaded.store(false, Ordering::Release);
    sync.confirm(Instant::now(), 0);
    assert!(!sync.is_current());
    assert_eq!(sync.renew().await, Renewal::NotCurrent);
}
