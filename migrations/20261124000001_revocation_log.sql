-- Every change to whether a credential is valid, in commit order. Each instance's in-process
-- cache applies these entries (pushed on commit, caught up by `seq` on (re)connect and on a
-- timer); other services read them through the revocation feed.
--
-- `seq` is taken from the single `revocation_counter` row inside the revoking transaction: the
-- row lock makes revocations commit in `seq` order with no gaps, so "everything after seq N" is
-- a complete answer.
CREATE TABLE revocation_log (
    seq BIGINT PRIMARY KEY,
    -- session_revoked | version_changed | user_deleted | jti_denylisted | web_state_changed
    kind TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    -- jti_denylisted: the token's id; web_state_changed: SHA-256 of the cookie session key
    subject TEXT,
    -- version_changed: the user's new token_version
    token_version BIGINT,
    -- jti_denylisted: when the token expires (after which the entry is moot)
    expires_at BIGINT,
    -- session_revoked: the end reason
    reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_created_at ON revocation_log (created_at);

CREATE TABLE revocation_counter (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO revocation_counter (id, seq) VALUES (1, 0);
