//! RFC 8414 authorization server metadata: where another service finds the token, introspection
//! and revocation endpoints, the JWKS, and what each accepts.
//!
//! Endpoint URLs are built on the public origin (`PUBLIC_URL`); `issuer` is the `iss` of every
//! token (RFC 9068), the same origin unless `JWT_ISSUER` names another.

use serde::Serialize;

use crate::domain::Scope;

/// How clients authenticate at every endpoint that takes client credentials.
pub const CLIENT_AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metadata {
    /// The `iss` of every access token.
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    /// Empty: there is no authorization endpoint (people log in on revocable's own pages).
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The algorithm access tokens are signed with (`EdDSA`, verifiable with `jwks_uri`; or
    /// `HS256`, whose secret is never published: such tokens are checked by introspection).
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    pub service_documentation: String,
}

/// The document for a deployment reached at `origin` whose tokens carry `issuer` and are signed
/// with `algorithm`.
pub fn document(issuer: &str, origin: &str, algorithm: &'static str) -> Metadata {
    let at = |path: &str| format!("{origin}{path}");
    Metadata {
        issuer: issuer.to_owned(),
        token_endpoint: at("/oauth/token"),
        jwks_uri: at("/.well-known/jwks.json"),
        introspection_endpoint: at("/oauth/introspect"),
        revocation_endpoint: at("/oauth/revoke"),
        scopes_supported: Scope::ALL.iter().map(|scope| scope.as_str()).collect(),
        response_types_supported: Vec::new(),
        grant_types_supported: vec![crate::oauth::token::CLIENT_CREDENTIALS],
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        access_token_signing_alg_values_supported: vec![algorithm],
        service_documentation: at("/api-docs/"),
    }
}
