//! How a stream's events come to exist and leave: `fill` takes the revocation log from the
//! stream's position into signed SETs; `poll` hands them to a receiver that asks (RFC 8936);
//! `run` pushes them to receivers that gave an endpoint (RFC 8935).
//!
//! Filling moves a stream's position with a conditional UPDATE in the transaction that stores
//! its events, so of two instances filling one stream, one commits and the other rolls back:
//! each entry becomes an event once. A push claims the stream's oldest event only (a conditional
//! UPDATE of its next attempt, as the mail outbox does), so SETs arrive in order, each one until
//! the receiver answers 202, retried with doubling backoff through outages and restarts.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::domain::now_millis;
use crate::error::ApiError;
use crate::ssf::streams::{Delivery, Status};
use crate::ssf::{Ssf, Stream, set};
use crate::store::revocation_log;
use crate::store::ssf_streams::{self, PendingEvent};

/// How many log entries one fill transaction takes.
const BATCH: i64 = 200;
/// How often the delivery task looks for work committed by other instances.
const TICK: Duration = Duration::from_secs(1);
/// How long one push may take before its event may be claimed again.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(300);
/// The longest a poll waits for an event (`returnImmediately: false`).
pub const LONG_POLL: Duration = Duration::from_secs(20);
const DEFAULT_MAX_EVENTS: i64 = 100;
const MOST_EVENTS: i64 = 1000;

/// Takes the log entries after the stream's position into its events, filtered by
/// `events_delivered` and its subjects; a disabled stream only moves its position.
pub async fn fill(ssf: &Ssf, stream: &Stream) -> Result<(), ApiError> {
    let delivered: HashSet<&str> = stream.configuration.events_delivered().into_iter().collect();
    let left_out: HashSet<String> = ssf_streams::left_out(&ssf.db, &stream.stored.id)
        .await?
        .into_iter()
        .collect();
    let disabled = stream.status() == Status::Disabled;
    let mut position = match ssf_streams::find(&ssf.db, &stream.stored.client_id, &stream.stored.id).await? {
        Some(current) => current.position,
        None => return Ok(()),
    };
    loop {
        let entries = revocation_log::since(&ssf.db, position, BATCH).await?;
        let Some(last) = entries.last().map(|entry| entry.seq) else {
            return Ok(());
        };
        let now = now_millis();
        let mut transaction = ssf.db.begin().await?;
        if !disabled {
            for entry in &entries {
                for event in set::events_of(entry, ssf.issuer()) {
                    let wanted = delivered.contains(event.event_type)
                        && event.user_id.as_ref().is_none_or(|user| !left_out.contains(user));
                    if wanted {
                        ssf.store_event(&mut transaction, stream, &event, now).await?;
                    }
                }
            }
        }
        if !ssf_streams::advance(&mut *transaction, &stream.stored.id, position, last).await? {
            // Another instance took these entries first.
            transaction.rollback().await?;
            return Ok(());
        }
        transaction.commit().await?;
        position = last;
        if (entries.len() as i64) < BATCH {
            return Ok(());
        }
    }
}

/// Fills every stream the log has moved past.
pub async fn fill_all(ssf: &Ssf) -> Result<(), ApiError> {
    let head = revocation_log::latest_seq(&ssf.db).await?;
    for stored in ssf_streams::behind(&ssf.db, head).await? {
        fill(ssf, &Stream::of(stored)?).await?;
    }
    Ok(())
}

/// An RFC 8936 poll request.
struct PollRequest {
    max_events: i64,
    return_immediately: bool,
    ack: Vec<String>,
    errors: Vec<(String, String)>,
}

fn poll_request(body: &Value) -> Result<PollRequest, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    let max_events = match object.get("maxEvents") {
        None => DEFAULT_MAX_EVENTS,
        Some(value) => value
            .as_i64()
            .filter(|max| (0..=MOST_EVENTS).contains(max))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "maxEvents",
                    format!("maxEvents must be a whole number from 0 to {MOST_EVENTS}"),
                )
            })?,
    };
    let return_immediately = match object.get("returnImmediately") {
        None => false,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| ApiError::invalid_field("returnImmediately", "returnImmediately must be true or false"))?,
    };
    let ack = match object.get("ack") {
        None => Vec::new(),
        Some(value) => value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .filter(|items| items.len() as i64 <= MOST_EVENTS)
            .ok_or_else(|| ApiError::invalid_field("ack", "ack must be an array of jti strings"))?,
    };
    let errors = match object.get("setErrs") {
        None => Vec::new(),
        Some(Value::Object(map)) if map.len() as i64 <= MOST_EVENTS => map
            .iter()
            .map(|(jti, error)| {
                let code = error.get("err").and_then(Value::as_str).unwrap_or("");
                (jti.clone(), code.chars().take(64).collect())
            })
            .collect(),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "setErrs",
                "setErrs must map each jti to {err, description}",
            ));
        }
    };
    Ok(PollRequest {
        max_events,
        return_immediately,
        ack,
        errors,
    })
}

/// RFC 8936 section 2: acknowledges what the receiver names, then answers with up to
/// `maxEvents` events not acknowledged yet, oldest first (an event handed out and not
/// acknowledged is handed out again). A paused stream answers with none and keeps them.
pub async fn poll(
    ssf: &Ssf,
    client_id: &str,
    stream_id: &str,
    body: &Value,
    mut stopping: watch::Receiver<bool>,
) -> Result<Value, ApiError> {
    let request = poll_request(body)?;
    let stream = ssf.find(client_id, stream_id).await?;
    if stream.configuration.delivery != Delivery::Poll {
        return Err(ApiError::BadRequest("this stream delivers by push, not poll".into()));
    }
    for jti in &request.ack {
        ssf_streams::remove_event(&ssf.db, stream_id, jti).await?;
    }
    for (jti, code) in &request.errors {
        if ssf_streams::remove_event(&ssf.db, stream_id, jti).await? {
            tracing::warn!(
                client_id,
                stream_id,
                jti,
                error = code,
                "a receiver refused a security event"
            );
        }
    }
    let mut live = ssf.revocation.subscribe();
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let stored = ssf.stored.notified();
        fill(ssf, &stream).await?;
        let current = ssf.find(client_id, stream_id).await?;
        let events = if current.status() == Status::Enabled && request.max_events > 0 {
            ssf_streams::oldest_events(&ssf.db, stream_id, request.max_events + 1).await?
        } else {
            Vec::new()
        };
        let waits = events.is_empty() && !request.return_immediately && request.max_events > 0;
        if !waits || *stopping.borrow() || tokio::time::Instant::now() >= deadline {
            let more = events.len() as i64 > request.max_events;
            let sets: serde_json::Map<String, Value> = events
                .into_iter()
                .take(request.max_events as usize)
                .map(|event| (event.jti, Value::String(event.token)))
                .collect();
            return Ok(serde_json::json!({ "sets": sets, "moreAvailable": more }));
        }
        tokio::select! {
            _ = live.recv() => {}
            _ = stored => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopping.wait_for(|stopping| *stopping) => {}
        }
    }
}

fn backoff(attempts: i64) -> Duration {
    let doublings = attempts.clamp(1, 20) as u32 - 1;
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(LONGEST_RETRY)
}

/// The delivery task, one per instance: fills streams as the log grows and pushes what push
/// streams hold, until `stopping`.
pub async fn run(ssf: Ssf, http: reqwest::Client, mut stopping: watch::Receiver<bool>) {
    let mut live = ssf.revocation.subscribe();
    loop {
        if let Err(error) = deliver_once(&ssf, &http).await {
            tracing::warn!(error = %error, "shared signals delivery failed; retrying");
        }
        tokio::select! {
            _ = stopping.wait_for(|stopping| *stopping) => return,
            _ = live.recv() => {}
            _ = ssf.stored.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One round: fill every stream behind, then push each enabled push stream's due events.
pub async fn deliver_once(ssf: &Ssf, http: &reqwest::Client) -> Result<(), ApiError> {
    fill_all(ssf).await?;
    for stream_id in ssf_streams::with_due_events(&ssf.db, ssf.revocation.clock().now_millis()).await? {
        let Some(stored) = ssf_streams::by_id(&ssf.db, &stream_id).await? else {
            continue;
        };
        let stream = Stream::of(stored)?;
        let Delivery::Push {
            endpoint_url,
            authorization_header,
        } = &stream.configuration.delivery
        else {
            continue;
        };
        if stream.status() != Status::Enabled {
            continue;
        }
        loop {
            let now = ssf.revocation.clock().now_millis();
            let retry_at = now + PUSH_TIMEOUT.as_millis() as i64;
            let Some(event) = ssf_streams::claim_head(&ssf.db, &stream_id, now, retry_at).await? else {
                break;
            };
            if !push(ssf, http, endpoint_url, authorization_header.as_deref(), &event).await? {
                break;
            }
        }
    }
    Ok(())
}

/// One RFC 8935 push; `true` when the event left the queue (202, or refused as invalid).
async fn push(
    ssf: &Ssf,
    http: &reqwest::Client,
    endpoint_url: &str,
    authorization: Option<&str>,
    event: &PendingEvent,
) -> Result<bool, ApiError> {
    let mut request = http
        .post(endpoint_url)
        .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(PUSH_TIMEOUT)
        .body(event.token.clone());
    if let Some(authorization) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    let failure = match request.send().await {
        Ok(response) if response.status().is_success() => None,
        // Section 2.3: the receiver read the SET and refuses it; sending it again would not help.
        Ok(response) if response.status() == reqwest::StatusCode::BAD_REQUEST => {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            tracing::warn!(
                stream_id = event.stream_id,
                jti = event.jti,
                error = body["err"].as_str().unwrap_or("unknown"),
                "a push receiver refused a security event"
            );
            None
        }
        Ok(response) => Some(format!("the receiver answered {}", response.status())),
        Err(error) => Some(match tls_failure(&error) {
            Some(tls) => format!(
                "TLS with the receiver failed ({tls}); an https receiver's certificate must chain to the system's trust store or to SSF_PUSH_CA_FILE"
            ),
            None => format!("the receiver could not be reached: {}", causes(&error)),
        }),
    };
    match failure {
        None => {
            ssf_streams::remove_event(&ssf.db, &event.stream_id, &event.jti).await?;
            Ok(true)
        }
        Some(error) => {
            let retry_at = ssf.revocation.clock().now_millis() + backoff(event.attempts).as_millis() as i64;
            tracing::warn!(
                stream_id = event.stream_id,
                endpoint_url,
                attempts = event.attempts,
                error,
                "security event push failed; it stays queued and is retried"
            );
            ssf_streams::push_failed(&ssf.db, &event.stream_id, event.number, retry_at, &error).await?;
            Ok(false)
        }
    }
}

/// An error and its causes, outermost first: reqwest's own text names only the URL.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What rustls refused, when a push failed in the TLS handshake (an untrusted or expired
/// certificate, a name mismatch). An `io::Error` hides what it wraps from `source()`, so each
/// one met on the way is opened with `get_ref`.
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = tls_failure(inner)
        {
            return Some(found);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_refused_inside_an_io_error_is_found() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
        let found = tls_failure(&wrapped).expect("the TLS error is found");
        assert!(found.contains("UnknownIssuer"), "{found}");
        let refused_connection = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(tls_failure(&refused_connection), None);
    }

    #[test]
    fn retries_double_and_stop_growing() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(30), LONGEST_RETRY);
    }

    #[test]
    fn a_poll_request_is_read_with_its_defaults_and_refused_when_malformed() {
        let request =
            poll_request(&serde_json::json!({ "ack": ["a"], "setErrs": { "b": { "err": "jwtAud" } } })).unwrap();
        assert_eq!(request.max_events, DEFAULT_MAX_EVENTS);
        assert!(!request.return_immediately);
        assert_eq!(request.errors, vec![("b".to_owned(), "jwtAud".to_owned())]);
        assert!(poll_request(&serde_json::json!({ "maxEvents": -1 })).is_err());
        assert!(poll_request(&serde_json::json!({ "ack": "a" })).is_err());
        assert!(poll_request(&serde_json::json!([])).is_err());
    }
}
