//! The database fails while requests flow: PostgreSQL cut at a TCP proxy the test controls (open
//! connections reset, new ones refused or left unanswered), and SQLite refusing every write as it
//! does on a read-only file. Meanwhile every answer is a 503 with `Retry-After` or one served from
//! what is safely known: never a 500, never a revoked credential accepted. Afterwards the service
//! recovers without a restart, and every revocation that was answered 2xx is still in force.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::helpers::{
    Browser, CutMode, TestApp, TestUser, Tokens, spawn_app_behind_database_proxy, spawn_app_on_sqlite,
};

const STRATEGIES: [&str; 4] = ["stateless", "version", "denylist", "allowlist"];

/// How the database fails, and so what may be answered meanwhile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// Unreachable: anything that needs the database is a 503, the rest answers from memory.
    Unreachable,
    /// Readable but refusing writes: reads answer as before, writes are 503s.
    ReadOnly,
}

/// A credential revoked with a 2xx answer, and the strategies that refused it right after.
struct Revoked {
    what: String,
    access: String,
    refresh: String,
    refused_by: Vec<&'static str>,
}

/// What one request was and what it answered.
struct Seen {
    what: String,
    status: StatusCode,
    retry_after: bool,
    allowed: Vec<StatusCode>,
    /// A revocation this request made, if it answered 2xx.
    revoked: Option<Revoked>,
    /// A refresh that answered 200: the pair to use next.
    rotated: Option<Tokens>,
}

#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    unavailable: usize,
    server_errors: Vec<String>,
    revoked_accepted: Vec<String>,
    unavailable_without_retry_after: Vec<String>,
    unexpected: Vec<String>,
}

impl Tally {
    fn see(&mut self, seen: &Seen, revoked_credential: bool) {
        self.requests += 1;
        let line = format!("{}: {}", seen.what, seen.status);
        if seen.status == StatusCode::SERVICE_UNAVAILABLE {
            self.unavailable += 1;
            if !seen.retry_after {
                self.unavailable_without_retry_after.push(line.clone());
            }
        } else if seen.status.is_server_error() {
            self.server_errors.push(line.clone());
        }
        if revoked_credential && seen.status.is_success() {
            self.revoked_accepted.push(line.clone());
        }
        if !seen.allowed.contains(&seen.status) {
            self.unexpected.push(line);
        }
    }

    fn assert_clean(&self, phase: &str) {
        assert!(self.server_errors.is_empty(), "{phase}: 5xx other than 503: {self:#?}");
        assert!(
            self.revoked_accepted.is_empty(),
            "{phase}: a revoked credential was accepted: {self:#?}"
        );
        assert!(
            self.unavailable_without_retry_after.is_empty(),
            "{phase}: a 503 without Retry-After: {self:#?}"
        );
        assert!(self.unexpected.is_empty(), "{phase}: unexpected answers: {self:#?}");
    }
}

/// Everything the requests need: a live user and its credentials, spare log-ins to log out or
/// sign out while the fault lasts, and credentials revoked before it.
struct World {
    user: TestUser,
    live: Tokens,
    chain: Tokens,
    browser: Browser,
    revoked_browser: Browser,
    spares: Vec<Tokens>,
    /// Kept for the revocations sent as each fault begins.
    racing_spares: Vec<Tokens>,
    revoked: Vec<Revoked>,
}

fn seen(what: String, response: &Response, allowed: &[StatusCode]) -> Seen {
    Seen {
        what,
        status: response.status(),
        retry_after: response.headers().contains_key("retry-after"),
        allowed: allowed.to_vec(),
        revoked: None,
        rotated: None,
    }
}

/// The strategies that refuse `access` now (all of them must, later, too).
async fn refusing(app: &TestApp, access: &str) -> Vec<&'static str> {
    let mut refusing = Vec::new();
    for strategy in STRATEGIES {
        if app.status_of(strategy, access).await == StatusCode::UNAUTHORIZED {
            refusing.push(strategy);
        }
    }
    refusing
}

async fn prepare(app: &TestApp) -> World {
    let user = app.new_user().await;
    let live = app.token_login(&user).await;
    let chain = app.token_login(&user).await;
    let browser = app.browser();
    browser.login(&user).await;
    let revoked_browser = app
        .browser()
        .with_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0");
    revoked_browser.login(&user).await;
    let mut spares = Vec::new();
    for _ in 0..12 {
        spares.push(app.token_login(&user).await);
    }
    let mut racing_spares = Vec::new();
    for _ in 0..8 {
        racing_spares.push(app.token_login(&user).await);
    }

    let mut revoked = Vec::new();
    let logged_out = app.token_login(&user).await;
    let response = app.bearer_post("/api/logout", &logged_out.access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    revoked.push(Revoked {
        what: "logged out before the fault".into(),
        refused_by: refusing(app, &logged_out.access).await,
        access: logged_out.access,
        refresh: logged_out.refresh,
    });
    let signed_out = app.token_login(&user).await;
    let response = app
        .bearer_delete(&format!("/api/sessions/{}", signed_out.session_id), &live.access)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    revoked.push(Revoked {
        what: "signed out from another device before the fault".into(),
        refused_by: refusing(app, &signed_out.access).await,
        access: signed_out.access,
        refresh: signed_out.refresh,
    });
    // Another account logs out everywhere: the version strategy refuses its old tokens too.
    let other = app.new_user().await;
    let everywhere = app.token_login(&other).await;
    let response = app
        .bearer_post(
            "/api/logout-all",
            &everywhere.access,
            Some(json!({ "password": other.password })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    revoked.push(Revoked {
        what: "logged out everywhere before the fault".into(),
        refused_by: refusing(app, &everywhere.access).await,
        access: everywhere.access,
        refresh: everywhere.refresh,
    });
    for credential in &revoked {
        assert!(
            credential.refused_by.len() >= 2,
            "{}: refused only by {:?}",
            credential.what,
            credential.refused_by
        );
    }
    let cookie_session = app
        .sessions(&live.access)
        .await
        .into_iter()
        .find(|session| session["kind"] == "cookie" && session["user_agent"].as_str().unwrap().contains("Chrome"))
        .expect("the second browser's session is listed");
    let response = app
        .bearer_delete(
            &format!("/api/sessions/{}", cookie_session["id"].as_str().unwrap()),
            &live.access,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(revoked_browser.cookie_me().await.status(), StatusCode::UNAUTHORIZED);
    World {
        user,
        live,
        chain,
        browser,
        revoked_browser,
        spares,
        racing_spares,
        revoked,
    }
}

type Request<'a> = Pin<Box<dyn Future<Output = Seen> + 'a>>;

/// Logs `tokens` out (`/api/logout`) or signs it out from the live session
/// (`DELETE /api/sessions/{id}`); a 2xx answer is a revocation that must stay in force.
fn revoke_spare<'a>(
    app: &'a TestApp,
    world: &'a World,
    tokens: Tokens,
    by_logout: bool,
    allowed: &[StatusCode],
) -> Request<'a> {
    let allowed = allowed.to_vec();
    Box::pin(async move {
        let (what, response) = if by_logout {
            ("log out", app.bearer_post("/api/logout", &tokens.access, None).await)
        } else {
            (
                "sign out a device",
                app.bearer_delete(&format!("/api/sessions/{}", tokens.session_id), &world.live.access)
                    .await,
            )
        };
        let mut result = seen(what.into(), &response, &allowed);
        if response.status().is_success() {
            // Refused as the same kind of revocation was before the fault.
            let like = &world.revoked[if by_logout { 0 } else { 1 }];
            result.revoked = Some(Revoked {
                what: format!("{what} answered {}", response.status()),
                access: tokens.access,
                refresh: tokens.refresh,
                refused_by: like.refused_by.clone(),
            });
        }
        result
    })
}

/// One of every request, all at once: reads with live and revoked credentials, a log-in, a
/// refresh, a log-out and a device signed out. `fault` says what each may answer.
async fn round(app: &TestApp, world: &mut World, fault: Option<Fault>, tally: &mut Tally) {
    let ok = StatusCode::OK;
    let unauthorized = StatusCode::UNAUTHORIZED;
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    let (read_ok, read_refused, write_ok, logout_ok): (Vec<_>, Vec<_>, Vec<_>, Vec<_>) = match fault {
        None => (vec![ok], vec![unauthorized], vec![ok], vec![StatusCode::NO_CONTENT]),
        Some(Fault::Unreachable) => (
            vec![ok, unavailable],
            vec![unauthorized, unavailable],
            vec![unavailable],
            vec![unavailable],
        ),
        Some(Fault::ReadOnly) => (vec![ok], vec![unauthorized], vec![unavailable], vec![unavailable]),
    };
    let spares: Vec<Tokens> = (0..2).filter_map(|_| world.spares.pop()).collect();
    let world_now: &World = world;
    let mut requests: Vec<(Request<'_>, bool)> = Vec::new();
    for strategy in STRATEGIES {
        let (access, allowed) = (world_now.live.access.clone(), read_ok.clone());
        requests.push((
            Box::pin(async move {
                let response = app.me(strategy, &access).await;
                seen(format!("{strategy} me, live"), &response, &allowed)
            }),
            false,
        ));
    }
    for credential in &world_now.revoked {
        for strategy in &credential.refused_by {
            let allowed = read_refused.clone();
            requests.push((
                Box::pin(async move {
                    let response = app.me(strategy, &credential.access).await;
                    seen(format!("{strategy} me, {}", credential.what), &response, &allowed)
                }),
                true,
            ));
        }
        let allowed = read_refused.clone();
        requests.push((
            Box::pin(async move {
                let response = app.refresh(&credential.refresh).await;
                seen(format!("refresh, {}", credential.what), &response, &allowed)
            }),
            true,
        ));
    }
    {
        let (browser, allowed) = (&world_now.browser, read_ok.clone());
        requests.push((
            Box::pin(async move { seen("cookie me, live".into(), &browser.cookie_me().await, &allowed) }),
            false,
        ));
        let (browser, allowed) = (&world_now.revoked_browser, read_refused.clone());
        requests.push((
            Box::pin(async move { seen("cookie me, signed out".into(), &browser.cookie_me().await, &allowed) }),
            true,
        ));
    }
    {
        let (user, allowed) = (&world_now.user, write_ok.clone());
        requests.push((
            Box::pin(async move {
                let response = app
                    .post_json("/api/token", &json!({ "email": user.email, "password": user.password }))
                    .await;
                seen("log in".into(), &response, &allowed)
            }),
            false,
        ));
        let (refresh, allowed) = (world_now.chain.refresh.clone(), write_ok.clone());
        requests.push((
            Box::pin(async move {
                let response = app.refresh(&refresh).await;
                let mut result = seen("refresh, live".into(), &response, &allowed);
                if response.status() == StatusCode::OK {
                    result.rotated = Some(TestApp::refreshed(response).await);
                }
                result
            }),
            false,
        ));
    }
    for (index, tokens) in spares.into_iter().enumerate() {
        requests.push((revoke_spare(app, world_now, tokens, index == 0, &logout_ok), false));
    }

    let (futures, revoked_flags): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
    let results = futures_util::future::join_all(futures).await;
    let mut new_revocations = Vec::new();
    for (mut result, revoked_credential) in results.into_iter().zip(revoked_flags) {
        tally.see(&result, revoked_credential);
        if let Some(tokens) = result.rotated.take() {
            world.chain = tokens;
        }
        new_revocations.extend(result.revoked.take());
    }
    world.revoked.extend(new_revocations);
}

/// Log-outs and device sign-outs sent 10 ms apart while the fault begins, as soon as the first
/// has answered: each answers 2xx or 503, and a 2xx must hold.
async fn race_the_fault(app: &TestApp, world: &mut World, begin: impl Future<Output = ()>, tally: &mut Tally) {
    let either = [StatusCode::NO_CONTENT, StatusCode::SERVICE_UNAVAILABLE];
    let spares: Vec<Tokens> = (0..4).filter_map(|_| world.racing_spares.pop()).collect();
    assert_eq!(spares.len(), 4, "log-ins kept for racing a fault");
    let world_ref: &World = world;
    let (first_answered, answered) = tokio::sync::oneshot::channel::<()>();
    let mut first_answered = Some(first_answered);
    let racing: Vec<Request<'_>> = spares
        .into_iter()
        .enumerate()
        .map(|(index, tokens)| {
            let revocation = revoke_spare(app, world_ref, tokens, index % 2 == 0, &either);
            let signal = first_answered.take();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10 * index as u64)).await;
                let seen = revocation.await;
                if let Some(signal) = signal {
                    let _ = signal.send(());
                }
                seen
            }) as Request<'_>
        })
        .collect();
    let (results, ()) = tokio::join!(futures_util::future::join_all(racing), async {
        let _ = answered.await;
        begin.await;
    });
    for mut result in results {
        tally.see(&result, false);
        world.revoked.extend(result.revoked.take());
    }
}

/// Rounds while the fault lasts: at least `minimum` of them, and at least three seconds' worth.
async fn rounds_during(app: &TestApp, world: &mut World, fault: Fault, minimum: usize) -> Tally {
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < minimum || started.elapsed() < Duration::from_secs(3) {
        round(app, world, Some(fault), &mut tally).await;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tally
}

/// Polls until a log-in and every strategy's read with a live credential succeed again (the
/// service recovered by itself), then checks that a whole round answers as before the fault.
async fn recovered_within(app: &TestApp, world: &mut World, deadline: Duration) -> (Duration, Tally) {
    let started = Instant::now();
    loop {
        let mut statuses = vec![
            app.post_json(
                "/api/token",
                &json!({ "email": world.user.email, "password": world.user.password }),
            )
            .await
            .status(),
        ];
        for strategy in STRATEGIES {
            statuses.push(app.status_of(strategy, &world.live.access).await);
        }
        statuses.push(world.browser.cookie_me().await.status());
        if statuses.iter().all(|status| *status == StatusCode::OK) {
            break;
        }
        assert!(
            statuses
                .iter()
                .all(|status| !status.is_server_error() || *status == StatusCode::SERVICE_UNAVAILABLE),
            "recovering: {statuses:?}"
        );
        assert!(
            started.elapsed() < deadline,
            "not recovered after {deadline:?}: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    let mut check = Tally::default();
    round(app, world, None, &mut check).await;
    check.assert_clean("after recovery");
    (took, check)
}

/// Every credential revoked with a 2xx answer, before, around or during the fault, is refused.
async fn every_revocation_holds(app: &TestApp, world: &World) {
    for credential in &world.revoked {
        for strategy in &credential.refused_by {
            assert_eq!(
                app.status_of(strategy, &credential.access).await,
                StatusCode::UNAUTHORIZED,
                "{strategy}: {}",
                credential.what
            );
        }
        assert_eq!(
            app.refresh(&credential.refresh).await.status(),
            StatusCode::UNAUTHORIZED,
            "refresh: {}",
            credential.what
        );
    }
    assert_eq!(
        world.revoked_browser.cookie_me().await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn report(phase: &str, tally: &Tally) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{phase}: {} requests, {} answered 503, {} other 5xx, {} revoked credentials accepted",
        tally.requests,
        tally.unavailable,
        tally.server_errors.len(),
        tally.revoked_accepted.len()
    );
}

#[tokio::test]
async fn a_postgresql_cut_at_the_network_is_503s_and_known_answers_then_recovers_with_every_revocation_in_force() {
    if crate::helpers::postgres_url().is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "TEST_DATABASE_URL is not set: the PostgreSQL cut is exercised in the PostgreSQL run"
        );
        return;
    }
    // PostgreSQL + Redis (when TEST_REDIS_URL is set), then PostgreSQL alone.
    let setups = if crate::helpers::redis_url().is_some() {
        vec![true, false]
    } else {
        vec![false]
    };
    for with_redis in setups {
        let setup = if with_redis {
            "PostgreSQL + Redis"
        } else {
            "PostgreSQL alone"
        };
        let (app, proxy) = spawn_app_behind_database_proxy(with_redis, &[]).await.unwrap();
        assert_eq!(app.state.redis.is_some(), with_redis);
        let mut world = prepare(&app).await;
        let mut before = Tally::default();
        round(&app, &mut world, None, &mut before).await;
        before.assert_clean(&format!("{setup}: before the cut"));

        for mode in [CutMode::Refuse, CutMode::Blackhole] {
            let phase = format!("{setup}, {mode:?}");
            let mut racing = Tally::default();
            race_the_fault(&app, &mut world, async { proxy.cut(mode) }, &mut racing).await;
            report(&format!("{phase}: racing the cut"), &racing);
            racing.assert_clean(&format!("{phase}: racing the cut"));

            let during = rounds_during(&app, &mut world, Fault::Unreachable, 2).await;
            report(&format!("{phase}: during the cut"), &during);
            during.assert_clean(&format!("{phase}: during the cut"));
            assert!(during.unavailable > 0, "{phase}: the cut was felt: {during:#?}");

            proxy.restore();
            let (took, after) = recovered_within(&app, &mut world, Duration::from_secs(30)).await;
            report(&format!("{phase}: recovered in {took:?}"), &after);
            every_revocation_holds(&app, &world).await;
        }
    }
}

/// Turns `PRAGMA query_only` on or off on every connection of the app's own pool. While it is on,
/// SQLite refuses every write with SQLITE_READONLY, the answer it gives when its file or directory
/// cannot be written; the app's code and pool are untouched, only their database stops accepting
/// writes. (Permissions cannot do it here: the tests run as root, which file modes do not stop.)
async fn sqlite_refuses_writes(app: &TestApp, read_only: bool) {
    let pool = &app.state.db;
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.expect("a connection of the app's pool"));
    }
    let pragma = if read_only {
        "PRAGMA query_only = ON"
    } else {
        "PRAGMA query_only = OFF"
    };
    for connection in &mut held {
        sqlx::query(pragma).execute(&mut **connection).await.unwrap();
    }
}

#[tokio::test]
async fn an_sqlite_database_that_refuses_writes_answers_reads_and_503s_then_recovers_with_every_revocation_in_force() {
    let app = spawn_app_on_sqlite(&[]).await;
    let mut world = prepare(&app).await;
    let mut before = Tally::default();
    round(&app, &mut world, None, &mut before).await;
    before.assert_clean("before the fault");

    let mut racing = Tally::default();
    race_the_fault(&app, &mut world, sqlite_refuses_writes(&app, true), &mut racing).await;
    report("read-only: racing the fault", &racing);
    racing.assert_clean("racing the fault");

    let during = rounds_during(&app, &mut world, Fault::ReadOnly, 2).await;
    report("read-only: during the fault", &during);
    during.assert_clean("during the fault");
    assert!(during.unavailable > 0, "the fault was felt: {during:#?}");

    sqlite_refuses_writes(&app, false).await;
    let (took, after) = recovered_within(&app, &mut world, Duration::from_secs(30)).await;
    report(&format!("read-only: recovered in {took:?}"), &after);
    every_revocation_holds(&app, &world).await;
}
