//! Monthly partitions of the PostgreSQL history: `license_records_pYYYYMM`
//! holds the records created in that UTC month. A partition is created
//! before the first record of its month is written, and retention drops
//! whole partitions. Nodes sharing the database serialize these changes on
//! an advisory lock, so any of them may make them.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::{PgConnection, PgPool};

use super::tally::{BLOCK, DAY, HOUR};

/// The advisory lock key under which partitions change.
const LOCK: i64 = 0x6d64_726d_7061_7274;
const PREFIX: &str = "license_records_p";

/// One UTC month of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month holding `epoch_ms`.
    pub fn of(epoch_ms: i64) -> Self {
        let time = DateTime::<Utc>::from_timestamp_millis(epoch_ms).unwrap_or_default();
        Self {
            year: time.year(),
            month: time.month(),
        }
    }

    fn parse(table: &str) -> Option<Self> {
        let digits = table.strip_prefix(PREFIX)?;
        if digits.len() != 6 {
            return None;
        }
        let month = Self {
            year: digits[..4].parse().ok()?,
            month: digits[4..].parse().ok()?,
        };
        NaiveDate::from_ymd_opt(month.year, month.month, 1).map(|_| month)
    }

    fn table(self) -> String {
        format!("{PREFIX}{:04}{:02}", self.year, self.month)
    }

    fn start_ms(self) -> i64 {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .map(|time| time.timestamp_millis())
            .unwrap_or_default()
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

/// The months known to have a partition. Only a shortcut: a miss costs one
/// `CREATE TABLE IF NOT EXISTS`, and [`Partitions::forget`] clears it when
/// another node has dropped a partition.
#[derive(Debug, Default)]
pub struct Partitions {
    known: Mutex<HashSet<Month>>,
}

impl Partitions {
    /// Creates the partitions `months` need and do not have yet.
    pub async fn ensure(&self, pool: &PgPool, months: BTreeSet<Month>) -> Result<(), sqlx::Error> {
        let missing: Vec<Month> = {
            let known = self
                .known
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            months
                .into_iter()
                .filter(|month| !known.contains(month))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        lock(&mut tx).await?;
        for month in &missing {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF license_records FOR VALUES FROM ({}) TO ({})",
                month.table(),
                month.start_ms(),
                month.next().start_ms()
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .extend(missing);
        Ok(())
    }

    /// Forgets every known partition, after a write found one missing.
    pub fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clear();
    }

    /// Drops every partition that ends at or before `cutoff_ms`, with its
    /// counters; answers how many records went.
    pub async fn drop_before(&self, pool: &PgPool, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'license_records'::regclass",
        )
        .fetch_all(pool)
        .await?;
        let mut expired: Vec<Month> = tables
            .iter()
            .filter_map(|table| Month::parse(table))
            .filter(|month| month.next().start_ms() <= cutoff_ms)
            .collect();
        expired.sort();
        let mut removed = 0;
        for month in &expired {
            let mut tx = pool.begin().await?;
            lock(&mut tx).await?;
            sqlx::query(&format!("DROP TABLE IF EXISTS {}", month.table()))
                .execute(&mut *tx)
                .await?;
            removed += forget_counts(&mut tx, month.start_ms(), month.next().start_ms()).await?;
            tx.commit().await?;
        }
        self.forget();
        Ok(removed)
    }
}

async fn lock(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(tx)
        .await?;
    Ok(())
}

/// Removes the counts of every record in `[from, to)`, a range of whole
/// days: hour and day counters inside it go, and the blocks it touches are
/// summed again from the days they still have. Answers how many records
/// the range held.
async fn forget_counts(tx: &mut PgConnection, from: i64, to: i64) -> Result<u64, sqlx::Error> {
    let records: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM license_counts
         WHERE facet = 'all' AND span = $1 AND bucket >= $2 AND bucket < $3",
    )
    .bind(DAY)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM license_counts WHERE span IN ($1, $2) AND bucket >= $3 AND bucket < $4",
    )
    .bind(HOUR)
    .bind(DAY)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    let (first_block, end_block) = (from - from % BLOCK, to - to % BLOCK + BLOCK);
    sqlx::query("DELETE FROM license_counts WHERE span = $1 AND bucket >= $2 AND bucket < $3")
        .bind(BLOCK)
        .bind(first_block)
        .bind(end_block)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO license_counts (site_pk, facet, span, bucket, status, n)
         SELECT site_pk, facet, $1, bucket - bucket % $1, status, SUM(n)
         FROM license_counts WHERE span = $2 AND bucket >= $3 AND bucket < $4
         GROUP BY site_pk, facet, bucket - bucket % $1, status",
    )
    .bind(BLOCK)
    .bind(DAY)
    .bind(first_block)
    .bind(end_block)
    .execute(&mut *tx)
    .await?;
    Ok(records.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_know_their_bounds_and_names() {
        let december = Month::of(1_796_266_800_000);

        assert_eq!(december.table(), "license_records_p202612");
        assert_eq!(december.start_ms(), 1_796_083_200_000);
        assert_eq!(december.next().table(), "license_records_p202701");
        assert_eq!(december.next().start_ms(), 1_798_761_600_000);
        assert_eq!(Month::of(december.next().start_ms() - 1), december);
        assert_eq!(Month::parse("license_records_p202612"), Some(december));
        assert_eq!(Month::parse("license_records_p202613"), None);
        assert_eq!(Month::parse("license_counts"), None);
    }
}
