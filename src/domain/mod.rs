//! Values parsed once at the edge and trusted afterwards.

mod clock;
mod email;
mod ids;
mod link_token;
mod password;
mod scope;
mod second_factor;

pub use clock::{Clock, now_millis};
pub use email::Email;
pub use ids::{RandomId, RefreshToken, SessionId};
pub use link_token::LinkToken;
pub use password::Password;
pub use scope::{Scope, Scopes, UnknownScope};
pub use second_factor::{MfaToken, RecoveryCode, SecondFactorCode};
