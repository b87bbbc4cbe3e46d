//! The complete in-process denylist, held compactly: 24 bytes a denylisted `jti`.
//!
//! A `jti` revocable issues is 16 random bytes in URL-safe base64; it is held as those 16 bytes
//! (any other `jti` as the first 16 bytes of its SHA-256), with its token's expiry in Unix
//! milliseconds. Most entries sit in one
//! sorted array, searched by bisection, built when the denylist is loaded and rebuilt when expired
//! entries are purged; what is revoked in between goes to a small concurrent map until the next
//! rebuild. A million denylisted `jti`s take about 24 MB, against about 70 MB as strings in a
//! general-purpose map. Loading keys each row as it is read (`Loading`), into an array sized once:
//! no `jti` is ever held as a string, and the array is installed as it was built, not copied.

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
    sorted: RwLock<Arc<Vec<Entry>>>,
    /// Added since `sorted` was built.
    recent: DashMap<JtiKey, i64, foldhash::fast::RandomState>,
    /// Rebuilds of `sorted` one at a time, with no insertion between their read and their swap.
    writing: Mutex<()>,
}

impl Default for JtiSet {
    fn default() -> Self {
        Self {
            sorted: RwLock::new(Arc::new(Vec::new())),
            recent: DashMap::default(),
            writing: Mutex::new(()),
        }
    }
}

impl JtiSet {
    fn sorted(&self) -> Arc<Vec<Entry>> {
        self.sorted
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn install(&self, sorted: Vec<Entry>) {
        *self.sorted.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(sorted);
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

    /// Replaces the sorted entries with what `loaded` read; what was inserted meanwhile stays.
    pub fn replace_sorted(&self, loaded: Loading) {
        let mut sorted = loaded.entries;
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

/// Rows being loaded, each reduced to its 24 bytes as it is added; installed by
/// `JtiSet::replace_sorted`.
pub struct Loading {
    entries: Vec<Entry>,
}

impl Loading {
    /// Room for `rows` entries, allocated once (the count the database gave before reading).
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            entries: Vec::with_capacity(rows),
        }
    }

    pub fn add(&mut self, jti: &str, expires_at: i64) {
        self.entries.push(Entry {
            key: key_of(jti),
            expires: expires_at,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Sorts by key and keeps one entry per key, the latest expiry. The key is compared as one
/// big-endian 128-bit integer, which orders exactly as the bytes do.
fn sort_and_merge(entries: &mut Vec<Entry>) {
    entries.sort_unstable_by_key(|entry| (u128::from_be_bytes(entry.key), std::cmp::Reverse(entry.expires)));
    entries.dedup_by(|later, earlier| later.key == earlier.key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RandomId;

    fn loading<'a>(rows: impl IntoIterator<Item = (&'a str, i64)>) -> Loading {
        let mut loading = Loading::with_capacity(0);
        for (jti, expires_at) in rows {
            loading.add(jti, expires_at);
        }
        loading
    }

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
        set.replace_sorted(loading(loaded.iter().map(|jti| (jti.as_str(), 10_000))));
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
    fn keys_sort_as_their_bytes_and_no_key_answers_for_a_neighbour() {
        // Keys that differ only in their first or last byte, or in one bit: the integer ordering
        // used to sort must agree with the byte ordering used to search.
        let mut keys: Vec<JtiKey> = Vec::new();
        for byte in [0usize, 7, 8, 15] {
            for value in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut key = [0x55u8; 16];
                key[byte] = value;
                keys.push(key);
            }
        }
        let jtis: Vec<String> = keys.iter().map(|key| URL_SAFE_NO_PAD.encode(key)).collect();
        let set = JtiSet::default();
        set.replace_sorted(loading(
            jtis.iter()
                .enumerate()
                .map(|(index, jti)| (jti.as_str(), index as i64 + 1)),
        ));
        let sorted = set.sorted();
        assert!(sorted.windows(2).all(|pair| pair[0].key < pair[1].key));
        assert_eq!(sorted.len(), keys.len(), "every key is distinct");
        for (index, jti) in jtis.iter().enumerate() {
            assert_eq!(set.expiry(jti), Some(index as i64 + 1), "{jti}");
        }
        let mut absent = [0x55u8; 16];
        absent[15] = 0x56;
        assert_eq!(set.expiry(&URL_SAFE_NO_PAD.encode(absent)), None);
    }

    #[test]
    fn a_load_larger_than_its_count_still_holds_every_row() {
        let jtis: Vec<String> = (0..100).map(|_| RandomId::generate()).collect();
        let mut rows = Loading::with_capacity(10);
        for jti in &jtis {
            rows.add(jti, 50);
        }
        assert_eq!(rows.len(), 100);
        let set = JtiSet::default();
        set.replace_sorted(rows);
        assert!(jtis.iter().all(|jti| set.contains(jti)));
        assert_eq!(set.len(), 100);
    }

    #[test]
    fn the_latest_expiry_of_a_jti_listed_twice_wins() {
        let set = JtiSet::default();
        let jti = RandomId::generate();
        set.replace_sorted(loading([(jti.as_str(), 1_000), (jti.as_str(), 9_000)]));
        assert_eq!(set.len(), 1);
        set.insert(&jti, 4_000);
        assert_eq!(set.expiry(&jti), Some(9_000));
        set.retain_unexpired(0);
        assert_eq!(set.len(), 1);
        assert_eq!(set.expiry(&jti), Some(9_000));
    }
}
