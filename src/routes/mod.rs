//! HTTP handlers: `api` speaks JSON, `web` renders pages. The route table is in `startup`.

pub mod api;
pub mod browser_session;
pub mod oauth;
pub mod ssf;
pub mod web;
