-- Custom policies of an account. The built-in `Basic` policy 0 lives in
-- code, not here, so that every account sees the same read-only one; ids
-- of custom policies therefore start at 1. Deleted policies keep their row
-- (status `DELETED`), so ids are never reused.
-- `drm_config` holds `drmPolicyConfig` as JSON: it is always read and
-- written whole and never searched, so columns per field would only add
-- a migration for every new DRM setting.
CREATE TABLE policies (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts (id),
    name              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    persistent        INTEGER NOT NULL,
    rental_duration   INTEGER NOT NULL,
    playback_duration INTEGER NOT NULL,
    drm_config        TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE INDEX policies_by_account ON policies (account_id, created_at);

-- The policy log. `account_id` is kept on each entry so that the log of
-- all the account's policies is one index range.
CREATE TABLE policy_events (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    policy_id   INTEGER NOT NULL REFERENCES policies (id),
    access_key  TEXT,
    description TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX policy_events_by_account ON policy_events (account_id, created_at);
CREATE INDEX policy_events_by_policy  ON policy_events (policy_id, created_at);

-- Who changed a site: the access key that signed the request. NULL for
-- entries written before this column existed and for operator tools
-- (history import), which act without a key.
ALTER TABLE site_events ADD COLUMN access_key TEXT;
