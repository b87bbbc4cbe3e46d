//! `GET /compare`: the side-by-side comparison, and `POST /compare` to measure again. The matrix
//! is the documented one until this server has observed its own; the costs are what the last
//! measurement found; the throughput is the benchmark compiled into the binary.

mod figures;

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::account::Accounts;
use crate::compare::benchmark::{BENCHMARKS, Benchmark, BenchmarkTable, parse_benchmark};
use crate::compare::cache::{CompareCache, Started};
use crate::compare::costs::{CHECKS_PER_STRATEGY, CheckCost};
use crate::compare::matrix::{self, STRATEGIES};
use crate::domain::now_millis;
use crate::routes::web::csrf_form::CsrfForm;
use crate::routes::web::error_pages::logged_in_email;
use crate::routes::web::format::{exact_time, iso_time, relative_time};
use crate::routes::web::layout::{Layout, flash, redirect, render};
use crate::routes::web::login::NoFields;
use crate::routes::web::page::{PageError, WebUser};
use figures::{
    Bar, BarGroup, MatrixRow, PLAIN_WORDS, PlainWords, StrategyCard, cost_bars, cost_conclusion, differences,
    matrix_rows, other_tables, state_bars, strategy_cards, throughput_groups,
};

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    measuring: bool,
    measured: bool,
    /// The matrix shown is the documented one, not yet observed here.
    expected: bool,
    measured_relative: String,
    measured_exact: String,
    measured_iso: String,
    took_seconds: String,
    matrix: Vec<MatrixRow>,
    cards: Vec<StrategyCard>,
    matrix_error: Option<String>,
    differences: Vec<String>,
    expiry_in_process: bool,
    access_ttl: String,
    costs: Vec<CheckCost>,
    cost_bars: Vec<Bar>,
    state_bars: Vec<Bar>,
    cost_conclusion: Option<String>,
    costs_error: Option<String>,
    checks_per_strategy: usize,
    redis: bool,
    database: &'static str,
    benchmark: Benchmark,
    throughput: Vec<BarGroup>,
    /// The benchmark's tables but the throughput one, each behind its own disclosure.
    other_tables: Vec<BenchmarkTable>,
    plain_words: &'static [PlainWords],
    strategies: [&'static str; 5],
}

pub async fn show(
    accounts: web::Data<Accounts>,
    cache: web::Data<CompareCache>,
    session: Session,
    user: Option<WebUser>,
) -> Result<HttpResponse, PageError> {
    let (report, measuring) = cache.current().await;
    let now = now_millis();
    let observed = report.as_ref().and_then(|report| report.matrix.as_ref().ok());
    let matrix = matrix_rows(observed.map_or(&matrix::expected()[..], |rows| &rows[..]));
    let benchmark = parse_benchmark(BENCHMARKS);
    let costs = report
        .as_ref()
        .and_then(|r| r.costs.as_ref().ok().cloned())
        .unwrap_or_default();
    let served = cache.served();
    let access_ttl_minutes = served.settings.access_ttl.as_secs().div_ceil(60).max(1);
    let page = ComparePage {
        layout: Layout::new(&session, logged_in_email(&accounts.db, user.as_ref()).await)?,
        measuring,
        measured: report.is_some(),
        expected: observed.is_none(),
        measured_relative: report
            .as_ref()
            .map(|r| relative_time(r.measured_at, now))
            .unwrap_or_default(),
        measured_exact: report.as_ref().map(|r| exact_time(r.measured_at)).unwrap_or_default(),
        measured_iso: report.as_ref().map(|r| iso_time(r.measured_at)).unwrap_or_default(),
        took_seconds: report
            .as_ref()
            .map(|r| format!("{:.1}", r.took_millis as f64 / 1000.0))
            .unwrap_or_default(),
        cards: strategy_cards(&matrix),
        matrix,
        matrix_error: report.as_ref().and_then(|r| r.matrix.as_ref().err().cloned()),
        differences: report.as_deref().map(differences).unwrap_or_default(),
        expiry_in_process: report.as_ref().is_some_and(|r| r.expiry_observed_in_process),
        access_ttl: format!("{access_ttl_minutes} min"),
        cost_bars: cost_bars(&costs),
        state_bars: state_bars(&costs),
        cost_conclusion: cost_conclusion(&costs),
        costs,
        costs_error: report.as_ref().and_then(|r| r.costs.as_ref().err().cloned()),
        checks_per_strategy: CHECKS_PER_STRATEGY,
        redis: served.redis,
        database: served.backend.name(),
        throughput: throughput_groups(&benchmark),
        other_tables: other_tables(&benchmark),
        benchmark,
        plain_words: &PLAIN_WORDS,
        strategies: STRATEGIES,
    };
    render(&page)
}

/// "Measure again", for a logged-in user: a new report on a throw-away instance, at most once a
/// minute per server, however many ask.
pub async fn measure_again(
    cache: web::Data<CompareCache>,
    user: WebUser,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    match cache.into_inner().measure_again().await {
        Started::Now | Started::AlreadyRunning => flash(
            user.session(),
            "info",
            "Measuring now; this page shows the new report when it is done.",
        ),
        Started::TooSoon(seconds) => flash(
            user.session(),
            "info",
            format!("The report is under a minute old; it can be measured again in {seconds} s."),
        ),
    }
    Ok(redirect("/compare"))
}
