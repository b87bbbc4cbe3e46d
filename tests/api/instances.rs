//! Several instances of one deployment: a revocation on one is refused by the others, on
//! PostgreSQL + Redis, on PostgreSQL alone and on a shared SQLite file; and the faults that must
//! never let a revoked credential through: a feed connection killed, Redis stopped and restarted,
//! its keys evicted, and a revoking instance that commits but never announces.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use revocable::compare::matrix;
use revocable::compare::scenario;

use crate::helpers::{
    CutMode, DatabaseProxy, OwnRedis, TestApp, TestDatabase, postgres_address, postgres_url, spawn_app_with,
    spawn_app_without_redis, start_on,
};
use crate::strategies::EXPECTED;

fn assert_matrix(observed: &matrix::Observed, setup: &str) {
    assert_eq!(observed.rows.len(), EXPECTED.len(), "{setup}");
    for (row, (event, cells)) in observed.rows.iter().zip(EXPECTED) {
        assert_eq!(row.event, event, "{setup}");
        for (index, (seen, wanted)) in row.cells.iter().zip(cells).enumerate() {
            assert_eq!(
                *seen,
                wanted,
                "{setup}: after {:?} on instance A, strategy {} on instance B; observed {:?}",
                event,
                matrix::STRATEGIES[index],
                observed.rows
            );
        }
    }
}

/// Tokens short enough to watch expire, long enough to outlive a scenario on a busy machine.
const MATRIX_SETTINGS: [(&str, &str); 2] = [("ACCESS_TTL", "10s"), ("REFRESH_REUSE_GRACE", "0")];

#[tokio::test]
async fn every_event_on_one_instance_is_refused_by_another_as_the_matrix_says() {
    for cache in ["on", "off"] {
        let settings = [MATRIX_SETTINGS[0], MATRIX_SETTINGS[1], ("REVOCATION_CACHE", cache)];
        let a = spawn_app_with(&settings).await;
        let b = a.restart().await;
        let observed = scenario::run_between(&a.address, &b.address)
            .await
            .expect("the scenario runs across two instances");
        assert_matrix(&observed, &format!("cache {cache}"));
    }
}

#[tokio::test]
async fn several_instances_on_postgresql_alone_agree_on_every_revocation() {
    if postgres_url().is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "TEST_DATABASE_URL is not set: PostgreSQL alone is exercised in the PostgreSQL run"
        );
        return;
    }
    let a = spawn_app_without_redis(&MATRIX_SETTINGS).await;
    let b = a.restart().await;
    assert!(b.state.redis.is_none());
    let observed = scenario::run_between(&a.address, &b.address)
        .await
        .expect("the scenario runs across two instances");
    assert_matrix(&observed, "PostgreSQL alone");
}

/// Polls `check` every 5 ms until it holds; false after `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check().await
}

/// Two instances sharing a database and the test's own Redis.
async fn pair_on(redis: &OwnRedis, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let url = redis.url();
    let mut settings = vec![("REDIS_URL", url.as_str())];
    settings.extend_from_slice(extra);
    let a = spawn_app_with(&settings).await;
    let b = a.restart().await;
    (a, b)
}

async fn refused_by_every_revoking_strategy(app: &TestApp, access: &str) -> bool {
    for strategy in ["denylist", "allowlist"] {
        if app.status_of(strategy, access).await != StatusCode::UNAUTHORIZED {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn an_instance_that_lost_its_feed_asks_the_database_and_accepts_nothing_revoked() {
    let Some(mut redis) = OwnRedis::start(&[]).await else {
        return;
    };
    // A slow poll: only the fail-safe, not the backstop, can keep B right while its feed is down.
    let (a, b) = pair_on(
        &redis,
        &[("REVOCATION_POLL_INTERVAL", "10s"), ("REVOCATION_MAX_STALENESS", "30s")],
    )
    .await;
    let user = a.new_user().await;
    let tokens = a.token_login(&user).await;
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .current)
        .await
    );
    // B holds the token's session and version in memory.
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(b.status_of(strategy, &tokens.access).await, StatusCode::OK);
    }

    redis.stop();
    if b.state.backend == revocable::store::Backend::Sqlite {
        // Redis was B's only push feed: it must notice and stop trusting its cache.
        assert!(
            eventually(Duration::from_secs(5), async || !b
                .state
                .revocation
                .feed_status()
                .current)
            .await,
            "an instance without its feed does not call itself current"
        );
    }
    assert_eq!(
        a.bearer_post("/api/logout", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    if b.state.backend == revocable::store::Backend::Sqlite {
        assert!(
            refused_by_every_revoking_strategy(&b, &tokens.access).await,
            "B, knowing it is not current, refuses at once from the database"
        );
    } else {
        // PostgreSQL's LISTEN/NOTIFY is still up: B is current and hears of it within ms.
        assert!(
            eventually(Duration::from_secs(1), async || refused_by_every_revoking_strategy(
                &b,
                &tokens.access
            )
            .await)
            .await
        );
    }

    redis.resume().await;
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .redis_subscribed)
        .await,
        "B subscribes again by itself when Redis returns (empty)"
    );
    assert!(refused_by_every_revoking_strategy(&b, &tokens.access).await);
    let fresh = b.token_login(&user).await;
    assert_eq!(
        a.status_of("allowlist", &fresh.access).await,
        StatusCode::OK,
        "nothing live is refused"
    );
}

#[tokio::test]
async fn a_killed_subscription_is_replaced_and_nothing_revoked_meanwhile_gets_through() {
    let Some(redis) = OwnRedis::start(&[]).await else {
        return;
    };
    let (a, b) = pair_on(
        &redis,
        &[("REVOCATION_POLL_INTERVAL", "10s"), ("REVOCATION_MAX_STALENESS", "30s")],
    )
    .await;
    let user = a.new_user().await;
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .redis_subscribed)
        .await
    );
    for round in 0..5 {
        let tokens = a.token_login(&user).await;
        assert_eq!(b.status_of("allowlist", &tokens.access).await, StatusCode::OK);
        assert!(
            eventually(Duration::from_secs(5), async || b
                .state
                .revocation
                .feed_status()
                .redis_subscribed)
            .await,
            "round {round}: B subscribed again"
        );
        let mut connection = redis.connection().expect("the test's Redis answers");
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut connection)
            .unwrap();
        assert!(killed >= 1, "round {round}: the subscriptions were killed");
        assert_eq!(
            a.bearer_post("/api/logout", &tokens.access, None).await.status(),
            StatusCode::NO_CONTENT
        );
        // The poll is 10 s: a refusal within 1 s comes from the fail-safe or the new subscription.
        assert!(
            eventually(Duration::from_secs(1), async || refused_by_every_revoking_strategy(
                &b,
                &tokens.access
            )
            .await)
            .await,
            "round {round}: B refused the token revoked while its subscription was down"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .current)
        .await,
        "B is current again"
    );
}

#[tokio::test]
async fn a_killed_postgresql_listener_reconnects_and_nothing_revoked_meanwhile_gets_through() {
    if postgres_url().is_none() {
        return;
    }
    let a = spawn_app_without_redis(&[("REVOCATION_POLL_INTERVAL", "10s"), ("REVOCATION_MAX_STALENESS", "30s")]).await;
    let b = a.restart().await;
    let user = a.new_user().await;
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .postgres_listening)
        .await
    );
    let db = a.db().await;
    for round in 0..5 {
        let tokens = a.token_login(&user).await;
        assert_eq!(b.status_of("allowlist", &tokens.access).await, StatusCode::OK);
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'revocable-revocation-listener'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert!(!killed.is_empty(), "round {round}: the listeners were terminated");
        assert_eq!(
            a.bearer_post("/api/logout", &tokens.access, None).await.status(),
            StatusCode::NO_CONTENT
        );
        // The poll is 10 s: a refusal within 1 s comes from the reconnected listener's catch-up.
        assert!(
            eventually(Duration::from_secs(1), async || refused_by_every_revoking_strategy(
                &b,
                &tokens.access
            )
            .await)
            .await,
            "round {round}: B refused the token revoked while its listener was down"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), async || b
            .state
            .revocation
            .feed_status()
            .postgres_listening)
        .await
    );
}

#[tokio::test]
async fn a_revocation_committed_but_never_announced_reaches_the_other_instance_by_the_poll() {
    // A plays an instance that died between its commit and its notifications.
    let a = spawn_app_with(&[("REVOCATION_PUSH", "off")]).await;
    let b = a.restart().await;
    let user = a.new_user().await;
    let tokens = a.token_login(&user).await;
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(b.status_of(strategy, &tokens.access).await, StatusCode::OK);
    }
    assert_eq!(
        a.bearer_post("/api/logout-all", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        eventually(Duration::from_secs(3), async || {
            let mut refused = true;
            for strategy in ["version", "denylist", "allowlist"] {
                refused &= b.status_of(strategy, &tokens.access).await == StatusCode::UNAUTHORIZED;
            }
            refused
        })
        .await,
        "the 250 ms poll brings B the revocation (the bound is asserted loosely; the benchmark measures it)"
    );
}

#[tokio::test]
async fn evicted_or_lost_redis_keys_never_make_a_revoked_token_valid() {
    for policy in ["volatile-lru", "allkeys-lru"] {
        let Some(redis) = OwnRedis::start(&["--maxmemory", "2mb", "--maxmemory-policy", policy]).await else {
            return;
        };
        // With the cache off, every denylist check reads the Redis copy.
        let url = redis.url();
        let app = spawn_app_with(&[("REDIS_URL", url.as_str()), ("REVOCATION_CACHE", "off")]).await;
        let user = app.new_user().await;
        let revoked = app.token_login(&user).await;
        let live = app.token_login(&user).await;
        assert_eq!(
            app.bearer_post("/api/logout", &revoked.access, None).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.status_of("denylist", &revoked.access).await,
            StatusCode::UNAUTHORIZED
        );

        // Fill Redis past maxmemory with keys that have a TTL (what volatile-* evicts) and without.
        let mut connection = redis.connection().expect("the test's Redis answers");
        let filler = "x".repeat(16 * 1024);
        for index in 0..400 {
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("filler:{index}"))
                .arg(&filler)
                .arg("EX")
                .arg(600)
                .query(&mut connection);
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("lasting:{index}"))
                .arg(&filler)
                .query(&mut connection);
        }
        let evicted: String = redis::cmd("INFO").arg("stats").query(&mut connection).unwrap();
        assert!(
            !evicted.contains("evicted_keys:0\r"),
            "{policy}: Redis evicted keys under maxmemory"
        );
        assert_eq!(
            app.status_of("denylist", &revoked.access).await,
            StatusCode::UNAUTHORIZED,
            "{policy}: nothing revoked comes back"
        );
        assert_eq!(
            app.status_of("denylist", &live.access).await,
            StatusCode::OK,
            "{policy}: nothing live is refused"
        );
    }
}

#[tokio::test]
async fn a_postgresql_database_that_does_not_exist_yet_is_created_at_start_up() {
    let Some(admin) = postgres_url() else { return };
    let (base, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
    let name = format!(
        "revocable_fresh_{}",
        revocable::domain::RandomId::generate().to_lowercase().replace('-', "_")
    );
    let url = format!("{base}/{name}");
    let settings = revocable::config::Settings::from_lookup(|variable| match variable {
        "DATABASE_URL" => Some(url.clone()),
        "BIND" => Some("127.0.0.1:0".into()),
        _ => None,
    })
    .unwrap();
    let application = revocable::startup::Application::build(settings).await;
    let built = application.is_ok();
    drop(application);
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
    )))
    .execute(&mut connection)
    .await;
    assert!(built, "the server starts on a database name the server did not have");
}

#[tokio::test]
async fn three_instances_started_at_once_on_a_database_that_does_not_exist_yet_all_come_up() {
    let Some(database) = TestDatabase::postgres_not_created() else {
        return;
    };
    let database = std::sync::Arc::new(database);
    // One deployment: one public URL, so one issuer.
    let public_url = [("PUBLIC_URL", "http://revocable.test")];
    let (a, b, c) = tokio::join!(
        start_on(database.clone(), &public_url),
        start_on(database.clone(), &public_url),
        start_on(database.clone(), &public_url)
    );
    let user = a.new_user().await;
    let tokens = c.token_login(&user).await;
    for app in [&a, &b, &c] {
        assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
        assert_eq!(app.status_of("allowlist", &tokens.access).await, StatusCode::OK);
    }
}

/// Checks `strategies` on `b` until `until`; every 200 must have been sent before `deadline`,
/// every other answer is a refusal or a 503. Returns the statuses seen after the deadline.
async fn nothing_accepted_past(
    b: &TestApp,
    access: &str,
    strategies: &[&str],
    deadline: Instant,
    until: Instant,
) -> Vec<StatusCode> {
    let mut after = Vec::new();
    while Instant::now() < until {
        for strategy in strategies {
            let sent = Instant::now();
            let status = b.status_of(strategy, access).await;
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::SERVICE_UNAVAILABLE,
                "{strategy}: {status}"
            );
            if sent > deadline {
                assert_ne!(
                    status,
                    StatusCode::OK,
                    "{strategy}: a revoked token accepted {:?} after the revoking response",
                    sent.duration_since(deadline)
                );
                after.push(status);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    after
}

#[tokio::test]
async fn an_instance_cut_off_from_postgresql_stops_answering_from_memory_within_the_staleness_bound() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let bound = Duration::from_millis(600);
    let a = spawn_app_with(&[("REVOCATION_MAX_STALENESS", "600ms")]).await;
    let proxy = DatabaseProxy::start(postgres_address(&admin_url)).await;
    let b = a.restart_behind(&proxy).await;
    let user = a.new_user().await;
    for mode in [CutMode::Blackhole, CutMode::Refuse] {
        let tokens = a.token_login(&user).await;
        assert!(
            eventually(Duration::from_secs(5), async || b
                .state
                .revocation
                .feed_status()
                .current)
            .await
        );
        for strategy in ["version", "denylist", "allowlist"] {
            assert_eq!(
                b.status_of(strategy, &tokens.access).await,
                StatusCode::OK,
                "{mode:?}: {strategy} warm"
            );
        }
        proxy.cut(mode);
        let revoked = a.bearer_post("/api/logout-all", &tokens.access, None).await.status();
        let answered = Instant::now();
        assert_eq!(revoked, StatusCode::NO_CONTENT);
        let after = nothing_accepted_past(
            &b,
            &tokens.access,
            &["version", "denylist", "allowlist"],
            answered + bound,
            answered + bound * 3,
        )
        .await;
        assert!(!after.is_empty(), "{mode:?}: checks were made past the bound");
        let asked = Instant::now();
        let ready = b.get("/readyz").await;
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{mode:?}: readyz answers within 1 s"
        );
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{mode:?}: B cannot vouch for its memory"
        );
        proxy.restore();
        assert!(
            eventually(Duration::from_secs(10), async || refused_by_every_revoking_strategy(
                &b,
                &tokens.access
            )
            .await)
            .await,
            "{mode:?}: B refuses the token once it reaches the database again"
        );
    }
}
