-- A login session is one device: created by every successful login, cookie or token.
CREATE TABLE login_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- absolute limit (SESSION_TTL); no refresh extends it
    expires_at BIGINT NOT NULL,
    -- idle limit: SESSION_IDLE_TTL after the last activity for cookies, REFRESH_TTL for tokens
    idle_expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoke_reason TEXT,
    revoked_by_session_id TEXT,
    rotation_count BIGINT NOT NULL DEFAULT 0,
    -- first log-in from this browser/OS and IP pair
    new_device BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_sessions_user_id ON login_sessions (user_id);

-- Server-side state of actix-session when no Redis is configured.
CREATE TABLE web_sessions (
    session_key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    login_session_id TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_login_session_id ON web_sessions (login_session_id);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);

-- What happened to an account, written by the code path that caused it.
CREATE TABLE security_events (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    session_id TEXT,
    other_session_id TEXT,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX security_events_user_id ON security_events (user_id, created_at);
