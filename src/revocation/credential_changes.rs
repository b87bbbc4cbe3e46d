//! Changes to a user's credentials that revoke nothing (a second factor turned on or off,
//! recovery codes replaced), written to the revocation log in the change's own transaction so
//! that Shared Signals streams hear of them, in order with the revocations, as CAEP
//! `credential-change` events.

use crate::store;
use crate::store::revocation_log::Change;

use super::{Error, Pending, Revocation};

/// How a user's second factor changed, as the log's reason names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorChange {
    Enabled,
    Disabled,
    RecoveryCodesReplaced,
}

impl SecondFactorChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "second_factor_enabled",
            Self::Disabled => "second_factor_disabled",
            Self::RecoveryCodesReplaced => "recovery_codes_replaced",
        }
    }
}

impl Revocation {
    /// Appends the change to the log as the transaction's last write, then commits it and tells
    /// the other instances, as a revocation is committed.
    pub async fn commit_second_factor_change(
        &self,
        transaction: store::Transaction<'_>,
        user_id: &str,
        change: SecondFactorChange,
    ) -> Result<(), Error> {
        let pending = Pending {
            changes: vec![Change::credential_changed(user_id, change.as_str())],
            ..Pending::default()
        };
        self.commit(transaction, pending, self.clock().now_millis()).await?;
        Ok(())
    }
}
