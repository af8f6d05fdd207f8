-- The license history becomes a table partitioned by month of created_at
-- (UTC), so that retention drops whole months instead of deleting rows.
-- Partitions are named license_records_pYYYYMM and created by the service
-- before it writes a record into a month that has none.
ALTER TABLE license_records RENAME TO license_records_unpartitioned;
DROP INDEX records_by_time, records_by_status, records_by_drm, records_by_content,
    records_by_user, records_by_device, records_by_model;

CREATE SEQUENCE license_record_ids;
SELECT setval('license_record_ids', COALESCE((SELECT MAX(id) FROM license_records_unpartitioned), 0) + 1, false);

-- The primary key is also the index for unfiltered history reads: a
-- backward scan of (site_pk, created_at, id) is newest first with the id as
-- tie-breaker, the API's order. Every other index ends the same way.
CREATE TABLE license_records (
    id           BIGINT   NOT NULL DEFAULT nextval('license_record_ids'),
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
    error_name   TEXT,
    PRIMARY KEY (site_pk, created_at, id)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE license_record_ids OWNED BY license_records.id;
CREATE INDEX records_by_status  ON license_records (site_pk, status, created_at, id);
CREATE INDEX records_by_drm     ON license_records (site_pk, drm_type, created_at, id);
CREATE INDEX records_by_content ON license_records (site_pk, content_id, created_at, id);
CREATE INDEX records_by_user    ON license_records (site_pk, user_id, created_at, id);
CREATE INDEX records_by_device  ON license_records (site_pk, device_id, created_at, id);
CREATE INDEX records_by_model   ON license_records (site_pk, device_model, created_at, id);

DO $$
DECLARE
    month timestamp;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC')
        FROM license_records_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF license_records FOR VALUES FROM (%s) TO (%s)',
            to_char(month, '"license_records_p"YYYYMM'),
            (EXTRACT(EPOCH FROM month AT TIME ZONE 'UTC') * 1000)::bigint,
            (EXTRACT(EPOCH FROM (month + interval '1 month') AT TIME ZONE 'UTC') * 1000)::bigint);
    END LOOP;
END $$;

INSERT INTO license_records (id, site_pk, created_at, status, drm_type, content_id, user_id,
    device_id, device_model, platform, error_code, error_name)
SELECT id, site_pk, created_at, status, drm_type, content_id, user_id,
    device_id, device_model, platform, error_code, error_name
FROM license_records_unpartitioned;
DROP TABLE license_records_unpartitioned;

-- Exact history totals without counting records (see src/store/tally.rs):
-- one counter per site, facet (`all`, `drm:<code>`, `model:<name>`), span
-- (hour, day or 32-day block, in ms), bucket start and status, kept in the
-- transaction that writes or deletes the records it counts.
CREATE TABLE license_counts (
    site_pk BIGINT NOT NULL,
    facet   TEXT   NOT NULL,
    span    BIGINT NOT NULL,
    bucket  BIGINT NOT NULL,
    status  BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (site_pk, facet, span, bucket, status)
);

INSERT INTO license_counts (site_pk, facet, span, bucket, status, n)
SELECT site_pk, facet, span, created_at - created_at % span, status, COUNT(*)
FROM (
    SELECT site_pk, 'all' AS facet, created_at, status FROM license_records
    UNION ALL
    SELECT site_pk, 'drm:' || drm_type, created_at, status FROM license_records WHERE drm_type IS NOT NULL
    UNION ALL
    SELECT site_pk, 'model:' || device_model, created_at, status FROM license_records
) AS facets
CROSS JOIN (VALUES (3600000::bigint), (86400000::bigint), (2764800000::bigint)) AS spans (span)
GROUP BY site_pk, facet, span, created_at - created_at % span, status;
