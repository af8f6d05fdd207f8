//! `GET /api/v1/license/statistics`: the license history of one site
//! (spec section 7), validated, filtered, paged and exactly counted.

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono_tz::Tz;

use super::error::ApiError;
use super::extract::Caller;
use super::sites::find_site;
use super::AppState;
use crate::domain::cursor::Cursor;
use crate::domain::drm::DrmType;
use crate::domain::history::{format_created_time, HistoryQuery, HistoryWindow, LicenseRecord};
use crate::domain::params::QueryParams;
use crate::wire::{Envelope, HistoryRecordView};

/// Lists one page of a site's license history, newest first.
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
        .map(|record| record_view(record, app.time_zone))
        .collect();
    Ok(Json(
        Envelope::page(views, total).with_next_cursor(next_cursor),
    ))
}

/// A record as the API shows it.
pub fn record_view(record: LicenseRecord, zone: Tz) -> HistoryRecordView {
    HistoryRecordView {
        site_id: record.site_id,
        content_id: record.content_id,
        license_status: record.status.name().to_owned(),
        drm_type: record.drm_type.map_or("", DrmType::name).to_owned(),
        user_id: record.user_id,
        device_id: record.device_id,
        device_model: record.device_model,
        platform_name: record.platform_name,
        license_created_time: format_created_time(record.created_at, zone),
        license_created_at: record.created_at,
        error_code: record.failure.as_ref().map(|failure| failure.code.clone()),
        error_name: record.failure.map(|failure| failure.name),
    }
}
