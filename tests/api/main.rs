//! Integration tests: the real application on port 0, spoken to over HTTP. The same suite runs
//! on the embedded default (SQLite, in-process stores) and, with `TEST_DATABASE_URL` and
//! `TEST_REDIS_URL` set, on PostgreSQL and Redis.

mod helpers;
mod mailbox;

mod account_protection;
mod accounts;
mod cli;
mod compare;
mod cookie_sessions;
mod csrf;
mod dashboard;
mod email;
mod faults;
mod fuzz;
mod hardening;
mod instances;
mod oauth;
mod openapi;
mod operations;
mod operator;
mod pages;
mod rate_limits;
mod redis_outage;
mod refresh_tokens;
mod revocation;
mod revocation_races;
mod second_factor;
mod ssf;
mod ssf_events;
mod ssf_poll;
mod ssf_push;
mod standards;
mod strategies;
mod token_validation;
mod verifier;
