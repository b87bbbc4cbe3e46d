//! Logs and metrics, kept off the request's path: log lines are formatted on the worker and
//! written by a background thread (`tracing-appender`), as text or, with `LOG_FORMAT=json`, as
//! JSON lines; request metrics are counted in memory and rendered only when `/metrics` is read.
//!
//! A request is logged by its method, route pattern (`/api/sessions/{id}`), path without the
//! query string, status and latency. Query strings, headers (the user agent, `Authorization`,
//! `Cookie`) and bodies are never logged, so tokens, cookies and passwords cannot reach the log.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics::{Counter, Histogram, Label};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// How log lines are written: `LOG_FORMAT=text` (the default) or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Reads `LOG_FORMAT`; anything but `text` or `json` is refused with a message naming it.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT").ok().as_deref().map(str::trim) {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!("LOG_FORMAT must be text or json, not {other:?}")),
        }
    }
}

/// Installs the log subscriber for the process. Keep the returned guard for as long as the
/// process runs: dropping it flushes the lines still queued for the writer thread.
pub fn init(format: LogFormat) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // The writer thread flushes whenever its queue runs dry: one write per burst, not per line.
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stdout()));
    // Colours only on a terminal (and not under NO_COLOR): a file or a log shipper gets plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colours)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.is_ok().then_some(guard)
}

/// The Prometheus recorder of this process (every instance in it shares the registry), with a
/// thread that folds recorded latencies into their buckets so memory stays bounded between
/// scrapes.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION.to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .map_err(|error| error.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|error| error.to_string())?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|error| error.to_string())?;
            Ok(handle)
        })
        .clone()
        .map_err(|error| anyhow::anyhow!("metrics: {error}"))
}

const REQUESTS: &str = "revocable_http_requests_total";
const REQUEST_DURATION: &str = "revocable_http_requests_duration_seconds";

/// `GET /metrics`: the Prometheus text format.
pub async fn render_metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    let mut body = Vec::with_capacity(4096);
    // Writing into a Vec cannot fail.
    let _ = handle.render_to_write(&mut body);
    let _ = body.flush();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

/// Counts the request by route pattern, method and status, times it, and writes its log line.
pub async fn observe_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The request itself cannot be kept (routing needs it unshared): its method and path are, the
    // path only when the line will be written.
    let method = method_label(request.method());
    let path = tracing::enabled!(tracing::Level::INFO).then(|| request.path().to_owned());
    let outcome = next.call(request).await;
    let elapsed = started.elapsed();
    let (status, pattern) = match &outcome {
        Ok(response) => (response.status().as_u16(), response.request().match_pattern()),
        // A middleware failed (the session store): the route was not recorded.
        Err(error) => (error.as_response_error().status_code().as_u16(), None),
    };
    let status = status_label(status);
    // Unmatched paths share one label, so scanners cannot grow the label set.
    let route = pattern.unwrap_or_else(|| "unmatched".to_owned());
    if let Some(path) = path {
        tracing::info!(
            method,
            route = route.as_str(),
            path,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    record_request(RequestLabels { method, route, status }, elapsed);
    outcome
}

/// The labels of one request's metrics: a bounded set (route patterns, not paths).
#[derive(Clone, PartialEq, Eq, Hash)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: &'static str,
}

thread_local! {
    /// Each worker's handles to the request metrics it has recorded, so a request costs a map
    /// lookup instead of building labels and looking them up in the shared registry.
    static REQUEST_METRICS: std::cell::RefCell<std::collections::HashMap<RequestLabels, (Histogram, Counter)>> =
        std::cell::RefCell::default();
}

fn record_request(labels: RequestLabels, elapsed: Duration) {
    REQUEST_METRICS.with_borrow_mut(|handles| {
        let (histogram, counter) = handles.entry(labels).or_insert_with_key(|labels| {
            let route = Label::new("route", labels.route.clone());
            let method = Label::from_static_parts("method", labels.method);
            let histogram = metrics::histogram!(REQUEST_DURATION, vec![method.clone(), route.clone()]);
            let status = Label::from_static_parts("status", labels.status);
            (histogram, metrics::counter!(REQUESTS, vec![method, route, status]))
        });
        histogram.record(elapsed.as_secs_f64());
        counter.increment(1);
    });
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Status codes as static strings: no allocation per request for the common ones.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        status if status < 200 => "1xx",
        status if status < 300 => "2xx",
        status if status < 400 => "3xx",
        status if status < 500 => "4xx",
        _ => "5xx",
    }
}
