-- Accounts own access keys and sites; every API request is scoped to one.
CREATE TABLE accounts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Secrets are sealed with the master key (AES-256-GCM, nonce first): the
-- verifier needs the plaintext for HMAC, so they cannot be hashed.
CREATE TABLE access_keys (
    access_key    TEXT    PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id),
    secret_sealed BYTEA   NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL
);

-- `pk` is internal and small so that history rows stay narrow; `site_id`
-- is the public id.
CREATE TABLE sites (
    pk               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id          TEXT   NOT NULL UNIQUE,
    account_id       BIGINT NOT NULL REFERENCES accounts (id),
    name             TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    policy_id        BIGINT NOT NULL,
    kms_token_sealed BYTEA  NOT NULL,
    fairplay_sealed  BYTEA,
    created_at       BIGINT NOT NULL
);
CREATE INDEX sites_by_account ON sites (account_id, created_at);

CREATE TABLE site_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_pk     BIGINT NOT NULL REFERENCES sites (pk),
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX site_events_by_site ON site_events (site_pk, created_at, id);

CREATE TABLE content_keys (
    site_pk    BIGINT NOT NULL REFERENCES sites (pk),
    content_id TEXT   NOT NULL,
    kid        BYTEA  NOT NULL,
    key_sealed BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (site_pk, content_id, kid)
);

-- The license history. Unlike SQLite's rowid, `id` is not implied in
-- PostgreSQL indexes, so every index ends in it: a backward scan of
-- (site_pk, <filter>, created_at, id) yields rows newest first with the id
-- as tie-breaker, which is the API's order.
-- status: 0 success, 1 fail. drm_type: 1 Widevine, 2 PlayReady,
-- 3 FairPlay, 4 ClearKey, NULL when the token named none valid.
CREATE TABLE license_records (
    id           BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_pk      BIGINT   NOT NULL,
    created_at   BIGINT   NOT NULL,
    status       SMALLINT NOT NULL,
    drm_type     SMALLINT,
    content_id   TEXT     NOT NULL,
    user_id      TEXT     NOT NULL,
    device_id    TEXT     NOT NULL,
    device_model TEXT     NOT NULL,
    platform     TEXT     NOT NULL,
    error_code   TEXT,
    error_name   TEXT
);
CREATE INDEX records_by_time    ON license_records (site_pk, created_at, id);
CREATE INDEX records_by_status  ON license_records (site_pk, status, created_at, id);
CREATE INDEX records_by_drm     ON license_records (site_pk, drm_type, created_at, id);
CREATE INDEX records_by_content ON license_records (site_pk, content_id, created_at, id);
CREATE INDEX records_by_user    ON license_records (site_pk, user_id, created_at, id);
CREATE INDEX records_by_device  ON license_records (site_pk, device_id, created_at, id);
CREATE INDEX records_by_model   ON license_records (site_pk, device_model, created_at, id);
