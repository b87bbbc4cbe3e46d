//! `Bounded<V>`: the cache's maps, bounded by size and by age.

use compact_str::CompactString;
use quick_cache::sync::{Cache as QuickCache, EntryAction, EntryResult};

use super::cache::Limits;
use crate::domain::Clock;

/// A bounded map with a time limit: at most `capacity` entries (the least used go first), none
/// answered once older than the time limit. Entries are small (ids are kept inline, not on the
/// heap), so 100 000 login sessions take a few MiB. Writes to one key are atomic, which the
/// monotonic merges below rely on.
pub(super) struct Bounded<V: Clone> {
    map: QuickCache<CompactString, Stamped<V>>,
    time_to_live: i64,
    /// The app's clock, which stamps what is stored; a read brings the time it was made at.
    clock: Clock,
}

#[derive(Clone)]
struct Stamped<V> {
    value: V,
    /// When the value was read from the store (unix milliseconds, on the app's clock).
    stored_at: i64,
}

impl<V: Clone> Bounded<V> {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            map: QuickCache::new(usize::try_from(limits.capacity).unwrap_or(usize::MAX).max(1)),
            time_to_live: i64::try_from(limits.time_to_live.as_millis()).unwrap_or(i64::MAX),
            clock: limits.clock.clone(),
        }
    }

    fn fresh(&self, stamped: &Stamped<V>, now: i64) -> bool {
        now.saturating_sub(stamped.stored_at) < self.time_to_live
    }

    /// The value held for `key`, unless it was stored a time limit or more before `now`. The
    /// check that asks already read the clock; it passes what it read.
    pub(super) fn get(&self, key: &str, now: i64) -> Option<V> {
        let stamped = self.map.get(key)?;
        self.fresh(&stamped, now).then_some(stamped.value)
    }

    /// Stores `value` as read now, or what `merge(held, value)` makes of it while a fresh entry
    /// is held.
    pub(super) fn upsert(&self, key: &str, value: V, merge: impl FnOnce(V, V) -> V) {
        let now = self.clock.now_millis();
        let mut pending = Some((value, merge));
        let result = self.map.entry(&CompactString::new(key), None, |_, held| {
            if let Some((value, merge)) = pending.take() {
                held.value = if self.fresh(held, now) {
                    merge(held.value.clone(), value)
                } else {
                    value
                };
                held.stored_at = now;
            }
            EntryAction::Retain(())
        });
        if let (EntryResult::Vacant(slot), Some((value, _))) = (result, pending.take()) {
            let _ = slot.insert(Stamped { value, stored_at: now });
        }
    }

    /// Changes a held entry in place, keeping when it was read; an absent key stays absent.
    pub(super) fn update(&self, key: &str, change: impl FnOnce(&mut V)) {
        // A vacant slot is given back unfilled when dropped.
        let _ = self.map.entry(&CompactString::new(key), None, |_, held| {
            change(&mut held.value);
            EntryAction::Retain(())
        });
    }

    pub(super) fn insert(&self, key: &str, value: V) {
        self.map.insert(
            CompactString::new(key),
            Stamped {
                value,
                stored_at: self.clock.now_millis(),
            },
        );
    }

    pub(super) fn remove(&self, key: &str) {
        self.map.remove(key);
    }

    pub(super) fn clear(&self) {
        self.map.clear();
    }

    pub(super) fn len(&self) -> u64 {
        self.map.len() as u64
    }
}
