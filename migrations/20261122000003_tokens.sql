-- Refresh tokens (stored as SHA-256 hashes), one family per login session.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Every access token issued, until it expires, so revoking a device can denylist them.
CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_session_id ON access_tokens (session_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- Revoked access tokens until they expire: the durable copy of the denylist.
CREATE TABLE denylist (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX denylist_expires_at ON denylist (expires_at);
