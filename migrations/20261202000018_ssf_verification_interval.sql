-- When a receiver last asked a stream for a verification event (unix milliseconds): SSF 1.0
-- section 8.1.1's min_verification_interval is counted from it, by a conditional UPDATE, so that
-- several instances agree on it.
ALTER TABLE ssf_streams ADD COLUMN verification_requested_at BIGINT;
