//! The complete in-process denylist, held compactly: 24 bytes a denylisted `jti`.
//!
//! A `jti` revocable issues is 16 random bytes in URL-safe base64; it is held as those 16 bytes
//! (any other `jti` as the first 16 bytes of its SHA-256), with its token's expiry in Unix
//! milliseconds. Most entries sit in one
//! sorted array, searched by bisection, built when the denylist is loaded and rebuilt when expired
//! entries are purged; what is revoked in between goes to a small concurrent map until the next
//! rebuild. A million denylisted `jti`s take about 24 MB, against about 70 MB as strings in a
//! general-purpose map.

use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// A `jti` reduced to 16 bytes.
type JtiKey = [u8; 16];

#[derive(Clone, Copy)]
struct Entry {
    key: JtiKey,
    /// Unix milliseconds.
    expires: i64,
}

fn key_of(jti: &str) -> JtiKey {
    let mut key = [0u8; 16];
    let mut decoded = [0u8; 18];
    if jti.len() == 22 && URL_SAFE_NO_PAD.decode_slice(jti, &mut decoded) == Ok(16) {
        key.copy_from_slice(&decoded[..16]);
    } else {
        key.copy_from_slice(&Sha256::digest(jti.as_bytes())[..16]);
    }
    key
}

/// `jti` → the expiry of its token; see the module's documentation.
pub struct JtiSet {
    /// Sorted by key, one entry per key.
    sorted: RwLock<Arc<[Entry]>>,
    /// Added since `sorted` was built.
    recent: DashMap<JtiKey, i64, foldhash::fast::RandomState>,
    /// Rebuilds of `sorted` one at a time, with no insertion between their read and their swap.
    writing: Mutex<()>,
}

impl Default for JtiSet {
    fn default() -> Self {
        Self {
            sorted: RwLock::new(Arc::from(Vec::new())),
            recent: DashMap::default(),
            writing: Mutex::new(()),
        }
    }
}

impl JtiSet {
    fn sorted(&self) -> Arc<[Entry]> {
        self.sorted
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn install(&self, sorted: Vec<Entry>) {
        *self.sorted.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::from(sorted);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the token of `jti` expires (Unix milliseconds), if held.
    pub fn expiry(&self, jti: &str) -> Option<i64> {
        let key = key_of(jti);
        let recent = self.recent.get(&key).map(|expires| *expires);
        let sorted = self.sorted();
        let listed = sorted
            .binary_search_by(|entry| entry.key.cmp(&key))
            .ok()
            .map(|index| sorted[index].expires);
        recent.max(listed)
    }

    pub fn contains(&self, jti: &str) -> bool {
        self.expiry(jti).is_some()
    }

    pub fn insert(&self, jti: &str, expires_at: i64) {
        let _writing = self.lock();
        self.recent
            .entry(key_of(jti))
            .and_modify(|held| *held = (*held).max(expires_at))
            .or_insert(expires_at);
    }

    /// Entries held (a `jti` revoked again since the last rebuild may count twice).
    pub fn len(&self) -> usize {
        self.sorted().len() + self.recent.len()
    }

    pub fn clear(&self) {
        let _writing = self.lock();
        self.install(Vec::new());
        self.recent.clear();
    }

    /// Replaces the sorted entries with `entries` (the loaded rows); what was inserted meanwhile
    /// stays.
    pub fn replace_sorted(&self, entries: Vec<(JtiKeyed, i64)>) {
        let mut sorted: Vec<Entry> = entries
            .into_iter()
            .map(|(JtiKeyed(key), expires)| Entry { key, expires })
            .collect();
        sort_and_merge(&mut sorted);
        let _writing = self.lock();
        self.install(sorted);
    }

    /// Drops the entries whose tokens have expired by `now` (Unix milliseconds) and folds the
    /// recent ones into the sorted array.
    pub fn retain_unexpired(&self, now: i64) {
        let _writing = self.lock();
        let keep = |expires: i64| expires > now;
        let mut sorted: Vec<Entry> = self
            .sorted()
            .iter()
            .copied()
            .filter(|entry| keep(entry.expires))
            .collect();
        let recent: Vec<Entry> = self
            .recent
            .iter()
            .map(|entry| Entry {
                key: *entry.key(),
                expires: *entry.value(),
            })
            .collect();
        sorted.extend(recent.iter().copied().filter(|entry| keep(entry.expires)));
        sort_and_merge(&mut sorted);
        sorted.shrink_to_fit();
        // Installed before the recent ones are removed: a lookup in between finds them twice,
        // never not at all.
        self.install(sorted);
        for entry in recent {
            self.recent.remove(&entry.key);
        }
        self.recent.shrink_to_fit();
    }
}

/// A `jti` already reduced to its key, for loading many at once.
pub struct JtiKeyed(JtiKey);

impl JtiKeyed {
    pub fn new(jti: &str, expires_at: i64) -> (Self, i64) {
        (Self(key_of(jti)), expires_at)
    }
}

/// Sorts by key and keeps one entry per key, the latest expiry.
fn sort_and_merge(entries: &mut Vec<Entry>) {
    entries.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(b.expires.cmp(&a.expires)));
    entries.dedup_by(|later, earlier| later.key == earlier.key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RandomId;

    #[test]
    fn an_entry_takes_twenty_four_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn issued_jtis_are_held_as_their_own_bytes_and_others_by_digest() {
        let jti = RandomId::generate();
        assert_eq!(key_of(&jti)[..], URL_SAFE_NO_PAD.decode(&jti).unwrap()[..]);
        assert_ne!(key_of("not-an-issued-id"), key_of("not-an-issued-iD"));
    }

    #[test]
    fn loaded_recent_and_purged_entries_answer_alike() {
        let set = JtiSet::default();
        let loaded: Vec<String> = (0..1000).map(|_| RandomId::generate()).collect();
        set.replace_sorted(loaded.iter().map(|jti| JtiKeyed::new(jti, 10_000)).collect());
        let recent = RandomId::generate();
        set.insert(&recent, 20_500);
        set.insert("foreign-id", 5_000);
        for jti in &loaded {
            assert_eq!(set.expiry(jti), Some(10_000));
        }
        assert_eq!(set.expiry(&recent), Some(20_500));
        assert_eq!(set.expiry(&RandomId::generate()), None);
        assert_eq!(set.len(), 1002);

        set.retain_unexpired(10_000);
        assert_eq!(set.len(), 1);
        assert_eq!(set.expiry(&recent), Some(20_500));
        assert_eq!(set.expiry(&loaded[0]), None);
        assert_eq!(set.expiry("foreign-id"), None);
    }

    #[test]
    fn the_latest_expiry_of_a_jti_listed_twice_wins() {
        let set = JtiSet::default();
        let jti = RandomId::generate();
        set.replace_sorted(vec![JtiKeyed::new(&jti, 1_000), JtiKeyed::new(&jti, 9_000)]);
        assert_eq!(set.len(), 1);
        set.insert(&jti, 4_000);
        assert_eq!(set.expiry(&jti), Some(9_000));
        set.retain_unexpired(0);
        assert_eq!(set.len(), 1);
        assert_eq!(set.expiry(&jti), Some(9_000));
    }
}
