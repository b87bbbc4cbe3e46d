//! `/compare` and `revocable demo`: the matrix observed by the running system.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use revocable::compare::matrix;

use crate::helpers::{TestApp, spawn_app_with};

/// Loads `/compare` until the first measurement has landed.
async fn measured_page(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = app.get("/compare").await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        if page.contains("What each one costs") {
            return page;
        }
        assert!(Instant::now() < deadline, "no measurement after two minutes: {page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_compare_page_shows_the_documented_matrix_as_observed() {
    // A tight rate limit on the served instance: the measuring instance has limits of its own.
    let app = spawn_app_with(&[
        ("COMPARE_AT_START", "on"),
        ("ACCESS_TTL", "8s"),
        ("REFRESH_REUSE_GRACE", "0"),
        ("LOGIN_RATE_PER_MINUTE", "3"),
    ])
    .await;
    // The first visit shows the documented matrix at once, marked expected.
    let first = app.get("/compare").await.text().await.unwrap();
    assert!(first.contains("measuring itself for the first time"), "{first}");
    assert!(first.contains("<span class=\"badge warn\">expected</span>"));
    assert!(first.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    assert_eq!(first.matches("<td class=\"cell-yes\">until expiry</td>").count(), 8);
    let page = measured_page(&app).await;
    assert!(
        page.contains("Every observed cell matches the documented matrix."),
        "{page}"
    );
    let (report, _) = app.compare.current().await;
    let report = report.unwrap();
    assert_eq!(report.matrix.as_ref().unwrap(), &matrix::expected());
    assert!(
        !report.expiry_observed_in_process,
        "a 2 s token is waited for, not simulated"
    );
    for event in matrix::Event::ALL {
        assert!(page.contains(event.label()), "{}", event.label());
    }
    assert!(page.contains("<span class=\"badge ok\">observed</span>"));
    // stateless in five rows, version in three; the same in the narrow screen's cards.
    assert_eq!(page.matches("<td class=\"cell-yes\">until expiry</td>").count(), 8);
    assert_eq!(page.matches("<dd class=\"cell-yes\">until expiry</dd>").count(), 8);
    assert!(
        page.contains("still accepted until the access token expires (≤ 1 min)"),
        "the legend"
    );
}

#[tokio::test]
async fn the_compare_page_measures_costs_and_state_for_all_five_strategies() {
    let app = spawn_app_with(&[
        ("COMPARE_AT_START", "on"),
        ("ACCESS_TTL", "8s"),
        ("REFRESH_REUSE_GRACE", "0"),
    ])
    .await;
    let page = measured_page(&app).await;
    let (report, _) = app.compare.current().await;
    let costs = report.unwrap().costs.clone().expect("costs measured");
    let names: Vec<&str> = costs.iter().map(|cost| cost.strategy).collect();
    assert_eq!(names, matrix::STRATEGIES);
    for cost in &costs {
        assert!(
            cost.median_micros > 0.0 && cost.p99_micros >= cost.median_micros,
            "{cost:?}"
        );
        assert!(page.contains(&format!("<code>{}</code>", cost.strategy)));
    }
    assert_eq!(costs[0].io, "none");
    for cost in &costs[1..] {
        let uncached = cost
            .uncached
            .as_ref()
            .expect("each revocable check is measured without the cache too");
        assert!(uncached.median_micros > 0.0 && uncached.p99_micros >= uncached.median_micros);
        assert!(cost.io.contains("in-process cache"), "{cost:?}");
    }
    assert!(page.contains("without the cache"));
    assert!(
        page.contains("A stateless check takes"),
        "the conclusion quotes the measured figures"
    );
    assert!(costs[3].state.contains("B per login session"), "{:?}", costs[3]);
    assert!(costs[2].state.contains("B per revoked token"), "{:?}", costs[2]);
    // The probe account is gone again.
    let db = app.db().await;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0, "the throw-away accounts are deleted");
}

#[tokio::test]
async fn the_compare_page_is_measured_at_most_once_a_minute() {
    let app = spawn_app_with(&[
        ("COMPARE_AT_START", "on"),
        ("ACCESS_TTL", "8s"),
        ("REFRESH_REUSE_GRACE", "0"),
    ])
    .await;
    measured_page(&app).await;
    let (first, _) = app.compare.current().await;
    let measured_at = first.unwrap().measured_at;
    for _ in 0..20 {
        assert_eq!(app.get("/compare").await.status(), StatusCode::OK);
    }
    let (again, running) = app.compare.current().await;
    assert_eq!(again.unwrap().measured_at, measured_at);
    assert!(!running, "no new measurement was started");
}

#[tokio::test]
async fn a_long_access_token_lifetime_is_observed_in_process_for_the_expiry_row() {
    let app = spawn_app_with(&[("COMPARE_AT_START", "on"), ("REFRESH_REUSE_GRACE", "0")]).await;
    let page = measured_page(&app).await;
    let (report, _) = app.compare.current().await;
    let report = report.unwrap();
    assert!(report.expiry_observed_in_process);
    assert_eq!(report.matrix.as_ref().unwrap(), &matrix::expected());
    assert!(page.contains("clock moved past its"));
}

fn demo(url: &str, json: bool) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_revocable"));
    command.arg("demo").arg("--url").arg(url);
    if json {
        command.arg("--json");
    }
    command.output().unwrap()
}

#[tokio::test]
async fn revocable_demo_against_a_running_server_prints_every_row_and_exits_zero() {
    let app = spawn_app_with(&[("ACCESS_TTL", "8s"), ("REFRESH_REUSE_GRACE", "0")]).await;
    let url = app.address.clone();
    let output = tokio::task::spawn_blocking(move || demo(&url, false)).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for event in matrix::Event::ALL {
        assert!(stdout.contains(event.label()), "{stdout}");
    }
    assert!(stdout.contains("every observed cell matches the documented matrix"));
    assert!(!stdout.contains("\u{1b}["), "no colours when stdout is not a terminal");

    let url = app.address.clone();
    let output = tokio::task::spawn_blocking(move || demo(&url, true)).await.unwrap();
    assert!(output.status.success());
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["matches_documented_matrix"], true);
    assert_eq!(document["rows"].as_array().unwrap().len(), 6);
    assert_eq!(document["rows"][1]["cells"][1], "rejected");
}

#[tokio::test]
async fn revocable_demo_exits_non_zero_when_it_cannot_reach_the_server() {
    let output = tokio::task::spawn_blocking(|| demo("http://127.0.0.1:9", false))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach"));
}

#[tokio::test]
async fn the_compare_page_names_the_strategies_in_the_words_people_search_for() {
    let app = crate::helpers::spawn_app().await;
    let page = app.get("/compare").await.text().await.unwrap();
    for words in [
        "blacklist",
        "whitelist",
        "token version",
        "Redis TTL",
        "hybrid (access + refresh)",
        "client-side deletion",
        "refresh revocation",
        "A short access token plus a refresh token the server keeps",
    ] {
        assert!(page.contains(words), "missing {words:?}");
    }
}

#[tokio::test]
async fn the_compare_page_charts_this_servers_own_costs() {
    // Default 15-minute tokens: nothing waits for an expiry, so this adds little load.
    let app = spawn_app_with(&[("COMPARE_AT_START", "on")]).await;
    let page = measured_page(&app).await;
    assert!(page.contains("Median microseconds per check — <strong>lower is better</strong>"));
    let (report, _) = app.compare.current().await;
    let costs = report.unwrap().costs.clone().expect("costs measured");
    for cost in &costs {
        assert!(
            page.contains(&format!(
                "<span class=\"bar-value\">{:.1} µs</span>",
                cost.median_micros
            )),
            "a bar for {}",
            cost.strategy
        );
    }
    assert!(page.matches("<svg class=\"bar\"").count() >= costs.len());
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_anonymous_visit_never_starts_a_measurement() {
    let app = spawn_app_with(&[]).await;
    for _ in 0..5 {
        let page = app.get("/compare").await.text().await.unwrap();
        assert!(page.contains("Nothing has been measured on this server yet"), "{page}");
        assert!(page.contains("Log in to measure it."));
        assert!(
            !page.contains("Measure now"),
            "no button for a visitor who is not logged in"
        );
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "nothing runs, so the page does not reload itself"
        );
    }
    let (report, running) = app.compare.current().await;
    assert!(report.is_none() && !running, "a GET measured something");
    // A form sent without a login is answered by the log-in page, not by a measurement.
    let anonymous = app.browser();
    let response = anonymous.submit("/login", "/compare", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        crate::helpers::location(&response).starts_with("/login"),
        "{:?}",
        response.headers()
    );
    assert!(!app.compare.current().await.1);
}

#[tokio::test]
async fn a_logged_in_user_measures_on_a_throw_away_instance_that_leaves_nothing_in_the_served_database() {
    let app = spawn_app_with(&[]).await;
    let user = app.new_user().await;
    let browser = app.browser();
    browser.login(&user).await;
    let users_before = user_count(&app).await;
    let events_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM security_events")
        .fetch_one(&app.db().await)
        .await
        .unwrap();

    // Without the form's CSRF token the measurement is refused.
    let forged = browser.post_form("/compare", &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(!app.compare.current().await.1);

    let response = browser.submit("/compare", "/compare", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::location(&response), "/compare");
    let page = measured_page(&app).await;
    assert!(
        page.contains("Every observed cell matches the documented matrix."),
        "{page}"
    );
    let (report, _) = app.compare.current().await;
    let report = report.unwrap();
    assert_eq!(report.matrix.as_ref().unwrap(), &matrix::expected());
    assert_eq!(report.costs.as_ref().unwrap().len(), matrix::STRATEGIES.len());

    // The scenario's account, the cost probe's account and their events were all elsewhere.
    assert_eq!(user_count(&app).await, users_before);
    let events_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM security_events")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(
        events_after, events_before,
        "the served database saw nothing of the measurement"
    );

    // Asked again within the minute: the same report, and the user is told when it can be redone.
    let again = browser.submit("/compare", "/compare", &[]).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let (_, page) = browser.get_text("/compare").await;
    assert!(page.contains("it can be measured again in"), "{page}");
    let (same, running) = app.compare.current().await;
    assert_eq!(same.unwrap().measured_at, report.measured_at);
    assert!(!running);
}

#[tokio::test]
async fn a_measurement_removes_what_a_dead_process_left_behind_and_keeps_its_own_clean() {
    // A directory a killed process left (pid 0 is never a user process), and one of a live one.
    let temp = std::env::temp_dir();
    let abandoned = temp.join(format!(
        "revocable-compare-0-{}",
        revocable::domain::RandomId::generate()
    ));
    let alive = temp.join(format!(
        "revocable-compare-{}-{}",
        std::process::id(),
        revocable::domain::RandomId::generate()
    ));
    for directory in [&abandoned, &alive] {
        std::fs::create_dir_all(directory.join("outbox")).unwrap();
        std::fs::write(directory.join("compare.db"), b"left over").unwrap();
    }
    let app = spawn_app_with(&[("COMPARE_AT_START", "on")]).await;
    measured_page(&app).await;
    assert!(!abandoned.exists(), "the dead process's directory is gone");
    assert!(alive.exists(), "a live process's directory is left alone");
    std::fs::remove_dir_all(&alive).unwrap();
}

/// Runs one measurement in `parent` on a thread and actix System of its own, as the server does,
/// and cuts it off once `cut_off_when` holds for `parent`, if it does before the end.
fn measure_in(
    parent: std::path::PathBuf,
    settings: revocable::config::Settings,
    cut_off_when: Option<fn(&std::path::Path) -> bool>,
) -> Option<revocable::compare::report::Report> {
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let measuring = Box::pin(revocable::compare::instance::measure_in(
                &parent,
                &settings,
                revocable::startup::launch_measuring_instance,
            ));
            let Some(condition) = cut_off_when else {
                return Some(measuring.await);
            };
            let watched = parent.clone();
            let cut_off = Box::pin(async move {
                while !condition(&watched) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            match futures_util::future::select(measuring, cut_off).await {
                futures_util::future::Either::Left((report, _)) => Some(report),
                futures_util::future::Either::Right(((), measuring)) => {
                    // What a panic or a dropped task does to a measurement half-way.
                    drop(measuring);
                    None
                }
            }
        })
    })
    .join()
    .expect("the measuring thread ends")
}

fn a_parent_directory() -> std::path::PathBuf {
    let parent = std::env::temp_dir().join(format!(
        "revocable-compare-test-{}",
        revocable::domain::RandomId::generate().to_lowercase()
    ));
    std::fs::create_dir_all(&parent).unwrap();
    parent
}

fn entries(parent: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}

#[tokio::test]
async fn a_measurement_whose_instance_does_not_start_leaves_no_directory_and_no_account() {
    let app = spawn_app_with(&[]).await;
    app.new_user().await;
    let users_before = user_count(&app).await;
    let parent = a_parent_directory();
    // Refused by the measuring instance's mailer, after its database was made and migrated.
    let mut settings = app.state.settings.clone();
    settings.mail_from = "not an address".into();
    let watched = parent.clone();
    let report = tokio::task::spawn_blocking(move || measure_in(watched, settings, None))
        .await
        .unwrap()
        .expect("the measurement ran to its end");
    let error = report.matrix.as_ref().unwrap_err();
    assert!(
        error.contains("the measuring instance did not start") && error.contains("MAIL_FROM"),
        "{error}"
    );
    assert_eq!(report.costs.as_ref().unwrap_err(), error);
    assert_eq!(
        entries(&parent),
        Vec::<std::path::PathBuf>::new(),
        "its directory is gone"
    );
    assert_eq!(user_count(&app).await, users_before, "the served database saw nothing");
    std::fs::remove_dir(&parent).unwrap();
}

#[tokio::test]
async fn a_measurement_cut_off_half_way_leaves_no_directory_and_no_account() {
    let app = spawn_app_with(&[]).await;
    app.new_user().await;
    let users_before = user_count(&app).await;
    let parent = a_parent_directory();
    let settings = app.state.settings.clone();
    let watched = parent.clone();
    // Cut off once the instance has its database and its outbox: it is about to serve.
    let started = |parent: &std::path::Path| {
        entries(parent)
            .iter()
            .any(|directory| directory.join("compare.db").exists() && directory.join("outbox").exists())
    };
    let report = tokio::task::spawn_blocking(move || measure_in(watched, settings, Some(started)))
        .await
        .unwrap();
    assert!(
        report.is_none(),
        "the measurement ended before it was cut off: {:?}",
        report.as_ref().map(|report| report.matrix.as_ref().err())
    );
    assert_eq!(
        entries(&parent),
        Vec::<std::path::PathBuf>::new(),
        "its directory is gone"
    );
    assert_eq!(user_count(&app).await, users_before, "the served database saw nothing");
    std::fs::remove_dir(&parent).unwrap();
}
