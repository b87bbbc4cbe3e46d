//! Email: the outbox a request writes to, and the delivery that sends from it.
//!
//! **The one entry point** for anything that wants a message sent: render it (`messages` holds
//! one function per message, each from a plain-text and an HTML askama template under
//! `templates/mail/`), then `mail::enqueue(executor, &message)` — inside the transaction of the
//! change the message reports, when there is one — and `Mailer::wake` once that has committed
//! (`Mailer::send` does both for a message that reports no change of its own).
//!
//! A request never waits for SMTP and a message is never lost: `enqueue` only inserts a row in
//! `mail_outbox`; each instance runs one delivery task (`Mailer::spawn`) that wakes on a message
//! enqueued by this instance (`tokio::sync::Notify`) and every `MAIL_POLL_INTERVAL`, claims due
//! rows with a conditional UPDATE (so instances sharing one database send each message once),
//! sends them, and deletes each row once sent. A failed attempt is retried after
//! `MAIL_RETRY_AFTER`, doubling each time up to an hour, `MAX_ATTEMPTS` times in all; a refusal
//! the server calls permanent, or the last failure, gives up and says so in the log. An instance
//! that stops mid-send leaves its claim to expire after `CLAIM_LEASE`, and another sends the
//! message then (at least once, rarely twice).
//!
//! With `SMTP_URL` unset messages are written as RFC 5322 `.eml` files into `MAIL_OUTBOX`, so a
//! developer reads what was sent without installing anything. The log names each message's
//! recipient and subject, never its body: the bodies hold link tokens.

pub mod messages;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sqlx::Executor;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::domain::now_millis;
use crate::store::mail_outbox::{self, NewMail, QueuedMail};
use crate::store::{self, Db};

/// Attempts per message before it is given up on.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a claimed message is left to the instance sending it before another may retry it.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Messages claimed per round.
const BATCH: i64 = 20;

/// A rendered message, ready to enqueue.
#[derive(Debug, Clone)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues a message: one row in `mail_outbox`. Pass the transaction of the change the message
/// reports, so that both commit or neither does; call `Mailer::wake` after the commit.
pub async fn enqueue<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    message: &Message,
) -> Result<(), sqlx::Error> {
    mail_outbox::insert(
        executor,
        NewMail {
            recipient: &message.to,
            subject: &message.subject,
            text_body: &message.text,
            html_body: &message.html,
        },
    )
    .await?;
    Ok(())
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        directory: PathBuf,
    },
}

/// What became of one delivery attempt.
enum Failure {
    /// Worth trying again later (the server is down, a temporary refusal).
    Temporary(String),
    /// The server refused for good, or the message cannot be built: no retry.
    Permanent(String),
}

/// The delivery side: the transport, the sender, the wake-up of the delivery task, and the origin
/// that links in messages point to.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    transport: Transport,
    from: Mailbox,
    wake: Notify,
    retry_after: Duration,
    poll_interval: Duration,
    public_url: OnceLock<String>,
}

impl Mailer {
    /// Builds the transport from the settings (already validated); the outbox directory is
    /// created when messages go to files.
    pub fn new(db: Db, settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(smtp_transport(url.expose())?),
            None => {
                std::fs::create_dir_all(&settings.mail_outbox).map_err(|error| {
                    anyhow::anyhow!("MAIL_OUTBOX: cannot create {}: {error}", settings.mail_outbox.display())
                })?;
                Transport::Files {
                    transport: AsyncFileTransport::<Tokio1Executor>::new(&settings.mail_outbox),
                    directory: settings.mail_outbox.clone(),
                }
            }
        };
        let from = settings
            .mail_from
            .parse::<Mailbox>()
            .map_err(|error| anyhow::anyhow!("MAIL_FROM: {error}"))?;
        let public_url = OnceLock::new();
        if let Some(url) = &settings.public_url {
            let _ = public_url.set(url.clone());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                transport,
                from,
                wake: Notify::new(),
                retry_after: settings.mail_retry_after,
                poll_interval: settings.mail_poll_interval,
                public_url,
            }),
        })
    }

    /// Where links point when `PUBLIC_URL` is unset: this instance's own address, once bound.
    pub fn default_public_url(&self, url: String) {
        let _ = self.inner.public_url.set(url);
    }

    /// An absolute link into this site: `PUBLIC_URL` + `path` (which starts with `/`).
    pub fn link(&self, path: &str) -> String {
        let base = self.inner.public_url.get().map_or("", String::as_str);
        format!("{base}{path}")
    }

    /// How messages leave this instance, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.inner.transport {
            Transport::Smtp(_) => "SMTP (SMTP_URL)".to_owned(),
            Transport::Files { directory, .. } => format!(".eml files in {}", directory.display()),
        }
    }

    /// Wakes this instance's delivery task: call after committing an `enqueue`.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Enqueues a message that reports no change of its own, and wakes the delivery task.
    pub async fn send(&self, message: &Message) -> Result<(), sqlx::Error> {
        enqueue(&self.inner.db, message).await?;
        self.wake();
        Ok(())
    }

    /// Starts this instance's delivery task.
    pub fn spawn(&self) {
        let this = self.clone();
        tokio::spawn(async move { this.deliver_forever().await });
    }

    async fn deliver_forever(&self) {
        loop {
            // A full batch may mean more are due: go round again at once.
            let full = match self.deliver_due().await {
                Ok(handled) => handled >= BATCH as usize,
                Err(error) => {
                    tracing::warn!(error = %error, "the mail outbox could not be read; trying again shortly");
                    false
                }
            };
            if full {
                continue;
            }
            let wait = match mail_outbox::next_due(&self.inner.db).await {
                Ok(Some(due)) => {
                    Duration::from_millis((due - now_millis()).max(0) as u64).min(self.inner.poll_interval)
                }
                _ => self.inner.poll_interval,
            };
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round: claims the messages due now (those another instance claims first are left to
    /// it), sends each, and records the outcome. Returns how many this instance handled.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let now = now_millis();
        let due = mail_outbox::due(&self.inner.db, now, BATCH).await?;
        let mut handled = 0;
        let lease_until = now + CLAIM_LEASE.as_millis() as i64;
        for (id, seen_due_at) in due {
            let Some(mail) = mail_outbox::claim(&self.inner.db, &id, seen_due_at, lease_until).await? else {
                continue;
            };
            handled += 1;
            match self.deliver(&mail).await {
                Ok(()) => {
                    mail_outbox::delete_sent(&self.inner.db, &mail.id).await?;
                    tracing::info!(
                        recipient = %mail.recipient,
                        subject = %mail.subject,
                        attempts = mail.attempts,
                        transport = self.transport_name(),
                        "message sent"
                    );
                }
                Err(Failure::Temporary(error)) if mail.attempts < MAX_ATTEMPTS => {
                    let wait = backoff(self.inner.retry_after, mail.attempts);
                    let retry_at = now_millis() + wait.as_millis() as i64;
                    mail_outbox::retry_later(&self.inner.db, &mail.id, retry_at, &error).await?;
                    tracing::warn!(
                        recipient = %mail.recipient,
                        subject = %mail.subject,
                        attempts = mail.attempts,
                        retry_in_seconds = wait.as_secs_f64(),
                        error = %error,
                        "message not sent; it stays in the outbox and is tried again"
                    );
                }
                Err(Failure::Temporary(error) | Failure::Permanent(error)) => {
                    mail_outbox::give_up(&self.inner.db, &mail.id, &error).await?;
                    tracing::error!(
                        recipient = %mail.recipient,
                        subject = %mail.subject,
                        attempts = mail.attempts,
                        error = %error,
                        "message given up on: it will not be sent"
                    );
                }
            }
        }
        if let Err(error) = store::email_tokens::purge_expired(&self.inner.db, now - 86_400_000).await {
            tracing::warn!(error = %error, "expired email links could not be purged");
        }
        Ok(handled)
    }

    fn transport_name(&self) -> &'static str {
        match &self.inner.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files { .. } => "file",
        }
    }

    async fn deliver(&self, mail: &QueuedMail) -> Result<(), Failure> {
        let recipient = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|error| Failure::Permanent(format!("the recipient is not an address: {error}")))?;
        let message = lettre::Message::builder()
            .from(self.inner.from.clone())
            .to(recipient)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .map_err(|error| Failure::Permanent(format!("the message could not be built: {error}")))?;
        match &self.inner.transport {
            Transport::Smtp(transport) => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(error) if error.is_permanent() => Err(Failure::Permanent(error.to_string())),
                Err(error) => Err(Failure::Temporary(error.to_string())),
            },
            Transport::Files { transport, .. } => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(error) => Err(Failure::Temporary(error.to_string())),
            },
        }
    }
}

/// `smtp://` with STARTTLS whenever the server offers it (plain otherwise, so that a local test
/// server without TLS works), unless the URL says `?tls=…` itself; `smtps://` is implicit TLS.
fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let url = if url.starts_with("smtp://") && !url.contains("tls=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}tls=opportunistic")
    } else {
        url.to_owned()
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|_| anyhow::anyhow!("SMTP_URL could not be used (the value is not shown: it may hold a password)"))?;
    Ok(builder.timeout(Some(Duration::from_secs(20))).build())
}

/// The wait after the `attempts`-th failure: `first`, doubled for every attempt after the first,
/// at most an hour.
fn backoff(first: Duration, attempts: i64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    first.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn the_wait_doubles_from_the_first_and_stops_at_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 1), Duration::from_secs(30));
        assert_eq!(backoff(first, 2), Duration::from_secs(60));
        assert_eq!(backoff(first, 4), Duration::from_secs(240));
        assert_eq!(backoff(first, 9), Duration::from_secs(3600));
        assert_eq!(backoff(first, 1_000), Duration::from_secs(3600));
    }
}
