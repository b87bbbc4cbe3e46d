-- Who spent each refresh token: SHA-256 (base64url) of the client address and user agent of the
-- refresh that rotated it. A spent token presented again within the reuse grace window is only
-- a racing tab when it comes from that same client; from any other client it is theft.
ALTER TABLE refresh_tokens ADD COLUMN used_by TEXT;
