//! Who is calling: passwords, tokens, cookie sessions, CSRF, and the five checking strategies.

pub mod client;
pub mod csrf;
pub mod jwt;
pub mod keys;
pub mod login;
pub mod password;
pub mod rate_limit;
pub mod session_store;
pub mod strategy;
pub mod throttle;
