-- An operator's lock (`revocable users lock EMAIL`): while set, the account's log-ins are refused.
ALTER TABLE users ADD COLUMN locked_at BIGINT;

-- Failed password attempts per key, for the per-account limit: one row per account (the SHA-256 of
-- the normalized email, known or not) or per trusted device cookie. An attempt is counted before
-- its password is checked, by one conditional UPDATE of this row, so however many arrive at once
-- no more than the limit are ever checked in a window; a right password deletes the row.
CREATE TABLE login_attempts (
    attempt_key TEXT PRIMARY KEY,
    window_started_at BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

-- Replaced by login_attempts, whose count is atomic.
DROP TABLE login_failures;
