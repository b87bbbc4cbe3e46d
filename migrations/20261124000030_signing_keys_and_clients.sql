-- Ed25519 signing keys, several at once so that a rotation logs nobody out, and the clients
-- (other services) that may introspect and revoke tokens and read the revocation feed.
-- Portable between SQLite and PostgreSQL: TEXT ids, BIGINT unix milliseconds.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    -- base64url Ed25519 seed (32 bytes); never leaves the server
    private_key TEXT NOT NULL,
    -- base64url Ed25519 public key, as published in the JWKS
    public_key TEXT NOT NULL,
    -- published in the JWKS from creation; signs from signs_from, once every JWKS cache has it
    created_at BIGINT NOT NULL,
    signs_from BIGINT NOT NULL
);
CREATE INDEX signing_keys_signs_from ON signing_keys (signs_from);

CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- base64url SHA-256 of the 256-bit random secret
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
