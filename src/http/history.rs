//! `GET /api/v1/license/statistics`: the license history of one site
//! (spec section 7), validated, filtered, paged and exactly counted.

use axum::extract::{RawQuery, State};
use axum::Json;

use super::error::ApiError;
use super::extract::Caller;
use super::sites::find_site;
use super::AppState;
use crate::domain::drm::DrmType;
use crate::domain::history::{format_created_time, HistoryQuery};
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
    let (records, total) = app
        .store
        .search_history(&site, &query.filter, query.page)
        .await?;
    let views = records
        .into_iter()
        .map(|record| HistoryRecordView {
            site_id: record.site_id,
            content_id: record.content_id,
            license_status: record.status.name().to_owned(),
            drm_type: record.drm_type.map_or("", DrmType::name).to_owned(),
            user_id: record.user_id,
            device_id: record.device_id,
            device_model: record.device_model,
            platform_name: record.platform_name,
            license_created_time: format_created_time(record.created_at, app.time_zone),
            license_created_at: record.created_at,
            error_code: record.failure.as_ref().map(|failure| failure.code.clone()),
            error_name: record.failure.map(|failure| failure.name),
        })
        .collect();
    Ok(Json(Envelope::page(views, total)))
}
