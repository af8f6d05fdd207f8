//! Imports into SQLite: one transaction on a connection of its own, so an
//! import either lands whole or leaves nothing (SQLite rolls back what a
//! closed connection left uncommitted). A large import drops the history
//! indexes first and builds each once at the end from sorted rows, which
//! costs a fraction of keeping seven indexes up to date row by row; other
//! connections meanwhile read the database as it was before the import.

use std::time::Instant;

use async_trait::async_trait;
use sqlx::{Connection, Row, Sqlite, SqliteConnection};

use super::history_sql;
use super::sqlite::{find_site_on, insert_rows, insert_site_on};
use super::tally::{Counted, Tally};
use super::{AuditEntry, HistoryImport, NewSite, StoreError, StoreResult};
use crate::domain::history::NewLicenseRecord;
use crate::domain::site::Site;

/// Imports expected to bring fewer records than this keep the indexes.
const REBUILD_FROM: u64 = 100_000;

/// Page cache of the import's connection, in KiB: enough that building an
/// index of tens of millions of rows sorts mostly in memory.
const IMPORT_CACHE_KIB: i64 = 256 * 1024;

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::Unexpected(error.into())
}

/// An import holding SQLite's write lock from begin to commit.
pub struct SqliteImport {
    connection: SqliteConnection,
    /// The statements that recreate the indexes dropped for this import.
    dropped_indexes: Vec<String>,
    tally: Tally,
    stored: u64,
    begun: Instant,
}

impl SqliteImport {
    /// Begins the transaction on `connection`, which this import closes
    /// when done. Drops the history indexes when `expected_records` is
    /// large, both absolutely and next to the records already stored,
    /// since rebuilding them costs as much as the whole history.
    pub async fn begin(
        mut connection: SqliteConnection,
        expected_records: u64,
    ) -> Result<Self, sqlx::Error> {
        // Helper threads sort for CREATE INDEX while the main one merges.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        sqlx::query(&format!(
            "PRAGMA cache_size = -{IMPORT_CACHE_KIB}; PRAGMA threads = {threads}"
        ))
        .execute(&mut connection)
        .await?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut connection)
            .await?;
        let stored: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM license_records")
            .fetch_one(&mut connection)
            .await?;
        let mut dropped_indexes = Vec::new();
        if expected_records >= REBUILD_FROM && expected_records >= stored as u64 / 2 {
            let indexes = sqlx::query(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = 'license_records' AND sql IS NOT NULL",
            )
            .fetch_all(&mut connection)
            .await?;
            for index in indexes {
                let name: String = index.try_get("name")?;
                sqlx::query(&format!("DROP INDEX \"{name}\""))
                    .execute(&mut connection)
                    .await?;
                dropped_indexes.push(index.try_get("sql")?);
            }
        }
        Ok(Self {
            connection,
            dropped_indexes,
            tally: Tally::default(),
            stored: 0,
            begun: Instant::now(),
        })
    }
}

#[async_trait]
impl HistoryImport for SqliteImport {
    async fn find_site(&mut self, site_id: &str) -> StoreResult<Option<Site>> {
        find_site_on(&mut self.connection, site_id).await
    }

    async fn insert_site(&mut self, site: &NewSite, event: &str) -> StoreResult<Site> {
        let entry = AuditEntry {
            description: event,
            access_key: None,
            at: site.created_at,
        };
        insert_site_on(&mut self.connection, site, &entry).await
    }

    async fn add(&mut self, records: Vec<NewLicenseRecord>) -> StoreResult<()> {
        insert_rows(&mut self.connection, &records)
            .await
            .map_err(unexpected)?;
        for record in &records {
            self.tally.add(Counted::from(record), 1);
        }
        self.stored += records.len() as u64;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<u64> {
        let Self {
            mut connection,
            dropped_indexes,
            tally,
            stored,
            begun,
        } = *self;
        tracing::info!(
            records = stored,
            seconds = begun.elapsed().as_secs_f64(),
            "history records inserted"
        );
        let started = Instant::now();
        for index in &dropped_indexes {
            sqlx::query(index)
                .execute(&mut connection)
                .await
                .map_err(unexpected)?;
        }
        tracing::info!(
            indexes = dropped_indexes.len(),
            seconds = started.elapsed().as_secs_f64(),
            "history indexes built"
        );
        let changes = tally.into_changes();
        for chunk in changes.chunks(history_sql::COUNT_CHANGES_PER_STATEMENT) {
            history_sql::add_counts::<Sqlite>(chunk)
                .build()
                .execute(&mut connection)
                .await
                .map_err(unexpected)?;
        }
        tracing::info!(
            counters = changes.len(),
            seconds = started.elapsed().as_secs_f64(),
            "history counters written"
        );
        sqlx::query("COMMIT")
            .execute(&mut connection)
            .await
            .map_err(unexpected)?;
        connection.close().await.map_err(unexpected)?;
        tracing::info!(
            records = stored,
            seconds = started.elapsed().as_secs_f64(),
            "history import committed"
        );
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device::Platform;
    use crate::domain::history::{HistoryFilter, HistoryWindow};
    use crate::store::{SqliteStore, Store};

    async fn temporary_store() -> (tempfile::TempDir, String, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("import.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, url, store)
    }

    /// The name and definition of every index on the history table.
    async fn history_indexes(url: &str) -> Vec<(String, String)> {
        let mut connection = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'index' AND tbl_name = 'license_records' AND sql IS NOT NULL
             ORDER BY name",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap()
    }

    fn site(site_id: &str) -> NewSite {
        NewSite {
            site_id: site_id.to_owned(),
            account_id: 1,
            name: "imported".to_owned(),
            policy_id: 0,
            kms_token_sealed: vec![1],
            fairplay_sealed: None,
            created_at: 0,
        }
    }

    fn record(site_pk: i64, i: i64) -> NewLicenseRecord {
        NewLicenseRecord {
            key: crate::domain::history::RecordKey::generate(),
            site_pk,
            content_id: format!("content-{}", i % 7),
            drm_type: None,
            user_id: "user".to_owned(),
            device_id: "device".to_owned(),
            device_model: "model".to_owned(),
            platform: Platform::Linux,
            created_at: i * 1_000_000,
            failure: None,
        }
    }

    #[tokio::test]
    async fn a_large_import_builds_every_index_again_before_it_commits() {
        let (_dir, url, store) = temporary_store().await;
        store.ensure_account("acme", 0).await.unwrap();
        let before = history_indexes(&url).await;

        let mut import = store.begin_import(REBUILD_FROM).await.unwrap();
        let created = import
            .insert_site(&site("drm-20261203000000-BULKS"), "imported")
            .await
            .unwrap();
        import
            .add((0..3000).map(|i| record(created.pk, i)).collect())
            .await
            .unwrap();
        let during = history_indexes(&url).await;
        let stored = import.commit().await.unwrap();

        let (_, total) = store
            .search_history(
                &created,
                &HistoryFilter::default(),
                HistoryWindow {
                    after: None,
                    offset: 0,
                    limit: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(before.len(), 8);
        assert_eq!(
            during, before,
            "other connections see the indexes throughout"
        );
        assert_eq!(history_indexes(&url).await, before);
        assert_eq!((stored, total), (3000, 3000));
    }

    #[tokio::test]
    async fn an_import_dropped_before_its_commit_leaves_nothing_behind() {
        let (_dir, url, store) = temporary_store().await;
        store.ensure_account("acme", 0).await.unwrap();
        let before = history_indexes(&url).await;

        let mut import = store.begin_import(REBUILD_FROM).await.unwrap();
        let created = import
            .insert_site(&site("drm-20261203000000-GONE1"), "imported")
            .await
            .unwrap();
        import
            .add((0..100).map(|i| record(created.pk, i)).collect())
            .await
            .unwrap();
        drop(import);

        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        let records: i64 = sqlx::query_scalar("SELECT count(*) FROM license_records")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let counters: i64 = sqlx::query_scalar("SELECT count(*) FROM license_counts")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!((records, counters), (0, 0));
        assert!(store
            .find_site_of_any_account("drm-20261203000000-GONE1")
            .await
            .unwrap()
            .is_none());
        assert_eq!(history_indexes(&url).await, before);
    }
}
