-- OpenID Shared Signals streams: each belongs to the client (another service) that created it,
-- reads the revocation log from `position` on, and holds its Security Event Tokens in
-- ssf_events until they are delivered (push) or acknowledged (poll).
-- Portable between SQLite and PostgreSQL: TEXT ids, BIGINT unix milliseconds and 0/1 flags.
CREATE TABLE ssf_streams (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    -- the receiver-supplied configuration, as JSON: events_requested, delivery, description
    configuration TEXT NOT NULL,
    -- enabled | paused | disabled, and the reason given with the last change
    status TEXT NOT NULL,
    status_reason TEXT,
    -- the revocation log's seq up to which this stream has taken its events
    position BIGINT NOT NULL,
    -- the number the stream's next event gets: events are delivered in this order
    next_event BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ssf_streams_client ON ssf_streams (client_id);

-- Subjects added to (included) or removed from (not included) a stream; a stream's default is
-- every subject.
CREATE TABLE ssf_stream_subjects (
    stream_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    included BIGINT NOT NULL,
    PRIMARY KEY (stream_id, user_id)
);

-- The signed SETs a stream has not delivered yet. Push rows are claimed by a conditional UPDATE
-- of next_attempt_at, so several instances never send one row at the same time.
CREATE TABLE ssf_events (
    stream_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    jti TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (stream_id, number)
);
CREATE UNIQUE INDEX ssf_events_jti ON ssf_events (stream_id, jti);
CREATE INDEX ssf_events_due ON ssf_events (next_attempt_at);
