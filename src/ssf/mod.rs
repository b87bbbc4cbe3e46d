//! The OpenID Shared Signals Framework 1.0 transmitter: streams other services configure for
//! themselves, fed from the revocation log, their events delivered as signed Security Event
//! Tokens by push (RFC 8935) or poll (RFC 8936).
//!
//! A stream belongs to the client that created it; every operation names the client, and a
//! stream of another client is answered as one that does not exist. A new stream starts at the
//! head of the log: it hears of what happens from then on.
//!
//! Nothing here knows about HTTP; `routes::ssf` turns requests into these calls.

pub mod delivery;
pub mod key;
pub mod metadata;
pub mod set;
pub mod streams;

use std::sync::Arc;

use serde_json::Value;

use crate::domain::{Email, RandomId, now_millis};
use crate::error::ApiError;
use crate::revocation::Revocation;
use crate::store::ssf_streams::{self, StoredStream, VerificationClaim};
use crate::store::{self, Db};
use key::SetKey;
use set::Event;
use streams::{ReceiverConfiguration, Status, Transmitter};

/// The transmitter: shared by the handlers and the delivery task.
#[derive(Clone)]
pub struct Ssf {
    pub(crate) db: Db,
    pub key: SetKey,
    pub(crate) revocation: Revocation,
    issuer: String,
    origin: String,
    /// SSF 1.0 section 8.1.1's `min_verification_interval`: verification requests of one stream
    /// closer together than this are answered 429.
    min_verification_interval: std::time::Duration,
    /// Woken when an event is stored outside the log (verification, stream-updated).
    pub(crate) stored: Arc<tokio::sync::Notify>,
}

/// A stream loaded for one operation, with its configuration read.
pub struct Stream {
    pub stored: StoredStream,
    pub configuration: ReceiverConfiguration,
}

impl Stream {
    fn of(stored: StoredStream) -> Result<Self, ApiError> {
        let configuration = serde_json::from_str(&stored.configuration).map_err(|error| {
            ApiError::Internal(anyhow::anyhow!(
                "stream {} has an unreadable configuration: {error}",
                stored.id
            ))
        })?;
        Ok(Self { stored, configuration })
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.stored.status).unwrap_or(Status::Disabled)
    }
}

fn stream_id_of(body: &Value) -> Result<&str, ApiError> {
    body.get("stream_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::BadRequest("stream_id is required".into()))
}

impl Ssf {
    pub fn new(
        db: Db,
        revocation: Revocation,
        issuer: String,
        origin: String,
        min_verification_interval: std::time::Duration,
    ) -> Self {
        Self {
            db,
            key: SetKey::default(),
            revocation,
            issuer,
            origin,
            min_verification_interval,
            stored: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn transmitter(&self) -> Transmitter<'_> {
        Transmitter {
            issuer: &self.issuer,
            origin: &self.origin,
            min_verification_interval: self.min_verification_interval,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The RS256 key that signs SETs, once a stream has made it.
    pub async fn published_key(&self) -> Option<Arc<key::RsaKey>> {
        self.key.published(&self.db).await
    }

    pub async fn find(&self, client_id: &str, stream_id: &str) -> Result<Stream, ApiError> {
        let stored = ssf_streams::find(&self.db, client_id, stream_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        Stream::of(stored)
    }

    fn document(&self, stream: &Stream) -> Value {
        stream
            .configuration
            .document(&stream.stored.id, &self.transmitter(), &stream.stored.client_id)
    }

    /// Creates a stream from the receiver's configuration; it starts at the log's head.
    pub async fn create(&self, client_id: &str, body: &Value) -> Result<Value, ApiError> {
        let configuration = ReceiverConfiguration::from_body(body, &self.transmitter(), client_id)?;
        // Made now, so that the first event never waits for a key.
        self.key.get_or_create(&self.db).await?;
        let now = now_millis();
        let stored = StoredStream {
            id: RandomId::generate(),
            client_id: client_id.to_owned(),
            configuration: serde_json::to_string(&configuration).map_err(anyhow::Error::from)?,
            status: Status::Enabled.as_str().to_owned(),
            status_reason: None,
            position: store::revocation_log::latest_seq(&self.db).await?,
            created_at: now,
            updated_at: now,
        };
        ssf_streams::insert(&self.db, &stored).await?;
        tracing::info!(client_id, stream_id = stored.id, "shared signals stream created");
        Ok(self.document(&Stream { stored, configuration }))
    }

    pub async fn read(&self, client_id: &str, stream_id: &str) -> Result<Value, ApiError> {
        Ok(self.document(&self.find(client_id, stream_id).await?))
    }

    pub async fn list(&self, client_id: &str) -> Result<Vec<Value>, ApiError> {
        ssf_streams::for_client(&self.db, client_id)
            .await?
            .into_iter()
            .map(|stored| Stream::of(stored).map(|stream| self.document(&stream)))
            .collect()
    }

    /// `PATCH` (`replace: false`: the fields sent change) or `PUT` (`replace: true`: the body is the
    /// whole receiver-supplied configuration).
    pub async fn update(&self, client_id: &str, body: &Value, replace: bool) -> Result<Value, ApiError> {
        let mut stream = self.find(client_id, stream_id_of(body)?).await?;
        let transmitter = self.transmitter();
        stream.configuration = if replace {
            ReceiverConfiguration::from_body(body, &transmitter, client_id)?
        } else {
            stream.configuration.merged(body, &transmitter, client_id)?
        };
        let text = serde_json::to_string(&stream.configuration).map_err(anyhow::Error::from)?;
        if !ssf_streams::set_configuration(&self.db, client_id, &stream.stored.id, &text, now_millis()).await? {
            return Err(ApiError::NotFound);
        }
        Ok(self.document(&stream))
    }

    /// Deletes the stream and every event it has not delivered.
    pub async fn delete(&self, client_id: &str, stream_id: &str) -> Result<(), ApiError> {
        let mut transaction = self.db.begin().await?;
        if !ssf_streams::delete(&mut transaction, client_id, stream_id).await? {
            transaction.rollback().await?;
            return Err(ApiError::NotFound);
        }
        transaction.commit().await?;
        tracing::info!(client_id, stream_id, "shared signals stream deleted");
        Ok(())
    }

    fn status_document(stream: &Stream) -> Value {
        let mut document = serde_json::json!({ "stream_id": stream.stored.id, "status": stream.stored.status });
        if let Some(reason) = &stream.stored.status_reason {
            document["reason"] = reason.clone().into();
        }
        document
    }

    pub async fn status(&self, client_id: &str, stream_id: &str) -> Result<Value, ApiError> {
        Ok(Self::status_document(&self.find(client_id, stream_id).await?))
    }

    /// Sets the status. A change is announced by a `stream-updated` event; disabling drops the
    /// events the stream still held, pausing keeps them for when it is enabled again.
    pub async fn set_status(&self, client_id: &str, body: &Value) -> Result<Value, ApiError> {
        let mut stream = self.find(client_id, stream_id_of(body)?).await?;
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .and_then(Status::parse)
            .ok_or_else(|| ApiError::invalid_field("status", "status must be enabled, paused or disabled"))?;
        let reason = match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.chars().count() <= 1000 => Some(text.clone()),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "reason",
                    "reason must be a string of at most 1000 characters",
                ));
            }
        };
        // What the log holds for the stream so far is taken under the status it had.
        delivery::fill(self, &stream).await?;
        let changed = stream.status() != status;
        let mut transaction = self.db.begin().await?;
        let now = now_millis();
        if !ssf_streams::set_status(
            &mut *transaction,
            client_id,
            &stream.stored.id,
            status.as_str(),
            reason.as_deref(),
            now,
        )
        .await?
        {
            transaction.rollback().await?;
            return Err(ApiError::NotFound);
        }
        if status == Status::Disabled {
            ssf_streams::drop_events(&mut *transaction, &stream.stored.id).await?;
        }
        if changed {
            let mut payload = serde_json::json!({ "status": status.as_str() });
            if let Some(reason) = &reason {
                payload["reason"] = reason.clone().into();
            }
            let event = self.stream_event(&stream.stored.id, set::STREAM_UPDATED, payload);
            self.store_event(&mut transaction, &stream, &event, now).await?;
        }
        transaction.commit().await?;
        self.stored.notify_waiters();
        stream.stored.status = status.as_str().to_owned();
        stream.stored.status_reason = reason;
        Ok(Self::status_document(&stream))
    }

    fn stream_event(&self, stream_id: &str, event_type: &'static str, payload: Value) -> Event {
        Event {
            event_type,
            user_id: None,
            sub_id: serde_json::json!({ "format": "opaque", "id": stream_id }),
            payload,
            txn: None,
        }
    }

    /// Signs `event` for the stream and appends it to what the stream will deliver.
    pub(crate) async fn store_event(
        &self,
        transaction: &mut store::Transaction<'_>,
        stream: &Stream,
        event: &Event,
        now: i64,
    ) -> Result<(), ApiError> {
        let key = self.key.get_or_create(&self.db).await?;
        let (jti, claims) = set::claims(&self.issuer, &stream.stored.client_id, event, now / 1000);
        let token = key.sign(&claims)?;
        ssf_streams::push_event(transaction, &stream.stored.id, &jti, &token, now).await?;
        Ok(())
    }

    /// SSF 1.0 section 8.1.4: a `verification` event carrying the receiver's `state`. A request
    /// sooner than `min_verification_interval` after the stream's last one is a 429 (section
    /// 8.1.1), with `Retry-After` saying when the next one is welcome.
    pub async fn verify(&self, client_id: &str, body: &Value) -> Result<(), ApiError> {
        let stream = self.find(client_id, stream_id_of(body)?).await?;
        let mut payload = serde_json::json!({});
        match body.get("state") {
            None | Some(Value::Null) => {}
            Some(Value::String(state)) if state.len() <= 1000 => payload["state"] = state.clone().into(),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "state",
                    "state must be a string of at most 1000 bytes",
                ));
            }
        }
        let event = self.stream_event(&stream.stored.id, set::VERIFICATION, payload);
        let now = now_millis();
        let interval = self.min_verification_interval.as_millis() as i64;
        let mut transaction = self.db.begin().await?;
        match ssf_streams::claim_verification(&mut transaction, &stream.stored.id, now, now - interval).await? {
            VerificationClaim::Recorded => {}
            VerificationClaim::Gone => {
                transaction.rollback().await?;
                return Err(ApiError::NotFound);
            }
            VerificationClaim::TooSoon { requested_at } => {
                transaction.rollback().await?;
                let wait_millis = (requested_at + interval - now).max(1);
                return Err(ApiError::RateLimited {
                    retry_after_seconds: (wait_millis as u64).div_ceil(1000),
                });
            }
        }
        self.store_event(&mut transaction, &stream, &event, now).await?;
        transaction.commit().await?;
        self.stored.notify_waiters();
        Ok(())
    }

    /// The user a subject identifier names, if it names one of ours: `iss_sub` with our issuer,
    /// `opaque` (the user id), `email`, or `complex` with a `user` member of one of those.
    async fn user_of(&self, subject: &Value) -> Result<Option<String>, ApiError> {
        let text = |name: &str| subject.get(name).and_then(Value::as_str);
        Ok(match text("format") {
            Some("iss_sub") if text("iss") == Some(self.issuer.as_str()) => text("sub").map(str::to_owned),
            Some("iss_sub") => None,
            Some("opaque") => text("id").map(str::to_owned),
            Some("email") => match text("email").map(Email::parse) {
                Some(Ok(email)) => store::users::find_by_email(&self.db, &email).await?.map(|user| user.id),
                _ => None,
            },
            Some("complex") => match subject.get("user") {
                Some(user) if user.get("format").and_then(Value::as_str) != Some("complex") => {
                    Box::pin(self.user_of(user)).await?
                }
                _ => None,
            },
            _ => {
                return Err(ApiError::invalid_field(
                    "subject",
                    "subject must be an iss_sub, opaque, email or complex subject identifier",
                ));
            }
        })
    }

    /// Adds (`included: true`) or removes a subject. A subject that names nobody here is
    /// accepted and changes nothing, so the answer never tells whether an account exists.
    pub async fn set_subject(&self, client_id: &str, body: &Value, included: bool) -> Result<(), ApiError> {
        let stream = self.find(client_id, stream_id_of(body)?).await?;
        let subject = body
            .get("subject")
            .filter(|subject| subject.is_object())
            .ok_or_else(|| ApiError::invalid_field("subject", "subject is required"))?;
        if let Some(user_id) = self.user_of(subject).await? {
            ssf_streams::set_subject(&self.db, &stream.stored.id, &user_id, included).await?;
        }
        Ok(())
    }
}
