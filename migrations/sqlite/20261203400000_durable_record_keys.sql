-- Each record carries a key chosen when it was made (src/domain/history.rs,
-- RecordKey), so that a batch written twice, as when the history spool is
-- replayed after a crash or an outage, stores each record once: inserts
-- skip a row whose key is already there. The index leads with the site and
-- time, like every other history index, so that keys of new records land
-- next to each other. Records written before this migration keep NULL: they
-- are committed already and are never written again, and NULLs never
-- collide in a unique index.
ALTER TABLE license_records ADD COLUMN record_key BLOB;
CREATE UNIQUE INDEX records_by_key ON license_records (site_pk, created_at, record_key);
