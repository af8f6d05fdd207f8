//! The PostgreSQL store, for several multidrm nodes sharing one database.
//! Commits are durable with the server's default `synchronous_commit`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::partitions::{Month, Partitions};
use super::policies_sql::Sql;
use super::sessions_sql::SessionSql;
use super::sites_sql::SiteSql;
use super::summary;
use super::tally::{self, Counted};
use super::{
    history_sql, status_from_code, AccessKeyRecord, AuditEntry, BatchedImport, ConsoleSession,
    HistoryImport, NewSite, Store, StoreError, StoreResult, StoredContentKey,
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

/// Longest wait for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Store backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    partitions: Arc<Partitions>,
}

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::from_driver(error)
}

fn conflict_or_unexpected(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match error.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unexpected(error),
    }
}

impl PostgresStore {
    /// Connects to and migrates the database at `url`.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A stopped server refuses connections at once, but the pool
            // retries until this timeout: keep it short, so that an outage
            // is noticed (and history spooled) within seconds.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .context("connecting to PostgreSQL (MULTIDRM_DATABASE_URL)")?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .context("migrating the PostgreSQL database")?;
        Ok(Self {
            pool,
            partitions: Arc::default(),
        })
    }

    /// Writes records and their counts in one transaction, into partitions
    /// that must exist; answers how many were not stored already.
    async fn write_records(&self, records: &[NewLicenseRecord]) -> Result<u64, sqlx::Error> {
        // Multi-row statements in one transaction: 12 parameters a record
        // keeps 1,000 records well under PostgreSQL's 65,535 per statement.
        let mut tx = self.pool.begin().await?;
        let mut inserted = HashSet::new();
        for chunk in records.chunks(1000) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO license_records (record_key, site_pk, created_at, status, drm_type, content_id, user_id,
                 device_id, device_model, platform, error_code, error_name) ",
            );
            insert.push_values(chunk, |mut row, record| {
                row.push_bind(record.key.as_bytes().to_vec())
                    .push_bind(record.site_pk)
                    .push_bind(record.created_at)
                    .push_bind(i16::from(record.failure.is_some()))
                    .push_bind(record.drm_type.map(|drm| drm.code() as i16))
                    .push_bind(record.content_id.clone())
                    .push_bind(record.user_id.clone())
                    .push_bind(record.device_id.clone())
                    .push_bind(record.device_model.clone())
                    .push_bind(record.platform.name())
                    .push_bind(record.failure.as_ref().map(|failure| failure.code.clone()))
                    .push_bind(record.failure.as_ref().map(|failure| failure.name.clone()));
            });
            // A record already stored (a replayed batch) is skipped and not counted again.
            insert.push(" ON CONFLICT DO NOTHING RETURNING record_key");
            let keys: Vec<Vec<u8>> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(keys);
        }
        // Each inserted key counts once, even if a batch held it twice.
        let count = inserted.len() as u64;
        let new = records
            .iter()
            .filter(|record| inserted.remove(record.key.as_bytes().as_slice()));
        add_counts(&mut tx, new.map(Counted::from), 1).await?;
        tx.commit().await?;
        Ok(count)
    }
}

/// PostgreSQL refuses a row that no partition accepts with a check violation.
fn is_missing_partition(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "23514")
}

const SITE_COLUMNS: &str =
    "pk, site_id, account_id, name, status, policy_id, kms_token_sealed, fairplay_sealed, created_at";
const ACCESS_KEY_SELECT: &str =
    "SELECT k.access_key, k.account_id, a.name, k.secret_sealed, k.enabled, k.created_at
     FROM access_keys k JOIN accounts a ON a.id = k.account_id";

fn site_from_row(row: &PgRow) -> Result<Site, sqlx::Error> {
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

fn access_key_from_row(row: &PgRow) -> Result<AccessKeyRecord, sqlx::Error> {
    Ok(AccessKeyRecord {
        access_key: row.try_get("access_key")?,
        account_id: row.try_get("account_id")?,
        account_name: row.try_get("name")?,
        secret_sealed: row.try_get("secret_sealed")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
    })
}

fn content_key_from_row(row: &PgRow) -> Result<StoredContentKey, sqlx::Error> {
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

fn record_from_row(site_id: &str, row: &PgRow) -> Result<LicenseRecord, sqlx::Error> {
    let error_code: Option<String> = row.try_get("error_code")?;
    let error_name: Option<String> = row.try_get("error_name")?;
    let drm_type: Option<i16> = row.try_get("drm_type")?;
    Ok(LicenseRecord {
        id: row.try_get("id")?,
        site_id: site_id.to_owned(),
        content_id: row.try_get("content_id")?,
        status: status_from_code(row.try_get::<i16, _>("status")?.into()),
        drm_type: drm_type.and_then(|code| DrmType::from_code(code.into())),
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
impl Store for PostgresStore {
    async fn read_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unexpected)
    }

    async fn write_meta(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unexpected)?;
        Ok(())
    }

    async fn ensure_account(&self, name: &str, now_ms: i64) -> StoreResult<i64> {
        sqlx::query(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(unexpected)?;
        sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1")
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
        sqlx::query("INSERT INTO access_keys (access_key, account_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4)")
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
        let row = sqlx::query(&format!("{ACCESS_KEY_SELECT} WHERE k.access_key = $1"))
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
        let rows = sqlx::query(&format!(
            "{ACCESS_KEY_SELECT} ORDER BY k.created_at, k.access_key"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unexpected)?;
        rows.iter()
            .map(access_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(unexpected)
    }

    async fn disable_access_key(&self, access_key: &str) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE access_keys SET enabled = FALSE WHERE access_key = $1")
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
        let row = sqlx::query(&format!(
            "INSERT INTO sites (site_id, account_id, name, status, policy_id, kms_token_sealed, fairplay_sealed, created_at)
             VALUES ($1, $2, $3, 'READY', $4, $5, $6, $7) RETURNING {SITE_COLUMNS}"
        ))
        .bind(&site.site_id)
        .bind(site.account_id)
        .bind(&site.name)
        .bind(site.policy_id)
        .bind(&site.kms_token_sealed)
        .bind(&site.fairplay_sealed)
        .bind(site.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_or_unexpected("site id"))?;
        let created = site_from_row(&row).map_err(unexpected)?;
        Sql::<Postgres>::insert_site_event(&mut tx, created.pk, entry).await?;
        tx.commit().await.map_err(unexpected)?;
        Ok(created)
    }

    async fn find_site_of_any_account(&self, site_id: &str) -> StoreResult<Option<Site>> {
        let row = sqlx::query(&format!(
            "SELECT {SITE_COLUMNS} FROM sites WHERE site_id = $1"
        ))
        .bind(site_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unexpected)?;
        row.as_ref()
            .map(site_from_row)
            .transpose()
            .map_err(unexpected)
    }

    async fn find_site(&self, account_id: i64, site_id: &str) -> StoreResult<Option<Site>> {
        let row = sqlx::query(&format!(
            "SELECT {SITE_COLUMNS} FROM sites WHERE site_id = $1 AND account_id = $2"
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
            "SELECT {SITE_COLUMNS} FROM sites WHERE account_id = $1 ORDER BY created_at DESC, pk DESC LIMIT $2 OFFSET $3"
        ))
        .bind(account_id)
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await
        .map_err(unexpected)?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM sites WHERE account_id = $1")
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
        sqlx::query(
            "UPDATE sites SET name = $1, policy_id = $2, fairplay_sealed = $3 WHERE pk = $4",
        )
        .bind(&site.name)
        .bind(site.policy_id)
        .bind(&site.fairplay_sealed)
        .bind(site.pk)
        .execute(&mut *tx)
        .await
        .map_err(unexpected)?;
        Sql::<Postgres>::insert_site_event(&mut tx, site.pk, entry).await?;
        tx.commit().await.map_err(unexpected)
    }

    async fn set_site_status_logged(
        &self,
        site_pk: i64,
        status: SiteStatus,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        sqlx::query("UPDATE sites SET status = $1 WHERE pk = $2")
            .bind(status.name())
            .bind(site_pk)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        Sql::<Postgres>::insert_site_event(&mut tx, site_pk, entry).await?;
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
        SiteSql::<Postgres>::find_license_servers(&self.pool, site_pk).await
    }

    async fn save_license_servers(&self, site_pk: i64, sealed: &[u8]) -> StoreResult<()> {
        SiteSql::<Postgres>::save_license_servers(&self.pool, site_pk, sealed).await
    }

    async fn find_kms_token_owner(&self, digest: &[u8]) -> StoreResult<Option<(i64, String)>> {
        SiteSql::<Postgres>::find_kms_token_owner(&self.pool, digest).await
    }

    async fn list_unindexed_kms_tokens(&self) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        SiteSql::<Postgres>::list_unindexed_kms_tokens(&self.pool).await
    }

    async fn index_kms_token(&self, site_pk: i64, digest: &[u8]) -> StoreResult<()> {
        SiteSql::<Postgres>::index_kms_token(&self.pool, site_pk, digest).await
    }

    async fn insert_console_session(
        &self,
        digest: &[u8],
        access_key: &str,
        csrf: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        SessionSql::<Postgres>::insert(&self.pool, digest, access_key, csrf, expires_at, now_ms)
            .await
    }

    async fn find_console_session(
        &self,
        digest: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<ConsoleSession>> {
        SessionSql::<Postgres>::find(&self.pool, digest, now_ms).await
    }

    async fn delete_console_session(&self, digest: &[u8]) -> StoreResult<()> {
        SessionSql::<Postgres>::delete(&self.pool, digest).await
    }

    async fn site_statistics(&self, site_pk: i64, since_ms: i64) -> StoreResult<SiteStatistics> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT user_id), COUNT(DISTINCT device_id), COUNT(*) FROM license_records
             WHERE site_pk = $1 AND status = 0 AND created_at >= $2",
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
        sqlx::query("INSERT INTO content_keys (site_pk, content_id, kid, key_sealed, created_at) VALUES ($1, $2, $3, $4, $5)")
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
        let kids: Vec<Vec<u8>> = kids.iter().map(|kid| kid.0.to_vec()).collect();
        let rows = sqlx::query(
            "SELECT kid, key_sealed, created_at FROM content_keys WHERE site_pk = $1 AND content_id = $2 AND kid = ANY($3)",
        )
        .bind(site_pk)
        .bind(content_id)
        .bind(kids)
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
            "SELECT kid, key_sealed, created_at FROM content_keys WHERE site_pk = $1 AND content_id = $2 ORDER BY created_at, kid",
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
        let removed: Vec<(i64, i16, Option<i16>, String)> = sqlx::query_as(
            "DELETE FROM license_records WHERE (site_pk, created_at, id) IN
             (SELECT site_pk, created_at, id FROM license_records WHERE site_pk = $1 AND created_at < $2 LIMIT $3)
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
                status: i64::from(*status),
                drm_type: drm_type.map(i64::from),
                device_model,
            });
        add_counts(&mut tx, counted, -1).await.map_err(unexpected)?;
        sqlx::query("DELETE FROM license_counts WHERE site_pk = $1 AND n = 0")
            .bind(site_pk)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;
        Ok(removed.len() as u64)
    }

    async fn drop_history_before(&self, cutoff_ms: i64) -> StoreResult<u64> {
        self.partitions
            .drop_before(&self.pool, cutoff_ms)
            .await
            .map_err(unexpected)
    }

    async fn list_site_pks(&self) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar("SELECT pk FROM sites ORDER BY pk")
            .fetch_all(&self.pool)
            .await
            .map_err(unexpected)
    }

    async fn insert_license_records(&self, records: &[NewLicenseRecord]) -> StoreResult<u64> {
        let months = || {
            records
                .iter()
                .map(|record| Month::of(record.created_at))
                .collect()
        };
        self.partitions
            .ensure(&self.pool, months())
            .await
            .map_err(unexpected)?;
        match self.write_records(records).await {
            Err(error) if is_missing_partition(&error) => {
                // Another node dropped a partition this one thought it had.
                self.partitions.forget();
                self.partitions
                    .ensure(&self.pool, months())
                    .await
                    .map_err(unexpected)?;
                self.write_records(records).await
            }
            outcome => outcome,
        }
        .map_err(unexpected)
    }

    async fn begin_import(
        &self,
        _expected_records: u64,
    ) -> StoreResult<Box<dyn HistoryImport + '_>> {
        Ok(Box::new(BatchedImport::new(self)))
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
        // One repeatable-read transaction: the page and the total come from one snapshot.
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
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
        // One repeatable-read transaction: the summary's parts come from one snapshot.
        let mut tx = self.pool.begin().await.map_err(unexpected)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        let summary = summary::summarize(&mut *tx, site.pk, filter, interval)
            .await
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;
        Ok(summary)
    }
}

history_sql::engine_history!(Postgres, PgConnection);
