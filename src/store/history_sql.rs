//! The history queries, written once for both engines: the statements are
//! the same text in SQLite and PostgreSQL, and `QueryBuilder` writes each
//! engine's placeholders. Codes are bound as 64-bit integers; PostgreSQL
//! compares them with its SMALLINT columns through the same indexes.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::status_code;
use super::tally::{CountKey, Piece};
use crate::domain::history::{HistoryFilter, HistoryWindow, SearchFilter};

const COLUMNS: &str = "id, created_at, status, drm_type, content_id, user_id, device_id, device_model, platform, error_code, error_name";

/// One window of a site's filtered history, newest first, id breaking ties.
pub fn select<'a, DB>(
    site_pk: i64,
    filter: &HistoryFilter,
    window: HistoryWindow,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM license_records"));
    push_filter(&mut query, site_pk, filter);
    if let Some(after) = window.after {
        query
            .push(" AND (created_at < ")
            .push_bind(after.created_at)
            .push(" OR (created_at = ")
            .push_bind(after.created_at)
            .push(" AND id < ")
            .push_bind(after.id)
            .push("))");
    }
    query
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(window.limit)
        .push(" OFFSET ")
        .push_bind(window.offset);
    query
}

/// The number of records in a site's filtered history.
pub fn count<'a, DB>(site_pk: i64, filter: &HistoryFilter) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new("SELECT COUNT(*) FROM license_records");
    push_filter(&mut query, site_pk, filter);
    query
}

/// Appends the WHERE clause of a filtered history.
pub fn push_filter<'a, DB>(query: &mut QueryBuilder<'a, DB>, site_pk: i64, filter: &HistoryFilter)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    query.push(" WHERE site_pk = ").push_bind(site_pk);
    match &filter.search {
        None => {}
        Some(SearchFilter::ContentId(value)) => {
            query.push(" AND content_id = ").push_bind(value.clone());
        }
        Some(SearchFilter::DrmType(drm)) => {
            query.push(" AND drm_type = ").push_bind(drm.code());
        }
        Some(SearchFilter::UserId(value)) => {
            query.push(" AND user_id = ").push_bind(value.clone());
        }
        Some(SearchFilter::DeviceId(value)) => {
            query.push(" AND device_id = ").push_bind(value.clone());
        }
        Some(SearchFilter::DeviceModel(value)) => {
            query.push(" AND device_model = ").push_bind(value.clone());
        }
    }
    if let Some(start) = filter.start {
        query.push(" AND created_at >= ").push_bind(start);
    }
    if let Some(end) = filter.end {
        query.push(" AND created_at <= ").push_bind(end);
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status_code(status));
    }
    if let Some(drm) = filter.drm_type {
        query.push(" AND drm_type = ").push_bind(drm.code());
    }
    if let Some(platform) = filter.platform {
        query
            .push(" AND platform = ")
            .push_bind(platform.name().to_owned());
    }
}

/// Counter sums per bucket of `pieces` for a facet, newest bucket first.
/// One index range per piece, joined with UNION ALL: an OR of the pieces
/// would read every counter of the facet.
pub fn buckets<'a, DB>(
    site_pk: i64,
    facet: &str,
    filter: &HistoryFilter,
    pieces: &[Piece],
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new("SELECT span, bucket, CAST(SUM(n) AS BIGINT) FROM (");
    for (index, piece) in pieces.iter().enumerate() {
        if index > 0 {
            query.push(" UNION ALL ");
        }
        query.push("SELECT span, bucket, n FROM license_counts");
        push_counter_range(&mut query, site_pk, facet, filter, *piece);
    }
    query.push(") AS pieces GROUP BY span, bucket ORDER BY bucket DESC");
    query
}

/// Records per bucket of `interval` ms and status: (bucket, status, n).
pub fn record_series<'a, DB>(
    site_pk: i64,
    filter: &HistoryFilter,
    interval: i64,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    // The interval is one of two constants, not client text.
    let mut query = QueryBuilder::new(format!(
        "SELECT created_at - created_at % {interval}, CAST(status AS BIGINT), COUNT(*) FROM license_records"
    ));
    push_filter(&mut query, site_pk, filter);
    query.push(" GROUP BY 1, 2");
    query
}

/// Counter sums of one facet per bucket of `span` in `from..to` and
/// status: (bucket, status, n).
pub fn counter_series<'a, DB>(
    site_pk: i64,
    facet: &str,
    filter: &HistoryFilter,
    piece: Piece,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query =
        QueryBuilder::new("SELECT bucket, status, CAST(SUM(n) AS BIGINT) FROM license_counts");
    push_counter_range(&mut query, site_pk, facet, filter, piece);
    query.push(" GROUP BY bucket, status");
    query
}

/// The WHERE clause of one facet's counters of `piece`, in the filter's
/// status when it names one.
fn push_counter_range<'a, DB>(
    query: &mut QueryBuilder<'a, DB>,
    site_pk: i64,
    facet: &str,
    filter: &HistoryFilter,
    piece: Piece,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    query
        .push(" WHERE site_pk = ")
        .push_bind(site_pk)
        .push(" AND facet = ")
        .push_bind(facet.to_owned())
        .push(" AND span = ")
        .push_bind(piece.span)
        .push(" AND bucket >= ")
        .push_bind(piece.from)
        .push(" AND bucket < ")
        .push_bind(piece.to);
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status_code(status));
    }
}

/// Records per platform, largest first: (platform, n).
pub fn platform_counts<'a, DB>(site_pk: i64, filter: &HistoryFilter) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new("SELECT platform, COUNT(*) FROM license_records");
    push_filter(&mut query, site_pk, filter);
    query.push(" GROUP BY platform ORDER BY 2 DESC, 1");
    query
}

/// The `limit` most frequent (code, name, n) among records of `filter`,
/// which should select failures.
pub fn failure_counts<'a, DB>(
    site_pk: i64,
    filter: &HistoryFilter,
    limit: i64,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(
        "SELECT COALESCE(error_code, ''), COALESCE(error_name, ''), COUNT(*) FROM license_records",
    );
    push_filter(&mut query, site_pk, filter);
    query
        .push(" GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT ")
        .push_bind(limit);
    query
}

/// Adds `changes` to the counters, creating the missing ones. At most
/// [`COUNT_CHANGES_PER_STATEMENT`] changes.
pub fn add_counts<'a, DB>(changes: &[(CountKey, i64)]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(COUNTS_INSERT);
    query.push_values(changes, |mut row, (key, n)| {
        row.push_bind(key.site_pk)
            .push_bind(key.facet.clone())
            .push_bind(key.span)
            .push_bind(key.bucket)
            .push_bind(key.status)
            .push_bind(*n);
    });
    query.push(COUNTS_ADD_ON_CONFLICT);
    query
}

/// The head of a counter insert, before its values.
pub const COUNTS_INSERT: &str =
    "INSERT INTO license_counts (site_pk, facet, span, bucket, status, n) ";

/// The tail of a counter insert that adds to counters already there.
pub const COUNTS_ADD_ON_CONFLICT: &str = " ON CONFLICT (site_pk, facet, span, bucket, status) DO UPDATE SET n = license_counts.n + excluded.n";

/// Changes per counter statement: six parameters each stays within both
/// engines' limits on bound parameters.
pub const COUNT_CHANGES_PER_STATEMENT: usize = 1000;

/// Writes, in the calling engine's module, the history work whose text is
/// the same on both engines: `add_counts`, and the [`TallySource`] and
/// [`SummarySource`] of a connection. A macro rather than generic code, because sqlx's argument
/// lifetimes only line up on a concrete engine.
///
/// [`TallySource`]: super::tally::TallySource
/// [`SummarySource`]: super::summary::SummarySource
macro_rules! engine_history {
    ($db:ty, $connection:ty) => {
        /// Applies the counter changes of `records` coming (`sign` 1) or
        /// going (-1).
        async fn add_counts<'r>(
            connection: &mut $connection,
            records: impl IntoIterator<Item = $crate::store::tally::Counted<'r>>,
            sign: i64,
        ) -> Result<(), sqlx::Error> {
            let changes = $crate::store::tally::changes(records, sign);
            for chunk in changes.chunks(history_sql::COUNT_CHANGES_PER_STATEMENT) {
                history_sql::add_counts::<$db>(chunk)
                    .build()
                    .execute(&mut *connection)
                    .await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::tally::TallySource for $connection {
            async fn count_records(
                &mut self,
                site_pk: i64,
                filter: &HistoryFilter,
            ) -> Result<i64, sqlx::Error> {
                history_sql::count::<$db>(site_pk, filter)
                    .build_query_scalar()
                    .fetch_one(self)
                    .await
            }

            async fn buckets(
                &mut self,
                site_pk: i64,
                facet: &str,
                filter: &HistoryFilter,
                pieces: &[$crate::store::tally::Piece],
            ) -> Result<Vec<$crate::store::tally::Bucket>, sqlx::Error> {
                let rows: Vec<(i64, i64, i64)> =
                    history_sql::buckets::<$db>(site_pk, facet, filter, pieces)
                        .build_query_as()
                        .fetch_all(self)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(span, start, count)| $crate::store::tally::Bucket { span, start, count })
                    .collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::summary::SummarySource for $connection {
            async fn record_series(
                &mut self,
                site_pk: i64,
                filter: &HistoryFilter,
                interval: i64,
            ) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
                history_sql::record_series::<$db>(site_pk, filter, interval)
                    .build_query_as()
                    .fetch_all(self)
                    .await
            }

            async fn counter_series(
                &mut self,
                site_pk: i64,
                facet: &str,
                filter: &HistoryFilter,
                piece: $crate::store::tally::Piece,
            ) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
                history_sql::counter_series::<$db>(site_pk, facet, filter, piece)
                    .build_query_as()
                    .fetch_all(self)
                    .await
            }

            async fn platform_counts(
                &mut self,
                site_pk: i64,
                filter: &HistoryFilter,
            ) -> Result<Vec<(String, i64)>, sqlx::Error> {
                history_sql::platform_counts::<$db>(site_pk, filter)
                    .build_query_as()
                    .fetch_all(self)
                    .await
            }

            async fn failure_counts(
                &mut self,
                site_pk: i64,
                filter: &HistoryFilter,
                limit: i64,
            ) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
                history_sql::failure_counts::<$db>(site_pk, filter, limit)
                    .build_query_as()
                    .fetch_all(self)
                    .await
            }
        }
    };
}
pub(super) use engine_history;
