//! `GET /api/v1/license/statistics`: the license history of one site
//! (spec section 7), validated, filtered, paged and exactly counted; and
//! `GET /api/v1/license/statistics/summary` [extension], its aggregates.

use axum::extract::{RawQuery, State};
use axum::Json;

use super::error::ApiError;
use super::extract::Caller;
use super::openapi::{HistoryParams, PageParams};
use super::sites::find_site;
use super::AppState;
use crate::domain::cursor::Cursor;
use crate::domain::history::{HistoryQuery, HistoryWindow};
use crate::domain::params::QueryParams;
use crate::domain::summary::Interval;
use crate::wire::{Envelope, HistoryRecordView, SummaryView};

/// Lists one page of a site's license history, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/license/statistics",
    tag = "history",
    params(
        HistoryParams,
        PageParams,
        ("cursor" = Option<String>, Query, description = "[extension] nextCursor of the previous page; replaces pageNo"),
    ),
    responses((status = 200, description = "One page of records, newest first; nextCursor when more follow", body = Envelope<Vec<HistoryRecordView>>))
)]
pub async fn list_history(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<Vec<HistoryRecordView>>>, ApiError> {
    let query = HistoryQuery::from_params(&QueryParams::parse(query.as_deref()))
        .map_err(ApiError::parameter)?;
    let site = find_site(&app, &caller, &query.site_id).await?;
    // One row more than the page tells whether a next page exists.
    let window = HistoryWindow {
        after: query.after,
        offset: if query.after.is_some() {
            0
        } else {
            query.page.offset()
        },
        limit: query.page.size + 1,
    };
    let (mut records, total) = app
        .store
        .search_history(&site, &query.filter, window)
        .await?;
    let next_cursor = (records.len() as i64 > query.page.size).then(|| {
        records.truncate(query.page.size as usize);
        let last = records.last().expect("a full page has a last record");
        Cursor {
            created_at: last.created_at,
            id: last.id,
        }
        .encode(&site.site_id, &query.filter)
    });
    let views = records
        .into_iter()
        .map(|record| HistoryRecordView::from_record(record, app.time_zone))
        .collect();
    Ok(Json(
        Envelope::page(views, total).with_next_cursor(next_cursor),
    ))
}

/// Summarises a site's filtered history: the same filters as the list,
/// plus `interval` (`hour` or `day`) for the time series.
#[utoipa::path(
    get,
    path = "/api/v1/license/statistics/summary",
    tag = "history",
    params(
        HistoryParams,
        ("interval" = Option<String>, Query, description = "[extension] hour or day; default hour for windows of two days or less, else day"),
    ),
    responses((status = 200, description = "[extension] Totals, a time series by status, counts by DRM type and platform, and the top failure reasons", body = Envelope<SummaryView>))
)]
pub async fn summarize_history(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<SummaryView>>, ApiError> {
    let params = QueryParams::parse(query.as_deref());
    let query = HistoryQuery::from_params(&params).map_err(ApiError::parameter)?;
    let interval = Interval::from_params(&params, &query.filter).map_err(ApiError::parameter)?;
    let site = find_site(&app, &caller, &query.site_id).await?;
    let summary = app
        .store
        .summarize_history(&site, &query.filter, interval)
        .await?;
    Ok(Json(Envelope::one(SummaryView::new(summary, interval))))
}
