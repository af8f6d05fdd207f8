//! The history queries, written once for both engines: the statements are
//! the same text in SQLite and PostgreSQL, and `QueryBuilder` writes each
//! engine's placeholders. Codes are bound as 64-bit integers; PostgreSQL
//! compares them with its SMALLINT columns through the same indexes.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::status_code;
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
}
