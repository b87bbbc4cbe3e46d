-- The scopes a client may ask for in the client-credentials grant, space-separated; clients that
-- existed before get every scope defined then.
ALTER TABLE oauth_clients ADD COLUMN scopes TEXT NOT NULL DEFAULT 'ssf.manage ssf.read introspect revoke';
