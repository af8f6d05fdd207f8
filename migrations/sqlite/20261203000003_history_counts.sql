-- Exact history totals without counting records (see src/store/tally.rs):
-- one counter per site, facet (`all`, `drm:<code>`, `model:<name>`), span
-- (hour, day or 32-day block, in ms), bucket start and status, kept in the
-- transaction that writes or deletes the records it counts.
CREATE TABLE license_counts (
    site_pk INTEGER NOT NULL,
    facet   TEXT    NOT NULL,
    span    INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    status  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (site_pk, facet, span, bucket, status)
) WITHOUT ROWID;

-- Counters for the records already stored.
INSERT INTO license_counts (site_pk, facet, span, bucket, status, n)
SELECT site_pk, facet, span, created_at - created_at % span, status, COUNT(*)
FROM (
    SELECT site_pk, 'all' AS facet, created_at, status FROM license_records
    UNION ALL
    SELECT site_pk, 'drm:' || drm_type, created_at, status FROM license_records WHERE drm_type IS NOT NULL
    UNION ALL
    SELECT site_pk, 'model:' || device_model, created_at, status FROM license_records
) AS facets
CROSS JOIN (SELECT 3600000 AS span UNION ALL SELECT 86400000 UNION ALL SELECT 2764800000) AS spans
GROUP BY site_pk, facet, span, created_at - created_at % span, status;
