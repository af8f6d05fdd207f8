-- Small named values about the database itself. `master_key_check` holds a
-- value sealed with the master key, so that starting with another key
-- fails at once instead of on the first request that opens a secret.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
