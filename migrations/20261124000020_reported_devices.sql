-- A browser/OS and address pair the account's owner reported as "this wasn't me": a later log-in
-- from it is flagged again, more loudly, until the owner says "it was me".
CREATE TABLE reported_devices (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    ip TEXT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, device, ip)
);
