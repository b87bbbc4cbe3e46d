-- Email: whether an account's address is verified, whether its password must be reset through
-- email before a password log-in works again, the single-use links that messages carry, and the
-- outbox of messages still to send. Portable between SQLite and PostgreSQL.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
-- Set by "this wasn't me" from a new-sign-in email; cleared by a password reset.
ALTER TABLE users ADD COLUMN password_reset_required_at BIGINT;

-- A link sent by email: only the SHA-256 of its token is kept. `purpose` is `verify_email`,
-- `password_reset` or `not_me`; a `not_me` link names the login session it reports. A used link
-- keeps its row (with `used_at`) until it expires, so that a second click can be told "used".
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    login_session_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Messages waiting to be sent. Their bodies hold link tokens, that is secrets: a row is deleted
-- as soon as its message is sent, and a message given up on keeps only its recipient, subject
-- and last error (the bodies are emptied).
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When the next attempt is due; a claim moves it past the claim's lease.
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    given_up_at BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (given_up_at, next_attempt_at);
