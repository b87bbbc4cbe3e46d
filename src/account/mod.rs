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

use crate::auth::strategy::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events::{self, EventKind, NewEvent, Origin};

/// Records what the caller (`principal`) did.
async fn record(
    state: &AppState,
    principal: &Principal,
    kind: EventKind,
    other_session_id: Option<&str>,
    origin: &Origin,
    detail: String,
) -> Result<(), ApiError> {
    events::record(
        &state.db,
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
