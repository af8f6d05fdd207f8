-- Console sessions, kept in the database so that any node serving it
-- knows every session and a sign-out on one node ends it on all. `digest`
-- is the SHA-256 of the id in the browser's cookie; the id itself is never
-- stored. Ended sessions are removed at the next sign-in.
CREATE TABLE console_sessions (
    digest     BYTEA  PRIMARY KEY,
    access_key TEXT   NOT NULL REFERENCES access_keys (access_key),
    csrf       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
