//! Logs and metrics, kept off the request's path: log lines are formatted on the worker and
//! written by a background thread (`tracing-appender`), as text or, with `LOG_FORMAT=json`, as
//! JSON lines; request metrics are counted in memory and rendered only when `/metrics` is read.
//!
//! A request is logged by its method, route pattern (`/api/sessions/{id}`), path without the
//! query string, status and latency. Query strings, headers (the user agent, `Authorization`,
//! `Cookie`) and bodies are never logged, so tokens, cookies and passwords cannot reach the log.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics::{Counter, Histogram, Label};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
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
pub fn init(format: LogFormat) -> Option<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // The writer thread flushes whenever its queue runs dry: one write per burst, not per line.
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stdout()));
    if ACCESS_LOG
        .set(AccessLog {
            writer: writer.clone(),
            format,
            buffers: Mutex::default(),
        })
        .is_ok()
    {
        spawn_access_flusher(writer.clone());
    }
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
    installed.is_ok().then_some(LogGuard { _writer: guard })
}

/// Keeps the log writer running; dropping it writes out the request lines still buffered, then
/// flushes the lines still queued for the writer thread.
pub struct LogGuard {
    _writer: WorkerGuard,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(log) = ACCESS_LOG.get() {
            log.flush(&mut log.writer.clone());
        }
    }
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
    let path = access_log_enabled().then(|| request.path().to_owned());
    let outcome = next.call(request).await;
    let elapsed = started.elapsed();
    let (status, pattern) = match &outcome {
        Ok(response) => (response.status().as_u16(), response.request().match_pattern()),
        // A middleware failed (the session store): the route was not recorded.
        Err(error) => (error.as_response_error().status_code().as_u16(), None),
    };
    // Unmatched paths share one label, so scanners cannot grow the label set.
    let route = pattern.unwrap_or_else(|| "unmatched".to_owned());
    if let Some(path) = path {
        write_access_line(method, &route, &path, status, elapsed);
    }
    record_request(
        RequestLabels {
            method,
            route,
            status: status_label(status),
        },
        elapsed,
    );
    outcome
}

/// Where request lines go: the log's own non-blocking writer, in the log's format. Each worker
/// collects its lines in a buffer of its own and hands them over whole, when the buffer fills or
/// at the latest `ACCESS_FLUSH_EVERY` later: one hand-over per line would wake the writer thread
/// for every request, which costs a 2-core server about a sixth of its throughput.
struct AccessLog {
    writer: NonBlocking,
    format: LogFormat,
    buffers: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
}

const ACCESS_FLUSH_EVERY: Duration = Duration::from_millis(50);
const ACCESS_FLUSH_BYTES: usize = 16 * 1024;

impl AccessLog {
    /// Hands every worker's buffered lines to the writer, and forgets the buffers of workers
    /// that have ended.
    fn flush(&self, writer: &mut NonBlocking) {
        let mut buffers = self.buffers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for buffer in buffers.iter() {
            let mut lines = buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !lines.is_empty() {
                let _ = writer.write_all(&lines);
                lines.clear();
            }
        }
        buffers.retain(|buffer| Arc::strong_count(buffer) > 1);
    }
}

fn spawn_access_flusher(mut writer: NonBlocking) {
    let _ = std::thread::Builder::new().name("access-log".into()).spawn(move || {
        loop {
            std::thread::sleep(ACCESS_FLUSH_EVERY);
            if let Some(log) = ACCESS_LOG.get() {
                log.flush(&mut writer);
            }
        }
    });
}

static ACCESS_LOG: OnceLock<AccessLog> = OnceLock::new();

/// The target of request lines: `RUST_LOG=revocable::access=warn` silences them alone.
const ACCESS_TARGET: &str = "revocable::access";

fn access_log_enabled() -> bool {
    ACCESS_LOG.get().is_some() && tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO)
}

thread_local! {
    /// Each worker's line buffer and the text of the current second, so a request line is a few
    /// appends: the general-purpose formatter costs about a tenth of a whole request here.
    static ACCESS_LINE: std::cell::RefCell<AccessLine> = std::cell::RefCell::default();
}

#[derive(Default)]
struct AccessLine {
    line: Vec<u8>,
    second: u64,
    second_text: Vec<u8>,
    writer: Option<NonBlocking>,
    /// This worker's lines not yet handed over, shared with the flusher thread.
    buffer: Option<Arc<Mutex<Vec<u8>>>>,
}

/// Writes one request line the way the log writes its other lines (`LOG_FORMAT`), to the same
/// background writer. Only the method, route pattern, path (never the query), status and latency
/// are written.
fn write_access_line(method: &str, route: &str, path: &str, status: u16, elapsed: Duration) {
    let Some(log) = ACCESS_LOG.get() else { return };
    ACCESS_LINE.with_borrow_mut(|buffers| {
        let AccessLine {
            line,
            second,
            second_text,
            writer,
            buffer,
        } = buffers;
        line.clear();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if *second != now.as_secs() || second_text.is_empty() {
            *second = now.as_secs();
            second_text.clear();
            let at = actix_web::cookie::time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
                .unwrap_or(actix_web::cookie::time::OffsetDateTime::UNIX_EPOCH);
            let _ = write!(
                second_text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
        }
        let micros = elapsed.as_micros();
        let (whole, fraction) = (micros / 1000, micros % 1000);
        match log.format {
            LogFormat::Text => {
                line.extend_from_slice(second_text);
                // As the log's text lines write their fields: strings quoted.
                let _ = write!(
                    line,
                    ".{:06}Z  INFO request method=\"{method}\" route=\"",
                    now.subsec_micros()
                );
                push_printable(line, route);
                line.extend_from_slice(b"\" path=\"");
                push_printable(line, path);
                let _ = writeln!(line, "\" status={status} latency_ms={whole}.{fraction:03}");
            }
            LogFormat::Json => {
                line.extend_from_slice(b"{\"timestamp\":\"");
                line.extend_from_slice(second_text);
                let _ = write!(
                    line,
                    ".{:06}Z\",\"level\":\"INFO\",\"message\":\"request\",\"method\":\"{method}\",\"route\":",
                    now.subsec_micros()
                );
                let _ = serde_json::to_writer(&mut *line, route);
                line.extend_from_slice(b",\"path\":");
                let _ = serde_json::to_writer(&mut *line, path);
                let _ = writeln!(line, ",\"status\":{status},\"latency_ms\":{whole}.{fraction:03}}}");
            }
        }
        let buffer = buffer.get_or_insert_with(|| {
            let buffer = Arc::new(Mutex::new(Vec::with_capacity(ACCESS_FLUSH_BYTES)));
            log.buffers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(buffer.clone());
            buffer
        });
        let mut lines = buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.extend_from_slice(line);
        if lines.len() >= ACCESS_FLUSH_BYTES {
            // The writer copies the lines onto its queue; a full queue drops them rather than wait.
            let _ = writer.get_or_insert_with(|| log.writer.clone()).write_all(&lines);
            lines.clear();
        }
    });
}

/// A path as it arrived, except that anything but printable ASCII (and `"` or `\`) is
/// percent-encoded, so a line can neither be split nor forged by what a client sends.
fn push_printable(line: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        if (0x21..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            line.push(byte);
        } else {
            let _ = write!(line, "%{byte:02X}");
        }
    }
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
    static REQUEST_METRICS: std::cell::RefCell<std::collections::HashMap<RequestLabels, (Histogram, Counter), foldhash::fast::RandomState>> =
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_cannot_split_or_forge_a_request_line() {
        let mut line = Vec::new();
        push_printable(&mut line, "/a b\"c\\d\ne/é");
        assert_eq!(String::from_utf8(line).unwrap(), "/a%20b%22c%5Cd%0Ae/%C3%A9");
    }
}
