//! What the feed (or a Shared Signals stream) has said was revoked, in memory, and whether it can
//! be trusted right now.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{Claims, Rejection};

pub enum Answer {
    Valid,
    Revoked(Rejection),
    /// The feed is not live, or lost entries this token may depend on: ask revocable.
    Unknown,
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// What a verified Security Event Token revokes (`ssf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetEvent {
    Session(String),
    Jti(String),
    /// Every token of the user issued up to this time (unix seconds): log out everywhere, a
    /// password change.
    User(String, i64),
    Deleted(String),
}

#[derive(Default)]
struct State {
    /// Connected and past the feed's `ready`.
    caught_up: bool,
    last_heard: Option<Instant>,
    last_event_id: Option<i64>,
    /// Denylisted `jti` → the token's `exp`.
    jtis: HashMap<String, i64>,
    /// Revoked login session → when it was heard of.
    sessions: HashMap<String, i64>,
    /// User → (the newest `token_version`, when it was heard of).
    versions: HashMap<String, (i64, i64)>,
    /// Deleted user → when it was heard of.
    deleted_users: HashMap<String, i64>,
    /// User → (every token issued up to this time is revoked, when it was heard of): how a
    /// Shared Signals stream says what the feed says with `token_version`.
    users_revoked_until: HashMap<String, (i64, i64)>,
    /// The feed lost entries: tokens issued up to then are introspected.
    introspect_issued_until: Option<i64>,
}

#[derive(Default)]
pub struct Revocations {
    state: RwLock<State>,
}

fn id_at<'a>(data: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(data, |value, key| value.get(key))?.as_str()
}

impl Revocations {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_live(&self, silence_limit: Duration) -> bool {
        let state = self.read();
        state.caught_up && state.last_heard.is_some_and(|at| at.elapsed() < silence_limit)
    }

    pub fn check(&self, claims: &Claims, silence_limit: Duration) -> Answer {
        let state = self.read();
        let live = state.caught_up && state.last_heard.is_some_and(|at| at.elapsed() < silence_limit);
        if !live {
            return Answer::Unknown;
        }
        if state.jtis.contains_key(&claims.jti) {
            return Answer::Revoked(Rejection::RevokedJti);
        }
        if state.sessions.contains_key(&claims.sid) || state.deleted_users.contains_key(&claims.sub) {
            return Answer::Revoked(Rejection::RevokedSession);
        }
        if state
            .versions
            .get(&claims.sub)
            .is_some_and(|(version, _)| *version > claims.ver)
        {
            return Answer::Revoked(Rejection::RevokedVersion);
        }
        match state.users_revoked_until.get(&claims.sub) {
            Some((until, _)) if claims.iat < *until => return Answer::Revoked(Rejection::RevokedVersion),
            // Issued within the second of the revocation: before or after it, only revocable knows.
            Some((until, _)) if claims.iat == *until => return Answer::Unknown,
            _ => {}
        }
        if state.introspect_issued_until.is_some_and(|until| claims.iat <= until) {
            return Answer::Unknown;
        }
        Answer::Valid
    }

    /// Applies what a verified SET revokes; `remember_for` bounds a token's remaining life.
    pub fn apply_set(&self, event: &SetEvent, remember_for: Duration) {
        let now = now_seconds();
        let mut state = self.write();
        state.last_heard = Some(Instant::now());
        match event {
            SetEvent::Session(session) => {
                state.sessions.insert(session.clone(), now);
            }
            // A SET does not carry the token's `exp`: kept as long as anything else.
            SetEvent::Jti(jti) => {
                state.jtis.insert(jti.clone(), now + remember_for.as_secs() as i64);
            }
            SetEvent::User(user, until) => {
                let entry = state.users_revoked_until.entry(user.clone()).or_insert((*until, now));
                *entry = (entry.0.max(*until), now);
            }
            SetEvent::Deleted(user) => {
                state.deleted_users.insert(user.clone(), now);
            }
        }
    }

    pub fn last_event_id(&self) -> Option<i64> {
        self.read().last_event_id
    }

    pub fn heard(&self) {
        self.write().last_heard = Some(Instant::now());
    }

    pub fn caught_up(&self) {
        let mut state = self.write();
        state.caught_up = true;
        state.last_heard = Some(Instant::now());
    }

    pub fn disconnected(&self) {
        self.write().caught_up = false;
    }

    /// The feed could not replay everything that may still matter.
    pub fn lost_entries(&self) {
        self.write().introspect_issued_until = Some(now_seconds());
    }

    /// Applies one feed event; unknown event names are skipped.
    pub fn apply(&self, id: Option<i64>, name: &str, data: &Value) {
        let now = now_seconds();
        let mut state = self.write();
        state.last_heard = Some(Instant::now());
        match name {
            "session-revoked" => {
                if let Some(session) = id_at(data, &["subject", "session", "id"]) {
                    state.sessions.insert(session.to_owned(), now);
                }
            }
            "token-claims-change" => {
                if let (Some(user), Some(version)) = (
                    id_at(data, &["subject", "user", "id"]),
                    data.pointer("/claims/ver").and_then(Value::as_i64),
                ) {
                    let entry = state.versions.entry(user.to_owned()).or_insert((version, now));
                    if version >= entry.0 {
                        *entry = (version, now);
                    }
                }
            }
            "jti-revoked" => {
                if let Some(jti) = id_at(data, &["subject", "jti", "id"]) {
                    let exp = data.get("exp").and_then(Value::as_i64).unwrap_or(i64::MAX);
                    state.jtis.insert(jti.to_owned(), exp);
                }
            }
            "account-purged" => {
                if let Some(user) = id_at(data, &["subject", "user", "id"]) {
                    state.deleted_users.insert(user.to_owned(), now);
                }
            }
            _ => {}
        }
        if let Some(id) = id {
            state.last_event_id = Some(id);
        }
    }

    /// Forgets what can no longer matter: denylisted tokens past their `exp`, and everything else
    /// heard of longer than `remember_for` ago (every token it concerned has expired by then).
    pub fn forget_old(&self, remember_for: Duration) {
        let now = now_seconds();
        let horizon = now - remember_for.as_secs() as i64;
        let mut state = self.write();
        state.jtis.retain(|_, exp| *exp >= now);
        state.sessions.retain(|_, heard| *heard >= horizon);
        state.versions.retain(|_, (_, heard)| *heard >= horizon);
        state.deleted_users.retain(|_, heard| *heard >= horizon);
        state.users_revoked_until.retain(|_, (_, heard)| *heard >= horizon);
        if state.introspect_issued_until.is_some_and(|until| until < horizon) {
            state.introspect_issued_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(ver: i64) -> Claims {
        Claims {
            iss: "revocable".into(),
            aud: "revocable".into(),
            sub: "user".into(),
            sid: "session".into(),
            ver,
            jti: "jti".into(),
            iat: now_seconds(),
            nbf: now_seconds(),
            exp: now_seconds() + 60,
        }
    }

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn nothing_is_trusted_before_the_feed_has_caught_up() {
        let revocations = Revocations::default();
        assert!(matches!(revocations.check(&claims(0), LIMIT), Answer::Unknown));
        revocations.caught_up();
        assert!(matches!(revocations.check(&claims(0), LIMIT), Answer::Valid));
        revocations.disconnected();
        assert!(matches!(revocations.check(&claims(0), LIMIT), Answer::Unknown));
    }

    #[test]
    fn each_event_revokes_what_it_names() {
        let revocations = Revocations::default();
        revocations.caught_up();
        revocations.apply(
            Some(1),
            "token-claims-change",
            &serde_json::json!({ "subject": { "user": { "id": "user" } }, "claims": { "ver": 2 } }),
        );
        assert!(matches!(
            revocations.check(&claims(1), LIMIT),
            Answer::Revoked(Rejection::RevokedVersion)
        ));
        assert!(matches!(revocations.check(&claims(2), LIMIT), Answer::Valid));
        revocations.apply(
            Some(2),
            "jti-revoked",
            &serde_json::json!({ "subject": { "jti": { "id": "jti" } }, "exp": now_seconds() + 60 }),
        );
        assert!(matches!(
            revocations.check(&claims(2), LIMIT),
            Answer::Revoked(Rejection::RevokedJti)
        ));
        assert_eq!(revocations.last_event_id(), Some(2));
    }

    #[test]
    fn a_user_wide_set_revokes_the_tokens_issued_before_it() {
        let revocations = Revocations::default();
        revocations.caught_up();
        let issued = claims(0);
        revocations.apply_set(&SetEvent::User("user".into(), issued.iat + 1), LIMIT);
        assert!(matches!(
            revocations.check(&issued, LIMIT),
            Answer::Revoked(Rejection::RevokedVersion)
        ));
        let same_second = Claims {
            iat: issued.iat + 1,
            ..claims(0)
        };
        assert!(matches!(revocations.check(&same_second, LIMIT), Answer::Unknown));
        let later = Claims {
            iat: issued.iat + 2,
            ..claims(0)
        };
        assert!(matches!(revocations.check(&later, LIMIT), Answer::Valid));
    }

    #[test]
    fn lost_entries_send_older_tokens_to_introspection() {
        let revocations = Revocations::default();
        revocations.caught_up();
        revocations.lost_entries();
        assert!(matches!(revocations.check(&claims(0), LIMIT), Answer::Unknown));
    }
}
