//! What each revocation-log entry means as Shared Signals events, and the Security Event Token
//! (RFC 8417) that carries one event to one stream.
//!
//! | log entry | event | `sub_id` |
//! |---|---|---|
//! | one login session ended | CAEP `session-revoked` | `complex`: `user` (`iss_sub`) + `session` (`opaque`) |
//! | `token_version` moved (log out everywhere, operator sign-out or lock, "this wasn't me") | CAEP `session-revoked` | the user (`iss_sub`): every session |
//! | `token_version` moved by a password change or reset | CAEP `credential-change` (`password`, `update`) | the user |
//! | one access token denylisted on its own (`/oauth/revoke`) | CAEP `session-revoked` | `complex`: `user` + `session` as `jwt_id` (`iss` + `jti`): SSF defines that format for one JWT, and CAEP's `session-revoked` is the event that ends what a token stood for |
//! | a second factor turned on / off, recovery codes replaced | CAEP `credential-change` (`app`: `create` / `delete` / `update`) | the user |
//! | a user deleted | RISC `account-purged` | the user |
//!
//! The per-session events of a revocation that also moved `token_version` are left out: the
//! user-wide event already covers them. So are the denylisted tokens of an ended session, and
//! the tokens a session's own refresh replaced: that session goes on, and a `session-revoked`
//! for it would tell receivers to end it.

use crate::domain::RandomId;
use crate::store::revocation_log::{Entry, EntryKind};

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub const ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// Every event type a stream can ask for, in `events_supported`.
pub const SUPPORTED: [&str; 3] = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_PURGED];

/// Why a session ended, as a sentence for the receiver's administrators (`reason_admin`).
fn reason_text(reason: &str) -> &'static str {
    match reason {
        "logged_out" => "The user logged out.",
        "signed_out_from_another_device" => "The user signed this session out from another device.",
        "logged_out_everywhere" => "The user logged out everywhere.",
        "password_changed" => "The user changed their password.",
        "password_reset" => "The user reset their password by email.",
        "idle_timeout" => "The session was idle for too long.",
        "absolute_timeout" => "The session reached its longest lifetime.",
        "refresh_token_reused" => "A spent refresh token was presented again; the session may be stolen.",
        "account_deleted" => "The account was deleted.",
        "reported_not_you" => "The user reported a sign-in that was not theirs.",
        "revoked_by_client" => "A client service revoked the session's token.",
        "session_limit" => "A new log-in went past the number of sessions one user may have.",
        "signed_out_by_admin" => "An administrator signed the user out.",
        "token_revoked" => "The access token was revoked.",
        "second_factor_enabled" => "The user turned on two-step verification with an authenticator app.",
        "second_factor_disabled" => {
            "The user turned off two-step verification; their authenticator app and recovery codes no longer work."
        }
        "recovery_codes_replaced" => "The user replaced their recovery codes; the earlier ones no longer work.",
        _ => "The session was revoked.",
    }
}

/// Who set the change off (CAEP `initiating_entity`).
fn initiating_entity(reason: &str) -> &'static str {
    match reason {
        "signed_out_by_admin" => "admin",
        "idle_timeout" | "absolute_timeout" | "refresh_token_reused" | "session_limit" => "policy",
        "revoked_by_client" | "token_revoked" => "system",
        _ => "user",
    }
}

/// Reasons whose sessions also moved `token_version`: the user-wide event covers them.
fn covered_by_user_event(reason: &str) -> bool {
    matches!(
        reason,
        "logged_out_everywhere" | "signed_out_by_admin" | "reported_not_you" | "account_deleted"
    )
}

/// One event for one subject, before it is addressed to a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: &'static str,
    /// The user it concerns, for a stream's subject filter.
    pub user_id: Option<String>,
    pub sub_id: serde_json::Value,
    pub payload: serde_json::Value,
    /// The log entry's seq, as the SET's `txn`: one revocation, however many streams hear of it.
    pub txn: Option<String>,
}

/// CAEP 1.0 section 3.3's `credential_type`, `change_type` and `friendly_name` of a second-factor
/// change. The factor is an authenticator app (TOTP): `app`. Turning it on creates it
/// (`create`); turning it off deletes it and its recovery codes (`delete`: they are removed, not
/// merely suspended, which `revoke` would say). CAEP registers no type for recovery codes, and a
/// type of our own would be one receivers have not agreed to (the section allows only those);
/// they exist only beside the app, as its fallback, so replacing them is an `update` of the `app`
/// credential, named by its `friendly_name`.
fn second_factor_change(reason: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match reason {
        "second_factor_enabled" => Some(("app", "create", "Authenticator app")),
        "second_factor_disabled" => Some(("app", "delete", "Authenticator app and recovery codes")),
        "recovery_codes_replaced" => Some(("app", "update", "Recovery codes")),
        _ => None,
    }
}

fn user(issuer: &str, user_id: &str) -> serde_json::Value {
    serde_json::json!({ "format": "iss_sub", "iss": issuer, "sub": user_id })
}

fn caep(timestamp: i64, reason: &str) -> serde_json::Value {
    serde_json::json!({
        "event_timestamp": timestamp,
        "initiating_entity": initiating_entity(reason),
        "reason_admin": { "en": reason_text(reason) },
    })
}

/// The events a log entry means for other services; none for internal entries.
pub fn events_of(entry: &Entry, issuer: &str) -> Vec<Event> {
    let change = &entry.change;
    let timestamp = entry.created_at / 1000;
    let reason = change.reason.as_deref().unwrap_or("");
    let Some(user_id) = change.user_id.clone() else {
        return Vec::new();
    };
    let event = |event_type, sub_id, payload| Event {
        event_type,
        user_id: Some(user_id.clone()),
        sub_id,
        payload,
        txn: Some(entry.seq.to_string()),
    };
    let one = match change.kind {
        EntryKind::SessionRevoked if covered_by_user_event(reason) => return Vec::new(),
        EntryKind::SessionRevoked => {
            let Some(session_id) = &change.session_id else {
                return Vec::new();
            };
            let sub_id = serde_json::json!({
                "format": "complex",
                "user": user(issuer, &user_id),
                "session": { "format": "opaque", "id": session_id },
            });
            event(SESSION_REVOKED, sub_id, caep(timestamp, reason))
        }
        EntryKind::VersionChanged if matches!(reason, "password_changed" | "password_reset") => {
            let mut payload = caep(timestamp, reason);
            payload["credential_type"] = "password".into();
            payload["change_type"] = "update".into();
            event(CREDENTIAL_CHANGE, user(issuer, &user_id), payload)
        }
        EntryKind::VersionChanged => event(SESSION_REVOKED, user(issuer, &user_id), caep(timestamp, reason)),
        EntryKind::CredentialChanged => {
            let Some((credential_type, change_type, friendly_name)) = second_factor_change(reason) else {
                return Vec::new();
            };
            let mut payload = caep(timestamp, reason);
            payload["credential_type"] = credential_type.into();
            payload["change_type"] = change_type.into();
            payload["friendly_name"] = friendly_name.into();
            event(CREDENTIAL_CHANGE, user(issuer, &user_id), payload)
        }
        EntryKind::UserDeleted => event(ACCOUNT_PURGED, user(issuer, &user_id), serde_json::json!({})),
        EntryKind::JtiDenylisted if matches!(reason, "session_ended" | "replaced") => return Vec::new(),
        EntryKind::JtiDenylisted => {
            let Some(jti) = &change.subject else {
                return Vec::new();
            };
            let sub_id = serde_json::json!({
                "format": "complex",
                "user": user(issuer, &user_id),
                "session": { "format": "jwt_id", "iss": issuer, "jti": jti },
            });
            event(SESSION_REVOKED, sub_id, caep(timestamp, "token_revoked"))
        }
        EntryKind::WebStateChanged | EntryKind::SigningKeyAdded => return Vec::new(),
    };
    vec![one]
}

/// The claims of the SET that carries `event` to the audience `aud`; returns them with the `jti`.
pub fn claims(issuer: &str, aud: &str, event: &Event, now_seconds: i64) -> (String, serde_json::Value) {
    let jti = RandomId::generate();
    let mut claims = serde_json::json!({
        "iss": issuer,
        "iat": now_seconds,
        "jti": jti,
        "aud": aud,
        "sub_id": event.sub_id,
        "events": { event.event_type: event.payload },
    });
    if let Some(txn) = &event.txn {
        claims["txn"] = txn.clone().into();
    }
    (jti, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::revocation_log::Change;

    fn entry(change: Change) -> Entry {
        Entry {
            seq: 7,
            change,
            created_at: 1_700_000_000_000,
        }
    }

    #[test]
    fn one_ended_session_is_a_session_revoked_event_for_the_user_and_session() {
        let events = events_of(&entry(Change::session_revoked("u1", "s1", "logged_out")), "https://id");
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event_type, SESSION_REVOKED);
        assert_eq!(event.sub_id["format"], "complex");
        assert_eq!(event.sub_id["user"]["sub"], "u1");
        assert_eq!(event.sub_id["session"]["id"], "s1");
        assert_eq!(event.payload["initiating_entity"], "user");
        assert_eq!(event.payload["event_timestamp"], 1_700_000_000);
        assert!(event.payload["reason_admin"]["en"].as_str().unwrap().ends_with('.'));
    }

    #[test]
    fn a_password_change_is_a_credential_change_and_log_out_everywhere_revokes_the_user() {
        let changed = events_of(&entry(Change::version_changed("u1", 3, "password_changed")), "i");
        assert_eq!(changed[0].event_type, CREDENTIAL_CHANGE);
        assert_eq!(changed[0].payload["credential_type"], "password");
        let everywhere = events_of(&entry(Change::version_changed("u1", 4, "logged_out_everywhere")), "i");
        assert_eq!(everywhere[0].event_type, SESSION_REVOKED);
        assert_eq!(everywhere[0].sub_id["format"], "iss_sub");
        assert!(
            events_of(
                &entry(Change::session_revoked("u1", "s1", "logged_out_everywhere")),
                "i"
            )
            .is_empty()
        );
    }

    #[test]
    fn a_second_factor_change_is_a_credential_change_of_the_app() {
        let cases = [
            ("second_factor_enabled", "create"),
            ("second_factor_disabled", "delete"),
            ("recovery_codes_replaced", "update"),
        ];
        for (reason, change_type) in cases {
            let events = events_of(&entry(Change::credential_changed("u1", reason)), "i");
            assert_eq!(events.len(), 1, "{reason}");
            assert_eq!(events[0].event_type, CREDENTIAL_CHANGE);
            assert_eq!(events[0].sub_id, user("i", "u1"));
            assert_eq!(events[0].payload["credential_type"], "app");
            assert_eq!(events[0].payload["change_type"], change_type);
            assert_eq!(events[0].payload["initiating_entity"], "user");
        }
        assert!(events_of(&entry(Change::credential_changed("u1", "unheard_of")), "i").is_empty());
    }

    #[test]
    fn only_a_token_revoked_on_its_own_is_an_event() {
        let alone = events_of(
            &entry(Change::jti_denylisted("j1", "s1", "u1", 0, "token_revoked")),
            "i",
        );
        assert_eq!(
            alone[0].sub_id["session"],
            serde_json::json!({ "format": "jwt_id", "iss": "i", "jti": "j1" })
        );
        assert_eq!(alone[0].payload["initiating_entity"], "system");
        assert!(
            events_of(
                &entry(Change::jti_denylisted("j1", "s1", "u1", 0, "session_ended")),
                "i"
            )
            .is_empty()
        );
        assert!(events_of(&entry(Change::web_state_changed("h")), "i").is_empty());
    }
}
