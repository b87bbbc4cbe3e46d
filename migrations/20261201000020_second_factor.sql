-- The second factor: a TOTP authenticator per account, its recovery codes, and the pending
-- second step of a log-in whose password was right.
-- Portable between SQLite and PostgreSQL: TEXT ids, BIGINT unix milliseconds.

-- One authenticator per account. `sealed_secret` is the TOTP secret encrypted with AES-256-GCM
-- under a server key (never the secret itself); `confirmed_at` is NULL while enrolment waits for
-- a first right code. `last_used_step` is the newest 30-second step a code was accepted for: a
-- code of that step or an older one is a replay.
CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_step BIGINT NOT NULL DEFAULT 0
);

-- Single-use recovery codes, stored only as SHA-256 hashes; `used_at` marks one spent.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

-- A log-in waiting for its second factor: the `mfa_token` of `/api/token` (or the browser's
-- pending step), stored as its SHA-256 hash. Short-lived, spent by a right code or by too many
-- wrong ones.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    spent_at BIGINT
);

CREATE INDEX mfa_challenges_by_user ON mfa_challenges (user_id);
