//! The in-process layer in front of the stores: every instance answers `version`, `denylist`,
//! `allowlist` and `cookie` checks from memory, and goes to the database only on a miss or when
//! it cannot be sure it is current (see `sync`).
//!
//! Correctness rests on three rules, each a known way such caches go wrong:
//! - **Revocations only move one way**, so merges are monotonic: a `token_version` only grows, a
//!   revoked login session never becomes live again, a deleted user stays deleted. An entry
//!   learned from the log is merged with `max` / "revoked wins", never overwritten by a fill.
//! - **A fill never resurrects**: a miss reads the database and fills the cache only if no
//!   invalidation was applied while it read (`generation`), so a read that raced a revocation is
//!   answered but not kept.
//! - **The denylist is complete or not trusted**: every unexpired denylisted `jti` is held, loaded
//!   at start-up and kept by the log, so "absent" means "not revoked" — unless it grew past its
//!   bound, in which case absence is checked against the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use compact_str::CompactString;

use super::bounded::Bounded;
use super::check::{KnownVersion, SessionView};
use super::jti_set::{JtiSet, Loading};
use crate::store::login_sessions::Kind;
use crate::store::revocation_log::{Entry, EntryKind};

/// Cookie-session state as actix-session stores it.
pub type WebState = Arc<std::collections::HashMap<String, String>>;

pub struct Limits {
    /// Entries per map (versions, sessions, cookie state), and the denylist's bound.
    pub capacity: u64,
    /// No entry is kept longer than this without being read again from the database.
    pub time_to_live: Duration,
    /// The app's clock, which that time limit is measured on.
    pub clock: crate::domain::Clock,
}

pub struct Cache {
    versions: Bounded<KnownVersion>,
    sessions: Bounded<SessionView>,
    web_state: Bounded<WebState>,
    /// Session key → the name its state is cached and announced under (`cookie_state::key_hash`,
    /// a SHA-256). A pure function's results, so a lost entry is only computed again: a request
    /// with a cookie seen before finds its state without hashing the key again.
    web_state_names: quick_cache::sync::Cache<Box<str>, Arc<str>>,
    /// `jti` → when its token expires. Complete while `denylist_complete`.
    denylist: JtiSet,
    denylist_capacity: usize,
    denylist_complete: AtomicBool,
    /// Bumped by every applied change; a fill that saw it move is not kept.
    generation: AtomicU64,
}

/// Taken before a database read that may fill the cache.
#[derive(Clone, Copy)]
pub struct FillTicket(u64);

impl Cache {
    pub fn new(limits: Limits) -> Self {
        Self {
            versions: Bounded::new(&limits),
            sessions: Bounded::new(&limits),
            web_state: Bounded::new(&limits),
            web_state_names: quick_cache::sync::Cache::new(
                usize::try_from(limits.capacity).unwrap_or(usize::MAX).max(1),
            ),
            denylist: JtiSet::default(),
            denylist_capacity: usize::try_from(limits.capacity).unwrap_or(usize::MAX),
            denylist_complete: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }

    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.generation.load(Ordering::Acquire))
    }

    fn unchanged_since(&self, ticket: FillTicket) -> bool {
        self.generation.load(Ordering::Acquire) == ticket.0
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn version(&self, user_id: &str, now: i64) -> Option<KnownVersion> {
        self.versions.get(user_id, now)
    }

    pub fn fill_version(&self, ticket: FillTicket, user_id: &str, version: KnownVersion) {
        if self.unchanged_since(ticket) {
            self.versions.upsert(user_id, version, Ord::max);
        }
    }

    pub fn session(&self, session_id: &str, now: i64) -> Option<SessionView> {
        self.sessions.get(session_id, now)
    }

    pub fn fill_session(&self, ticket: FillTicket, session_id: &str, view: SessionView) {
        if self.unchanged_since(ticket) {
            self.merge_session(session_id, view);
        }
    }

    fn merge_session(&self, session_id: &str, view: SessionView) {
        self.sessions.upsert(session_id, view, SessionView::merge);
    }

    /// Activity seen on this instance: the idle limit moves forward in memory at once.
    pub fn record_activity(&self, session_id: &str, now: i64, idle_expires_at: Option<i64>) {
        self.sessions.update(session_id, |view| {
            view.last_seen_at = view.last_seen_at.max(now);
            if let Some(idle) = idle_expires_at {
                view.idle_expires_at = view.idle_expires_at.max(idle);
            }
        });
    }

    /// The name of `session_key`'s state: `name(session_key)`, remembered.
    pub fn web_state_name(&self, session_key: &str, name: impl FnOnce(&str) -> String) -> Arc<str> {
        if let Some(known) = self.web_state_names.get(session_key) {
            return known;
        }
        let named: Arc<str> = Arc::from(name(session_key));
        self.web_state_names.insert(Box::from(session_key), named.clone());
        named
    }

    pub fn web_state(&self, key_hash: &str, now: i64) -> Option<WebState> {
        self.web_state.get(key_hash, now)
    }

    pub fn fill_web_state(&self, ticket: FillTicket, key_hash: &str, state: WebState) {
        if self.unchanged_since(ticket) {
            self.web_state.insert(key_hash, state);
        }
    }

    /// This instance wrote the state itself: it is current by construction.
    pub fn put_web_state(&self, key_hash: &str, state: Option<WebState>) {
        self.changed();
        match state {
            Some(state) => self.web_state.insert(key_hash, state),
            None => self.web_state.remove(key_hash),
        }
    }

    /// `Some(answer)` when memory can answer; `None` when the database must be asked.
    pub fn is_denylisted(&self, jti: &str, now: i64) -> Option<bool> {
        if let Some(expires_at) = self.denylist.expiry(jti) {
            return Some(expires_at > now);
        }
        self.denylist_complete.load(Ordering::Acquire).then_some(false)
    }

    /// Replaces the denylist with what the database holds; complete unless over its bound.
    #[cfg(test)]
    pub fn load_denylist(&self, entries: Vec<(String, i64)>) {
        let mut loading = self.denylist_loader(entries.len());
        for (jti, expires_at) in &entries {
            loading.add(jti, *expires_at);
        }
        loading.finish();
    }

    /// Replaces the denylist entry by entry, as the rows are read (`rows`: how many the database
    /// counted, to size the table once): not trusted for absence until `finish`, and only if
    /// every row fitted within the bound.
    pub fn denylist_loader(&self, rows: usize) -> DenylistLoader<'_> {
        self.denylist_complete.store(false, Ordering::Release);
        self.denylist.clear();
        DenylistLoader {
            cache: self,
            rows: Loading::with_capacity(rows.min(self.denylist_capacity)),
            overflowed: false,
        }
    }

    /// Room left in the denylist's bound for rows being loaded (what was revoked since the load
    /// began is held too).
    fn denylist_room(&self) -> usize {
        self.denylist_capacity.saturating_sub(self.denylist.len())
    }

    fn add_to_denylist(&self, jti: &str, expires_at: i64) {
        if self.denylist.len() >= self.denylist_capacity && !self.denylist.contains(jti) {
            // Past the bound absence proves nothing; the database answers until the next reload.
            self.denylist_complete.store(false, Ordering::Release);
            return;
        }
        self.denylist.insert(jti, expires_at);
    }

    /// Whether every unexpired denylisted `jti` is held, so that absence means "not revoked".
    pub fn denylist_is_complete(&self) -> bool {
        self.denylist_complete.load(Ordering::Acquire)
    }

    /// Drops denylist entries whose tokens have expired anyway.
    pub fn purge_expired(&self, now: i64) {
        self.denylist.retain_unexpired(now);
    }

    /// Applies one change. Idempotent, so an entry applied on commit and again from the log is
    /// harmless; a revocation of something not held is remembered as a tombstone only when
    /// `tombstones` (this instance's own commits, which a concurrent fill on it could race).
    pub fn apply(&self, entry: &Entry, tombstones: bool) {
        self.changed();
        let change = &entry.change;
        match change.kind {
            EntryKind::SessionRevoked => {
                if let Some(session_id) = &change.session_id {
                    if tombstones {
                        // Revoked wins over whatever a racing fill brings.
                        self.sessions.upsert(
                            session_id,
                            SessionView {
                                user_id: CompactString::new(change.user_id.as_deref().unwrap_or_default()),
                                kind: Kind::Token,
                                expires_at: 0,
                                idle_expires_at: 0,
                                last_seen_at: 0,
                                revoked: true,
                            },
                            |held, _| SessionView { revoked: true, ..held },
                        );
                    } else {
                        self.sessions.update(session_id, |view| view.revoked = true);
                    }
                }
            }
            EntryKind::VersionChanged => {
                if let (Some(user_id), Some(version)) = (&change.user_id, change.token_version) {
                    let version = KnownVersion::Current(version);
                    if tombstones {
                        self.versions.upsert(user_id, version, Ord::max);
                    } else {
                        self.versions.update(user_id, |held| *held = (*held).max(version));
                    }
                }
            }
            EntryKind::UserDeleted => {
                if let Some(user_id) = &change.user_id {
                    self.versions.insert(user_id, KnownVersion::Deleted);
                }
            }
            EntryKind::JtiDenylisted => {
                if let (Some(jti), Some(expires_at)) = (&change.subject, change.expires_at) {
                    self.add_to_denylist(jti, expires_at);
                }
            }
            EntryKind::WebStateChanged => {
                if let Some(key_hash) = &change.subject {
                    self.web_state.remove(key_hash);
                }
            }
            // Keys are not cached here: `startup` reloads them when it hears of this entry.
            EntryKind::SigningKeyAdded => {}
            // A second factor's change leaves every token as valid as it was.
            EntryKind::CredentialChanged => {}
        }
    }

    /// Forgets everything but the denylist (which the caller reloads): after missing entries.
    pub fn reset(&self) {
        self.changed();
        self.versions.clear();
        self.sessions.clear();
        self.web_state.clear();
    }

    pub fn sizes(&self) -> CacheSizes {
        CacheSizes {
            versions: self.versions.len(),
            sessions: self.sessions.len(),
            web_state: self.web_state.len(),
            denylist: self.denylist.len() as u64,
        }
    }
}

pub struct DenylistLoader<'a> {
    cache: &'a Cache,
    /// The rows read so far, installed as the denylist's sorted entries by `finish`.
    rows: Loading,
    overflowed: bool,
}

/// Rows loaded between two looks at what else the denylist holds.
const ROOM_CHECK_EVERY: usize = 4096;

impl DenylistLoader<'_> {
    pub fn add(&mut self, jti: &str, expires_at: i64) {
        if self.overflowed {
            return;
        }
        // The bound counts what was revoked meanwhile, which only a look at the set tells: once
        // every ROOM_CHECK_EVERY rows, and on every row once the bound is near.
        let loaded = self.rows.len();
        if (loaded % ROOM_CHECK_EVERY == 0 || loaded + ROOM_CHECK_EVERY >= self.cache.denylist_capacity)
            && loaded >= self.cache.denylist_room()
        {
            self.overflowed = true;
            return;
        }
        self.rows.add(jti, expires_at);
    }

    pub fn finish(self) {
        self.cache.denylist.replace_sorted(self.rows);
        self.cache.denylist_complete.store(!self.overflowed, Ordering::Release);
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CacheSizes {
    pub versions: u64,
    pub sessions: u64,
    pub web_state: u64,
    pub denylist: u64,
}

#[cfg(test)]
mod tests;
