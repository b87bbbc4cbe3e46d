//! Revocation events: durability, the denylist's copies, password change, log out everywhere.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, redis_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_revocation_is_in_the_database_when_the_answer_arrives() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let db = app.db().await;
    let revoked: Option<i64> = sqlx::query_scalar("SELECT revoked_at FROM login_sessions WHERE id = $1")
        .bind(&tokens.session_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(revoked.is_some());
    let denied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM denylist")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn the_denylist_survives_a_restart() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    let restarted = app.restart().await;
    assert_eq!(
        restarted.status_of("denylist", &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(restarted.status_of("stateless", &tokens.access).await, StatusCode::OK);
}

#[tokio::test]
async fn the_denylist_survives_losing_its_redis_copy() {
    if redis_url().is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "TEST_REDIS_URL is not set: losing the Redis copy is exercised in the PostgreSQL + Redis run"
        );
        return;
    }
    // With the cache off, every check reads the Redis copy: the case where a lost key could lie.
    for cache in ["off", "on"] {
        let app = spawn_app_with(&[("REVOCATION_CACHE", cache)]).await;
        let user = app.new_user().await;
        let tokens = app.token_login(&user).await;
        let other = app.token_login(&user).await;
        app.bearer_post("/api/logout", &tokens.access, None).await;
        assert_eq!(
            app.status_of("denylist", &tokens.access).await,
            StatusCode::UNAUTHORIZED
        );

        let redis = app.redis.as_ref().unwrap();
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let mut connection = client.get_connection().unwrap();
        let _: () = redis::cmd("DEL")
            .arg(format!("{}denylist", redis.prefix))
            .query(&mut connection)
            .unwrap();

        assert_eq!(
            app.status_of("denylist", &tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "nothing revoked comes back (cache {cache})"
        );
        assert_eq!(
            app.status_of("denylist", &other.access).await,
            StatusCode::OK,
            "nothing live is refused (cache {cache})"
        );
        if cache == "off" {
            let restored: i64 = redis::cmd("ZCARD")
                .arg(format!("{}denylist", redis.prefix))
                .query(&mut connection)
                .unwrap();
            assert_eq!(restored, 2, "the copy was rebuilt from the database, marker included");
        }
    }
}

#[tokio::test]
async fn expired_denylist_entries_are_purged_from_the_database_and_the_copy() {
    let app = spawn_app_with(&[("ACCESS_TTL", "1s"), ("PURGE_INTERVAL", "1s")]).await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    app.bearer_post("/api/logout", &tokens.access, None).await;
    assert_eq!(app.state.revocation.cache_sizes().denylist, 1);
    if app.redis.is_some() {
        assert_eq!(app.state.revocation.denylist().entry_count().await.unwrap(), 1);
    }
    app.advance(Duration::from_millis(3500)).await;
    let db = app.db().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM denylist")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "the denylist holds only tokens that could still be used");
    assert_eq!(app.state.revocation.cache_sizes().denylist, 0);
    assert_eq!(app.state.revocation.denylist().entry_count().await.unwrap(), 0);
}

#[tokio::test]
async fn log_out_everywhere_ends_cookie_sessions_too() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let tokens = app.token_login(&user).await;
    assert_eq!(
        app.bearer_post("/api/logout-all", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.token_version(&user.id).await, 1);
}

#[tokio::test]
async fn a_password_change_with_a_token_returns_a_fresh_pair_and_signs_out_the_others() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let caller = app.token_login(&user).await;
    let other = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;

    let response = app
        .bearer_post(
            "/api/password",
            &caller.access,
            Some(json!({ "current_password": user.password, "new_password": "an entirely new one" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh: Value = response.json().await.unwrap();
    let fresh_access = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        fresh["session_id"],
        caller.session_id.as_str(),
        "the caller keeps its login session"
    );
    assert_eq!(app.status_of("version", fresh_access).await, StatusCode::OK);
    assert_eq!(app.status_of("allowlist", fresh_access).await, StatusCode::OK);
    assert_eq!(app.status_of("version", &caller.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.status_of("allowlist", &other.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    TestApp::refreshed(app.refresh(fresh["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(app.refresh(&other.refresh).await.status(), StatusCode::UNAUTHORIZED);

    let old = app
        .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app
        .post_json(
            "/api/token",
            &json!({ "email": user.email, "password": "an entirely new one" }),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_a_valid_new_one() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let wrong = app
        .bearer_post(
            "/api/password",
            &tokens.access,
            Some(json!({ "current_password": "not the password", "new_password": "an entirely new one" })),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(crate::helpers::error_body(wrong).await["field"], "current_password");
    let short = app
        .bearer_post(
            "/api/password",
            &tokens.access,
            Some(json!({ "current_password": user.password, "new_password": "short" })),
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(crate::helpers::error_body(short).await["field"], "new_password");
    assert_eq!(
        app.status_of("version", &tokens.access).await,
        StatusCode::OK,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_revoked_device_loses_its_unexpired_access_tokens_at_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let device = app.token_login(&user).await;
    let refreshed = TestApp::refreshed(app.refresh(&device.refresh).await).await;
    let other = app.token_login(&user).await;
    app.bearer_delete(&format!("/api/sessions/{}", device.session_id), &other.access)
        .await;
    for token in [&device.access, &refreshed.access] {
        assert_eq!(app.status_of("denylist", token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.status_of("allowlist", token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.status_of("denylist", &other.access).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_refused_by_another_at_once() {
    if redis_url().is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "TEST_REDIS_URL is not set: several instances are exercised in the PostgreSQL + Redis run"
        );
        return;
    }
    let first = spawn_app().await;
    let second = first.restart().await;
    let user = first.new_user().await;
    let device = first.token_login(&user).await;
    let browser = first.browser();
    browser.login(&user).await;
    let mut elsewhere = second.browser();
    elsewhere.set_session_cookie(&browser.session_cookie().unwrap());
    elsewhere.rebase(&second.address);
    assert_eq!(
        elsewhere.cookie_me().await.status(),
        StatusCode::OK,
        "the cookie works on both"
    );

    let other = second.token_login(&user).await;
    assert_eq!(
        second
            .bearer_post("/api/logout-all", &other.access, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for strategy in ["version", "denylist", "allowlist"] {
        assert_eq!(
            first.status_of(strategy, &device.access).await,
            StatusCode::UNAUTHORIZED,
            "{strategy}"
        );
    }
    assert_eq!(browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(first.refresh(&device.refresh).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_redis_copy_restored_to_an_old_state_is_not_believed_until_it_is_rebuilt() {
    let Some(url) = redis_url() else { return };
    // With the cache off, every denylist check reads the Redis copy.
    let app = spawn_app_with(&[("REVOCATION_CACHE", "off")]).await;
    let user = app.new_user().await;
    let first = app.token_login(&user).await;
    let second = app.token_login(&user).await;
    let prefix = &app.redis.as_ref().unwrap().prefix;
    let key = format!("{prefix}denylist");
    let mut connection = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let snapshot: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut connection)
        .unwrap();
    assert!(!snapshot.is_empty(), "the copy carries its marker");
    app.bearer_post("/api/logout", &first.access, None).await;
    // Redis comes back from the snapshot taken before that logout: the entry is gone, the marker old.
    let _: () = redis::cmd("DEL").arg(&key).query(&mut connection).unwrap();
    for (member, score) in &snapshot {
        let _: () = redis::cmd("ZADD")
            .arg(&key)
            .arg(*score)
            .arg(member)
            .query(&mut connection)
            .unwrap();
    }
    // A later revocation is written to the copy; it must not make the old marker vouch for the gap.
    app.bearer_post("/api/logout", &second.access, None).await;
    app.state.revocation.catch_up().await.unwrap();
    assert_eq!(
        app.status_of("denylist", &first.access).await,
        StatusCode::UNAUTHORIZED,
        "the token revoked while the copy was behind stays refused"
    );
}

/// The denylist is loaded whole at start-up (PostgreSQL streams the table, SQLite reads it in
/// rowid chunks of 4096, `store::denylist`): every live row arrives once, whatever its `jti`
/// holds, across chunk boundaries and gaps, and expired rows stay behind. On whichever backend the
/// suite runs against.
#[tokio::test]
async fn the_denylist_loads_every_live_row_once_whatever_its_jti_holds() {
    use revocable::store::denylist;
    let database = crate::helpers::TestDatabase::create().await;
    let db = revocable::store::connect(&database.url)
        .await
        .expect("the test database");
    revocable::store::migrate(&db).await.expect("the schema");
    let odd = [
        "a,b:c",
        "ünïcödé",
        "with space",
        ":",
        ",",
        "tab\tand\nnewline",
        "back\\slash",
        "'quote",
    ];
    // Past two chunks of 4096, with expired rows among them.
    let many: Vec<String> = (0..4096 * 2 + 5).map(|index| format!("jti-{index:05}")).collect();
    for jti in odd.iter().copied().chain(many.iter().map(String::as_str)) {
        denylist::insert(&db, jti, 1_000, 0).await.unwrap();
    }
    for expired in ["expired", "jti-04095x", "zzz-expired"] {
        denylist::insert(&db, expired, 10, 0).await.unwrap();
    }
    // A gap in the rows (SQLite's rowids), as purges leave them.
    sqlx::query("DELETE FROM denylist WHERE jti = 'jti-00007'")
        .execute(&db)
        .await
        .unwrap();
    let mut seen: Vec<(String, i64)> = Vec::new();
    let count = denylist::for_each_live(&db, 100, |jti, expires_at| seen.push((jti.to_owned(), expires_at)))
        .await
        .unwrap();
    assert_eq!(count, seen.len());
    let mut expected: Vec<(String, i64)> = odd
        .iter()
        .map(|jti| (*jti).to_owned())
        .chain(many.iter().filter(|jti| *jti != "jti-00007").cloned())
        .map(|jti| (jti, 1_000))
        .collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen.len(), expected.len(), "each live row once, no expired one");
    assert_eq!(seen, expected);
    db.close().await;
}
