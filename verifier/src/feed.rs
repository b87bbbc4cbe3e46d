//! Follows revocable's revocation feed (`GET /oauth/revocations`, server-sent events) for as long
//! as the process runs: reconnects with `Last-Event-ID` after any failure, so no event is missed,
//! and marks the state not live from the moment the connection is lost until the feed says
//! `ready` again.

use std::time::Duration;

use serde_json::Value;

use crate::Verifier;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

pub async fn follow(verifier: Verifier) {
    let config = &verifier.inner.config;
    let url = format!(
        "{}/oauth/revocations",
        config
            .feed_url
            .as_deref()
            .unwrap_or(&config.issuer_url)
            .trim_end_matches('/')
    );
    // No overall timeout: the response is meant to last. Silence is caught by `read`.
    let http = reqwest::Client::builder()
        .connect_timeout(config.request_timeout)
        .build()
        .unwrap_or_default();
    let mut retry = FIRST_RETRY;
    loop {
        let outcome = read(&verifier, &http, &url, &mut retry).await;
        verifier.inner.revocations.disconnected();
        if let Err(problem) = outcome {
            tracing::warn!(problem, url, "revocation feed lost; introspecting until it is back");
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

async fn read(verifier: &Verifier, http: &reqwest::Client, url: &str, retry: &mut Duration) -> Result<(), String> {
    let inner = &verifier.inner;
    let mut request = http
        .get(url)
        .basic_auth(&inner.config.client_id, Some(&inner.config.client_secret))
        .header("accept", "text/event-stream");
    if let Some(id) = inner.revocations.last_event_id() {
        request = request.header("last-event-id", id.to_string());
    }
    let mut response = request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.to_string())?;
    let mut buffer = String::new();
    loop {
        let chunk = tokio::time::timeout(inner.config.feed_silence_limit, response.chunk())
            .await
            .map_err(|_| "the feed fell silent".to_owned())?
            .map_err(|error| error.to_string())?
            .ok_or_else(|| "the feed closed".to_owned())?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            handle(verifier, &frame);
            if frame.contains("event: ready") {
                *retry = FIRST_RETRY;
            }
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let value = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

fn handle(verifier: &Verifier, frame: &str) {
    let (mut id, mut name, mut data) = (None, "message", String::new());
    for line in frame.lines() {
        if let Some(value) = field(line, "id") {
            id = value.trim().parse::<i64>().ok();
        } else if let Some(value) = field(line, "event") {
            name = value.trim();
        } else if let Some(value) = field(line, "data") {
            data.push_str(value);
        }
    }
    let revocations = &verifier.inner.revocations;
    let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
    match name {
        "ready" => revocations.caught_up(),
        "heartbeat" => {
            revocations.heard();
            revocations.forget_old(verifier.inner.config.remember_for);
        }
        "reset" => {
            if data["complete"] != true {
                revocations.lost_entries();
            }
            revocations.heard();
        }
        other => revocations.apply(id, other, &data),
    }
}
