//! What other services use to trust revocable's tokens and still honour their revocation: client
//! credentials and a client's own token, RFC 8414 metadata, RFC 7662 introspection, RFC 7009
//! revocation, and the revocation feed.
//!
//! Nothing here knows about HTTP; `routes::oauth` turns requests into these calls.

pub mod clients;
pub mod feed;
pub mod introspection;
pub mod metadata;
pub mod token;
