-- Custom policies of an account. The built-in `Basic` policy 0 lives in
-- code, not here, so that every account sees the same read-only one; ids
-- of custom policies therefore start at 1. Deleted policies keep their row
-- (status `DELETED`), so ids are never reused.
-- `drm_config` holds `drmPolicyConfig` as JSON text: it is always read and
-- written whole and never searched, so neither columns per field nor JSONB
-- would earn their keep.
CREATE TABLE policies (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id        BIGINT  NOT NULL REFERENCES accounts (id),
    name              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    persistent        BOOLEAN NOT NULL,
    rental_duration   BIGINT  NOT NULL,
    playback_duration BIGINT  NOT NULL,
    drm_config        TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    deleted_at        BIGINT
);
CREATE INDEX policies_by_account ON policies (account_id, created_at, id);

-- The policy log. `account_id` is kept on each entry so that the log of
-- all the account's policies is one index range.
CREATE TABLE policy_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    policy_id   BIGINT NOT NULL REFERENCES policies (id),
    access_key  TEXT,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX policy_events_by_account ON policy_events (account_id, created_at, id);
CREATE INDEX policy_events_by_policy  ON policy_events (policy_id, created_at, id);

-- Who changed a site: the access key that signed the request. NULL for
-- entries written before this column existed and for operator tools
-- (history import), which act without a key.
ALTER TABLE site_events ADD COLUMN access_key TEXT;
