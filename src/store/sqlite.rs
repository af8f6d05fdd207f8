//! The SQLite store: one file in WAL mode with `synchronous=FULL`, so a
//! committed history record survives a crash of the process or machine.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::policies_sql::Sql;
use super::sessions_sql::SessionSql;
use super::sites_sql::SiteSql;
use super::sqlite_import::SqliteImport;
use super::sqlite_writer::RecordWriter;
use super::summary;
use super::tally::{self, Counted};
use super::{
    history_sql, status_from_code, AccessKeyRecord, AuditEntry, ConsoleSession, HistoryImport,
    NewSite, Store, StoreError, StoreResult, StoredContentKey,
};
use crate::domain::drm::DrmType;
use crate::domain::history::{
    FailReason, HistoryFilter, HistoryWindow, LicenseRecord, NewLicenseRecord,
};
use crate::domain::ids::Kid;
use crate::domain::params::{Page, TimeRange};
use crate::domain::policy::{Policy, PolicyEvent, PolicySettings};
use crate::domain::site::{Site, SiteEvent, SiteStatistics, SiteStatus};
use crate::domain::summary::{HistorySummary, Interval};

/// Store backed by a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Commits history records, on a connection of its own.
    records: RecordWriter,
}

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::from_driver(error)
}

fn conflict_or_unexpected(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match error.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unexpected(error),
    }
}

/// URL parameters under which SQLite would not write the file the history
/// is committed to, or would read it where the commit thread cannot follow.
const UNWRITABLE: [(&str, &str); 4] = [
    ("mode", "ro"),
    ("mode", "memory"),
    ("immutable", ""),
    ("vfs", ""),
];

/// Refuses a URL whose parameters make the database read-only, in memory,
/// immutable or on another VFS: the history must be committed to the file
/// the service reads.
fn refuse_unwritable(url: &str) -> anyhow::Result<()> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(());
    };
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let refused = UNWRITABLE
            .iter()
            .any(|(bad, bad_value)| name == *bad && (bad_value.is_empty() || value == *bad_value));
        if refused {
            anyhow::bail!(
                "database URL {url}: `{pair}` is not supported; the history needs a database file the service can write"
            );
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`,
    /// which must name a file the service can write.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        refuse_unwritable(url)?;
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("reading database URL {url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening {url}"))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .context("migrating the SQLite database")?;
        let records = RecordWriter::open(options.get_filename(), BUSY_TIMEOUT)
            .with_context(|| format!("opening {url} for history commits"))?;
        Ok(Self { pool, records })
    }
}

const SITE_COLUMNS: &str = "pk, site_id, account_id, name, status, policy_id, kms_token_sealed, fairplay_sealed, created_at";

fn site_from_row(row: &SqliteRow) -> Result<Site, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Site {
        pk: row.try_get("pk")?,
        site_id: row.try_get("site_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        status: SiteStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown site status {status}").into()))?,
        policy_id: row.try_get("policy_id")?,
        kms_token_sealed: row.try_get("kms_token_sealed")?,
        fairplay_sealed: row.try_get("fairplay_sealed")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Creates a site and its first log entry on `connection`, inside the
/// caller's transaction.
pub(super) async fn insert_site_on(
    connection: &mut SqliteConnection,
    site: &NewSite,
    entry: &AuditEntry<'_>,
) -> StoreResult<Site> {
    let row = sqlx::query(&format!(
        "INSERT INTO sites (site_id, account_id, name, status, policy_id, kms_token_sealed, fairplay_sealed, created_at)
         VALUES (?, ?, ?, 'READY', ?, ?, ?, ?) RETURNING {SITE_COLUMNS}"
    ))
    .bind(&site.site_id)
    .bind(site.account_id)
    .bind(&site.name)
    .bind(site.policy_id)
    .bind(&site.kms_token_sealed)
    .bind(&site.fairplay_sealed)
    .bind(site.created_at)
    .fetch_one(&mut *connection)
    .await
    .map_err(conflict_or_unexpected("site id"))?;
    let created = site_from_row(&row).map_err(unexpected)?;
    Sql::<Sqlite>::insert_site_event(connection, created.pk, entry).await?;
    Ok(created)
}

/// The site `site_id` of any account, read on `connection`.
pub(super) async fn find_site_on(
    connection: &mut SqliteConnection,
    site_id: &str,
) -> StoreResult<Option<Site>> {
    let row = sqlx::query(&format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE site_id = ?"
    ))
    .bind(site_id)
    .fetch_optional(connection)
    .await
    .map_err(unexpected)?;
    row.as_ref()
        .map(site_from_row)
        .transpose()
        .map_err(unexpected)
}

/// Records per insert statement: 12 bound values each stays within
/// SQLite's limit.
const INSERT_CHUNK: usize = 500;

/// The head of a history record insert, before its twelve values in the
/// order [`insert_statement`] binds them.
pub(super) const RECORDS_INSERT: &str =
    "INSERT INTO license_records (record_key, site_pk, created_at, status, drm_type, content_id,
     user_id, device_id, device_model, platform, error_code, error_name) ";

/// One multi-row insert of `records`, binding their text without copies.
fn insert_statement(records: &[NewLicenseRecord]) -> QueryBuilder<'_, Sqlite> {
    let mut insert = QueryBuilder::<Sqlite>::new(RECORDS_INSERT);
    insert.push_values(records, |mut row, record| {
        let failure = record.failure.as_ref();
        row.push_bind(record.key.as_bytes().as_slice())
            .push_bind(record.site_pk)
            .push_bind(record.created_at)
            .push_bind(i64::from(failure.is_some()))
            .push_bind(record.drm_type.map(DrmType::code))
            .push_bind(record.content_id.as_str())
            .push_bind(record.user_id.as_str())
            .push_bind(record.device_id.as_str())
            .push_bind(record.device_model.as_str())
            .push_bind(record.platform.name())
            .push_bind(failure.map(|failure| failure.code.as_str()))
            .push_bind(failure.map(|failure| failure.name.as_str()));
    });
    insert
}

/// Inserts `records` in order on `connection`, for an import whose keys
/// are all new.
pub(super) async fn insert_rows(
    connection: &mut SqliteConnection,
    records: &[NewLicenseRecord],
) -> Result<(), sqlx::Error> {
    for chunk in records.chunks(INSERT_CHUNK) {
        insert_statement(chunk)
            .build()
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

fn access_key_from_row(row: &SqliteRow) -> Result<AccessKeyRecord, sqlx::Error> {
    Ok(AccessKeyRecord {
        access_key: row.try_get("access_key")?,
        account_id: row.try_get("account_id")?,
        account_name: row.try_get("name")?,
        secret_sealed: row.try_get("secret_sealed")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
    })
}

fn content_key_from_row(row: &SqliteRow) -> Result<StoredContentKey, sqlx::Error> {
    let kid: Vec<u8> = row.try_get("kid")?;
    let kid = kid
        .try_into()
        .map_err(|_| sqlx::Error::Decode("stored kid is not 16 bytes".into()))?;
    Ok(StoredContentKey {
        kid: Kid(kid),
        key_sealed: row.try_get("key_sealed")?,
        created_at: row.try_get("created_at")?,
    })
}

fn record_from_row(site_id: &str, row: &SqliteRow) -> Result<LicenseRecord, sqlx::Error> {
    let error_code: Option<String> = row.try_get("error_code")?;
    let error_name: Option<String> = row.try_get("error_name")?;
    Ok(LicenseRecord {
        id: row.try_get("id")?,
        site_id: site_id.to_owned(),
        content_id: row.try_get("content_id")?,
        status: status_from_code(row.try_get("status")?),
        drm_type: row
            .try_get::<Option<i64>, _>("drm_type")?
            .and_then(DrmType::from_code),
        user_id: row.try_get("user_id")?,
        device_id: row.try_get("device_id")?,
        device_model: row.try_get("device_model")?,
        platform_name: row.try_get("platform")?,
        created_at: row.try_get("created_at")?,
        failure: error_code
            .zip(error_name)
            .map(|(code, name)| FailReason { code, name }),
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn read_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unexpected)
    }

    async fn write_meta(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unexpected)?;
        Ok(())
    }

    async fn ensure_account(&self, name: &str, now_ms: i64) -> StoreResult<i64> {
        sqlx::query(
            "INSERT INTO accounts (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(unexpected)?;
        sqlx::query_scalar("SELECT id FROM accounts WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(unexpected)
    }

    async fn insert_access_key(
        &self,
        account_id: i64,
        access_key: &str,
        secret_sealed: &[u8],
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO access_keys (access_key, account_id, secret_sealed, created_at) VALUES (?, ?, ?, ?)")
            .bind(access_key)
            .bind(account_id)
            .bind(secret_sealed)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(conflict_or_unexpected("access key"))?;
        Ok(())
    }

    async fn find_access_key(&self, access_key: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let row = sqlx::query(
            "SELECT k.access_key, k.account_id, a.name, k.secret_sealed, k.enabled, k.created_at
             FROM access_keys k JOIN accounts a ON a.id = k.account_id WHERE k.access_key = ?",
        )
        .bind(access_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unexpected)?;
        row.as_ref()
            .map(access_key_from_row)
            .transpose()
            .map_err(unexpected)
    }

    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        let rows = sqlx::query(
            "SELECT k.access_key, k.account_id, a.name, k.secret_sealed, k.enabled, k.created_at
             FROM access_keys k JOIN accounts a ON a.id = k.account_id ORDER BY k.created_at, k.access_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unexpected)?;
        rows.iter()
            .map(access_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(unexpected)
    }

    async fn disable_access_key(&self, access_key: &str) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE access_keys SET enabled = 0 WHERE access_key = ?")
            .bind(access_key)
            .execute(&self.pool)
            .await
            .map_err(unexpected)?;
        Ok(result.rows_affected() == 1)
    }

    async fn insert_site_logged(
        &self,
        site: &NewSite,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Site> {
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        let created = insert_site_on(&mut tx, site, entry).await?;
        tx.commit().await.map_err(unexpected)?;
        Ok(created)
    }

    async fn find_site_of_any_account(&self, site_id: &str) -> StoreResult<Option<Site>> {
        let mut connection = self.pool.acquire().await.map_err(unexpected)?;
        find_site_on(&mut connection, site_id).await
    }

    async fn find_site(&self, account_id: i64, site_id: &str) -> StoreResult<Option<Site>> {
        let row = sqlx::query(&format!(
            "SELECT {SITE_COLUMNS} FROM sites WHERE site_id = ? AND account_id = ?"
        ))
        .bind(site_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unexpected)?;
        row.as_ref()
            .map(site_from_row)
            .transpose()
            .map_err(unexpected)
    }

    async fn list_sites(&self, account_id: i64, page: Page) -> StoreResult<(Vec<Site>, i64)> {
        let rows = sqlx::query(&format!(
            "SELECT {SITE_COLUMNS} FROM sites WHERE account_id = ? ORDER BY created_at DESC, pk DESC LIMIT ? OFFSET ?"
        ))
        .bind(account_id)
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await
        .map_err(unexpected)?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM sites WHERE account_id = ?")
            .bind(account_id)
            .fetch_one(&self.pool)
            .await
            .map_err(unexpected)?;
        let sites = rows
            .iter()
            .map(site_from_row)
            .collect::<Result<_, _>>()
            .map_err(unexpected)?;
        Ok((sites, total))
    }

    async fn update_site(&self, site: &Site, entry: &AuditEntry<'_>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        sqlx::query("UPDATE sites SET name = ?, policy_id = ?, fairplay_sealed = ? WHERE pk = ?")
            .bind(&site.name)
            .bind(site.policy_id)
            .bind(&site.fairplay_sealed)
            .bind(site.pk)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        Sql::<Sqlite>::insert_site_event(&mut tx, site.pk, entry).await?;
        tx.commit().await.map_err(unexpected)
    }

    async fn set_site_status_logged(
        &self,
        site_pk: i64,
        status: SiteStatus,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        sqlx::query("UPDATE sites SET status = ? WHERE pk = ?")
            .bind(status.name())
            .bind(site_pk)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        Sql::<Sqlite>::insert_site_event(&mut tx, site_pk, entry).await?;
        tx.commit().await.map_err(unexpected)
    }

    async fn list_site_events(
        &self,
        account_id: i64,
        site_pk: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<SiteEvent>, i64)> {
        Sql::list_site_events(&self.pool, account_id, site_pk, range, page).await
    }

    async fn insert_policy(
        &self,
        account_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Policy> {
        Sql::insert_policy(&self.pool, account_id, settings, entry).await
    }

    async fn find_policy(&self, account_id: i64, policy_id: i64) -> StoreResult<Option<Policy>> {
        Sql::find_policy(&self.pool, account_id, policy_id).await
    }

    async fn list_policies(
        &self,
        account_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Policy>, i64)> {
        Sql::list_policies(&self.pool, account_id, offset, limit).await
    }

    async fn update_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        Sql::update_policy(&self.pool, account_id, policy_id, settings, entry).await
    }

    async fn delete_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<bool> {
        Sql::delete_policy(&self.pool, account_id, policy_id, entry).await
    }

    async fn list_policy_events(
        &self,
        account_id: i64,
        policy_id: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<PolicyEvent>, i64)> {
        Sql::list_policy_events(&self.pool, account_id, policy_id, range, page).await
    }

    async fn find_license_servers(&self, site_pk: i64) -> StoreResult<Option<Vec<u8>>> {
        SiteSql::<Sqlite>::find_license_servers(&self.pool, site_pk).await
    }

    async fn save_license_servers(&self, site_pk: i64, sealed: &[u8]) -> StoreResult<()> {
        SiteSql::<Sqlite>::save_license_servers(&self.pool, site_pk, sealed).await
    }

    async fn find_kms_token_owner(&self, digest: &[u8]) -> StoreResult<Option<(i64, String)>> {
        SiteSql::<Sqlite>::find_kms_token_owner(&self.pool, digest).await
    }

    async fn list_unindexed_kms_tokens(&self) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        SiteSql::<Sqlite>::list_unindexed_kms_tokens(&self.pool).await
    }

    async fn index_kms_token(&self, site_pk: i64, digest: &[u8]) -> StoreResult<()> {
        SiteSql::<Sqlite>::index_kms_token(&self.pool, site_pk, digest).await
    }

    async fn insert_console_session(
        &self,
        digest: &[u8],
        access_key: &str,
        csrf: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        SessionSql::<Sqlite>::insert(&self.pool, digest, access_key, csrf, expires_at, now_ms).await
    }

    async fn find_console_session(
        &self,
        digest: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        SessionSql::<Sqlite>::find(&self.pool, digest, now_ms).await
    }

    async fn delete_console_session(&self, digest: &[u8]) -> StoreResult<()> {
        SessionSql::<Sqlite>::delete(&self.pool, digest).await
    }

    async fn site_statistics(&self, site_pk: i64, since_ms: i64) -> StoreResult<SiteStatistics> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT device_id), COUNT(*) FROM license_records
             WHERE site_pk = ? AND status = 0 AND created_at >= ?",
        )
        .bind(site_pk)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(unexpected)?;
        Ok(SiteStatistics {
            monthly_active_users: row.try_get(0).map_err(unexpected)?,
            monthly_active_devices: row.try_get(1).map_err(unexpected)?,
            monthly_active_licenses: row.try_get(2).map_err(unexpected)?,
        })
    }

    async fn insert_content_key(
        &self,
        site_pk: i64,
        content_id: &str,
        key: &StoredContentKey,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO content_keys (site_pk, content_id, kid, key_sealed, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(site_pk)
            .bind(content_id)
            .bind(key.kid.0.as_slice())
            .bind(&key.key_sealed)
            .bind(key.created_at)
            .execute(&self.pool)
            .await
            .map_err(conflict_or_unexpected("content key"))?;
        Ok(())
    }

    async fn find_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
        kids: &[Kid],
    ) -> StoreResult<Vec<StoredContentKey>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT kid, key_sealed, created_at FROM content_keys WHERE site_pk = ",
        );
        query
            .push_bind(site_pk)
            .push(" AND content_id = ")
            .push_bind(content_id.to_owned())
            .push(" AND kid IN (");
        let mut list = query.separated(", ");
        for kid in kids {
            list.push_bind(kid.0.to_vec());
        }
        query.push(")");
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unexpected)?;
        rows.iter()
            .map(content_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(unexpected)
    }

    async fn list_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
    ) -> StoreResult<Vec<StoredContentKey>> {
        let rows = sqlx::query(
            "SELECT kid, key_sealed, created_at FROM content_keys WHERE site_pk = ? AND content_id = ? ORDER BY created_at, kid",
        )
        .bind(site_pk)
        .bind(content_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unexpected)?;
        rows.iter()
            .map(content_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(unexpected)
    }

    async fn delete_license_records_before(
        &self,
        site_pk: i64,
        cutoff_ms: i64,
        limit: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        let removed: Vec<(i64, i64, Option<i64>, String)> = sqlx::query_as(
            "DELETE FROM license_records WHERE id IN (SELECT id FROM license_records WHERE site_pk = ? AND created_at < ? LIMIT ?)
             RETURNING created_at, status, drm_type, device_model",
        )
        .bind(site_pk)
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(unexpected)?;
        let counted = removed
            .iter()
            .map(|(created_at, status, drm_type, device_model)| Counted {
                site_pk,
                created_at: *created_at,
                status: *status,
                drm_type: *drm_type,
                device_model,
            });
        add_counts(&mut tx, counted, -1).await.map_err(unexpected)?;
        sqlx::query("DELETE FROM license_counts WHERE site_pk = ? AND n = 0")
            .bind(site_pk)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;
        Ok(removed.len() as u64)
    }

    async fn list_site_pks(&self) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar("SELECT pk FROM sites ORDER BY pk")
            .fetch_all(&self.pool)
            .await
            .map_err(unexpected)
    }

    async fn insert_license_records(&self, records: &[NewLicenseRecord]) -> StoreResult<u64> {
        self.records.insert(records.to_vec()).await
    }

    async fn begin_import(
        &self,
        expected_records: u64,
    ) -> StoreResult<Box<dyn HistoryImport + '_>> {
        let connection = self.pool.acquire().await.map_err(unexpected)?.detach();
        let import = SqliteImport::begin(connection, expected_records)
            .await
            .map_err(unexpected)?;
        Ok(Box::new(import))
    }

    async fn read_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<Vec<LicenseRecord>> {
        let rows = history_sql::select(site.pk, filter, window)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unexpected)?;
        rows.iter()
            .map(|row| record_from_row(&site.site_id, row))
            .collect::<Result<_, _>>()
            .map_err(unexpected)
    }

    async fn search_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<(Vec<LicenseRecord>, i64)> {
        // One read transaction: the page and the total come from one snapshot.
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        let (from, offset) = tally::seek(&mut *tx, site.pk, filter, window.offset)
            .await
            .map_err(unexpected)?;
        let rows = history_sql::select(site.pk, &from, HistoryWindow { offset, ..window })
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(unexpected)?;
        let total = tally::total(&mut *tx, site.pk, filter)
            .await
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;

        let records = rows
            .iter()
            .map(|row| record_from_row(&site.site_id, row))
            .collect::<Result<_, _>>()
            .map_err(unexpected)?;
        Ok((records, total))
    }

    async fn summarize_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        interval: Interval,
    ) -> StoreResult<HistorySummary> {
        // One read transaction: the summary's parts come from one snapshot.
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        let summary = summary::summarize(&mut *tx, site.pk, filter, interval)
            .await
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;
        Ok(summary)
    }
}

history_sql::engine_history!(Sqlite, SqliteConnection);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::{LicenseStatus, SearchFilter};

    /// A store in a fresh folder, which lives as long as the first value.
    async fn temporary_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn read_only_immutable_and_memory_urls_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.db");
        for parameter in ["mode=ro", "mode=memory", "immutable=true", "vfs=unix-none"] {
            let url = format!("sqlite://{}?{parameter}", file.display());
            let error = SqliteStore::open(&url).await.unwrap_err();
            let message = format!("{error:#}");
            assert!(
                message.contains(&format!("`{parameter}` is not supported")),
                "{message}"
            );
        }
        let url = format!("sqlite://{}?mode=rwc", file.display());
        SqliteStore::open(&url).await.unwrap();
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused_because_history_commits_need_the_file() {
        let error = SqliteStore::open("sqlite::memory:").await.unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("for history commits"), "{message}");
        assert!(message.contains("it must be a database file"), "{message}");
    }

    #[tokio::test]
    async fn committed_history_reaches_the_database_file_without_a_commit_waiting_for_it() {
        let (dir, store) = temporary_store().await;
        let account_id = store.ensure_account("acme", 0).await.unwrap();
        let site = NewSite {
            site_id: "drm-20261204000000-CHECK".to_owned(),
            account_id,
            name: "checkpoints".to_owned(),
            policy_id: 0,
            kms_token_sealed: vec![1],
            fairplay_sealed: None,
            created_at: 0,
        };
        let site = store.insert_site(&site, "created").await.unwrap();
        let file = dir.path().join("plan.db");
        let before = std::fs::metadata(&file).unwrap().len();

        for batch in 0..20 {
            let records: Vec<_> = (0..200)
                .map(|i| NewLicenseRecord {
                    key: crate::domain::history::RecordKey::generate(),
                    site_pk: site.pk,
                    content_id: format!("content-{batch}-{i}"),
                    drm_type: None,
                    user_id: "user".to_owned(),
                    device_id: "device".to_owned(),
                    device_model: "model".to_owned(),
                    platform: crate::domain::device::Platform::Linux,
                    created_at: batch * 1_000 + i,
                    failure: None,
                })
                .collect();
            assert_eq!(store.insert_license_records(&records).await.unwrap(), 200);
        }

        // Only the checkpoint thread copies pages into the file: the commit
        // connection never checkpoints and the pool wrote nothing since.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&file).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SQLite's plan for one page of history under `filter`.
    async fn plan(store: &SqliteStore, filter: &HistoryFilter) -> String {
        let mut query =
            QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN SELECT * FROM license_records");
        history_sql::push_filter(&mut query, 1, filter);
        query.push(" ORDER BY created_at DESC, id DESC LIMIT 20");
        let rows = query.build().fetch_all(&store.pool).await.unwrap();
        rows.iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn every_history_filter_is_served_by_an_index_in_newest_first_order() {
        let (_dir, store) = temporary_store().await;
        let searches = [
            None,
            Some(SearchFilter::ContentId("c".into())),
            Some(SearchFilter::DrmType(DrmType::ClearKey)),
            Some(SearchFilter::UserId("u".into())),
            Some(SearchFilter::DeviceId("d".into())),
            Some(SearchFilter::DeviceModel("m".into())),
        ];

        for search in searches {
            for status in [None, Some(LicenseStatus::Fail)] {
                let filter = HistoryFilter {
                    search: search.clone(),
                    start: Some(1),
                    end: Some(2),
                    status,
                    ..HistoryFilter::default()
                };
                let plan = plan(&store, &filter).await;

                assert!(
                    plan.contains("USING INDEX records_by_"),
                    "{filter:?}: {plan}"
                );
                assert!(
                    !plan.contains("TEMP B-TREE"),
                    "{filter:?} sorts rows: {plan}"
                );
            }
        }
    }

    #[tokio::test]
    async fn every_counter_piece_is_an_index_range() {
        let (_dir, store) = temporary_store().await;
        let filter = HistoryFilter {
            status: Some(LicenseStatus::Fail),
            ..HistoryFilter::default()
        };
        let pieces = tally::Plan::of(Some(1), Some(100 * tally::BLOCK)).pieces;
        let mut query = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        query.push(history_sql::buckets::<Sqlite>(1, "all", &filter, &pieces).sql());
        let mut explain = query.build();
        for piece in &pieces {
            explain = explain
                .bind(1_i64)
                .bind("all")
                .bind(piece.span)
                .bind(piece.from)
                .bind(piece.to)
                .bind(1_i64);
        }
        let rows = explain.fetch_all(&store.pool).await.unwrap();
        let details: Vec<String> = rows.iter().map(|row| row.get("detail")).collect();

        let searches: Vec<&String> = details
            .iter()
            .filter(|detail| detail.contains("license_counts"))
            .collect();
        assert_eq!(searches.len(), pieces.len(), "{details:?}");
        for detail in searches {
            assert!(
                detail.contains("SEARCH") && detail.contains("bucket>? AND bucket<?"),
                "{detail}"
            );
        }
    }
}
