//! The revocation feed: the revocation log as a server-sent-events stream for other services.
//!
//! Each event's `id` is the log's `seq`, so a receiver resumes with `Last-Event-ID` and misses
//! nothing. Event names and payloads follow the OpenID CAEP / RISC vocabulary (`session-revoked`,
//! `token-claims-change`, `account-purged`) plus `jti-revoked` for one denylisted access token.
//! Cookie-state entries are internal and never leave the process.
//!
//! A receiver with no position (or one older than what the log keeps) is sent every entry of the
//! last token lifetime: everything that can still affect a token that has not expired. If even
//! that is no longer in the log, it is told so with a `reset` event (`complete: false`) and must
//! ask about older tokens by introspection. After the catch-up comes `ready`, then live entries
//! (pushed by `Revocation::subscribe`, with a database catch-up on lag, on a gap, and every
//! second for entries committed by other instances), and a `heartbeat` when nothing happens.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::domain::now_millis;
use crate::error::ApiError;
use crate::revocation::Revocation;
use crate::store::Db;
use crate::store::revocation_log::{self, Entry, EntryKind};

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const TOKEN_CLAIMS_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
pub const ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
pub const JTI_REVOKED: &str = "urn:revocable:secevent:jti-revoked";

/// How many log entries one database read takes.
const BATCH: i64 = 500;
/// How often the feed looks in the database for entries committed by other instances.
const POLL: Duration = Duration::from_secs(1);

fn opaque(id: &Option<String>) -> serde_json::Value {
    serde_json::json!({ "format": "opaque", "id": id })
}

/// The SSE event for a log entry; `None` for entries other services must not see.
pub fn event_of(entry: &Entry) -> Option<(&'static str, serde_json::Value)> {
    let change = &entry.change;
    let timestamp = entry.created_at / 1000;
    let (name, data) = match change.kind {
        EntryKind::SessionRevoked => (
            "session-revoked",
            serde_json::json!({
                "type": SESSION_REVOKED,
                "subject": { "user": opaque(&change.user_id), "session": opaque(&change.session_id) },
                "reason_admin": { "en": change.reason },
            }),
        ),
        EntryKind::VersionChanged => (
            "token-claims-change",
            serde_json::json!({
                "type": TOKEN_CLAIMS_CHANGE,
                "subject": { "user": opaque(&change.user_id) },
                "claims": { "ver": change.token_version },
            }),
        ),
        EntryKind::UserDeleted => (
            "account-purged",
            serde_json::json!({ "type": ACCOUNT_PURGED, "subject": { "user": opaque(&change.user_id) } }),
        ),
        EntryKind::JtiDenylisted => (
            "jti-revoked",
            serde_json::json!({
                "type": JTI_REVOKED,
                "subject": { "jti": opaque(&change.subject), "session": opaque(&change.session_id) },
                "exp": change.expires_at.map(|millis| millis / 1000),
            }),
        ),
        // A second factor's change revokes nothing: the feed carries revocations only (Shared
        // Signals streams hear of it as a CAEP credential-change).
        EntryKind::WebStateChanged | EntryKind::SigningKeyAdded | EntryKind::CredentialChanged => return None,
    };
    let mut data = data;
    data["seq"] = entry.seq.into();
    data["event_timestamp"] = timestamp.into();
    Some((name, data))
}

fn frame(id: Option<i64>, name: &str, data: &serde_json::Value) -> String {
    match id {
        Some(id) => format!("id: {id}\nevent: {name}\ndata: {data}\n\n"),
        None => format!("event: {name}\ndata: {data}\n\n"),
    }
}

/// Where a new connection starts, decided before the stream opens so that a database that is
/// down is a 503 rather than a stream that ends at once.
pub struct Start {
    after: i64,
    /// `false` when entries a receiver may need were already purged from the log.
    complete: bool,
    told_reset: bool,
}

/// `last_event_id`: the receiver's position, if it has one. `window`: how far back an entry can
/// still matter (the longest token lifetime plus leeway).
pub async fn start(db: &Db, last_event_id: Option<i64>, window: Duration) -> Result<Start, ApiError> {
    let latest = revocation_log::latest_seq(db).await?;
    let oldest = revocation_log::oldest_seq(db).await?;
    let kept_since = |after: i64| oldest.is_none_or(|oldest| after >= oldest - 1);
    if let Some(after) = last_event_id
        && after <= latest
        && kept_since(after)
    {
        return Ok(Start {
            after,
            complete: true,
            told_reset: false,
        });
    }
    let cutoff = now_millis() - window.as_millis() as i64;
    let after = revocation_log::last_seq_before(db, cutoff).await?;
    let complete = kept_since(after);
    Ok(Start {
        after,
        complete,
        told_reset: last_event_id.is_some() || !complete,
    })
}

/// Sends the feed into `sender` until the receiver goes away or `stopping` turns `true` (the
/// server is shutting down: the stream then ends, and a receiver reconnects elsewhere with its
/// `Last-Event-ID`). Runs as its own task.
pub async fn run(
    db: Db,
    revocation: Revocation,
    start: Start,
    heartbeat: Duration,
    mut stopping: watch::Receiver<bool>,
    sender: mpsc::Sender<String>,
) {
    tokio::select! {
        _ = stopping.wait_for(|stopping| *stopping) => {}
        _ = send_feed(db, revocation, start, heartbeat, sender) => {}
    }
}

async fn send_feed(db: Db, revocation: Revocation, start: Start, heartbeat: Duration, sender: mpsc::Sender<String>) {
    // Subscribe before the catch-up, so nothing committed meanwhile is missed.
    let mut live = revocation.subscribe();
    let mut last = start.after;
    if start.told_reset {
        let data = serde_json::json!({ "complete": start.complete, "resumed_after": last });
        if sender.send(frame(None, "reset", &data)).await.is_err() {
            return;
        }
    }
    if catch_up(&db, &mut last, &sender).await.is_err() {
        return;
    }
    let ready = serde_json::json!({ "seq": last });
    if sender.send(frame(None, "ready", &ready)).await.is_err() {
        return;
    }
    let mut poll = tokio::time::interval(POLL);
    let mut beat = tokio::time::interval(heartbeat);
    beat.tick().await;
    loop {
        let outcome = tokio::select! {
            received = live.recv() => match received {
                Ok(entry) if entry.seq == last + 1 => send_entry(&entry, &mut last, &sender).await,
                Ok(entry) if entry.seq <= last => Ok(()),
                Ok(_) | Err(RecvError::Lagged(_)) => catch_up(&db, &mut last, &sender).await,
                Err(RecvError::Closed) => Err(()),
            },
            _ = poll.tick() => catch_up(&db, &mut last, &sender).await,
            _ = beat.tick() => sender
                .send(frame(None, "heartbeat", &serde_json::json!({ "seq": last })))
                .await
                .map_err(|_| ()),
        };
        if outcome.is_err() {
            return;
        }
    }
}

async fn send_entry(entry: &Arc<Entry>, last: &mut i64, sender: &mpsc::Sender<String>) -> Result<(), ()> {
    *last = entry.seq;
    match event_of(entry) {
        Some((name, data)) => sender.send(frame(Some(entry.seq), name, &data)).await.map_err(|_| ()),
        None => Ok(()),
    }
}

/// Sends every entry after `last` that the database has. A database error is retried on the
/// next tick: the receiver keeps its position and loses nothing.
async fn catch_up(db: &Db, last: &mut i64, sender: &mpsc::Sender<String>) -> Result<(), ()> {
    loop {
        let entries = match revocation_log::since(db, *last, BATCH).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(error = %error, "revocation feed could not read the log; retrying");
                return Ok(());
            }
        };
        let full = entries.len() as i64 == BATCH;
        for entry in entries {
            send_entry(&Arc::new(entry), last, sender).await?;
        }
        if !full {
            return Ok(());
        }
    }
}
