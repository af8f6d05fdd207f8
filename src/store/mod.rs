//! Storage: one trait, one implementation per database engine, chosen once
//! from the database URL. Handlers see only domain types. The history
//! writer batches record inserts into shared transactions, and spools them
//! to a file while the database is unavailable.

mod cache;
mod history_sql;
mod import;
mod outage;
mod partitions;
mod policies_sql;
mod postgres;
mod sessions_sql;
mod sites_sql;
mod spool;
mod sqlite;
mod sqlite_import;
mod sqlite_writer;
mod summary;
mod tally;
mod walk;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;

pub use cache::CachedStore;
pub use import::{BatchedImport, HistoryImport};
pub use postgres::PostgresStore;
pub use spool::{SpoolError, SPOOL_FILE};
pub use sqlite::SqliteStore;
pub use walk::HistoryWalk;
pub use writer::{HistoryWriter, OnOutage, WriteError, WriterOptions};

use crate::domain::history::{
    HistoryFilter, HistoryWindow, LicenseRecord, LicenseStatus, NewLicenseRecord,
};
use crate::domain::ids::Kid;
use crate::domain::params::{Page, TimeRange};
use crate::domain::policy::{Policy, PolicyEvent, PolicySettings};
use crate::domain::site::{Site, SiteEvent, SiteStatistics, SiteStatus};
use crate::domain::summary::{HistorySummary, Interval};

/// A storage failure, translated where it arose.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; names what collided.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database cannot be reached or cannot work for now (connection
    /// lost, server shutting down, disk full); trying later may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: the database refused the statement or is damaged.
    #[error("database failure")]
    Unexpected(#[source] anyhow::Error),
}

impl StoreError {
    /// The error for an unexpected driver failure: an outage when the
    /// database could not be reached, otherwise a fault.
    fn from_driver(error: sqlx::Error) -> Self {
        if outage::is_outage(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Unexpected(error.into())
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Shared handle to the store.
pub type SharedStore = Arc<dyn Store>;

/// An access key as stored.
#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    /// The key id.
    pub access_key: String,
    /// Owning account.
    pub account_id: i64,
    /// Owning account's name.
    pub account_name: String,
    /// Secret, sealed with the master key.
    pub secret_sealed: Vec<u8>,
    /// Whether requests signed with it are accepted.
    pub enabled: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// A site about to be created.
#[derive(Debug, Clone)]
pub struct NewSite {
    /// Public id.
    pub site_id: String,
    /// Owning account.
    pub account_id: i64,
    /// Display name.
    pub name: String,
    /// Applied policy.
    pub policy_id: i64,
    /// Sealed KMS token.
    pub kms_token_sealed: Vec<u8>,
    /// Sealed FairPlay credentials.
    pub fairplay_sealed: Option<Vec<u8>>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// One change as an audit log keeps it: what, who and when.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    /// What changed, in words.
    pub description: &'a str,
    /// The access key that signed the change; none for operator tools.
    pub access_key: Option<&'a str>,
    /// When, epoch ms.
    pub at: i64,
}

/// A console session as stored.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The access key it signed in with.
    pub access_key: String,
    /// That key's account.
    pub account_id: i64,
    /// The token the session's forms carry.
    pub csrf: String,
}

/// A content key as stored.
#[derive(Debug, Clone)]
pub struct StoredContentKey {
    /// Key id.
    pub kid: Kid,
    /// Key, sealed with the master key.
    pub key_sealed: Vec<u8>,
    /// Registration time, epoch ms.
    pub created_at: i64,
}

/// Everything the service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A named value about the database itself.
    async fn read_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores a named value about the database itself.
    async fn write_meta(&self, name: &str, value: &[u8]) -> StoreResult<()>;

    /// The id of account `name`, created if missing.
    async fn ensure_account(&self, name: &str, now_ms: i64) -> StoreResult<i64>;
    /// Stores a new access key for `account_id`.
    async fn insert_access_key(
        &self,
        account_id: i64,
        access_key: &str,
        secret_sealed: &[u8],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Looks up an access key by id.
    async fn find_access_key(&self, access_key: &str) -> StoreResult<Option<AccessKeyRecord>>;
    /// Every access key, oldest first.
    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>>;
    /// Disables an access key; false when there is no such key.
    async fn disable_access_key(&self, access_key: &str) -> StoreResult<bool>;

    /// Creates a site and its first log entry.
    async fn insert_site_logged(&self, site: &NewSite, entry: &AuditEntry<'_>)
        -> StoreResult<Site>;
    /// Creates a site for an operator tool, which acts without an access key.
    async fn insert_site(&self, site: &NewSite, event: &str) -> StoreResult<Site> {
        let entry = AuditEntry {
            description: event,
            access_key: None,
            at: site.created_at,
        };
        self.insert_site_logged(site, &entry).await
    }
    /// A site of any account, for operator tools.
    async fn find_site_of_any_account(&self, site_id: &str) -> StoreResult<Option<Site>>;
    /// A site of `account_id`, deleted ones included.
    async fn find_site(&self, account_id: i64, site_id: &str) -> StoreResult<Option<Site>>;
    /// One page of the account's sites, newest first, and their total.
    async fn list_sites(&self, account_id: i64, page: Page) -> StoreResult<(Vec<Site>, i64)>;
    /// Saves a site's name, policy and credentials, with a log entry.
    async fn update_site(&self, site: &Site, entry: &AuditEntry<'_>) -> StoreResult<()>;
    /// Moves a site to `status`, with a log entry.
    async fn set_site_status_logged(
        &self,
        site_pk: i64,
        status: SiteStatus,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()>;
    /// Moves a site to `status` for an operator tool, which acts without an access key.
    async fn set_site_status(
        &self,
        site_pk: i64,
        status: SiteStatus,
        event: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let entry = AuditEntry {
            description: event,
            access_key: None,
            at: now_ms,
        };
        self.set_site_status_logged(site_pk, status, &entry).await
    }
    /// One page of site log entries within `range`, newest first; all the
    /// account's sites when `site_pk` is None.
    async fn list_site_events(
        &self,
        account_id: i64,
        site_pk: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<SiteEvent>, i64)>;
    /// Licenses issued by a site since `since_ms`.
    async fn site_statistics(&self, site_pk: i64, since_ms: i64) -> StoreResult<SiteStatistics>;
    /// A site's upstream license servers as sealed JSON, when it has any.
    async fn find_license_servers(&self, site_pk: i64) -> StoreResult<Option<Vec<u8>>>;
    /// Stores or replaces a site's sealed upstream license servers.
    async fn save_license_servers(&self, site_pk: i64, sealed: &[u8]) -> StoreResult<()>;
    /// Account and public id of the site whose KMS token has SHA-256 `digest`.
    async fn find_kms_token_owner(&self, digest: &[u8]) -> StoreResult<Option<(i64, String)>>;
    /// Internal key and sealed KMS token of every site whose token has no
    /// digest stored yet.
    async fn list_unindexed_kms_tokens(&self) -> StoreResult<Vec<(i64, Vec<u8>)>>;
    /// Stores the SHA-256 digest of a site's KMS token.
    async fn index_kms_token(&self, site_pk: i64, digest: &[u8]) -> StoreResult<()>;

    /// Starts a console session, found later by `digest` (the SHA-256 of
    /// its id) until `expires_at`; forgets sessions ended by `now_ms`.
    async fn insert_console_session(
        &self,
        digest: &[u8],
        access_key: &str,
        csrf: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The console session with `digest`, unless it has ended by `now_ms`
    /// or its access key has been disabled.
    async fn find_console_session(
        &self,
        digest: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<ConsoleSession>>;
    /// Ends a console session.
    async fn delete_console_session(&self, digest: &[u8]) -> StoreResult<()>;

    /// Creates a custom policy of `account_id` and its first log entry.
    async fn insert_policy(
        &self,
        account_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Policy>;
    /// A custom policy of `account_id`, deleted ones included.
    async fn find_policy(&self, account_id: i64, policy_id: i64) -> StoreResult<Option<Policy>>;
    /// `limit` of the account's custom policies from `offset`, newest
    /// first, and their total.
    async fn list_policies(
        &self,
        account_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Policy>, i64)>;
    /// Saves a custom policy's settings, with a log entry.
    async fn update_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()>;
    /// Marks a custom policy deleted, with a log entry; false, and nothing
    /// changed, while a site that is not deleted uses it.
    async fn delete_policy(
        &self,
        account_id: i64,
        policy_id: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<bool>;
    /// One page of policy log entries within `range`, newest first; all
    /// the account's policies when `policy_id` is None.
    async fn list_policy_events(
        &self,
        account_id: i64,
        policy_id: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<PolicyEvent>, i64)>;

    /// Registers a content key; a conflict when the kid is already there.
    async fn insert_content_key(
        &self,
        site_pk: i64,
        content_id: &str,
        key: &StoredContentKey,
    ) -> StoreResult<()>;
    /// The keys of a content among `kids`.
    async fn find_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
        kids: &[Kid],
    ) -> StoreResult<Vec<StoredContentKey>>;
    /// Every key of a content, oldest first.
    async fn list_content_keys(
        &self,
        site_pk: i64,
        content_id: &str,
    ) -> StoreResult<Vec<StoredContentKey>>;

    /// Deletes one site's records older than `cutoff_ms`, at most `limit`
    /// of them; answers how many went.
    async fn delete_license_records_before(
        &self,
        site_pk: i64,
        cutoff_ms: i64,
        limit: i64,
    ) -> StoreResult<u64>;
    /// Drops whole stored periods that end at or before `cutoff_ms`, with
    /// their counts, where the engine keeps history in periods (PostgreSQL's
    /// monthly partitions); answers how many records went. Others drop none.
    async fn drop_history_before(&self, _cutoff_ms: i64) -> StoreResult<u64> {
        Ok(0)
    }
    /// Internal keys of every site, deleted ones included.
    async fn list_site_pks(&self) -> StoreResult<Vec<i64>>;

    /// Writes records in one transaction: all or none. A record whose key
    /// is stored already is skipped; answers how many were new.
    async fn insert_license_records(&self, records: &[NewLicenseRecord]) -> StoreResult<u64>;
    /// Starts loading about `expected_records` records from another
    /// service. On SQLite the whole import is one transaction, so an import
    /// dropped before its commit leaves nothing behind; on PostgreSQL it
    /// commits every few thousand records as it goes.
    async fn begin_import(&self, expected_records: u64)
        -> StoreResult<Box<dyn HistoryImport + '_>>;
    /// The rows of `window` in a site's filtered history, newest first,
    /// without counting them.
    async fn read_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<Vec<LicenseRecord>>;
    /// The rows of `window` in a site's filtered history, newest first,
    /// and the exact total of the filtered history.
    async fn search_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        window: HistoryWindow,
    ) -> StoreResult<(Vec<LicenseRecord>, i64)>;
    /// Aggregates over a site's filtered history, from one snapshot: the
    /// total, buckets of `interval` by status, DRM types, platforms and
    /// the most frequent failure reasons.
    async fn summarize_history(
        &self,
        site: &Site,
        filter: &HistoryFilter,
        interval: Interval,
    ) -> StoreResult<HistorySummary>;
}

/// Opens the store named by `url`, creating and migrating it as needed.
pub async fn open(url: &str) -> anyhow::Result<SharedStore> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    anyhow::bail!(
        "unsupported database URL (MULTIDRM_DATABASE_URL): expected sqlite://PATH or postgres://..."
    )
}

/// How both engines store a record's outcome: 0 success, 1 fail.
fn status_code(status: LicenseStatus) -> i64 {
    match status {
        LicenseStatus::Success => 0,
        LicenseStatus::Fail => 1,
    }
}

/// The inverse of [`status_code`].
fn status_from_code(code: i64) -> LicenseStatus {
    if code == 0 {
        LicenseStatus::Success
    } else {
        LicenseStatus::Fail
    }
}
