//! What a person does to their own account, whichever way they are logged in: sign up, prove
//! the password, change it, end one login session, the others, or all of them. The JSON and the
//! HTML routes both call these, so the two ways through the product cannot drift apart; each
//! records its security event here, where the change happens.

mod deletion;
mod devices;
mod log_in;
pub mod operator;
mod password_change;
mod proof;
pub mod second_factor;
mod sessions;
mod sign_up;

pub use deletion::delete;
pub use devices::{logged_in_after, recognise_device, report_not_you};
pub use log_in::authenticate;
pub use password_change::change_password;
pub use proof::{Proof, RecentProof, password_matches, password_proved_at, require_recent_proof};
pub use sessions::{log_out, log_out_everywhere, revoke_own_session, sign_out_other_devices};
pub use sign_up::{create, related_words};

use std::time::Duration;

use crate::auth::known_browser::KnownBrowsers;
use crate::auth::rate_limit::RateLimit;
use crate::auth::strategy::Principal;
use crate::auth::throttle::AccountLock;
use crate::auth::totp::SealingKey;
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::revocation::Revocation;
use crate::store::Db;
use crate::store::events::{self, EventKind, NewEvent, Origin};

/// What the account rules and account recovery use, and nothing else of the app: a handler
/// passes `&state.accounts`.
pub struct Accounts {
    pub db: Db,
    /// Every change to what is valid goes through it; its clock is the one the account rules
    /// read too.
    pub revocation: Revocation,
    /// The outbox's delivery side: `mail::enqueue` then `mailer.wake()`, or `mailer.send`.
    pub mailer: Mailer,
    /// Recognises browsers that have logged in to an account before (device cookies).
    pub known_browsers: KnownBrowsers,
    /// Seals and opens the stored TOTP secrets.
    pub totp_sealing: SealingKey,
    /// Messages asked for per recipient (reset links, verification links), so that nobody can
    /// flood one inbox; counted the same way whether or not the address has an account.
    pub mail_limit: RateLimit,
    /// How long a proved password lets a sensitive action go ahead without asking again.
    pub sudo_ttl: Duration,
    /// The per-account limit on failed password log-ins.
    pub lock: AccountLock,
}

impl Accounts {
    /// Unix milliseconds now on the app's clock (`domain::Clock`): the one every account rule
    /// is measured against, the same the revocation layer and the token lifetimes use, so a
    /// test that moves the clock moves all of them.
    pub fn now(&self) -> i64 {
        self.revocation.clock().now_millis()
    }
}

/// Records what the caller (`principal`) did.
async fn record(
    accounts: &Accounts,
    principal: &Principal,
    kind: EventKind,
    other_session_id: Option<&str>,
    origin: &Origin,
    detail: String,
) -> Result<(), ApiError> {
    events::record(
        &accounts.db,
        NewEvent {
            user_id: &principal.user_id,
            kind,
            session_id: Some(&principal.session_id),
            other_session_id,
            origin,
            detail,
        },
    )
    .await?;
    Ok(())
}

/// "1 device", "3 other devices": how the activity list and the flash messages count devices.
pub fn count_devices(count: usize, other: bool) -> String {
    let other = if other { "other " } else { "" };
    format!("{count} {other}{}", if count == 1 { "device" } else { "devices" })
}
