use super::*;
use crate::domain::now_millis;
use crate::store::revocation_log::Change;

fn cache() -> Cache {
    Cache::new(Limits {
        capacity: 1000,
        time_to_live: Duration::from_secs(60),
        clock: crate::domain::Clock::test(),
    })
}

fn entry(change: Change) -> Entry {
    Entry {
        seq: 1,
        change,
        created_at: 0,
    }
}

fn live_view() -> SessionView {
    SessionView {
        user_id: "u".into(),
        kind: Kind::Token,
        expires_at: i64::MAX,
        idle_expires_at: i64::MAX,
        last_seen_at: 0,
        revoked: false,
    }
}

#[test]
fn an_entry_past_its_time_limit_is_not_answered_and_a_fill_replaces_it() {
    let clock = crate::domain::Clock::test();
    let cache = Cache::new(Limits {
        capacity: 1000,
        time_to_live: Duration::from_millis(30),
        clock: clock.clone(),
    });
    cache.fill_session(cache.ticket(), "s", live_view());
    assert!(cache.session("s", clock.now_millis()).is_some());
    clock.advance(Duration::from_millis(40));
    assert_eq!(
        cache.session("s", clock.now_millis()),
        None,
        "read again from the database"
    );
    let refreshed = SessionView {
        expires_at: 5,
        ..live_view()
    };
    cache.fill_session(cache.ticket(), "s", refreshed.clone());
    assert_eq!(cache.session("s", clock.now_millis()), Some(refreshed));
}

#[test]
fn a_session_keys_name_is_computed_once_and_is_the_name_of_that_key_alone() {
    let cache = cache();
    let computed = std::cell::Cell::new(0);
    let name = |key: &str| {
        computed.set(computed.get() + 1);
        format!("name of {key}")
    };
    assert_eq!(&*cache.web_state_name("key-a", name), "name of key-a");
    assert_eq!(&*cache.web_state_name("key-a", name), "name of key-a");
    assert_eq!(computed.get(), 1, "the second look is remembered");
    assert_eq!(&*cache.web_state_name("key-b", name), "name of key-b");
    assert_eq!(&*cache.web_state_name("key-a\0", name), "name of key-a\0");
    assert_eq!(computed.get(), 3, "another key is never taken for one seen before");
}

#[test]
fn the_bound_holds_and_ids_are_kept_inline() {
    let cache = Cache::new(Limits {
        capacity: 100,
        time_to_live: Duration::from_secs(60),
        clock: crate::domain::Clock::test(),
    });
    for index in 0..1000 {
        cache.fill_session(cache.ticket(), &format!("session-{index}"), live_view());
    }
    assert!(cache.sizes().sessions <= 100, "{:?}", cache.sizes());
    assert!(!CompactString::new("a-22-character-id-abcd").is_heap_allocated());
}

#[test]
fn a_fill_that_raced_a_revocation_is_not_kept() {
    let cache = cache();
    let ticket = cache.ticket();
    cache.apply(&entry(Change::session_revoked("u", "s", "logged_out")), false);
    cache.fill_session(ticket, "s", live_view());
    assert_eq!(
        cache.session("s", now_millis()),
        None,
        "the racing read is answered, not cached"
    );
}

#[test]
fn a_stale_fill_cannot_undo_a_revocation_held_as_a_tombstone() {
    let cache = cache();
    let ticket = cache.ticket();
    cache.apply(&entry(Change::session_revoked("u", "s", "logged_out")), true);
    // Even a fill whose ticket is current merges: revoked wins.
    cache.merge_session("s", live_view());
    let _ = ticket;
    assert!(cache.session("s", now_millis()).is_some_and(|view| view.revoked));
}

#[test]
fn versions_only_grow_and_deletion_is_final() {
    let cache = cache();
    cache.fill_version(cache.ticket(), "u", KnownVersion::Current(3));
    cache.apply(&entry(Change::version_changed("u", 4, "logged_out_everywhere")), false);
    cache.fill_version(cache.ticket(), "u", KnownVersion::Current(3));
    assert_eq!(cache.version("u", now_millis()), Some(KnownVersion::Current(4)));
    cache.apply(&entry(Change::user_deleted("u")), false);
    cache.fill_version(cache.ticket(), "u", KnownVersion::Current(9));
    assert_eq!(cache.version("u", now_millis()), Some(KnownVersion::Deleted));
}

#[test]
fn absence_from_the_denylist_counts_only_while_it_is_complete() {
    let cache = cache();
    assert_eq!(cache.is_denylisted("j", 0), None, "not loaded yet: ask the database");
    cache.load_denylist(vec![("a".into(), 100)]);
    assert_eq!(cache.is_denylisted("a", 50), Some(true));
    assert_eq!(
        cache.is_denylisted("a", 150),
        Some(false),
        "expired tokens are refused anyway"
    );
    assert_eq!(cache.is_denylisted("j", 50), Some(false));
}

#[test]
fn a_denylist_past_its_bound_stops_vouching_for_absence() {
    let cache = Cache::new(Limits {
        capacity: 2,
        time_to_live: Duration::from_secs(60),
        clock: crate::domain::Clock::test(),
    });
    cache.load_denylist(vec![("a".into(), 100), ("b".into(), 100)]);
    cache.apply(
        &entry(Change::jti_denylisted("c", "s", "u", 100, "token_revoked")),
        false,
    );
    assert_eq!(cache.is_denylisted("c", 50), None);
    assert_eq!(cache.is_denylisted("a", 50), Some(true));
}
