//! The new-sign-in email: sent, from the transaction that opens the login session, for a log-in
//! whose browser/OS and address pair the account had not used together (the dashboard's "new
//! device" rule, `LoginSession::new_device`). It names the device, the approximate place and the
//! time, and carries a single-use "This wasn't me" link that works without being logged in.

use std::time::Duration;

use crate::domain::{Clock, LinkToken};
use crate::geoip::Geoip;
use crate::mail::{self, Mailer, messages};
use crate::store::Transaction;
use crate::store::email_tokens::{self, NewToken, Purpose};
use crate::store::login_sessions::{Kind, LoginSession};
use crate::store::users::User;

/// How long a "This wasn't me" link works.
pub const NOT_ME_TTL: Duration = Duration::from_secs(72 * 3600);

/// What the message needs besides the log-in itself: the mailer, when configured GeoIP, and the
/// clock its link's lifetime is measured on.
#[derive(Clone, Copy)]
pub struct SignInMail<'a> {
    pub mailer: &'a Mailer,
    pub geoip: Option<&'a Geoip>,
    pub clock: &'a Clock,
}

/// "Linköping, Sweden (address 192.0.2.1)" with GeoIP, "address 192.0.2.1" without.
pub fn place(geoip: Option<&Geoip>, ip: &str) -> String {
    match geoip.map(|geoip| geoip.describe(ip)) {
        Some(place) if place != "unknown location" => format!("{place} (address {ip})"),
        _ => format!("address {ip}"),
    }
}

/// Stores the link and enqueues the message inside the log-in's transaction; the caller wakes
/// the mailer once it has committed.
pub async fn enqueue(
    transaction: &mut Transaction<'_>,
    mail_settings: SignInMail<'_>,
    user: &User,
    session: &LoginSession,
) -> anyhow::Result<()> {
    let token = LinkToken::generate();
    let now = mail_settings.clock.now_millis();
    email_tokens::insert(
        &mut **transaction,
        NewToken {
            token_hash: &token.hash(),
            user_id: &user.id,
            purpose: Purpose::NotMe,
            login_session_id: Some(&session.id),
            created_at: now,
            expires_at: now + NOT_ME_TTL.as_millis() as i64,
        },
    )
    .await?;
    let device = crate::auth::client::describe_device(&session.user_agent);
    let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(session.created_at)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let not_me_link = mail_settings.mailer.link(&format!("/not-me?token={}", token.expose()));
    let dashboard_link = mail_settings.mailer.link("/dashboard");
    let message = messages::new_sign_in(
        &user.email,
        &messages::SignIn {
            device: &device,
            place: &place(mail_settings.geoip, &session.ip),
            when: &when,
            kind: match session.kind {
                Kind::Cookie => "browser session",
                Kind::Token => "API token",
            },
            not_me_link: &not_me_link,
            dashboard_link: &dashboard_link,
            hours: NOT_ME_TTL.as_secs() / 3600,
        },
    )?;
    mail::enqueue(&mut **transaction, &message).await?;
    Ok(())
}
