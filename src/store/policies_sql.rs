//! Policies and the two audit logs (site log, policy log), written once
//! for both engines: the statements are the same text in SQLite and
//! PostgreSQL (both read `$N` placeholders), and one set of bounds below
//! names what each engine must be able to bind and read.

use std::marker::PhantomData;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::{AuditEntry, StoreError, StoreResult};
use crate::domain::audit::LogEntry;
use crate::domain::params::{Page, TimeRange};
use crate::domain::policy::{Policy, PolicyEvent, PolicySettings, PolicyStatus};
use crate::domain::site::{SiteEvent, SiteStatus};

const POLICY_COLUMNS: &str = "id, name, status, persistent, rental_duration, playback_duration, drm_config, created_at, updated_at, deleted_at";

/// A statement with its arguments, for the engine `DB`.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// The shared queries, for the engine `DB`.
pub struct Sql<DB>(PhantomData<DB>);

fn unexpected(error: sqlx::Error) -> StoreError {
    StoreError::from_driver(error)
}

impl<DB> Sql<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// Creates a policy of `account_id` and its first log entry.
    pub async fn insert_policy(
        pool: &Pool<DB>,
        account_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<Policy> {
        let columns = SettingsColumns::of(settings)?;
        let sql = format!(
            "INSERT INTO policies (name, persistent, rental_duration, playback_duration, drm_config, account_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {POLICY_COLUMNS}"
        );
        let mut tx = pool.begin().await.map_err(unexpected)?;
        let row = columns
            .bind(sqlx::query(&sql))
            .bind(account_id)
            .bind(PolicyStatus::Ready.name().to_owned())
            .bind(entry.at)
            .fetch_one(&mut *tx)
            .await
            .map_err(unexpected)?;
        let policy = policy_from_row::<DB>(&row)?;
        Self::insert_policy_event(&mut tx, account_id, policy.id, entry).await?;
        tx.commit().await.map_err(unexpected)?;
        Ok(policy)
    }

    /// A policy of `account_id`, deleted ones included.
    pub async fn find_policy(
        pool: &Pool<DB>,
        account_id: i64,
        policy_id: i64,
    ) -> StoreResult<Option<Policy>> {
        let sql =
            format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id = $1 AND account_id = $2");
        let row = sqlx::query(&sql)
            .bind(policy_id)
            .bind(account_id)
            .fetch_optional(pool)
            .await
            .map_err(unexpected)?;
        row.as_ref().map(policy_from_row::<DB>).transpose()
    }

    /// `limit` of the account's policies from `offset`, newest first, and their total.
    pub async fn list_policies(
        pool: &Pool<DB>,
        account_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Policy>, i64)> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE account_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        // One read transaction: the page and the total come from one snapshot.
        let mut tx = pool.begin().await.map_err(unexpected)?;
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *tx)
            .await
            .map_err(unexpected)?;
        let total = sqlx::query("SELECT COUNT(*) FROM policies WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;

        let policies = rows
            .iter()
            .map(policy_from_row::<DB>)
            .collect::<StoreResult<_>>()?;
        Ok((policies, total))
    }

    /// Saves a policy's settings, with a log entry.
    pub async fn update_policy(
        pool: &Pool<DB>,
        account_id: i64,
        policy_id: i64,
        settings: &PolicySettings,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let columns = SettingsColumns::of(settings)?;
        let sql = "UPDATE policies SET name = $1, persistent = $2, rental_duration = $3,
                   playback_duration = $4, drm_config = $5, updated_at = $6
                   WHERE id = $7 AND account_id = $8";
        let mut tx = pool.begin().await.map_err(unexpected)?;
        columns
            .bind(sqlx::query(sql))
            .bind(entry.at)
            .bind(policy_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(unexpected)?;
        Self::insert_policy_event(&mut tx, account_id, policy_id, entry).await?;
        tx.commit().await.map_err(unexpected)
    }

    /// Marks a policy deleted, with a log entry, unless a site that is not
    /// deleted uses it; answers whether it was deleted. One statement
    /// checks and deletes, so a site cannot take the policy in between.
    pub async fn delete_policy(
        pool: &Pool<DB>,
        account_id: i64,
        policy_id: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<bool> {
        let sql = "UPDATE policies SET status = $1, deleted_at = $2, updated_at = $2
                   WHERE id = $3 AND account_id = $4 AND NOT EXISTS (
                       SELECT 1 FROM sites WHERE policy_id = $3 AND account_id = $4 AND status <> $5
                   ) RETURNING id";
        let mut tx = pool.begin().await.map_err(unexpected)?;
        let deleted = sqlx::query(sql)
            .bind(PolicyStatus::Deleted.name().to_owned())
            .bind(entry.at)
            .bind(policy_id)
            .bind(account_id)
            .bind(SiteStatus::Deleted.name().to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unexpected)?;
        if deleted.is_none() {
            return Ok(false);
        }
        Self::insert_policy_event(&mut tx, account_id, policy_id, entry).await?;
        tx.commit().await.map_err(unexpected)?;
        Ok(true)
    }

    async fn insert_policy_event(
        conn: &mut DB::Connection,
        account_id: i64,
        policy_id: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let sql =
            "INSERT INTO policy_events (access_key, description, created_at, account_id, policy_id)
                   VALUES ($1, $2, $3, $4, $5)";
        bind_entry(sqlx::query(sql), entry)
            .bind(account_id)
            .bind(policy_id)
            .execute(conn)
            .await
            .map_err(unexpected)?;
        Ok(())
    }

    /// Writes one site log entry, in the caller's transaction.
    pub async fn insert_site_event(
        conn: &mut DB::Connection,
        site_pk: i64,
        entry: &AuditEntry<'_>,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO site_events (access_key, description, created_at, site_pk)
                   VALUES ($1, $2, $3, $4)";
        bind_entry(sqlx::query(sql), entry)
            .bind(site_pk)
            .execute(conn)
            .await
            .map_err(unexpected)?;
        Ok(())
    }

    /// One page of the policy log of an account, or of one of its
    /// policies, within `range`, newest first, and the total.
    pub async fn list_policy_events(
        pool: &Pool<DB>,
        account_id: i64,
        policy_id: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<PolicyEvent>, i64)> {
        let log = Log {
            from: "policy_events e",
            subject: "e.policy_id",
            shown_subject: "e.policy_id",
            account: "e.account_id",
        };
        Self::read_log(pool, &log, account_id, policy_id, range, page).await
    }

    /// One page of the site log of an account, or of one of its sites,
    /// within `range`, newest first, and the total.
    pub async fn list_site_events(
        pool: &Pool<DB>,
        account_id: i64,
        site_pk: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<SiteEvent>, i64)> {
        let log = Log {
            from: "site_events e JOIN sites s ON s.pk = e.site_pk",
            subject: "e.site_pk",
            shown_subject: "s.site_id",
            account: "s.account_id",
        };
        Self::read_log(pool, &log, account_id, site_pk, range, page).await
    }

    /// One page of a log, newest first, and the total; `S` is the type of
    /// the subject the log shows.
    async fn read_log<S>(
        pool: &Pool<DB>,
        log: &Log,
        account_id: i64,
        subject: Option<i64>,
        range: TimeRange,
        page: Page,
    ) -> StoreResult<(Vec<LogEntry<S>>, i64)>
    where
        for<'r> S: Decode<'r, DB> + Type<DB>,
    {
        let Log {
            from,
            subject: subject_column,
            shown_subject,
            account,
        } = log;
        let filter = format!(
            "WHERE {account} = $1 AND ($2 IS NULL OR {subject_column} = $2)
             AND ($3 IS NULL OR e.created_at >= $3) AND ($4 IS NULL OR e.created_at <= $4)"
        );
        let select = format!(
            "SELECT {shown_subject}, e.access_key, e.description, e.created_at FROM {from} {filter}
             ORDER BY e.created_at DESC, e.id DESC LIMIT $5 OFFSET $6"
        );
        let count = format!("SELECT COUNT(*) FROM {from} {filter}");
        let bind_filter = |sql| {
            sqlx::query::<DB>(sql)
                .bind(account_id)
                .bind(subject)
                .bind(range.start)
                .bind(range.end)
        };

        let mut tx = pool.begin().await.map_err(unexpected)?;
        let rows = bind_filter(&select)
            .bind(page.size)
            .bind(page.offset())
            .fetch_all(&mut *tx)
            .await
            .map_err(unexpected)?;
        let total = bind_filter(&count)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(unexpected)?;
        tx.commit().await.map_err(unexpected)?;

        let entries = rows
            .iter()
            .map(|row| {
                Ok(LogEntry {
                    subject: row.try_get(0)?,
                    access_key: row.try_get(1)?,
                    description: row.try_get(2)?,
                    timestamp: row.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unexpected)?;
        Ok((entries, total))
    }
}

/// Where an audit log lives; both logs read the same way.
struct Log {
    /// The log table as `e`, joined to what holds the account.
    from: &'static str,
    /// Column the optional subject filter compares.
    subject: &'static str,
    /// Column answered as the subject.
    shown_subject: &'static str,
    /// Column holding the owning account.
    account: &'static str,
}

/// A policy's settings as the columns `name, persistent,
/// rental_duration, playback_duration, drm_config` (`$1` to `$5`).
struct SettingsColumns {
    name: String,
    persistent: bool,
    rental_duration: i64,
    playback_duration: i64,
    drm_config: String,
}

impl SettingsColumns {
    fn of(settings: &PolicySettings) -> StoreResult<Self> {
        let drm_config = serde_json::to_string(&settings.drm_policy_config)
            .map_err(|error| StoreError::Unexpected(error.into()))?;
        Ok(Self {
            name: settings.policy_name.as_str().to_owned(),
            persistent: settings.persistent,
            rental_duration: settings.rental_duration.get(),
            playback_duration: settings.playback_duration.get(),
            drm_config,
        })
    }

    fn bind<'q, DB>(self, query: Query<'q, DB>) -> Query<'q, DB>
    where
        DB: Database,
        i64: Encode<'q, DB> + Type<DB>,
        bool: Encode<'q, DB> + Type<DB>,
        String: Encode<'q, DB> + Type<DB>,
    {
        query
            .bind(self.name)
            .bind(self.persistent)
            .bind(self.rental_duration)
            .bind(self.playback_duration)
            .bind(self.drm_config)
    }
}

/// Binds `access_key, description, created_at` (`$1` to `$3`).
fn bind_entry<'q, DB>(query: Query<'q, DB>, entry: &AuditEntry<'_>) -> Query<'q, DB>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB>,
{
    query
        .bind(entry.access_key.map(str::to_owned))
        .bind(entry.description.to_owned())
        .bind(entry.at)
}

fn policy_from_row<DB>(row: &DB::Row) -> StoreResult<Policy>
where
    DB: Database,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<i64>: Decode<'r, DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
{
    let decode = |error: String| StoreError::Unexpected(anyhow::anyhow!(error));
    let get_text = |column: &str| row.try_get::<String, _>(column).map_err(unexpected);
    let get_number = |column: &str| row.try_get::<i64, _>(column).map_err(unexpected);
    let drm_config: serde_json::Value = serde_json::from_str(&get_text("drm_config")?)
        .map_err(|error| decode(format!("stored drm_config: {error}")))?;
    // Stored settings are read by the same rules as a request body.
    let settings = serde_json::json!({
        "policyName": get_text("name")?,
        "persistent": row.try_get::<bool, _>("persistent").map_err(unexpected)?,
        "rentalDuration": get_number("rental_duration")?,
        "playbackDuration": get_number("playback_duration")?,
        "drmPolicyConfig": drm_config,
    });
    let status = get_text("status")?;
    Ok(Policy {
        id: get_number("id")?,
        status: PolicyStatus::parse(&status)
            .ok_or_else(|| decode(format!("unknown policy status {status}")))?,
        settings: PolicySettings::from_json(settings)
            .map_err(|error| decode(format!("stored policy: {error}")))?,
        created_at: get_number("created_at")?,
        updated_at: get_number("updated_at")?,
        deleted_at: row.try_get("deleted_at").map_err(unexpected)?,
    })
}
