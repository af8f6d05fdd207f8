-- Each record carries a key chosen when it was made (src/domain/history.rs,
-- RecordKey), so that a batch written twice, as when the history spool is
-- replayed after a crash or an outage, stores each record once: inserts
-- skip a row whose key is already there. A unique index of a partitioned
-- table must hold the partition key, created_at; a replayed record keeps
-- its site and time, so the key still decides. Records written before this
-- migration keep NULL: they are committed already and are never written
-- again, and NULLs never collide in a unique index.
ALTER TABLE license_records ADD COLUMN record_key BYTEA;
CREATE UNIQUE INDEX records_by_key ON license_records (site_pk, created_at, record_key);
