//! Device cookies (OWASP's "slow down online guessing attacks with device cookies"): a browser
//! that has logged in to an account carries a signed cookie naming that account, and its password
//! attempts are counted against that cookie instead of against the account. Failures made
//! elsewhere (a guesser spread over many addresses) then lock out only clients the account does
//! not know, never the owner's own browsers; a guesser who steals such a cookie gets the same
//! few tries per window, counted against the cookie.
//!
//! The cookie holds up to `MAX_ACCOUNTS` entries `user_id.nonce.issued_at.mac` joined by `~`, the
//! most recent first; `mac` is HMAC-SHA256 under a key the database keeps. An entry is trusted for
//! `KNOWN_BROWSER_TTL` after its log-in and only while the password has not changed since: after a
//! password change or reset, every browser, an intruder's included, is a stranger until it logs in
//! with the new password.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::RandomId;
use crate::store::users::User;

/// Accounts one browser is remembered for; a shared computer's oldest entries drop off.
const MAX_ACCOUNTS: usize = 4;

pub struct KnownBrowsers {
    key: Vec<u8>,
    ttl: Duration,
    secure: bool,
}

/// One remembered log-in, parsed from the cookie.
struct Entry<'a> {
    user_id: &'a str,
    nonce: &'a str,
    issued_at: i64,
    raw: &'a str,
}

impl KnownBrowsers {
    pub fn new(key: Vec<u8>, ttl: Duration, secure: bool) -> Self {
        Self { key, ttl, secure }
    }

    /// The cookie's name (`__Host-` when cookies are `Secure`, so no subdomain can set it).
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-revocable-known-browser"
        } else {
            "revocable_known_browser"
        }
    }

    fn mac(&self, user_id: &str, nonce: &str, issued_at: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(format!("known-browser|{user_id}|{nonce}|{issued_at}").as_bytes());
        mac
    }

    fn entries<'a>(&self, cookie: &'a str) -> Vec<Entry<'a>> {
        cookie
            .split('~')
            .take(MAX_ACCOUNTS)
            .filter_map(|raw| {
                let mut parts = raw.split('.');
                let (user_id, nonce, issued_at, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() {
                    return None;
                }
                Some((
                    Entry {
                        user_id,
                        nonce,
                        issued_at: issued_at.parse().ok()?,
                        raw,
                    },
                    mac,
                ))
            })
            .filter(|(entry, mac)| {
                let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
                    return false;
                };
                // `verify_slice` compares in constant time.
                self.mac(entry.user_id, entry.nonce, entry.issued_at)
                    .verify_slice(&mac)
                    .is_ok()
            })
            .map(|(entry, _)| entry)
            .collect()
    }

    /// The nonce of this browser's entry for `user`, when the cookie holds a genuine, unexpired one
    /// issued since the password last changed; attempts are then counted against it.
    pub fn recognise(&self, cookie: Option<&str>, user: &User, now: i64) -> Option<String> {
        let ttl = self.ttl.as_millis() as i64;
        self.entries(cookie?)
            .into_iter()
            .find(|entry| {
                entry.user_id == user.id
                    && entry.issued_at >= user.password_changed_at
                    && now - entry.issued_at <= ttl
                    && entry.issued_at <= now
            })
            .map(|entry| entry.nonce.to_owned())
    }

    /// The device cookie this request carries, if any.
    pub fn presented(&self, request: &actix_web::HttpRequest) -> Option<String> {
        request
            .cookie(self.cookie_name())
            .map(|cookie| cookie.value().to_owned())
    }

    /// Adds to `response` the cookie `remember` makes for a log-in to `user` at `now` (unix ms).
    pub fn remember_on(
        &self,
        response: &mut actix_web::HttpResponse,
        presented: Option<&str>,
        user: &User,
        now: i64,
    ) -> Result<(), crate::error::ApiError> {
        response
            .add_cookie(&self.remember(presented, user, now))
            .map_err(|error| crate::error::ApiError::Internal(anyhow::anyhow!("{error}")))
    }

    /// The cookie to send after a log-in to `user`: a new entry for it first, then the browser's
    /// other genuine entries for other accounts.
    pub fn remember(&self, cookie: Option<&str>, user: &User, now: i64) -> actix_web::cookie::Cookie<'static> {
        let nonce = RandomId::generate();
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&user.id, &nonce, now).finalize().into_bytes());
        let mut value = format!("{}.{nonce}.{now}.{mac}", user.id);
        for entry in cookie
            .map(|cookie| self.entries(cookie))
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| entry.user_id != user.id)
            .take(MAX_ACCOUNTS - 1)
        {
            value.push('~');
            value.push_str(entry.raw);
        }
        actix_web::cookie::Cookie::build(self.cookie_name(), value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(actix_web::cookie::SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                self.ttl.as_secs().min(i64::MAX as u64) as i64,
            ))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::KnownBrowsers;
    use crate::store::users::User;

    fn user(id: &str, password_changed_at: i64) -> User {
        User {
            id: id.to_owned(),
            email: format!("{id}@example.com"),
            password_hash: String::new(),
            token_version: 0,
            created_at: 0,
            password_changed_at,
            locked_at: None,
            email_verified_at: None,
            password_reset_required_at: None,
        }
    }

    fn browsers() -> KnownBrowsers {
        KnownBrowsers::new(
            b"a key for the tests of known browsers".to_vec(),
            Duration::from_secs(3600),
            false,
        )
    }

    #[test]
    fn a_remembered_browser_is_recognised_for_that_account_only() {
        let browsers = browsers();
        let ann = user("ann", 0);
        let cookie = browsers.remember(None, &ann, 1_000);
        assert!(browsers.recognise(Some(cookie.value()), &ann, 2_000).is_some());
        assert!(
            browsers
                .recognise(Some(cookie.value()), &user("bob", 0), 2_000)
                .is_none()
        );
    }

    #[test]
    fn a_forged_or_altered_entry_is_not_recognised() {
        let browsers = browsers();
        let ann = user("ann", 0);
        let cookie = browsers.remember(None, &ann, 1_000);
        let altered = cookie.value().replacen(".1000.", ".1001.", 1);
        assert!(browsers.recognise(Some(&altered), &ann, 2_000).is_none());
        let other_key = KnownBrowsers::new(b"another key".to_vec(), Duration::from_secs(3600), false);
        let forged = other_key.remember(None, &ann, 1_000);
        assert!(browsers.recognise(Some(forged.value()), &ann, 2_000).is_none());
        assert!(
            browsers
                .recognise(Some("ann.nonce.1000.bm90IGEgbWFj"), &ann, 2_000)
                .is_none()
        );
    }

    #[test]
    fn a_password_change_or_the_time_limit_ends_the_trust() {
        let browsers = browsers();
        let ann = user("ann", 0);
        let cookie = browsers.remember(None, &ann, 1_000);
        assert!(
            browsers
                .recognise(Some(cookie.value()), &user("ann", 1_500), 2_000)
                .is_none()
        );
        assert!(
            browsers
                .recognise(Some(cookie.value()), &ann, 1_000 + 3_600_001)
                .is_none()
        );
    }

    #[test]
    fn a_browser_remembers_a_few_accounts_newest_first() {
        let browsers = browsers();
        let mut value: Option<String> = None;
        for (index, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            value = Some(
                browsers
                    .remember(value.as_deref(), &user(id, 0), index as i64)
                    .value()
                    .to_owned(),
            );
        }
        let value = value.unwrap_or_default();
        assert!(browsers.recognise(Some(&value), &user("e", 0), 10).is_some());
        assert!(browsers.recognise(Some(&value), &user("b", 0), 10).is_some());
        assert!(browsers.recognise(Some(&value), &user("a", 0), 10).is_none());
    }
}
