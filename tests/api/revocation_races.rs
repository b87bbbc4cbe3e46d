//! A revocation racing a refresh of the same login session: the revocation always wins.
//!
//! Log out, log out everywhere and signing out a device each race `POST /api/token/refresh` for
//! the same login session. Whatever the interleaving, the revocation answers 2xx (never a 5xx from
//! a lock conflict), and nothing the racing refresh minted is accepted afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestUser, Tokens, spawn_app};

/// How many pairs race, and how many run at once (enough to contend, few enough for 2 cores).
/// The deadlock was PostgreSQL's: there it races 1000 pairs; SQLite serialises writers, 200 do.
fn pairs() -> usize {
    if crate::helpers::postgres_url().is_some() {
        1000
    } else {
        200
    }
}
const CONCURRENT_PAIRS: usize = 8;

#[derive(Default)]
struct Tally {
    /// Responses with a 5xx status, either side of a pair.
    server_errors: Vec<String>,
    /// Revocations that did not answer 2xx.
    failed_revocations: Vec<String>,
    /// Credentials still accepted after their login session was revoked.
    survivors: Vec<String>,
    refreshes_won: usize,
}

/// The three ways a token client ends its own login session.
#[derive(Clone, Copy, Debug)]
enum Revocation {
    LogOut,
    LogOutEverywhere,
    SignOutDevice,
}

async fn revoke(app: &TestApp, user: &TestUser, tokens: &Tokens, how: Revocation) -> StatusCode {
    let response = match how {
        Revocation::LogOut => app.bearer_post("/api/logout", &tokens.access, None).await,
        Revocation::LogOutEverywhere => {
            app.bearer_post(
                "/api/logout-all",
                &tokens.access,
                Some(json!({ "password": user.password })),
            )
            .await
        }
        Revocation::SignOutDevice => {
            app.bearer_delete(&format!("/api/sessions/{}", tokens.session_id), &tokens.access)
                .await
        }
    };
    response.status()
}

/// One pair: a fresh login session, then its revocation and a refresh at the same moment.
async fn race_one_pair(app: &TestApp, user: &TestUser, index: usize, tally: &std::sync::Mutex<Tally>) {
    let how = [
        Revocation::LogOut,
        Revocation::LogOutEverywhere,
        Revocation::SignOutDevice,
    ][index % 3];
    let tokens = app.token_login(user).await;
    let (revoked, refreshed) = tokio::join!(revoke(app, user, &tokens, how), app.refresh(&tokens.refresh));
    let refresh_status = refreshed.status();
    let minted = if refresh_status == StatusCode::OK {
        Some(TestApp::refreshed(refreshed).await)
    } else {
        None
    };

    let mut found = Tally::default();
    if revoked.is_server_error() || refresh_status.is_server_error() {
        found.server_errors.push(format!(
            "pair {index} ({how:?}): revocation {revoked}, refresh {refresh_status}"
        ));
    }
    if !revoked.is_success() {
        found
            .failed_revocations
            .push(format!("pair {index} ({how:?}): {revoked}"));
    }
    if revoked.is_success() {
        let mut accepted = Vec::new();
        if app.status_of("allowlist", &tokens.access).await != StatusCode::UNAUTHORIZED {
            accepted.push("the session's own access token (allowlist)");
        }
        if let Some(minted) = &minted {
            if app.status_of("denylist", &minted.access).await != StatusCode::UNAUTHORIZED {
                accepted.push("the minted access token (denylist)");
            }
            if app.status_of("allowlist", &minted.access).await != StatusCode::UNAUTHORIZED {
                accepted.push("the minted access token (allowlist)");
            }
            if app.refresh(&minted.refresh).await.status() != StatusCode::UNAUTHORIZED {
                accepted.push("the minted refresh token");
            }
        }
        for what in accepted {
            found.survivors.push(format!("pair {index} ({how:?}): {what}"));
        }
    }
    let mut tally = tally.lock().unwrap();
    tally.server_errors.append(&mut found.server_errors);
    tally.failed_revocations.append(&mut found.failed_revocations);
    tally.survivors.append(&mut found.survivors);
    tally.refreshes_won += usize::from(minted.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_racing_a_refresh_always_wins_and_nothing_the_refresh_minted_survives() {
    let app = Arc::new(spawn_app().await);
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Each worker has an account of its own, so logging out everywhere ends only its own pair.
    let workers: Vec<_> = (0..CONCURRENT_PAIRS)
        .map(|_| {
            let (app, tally, next) = (app.clone(), tally.clone(), next.clone());
            tokio::spawn(async move {
                let user = app.new_user().await;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= pairs() {
                        break;
                    }
                    race_one_pair(&app, &user, index, &tally).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finished");
    }
    let tally = tally.lock().unwrap();
    eprintln!(
        "{} raced pairs ({CONCURRENT_PAIRS} at a time) in {:.1} s: {} refreshes won their race, \
         {} responses 5xx, {} revocations not 2xx, {} surviving credentials",
        pairs(),
        started.elapsed().as_secs_f64(),
        tally.refreshes_won,
        tally.server_errors.len(),
        tally.failed_revocations.len(),
        tally.survivors.len()
    );
    assert!(
        tally.server_errors.is_empty(),
        "5xx answers: {:#?}",
        tally.server_errors
    );
    assert!(
        tally.failed_revocations.is_empty(),
        "revocations that failed: {:#?}",
        tally.failed_revocations
    );
    assert!(
        tally.survivors.is_empty(),
        "accepted after a 2xx revocation: {:#?}",
        tally.survivors
    );
}

#[tokio::test]
async fn an_activity_flush_arriving_late_never_moves_last_seen_or_the_idle_limit_back() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let tokens = app.token_login(&user).await;
    let db = app.db().await;
    let stored = |db: revocable::store::Db, id: String| async move {
        let row: (i64, i64) = sqlx::query_as("SELECT last_seen_at, idle_expires_at FROM login_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        row
    };
    let (seen, idle) = stored(db.clone(), tokens.session_id.clone()).await;
    // One instance flushes what it saw later; another, slower, flushes an earlier sighting after.
    let later = (seen + 60_000, idle + 60_000);
    revocable::store::login_sessions::touch(&db, &tokens.session_id, later.0, later.1)
        .await
        .unwrap();
    revocable::store::login_sessions::touch(&db, &tokens.session_id, seen + 1_000, idle + 1_000)
        .await
        .unwrap();
    assert_eq!(stored(db.clone(), tokens.session_id.clone()).await, later);
    revocable::store::login_sessions::record_activity(&db, &tokens.session_id, seen + 2_000)
        .await
        .unwrap();
    assert_eq!(stored(db.clone(), tokens.session_id.clone()).await, later);
    revocable::store::login_sessions::record_activity(&db, &tokens.session_id, later.0 + 5)
        .await
        .unwrap();
    assert_eq!(
        stored(db.clone(), tokens.session_id.clone()).await,
        (later.0 + 5, later.1)
    );
}
