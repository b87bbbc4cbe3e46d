//! SSF 1.0 section 7.1: the transmitter configuration metadata at
//! `/.well-known/ssf-configuration`, through which a receiver finds every other endpoint.

use serde::Serialize;

use crate::ssf::streams::{POLL, PUSH};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransmitterMetadata {
    pub spec_version: &'static str,
    /// The `iss` of every SET.
    pub issuer: String,
    /// Holds the RS256 key that signs SETs, beside the Ed25519 keys of access tokens.
    pub jwks_uri: String,
    pub delivery_methods_supported: Vec<&'static str>,
    pub configuration_endpoint: String,
    pub status_endpoint: String,
    pub add_subject_endpoint: String,
    pub remove_subject_endpoint: String,
    pub verification_endpoint: String,
    /// OAuth 2.0 client credentials: a token from `/oauth/token` with scope `ssf.manage`.
    pub authorization_schemes: Vec<serde_json::Value>,
    /// `ALL`: a new stream carries every user's events until subjects are removed.
    pub default_subjects: &'static str,
}

pub fn document(issuer: &str, origin: &str) -> TransmitterMetadata {
    let at = |path: &str| format!("{origin}{path}");
    TransmitterMetadata {
        spec_version: "1_0",
        issuer: issuer.to_owned(),
        jwks_uri: at("/.well-known/jwks.json"),
        delivery_methods_supported: vec![PUSH, POLL],
        configuration_endpoint: at("/ssf/streams"),
        status_endpoint: at("/ssf/status"),
        add_subject_endpoint: at("/ssf/subjects/add"),
        remove_subject_endpoint: at("/ssf/subjects/remove"),
        verification_endpoint: at("/ssf/verify"),
        authorization_schemes: vec![serde_json::json!({ "spec_urn": "urn:ietf:rfc:6749" })],
        default_subjects: "ALL",
    }
}
