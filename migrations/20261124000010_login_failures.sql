-- Failed password log-ins per account, for the per-account limit; every instance shares the
-- database, so they all see the same count. `account_key` is the SHA-256 of the normalized email, so
-- an unknown email is counted exactly like a known one and the limit reveals nothing.
CREATE TABLE login_failures (
    account_key TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account_key, failed_at);
