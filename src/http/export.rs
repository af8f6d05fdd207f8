//! `GET /api/v1/license/statistics/export` [extension]: a site's filtered
//! history as CSV or NDJSON, newest first, streamed page by page so that
//! any size of history is sent with bounded memory.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;
use super::extract::Caller;
use super::history::record_view;
use super::sites::find_site;
use super::AppState;
use crate::domain::cursor::Cursor;
use crate::domain::history::{HistoryFilter, HistoryQuery, HistoryWindow, LicenseRecord};
use crate::domain::params::{ParamError, QueryParams};
use crate::domain::site::Site;
use crate::store::SharedStore;

/// Records read from the store per step of the walk.
const PAGE: i64 = 1000;
/// Column names of the CSV form, in the order of the record view's fields.
const CSV_HEADER: &str = "siteId,contentId,licenseStatus,drmType,userId,deviceId,deviceModel,platformName,licenseCreatedTime,licenseCreatedAt,errorCode,errorName\n";

/// The formats an export can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON record per line.
    Ndjson,
}

impl ExportFormat {
    fn parse(text: Option<&str>) -> Result<Self, ParamError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("csv") => Ok(Self::Csv),
            Some("ndjson") => Ok(Self::Ndjson),
            Some(_) => Err(ParamError::new("format", "must be csv or ndjson")),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// Serialises records in this format.
    pub fn write(self, records: Vec<LicenseRecord>, zone: Tz) -> Result<Vec<u8>, anyhow::Error> {
        let mut out = Vec::new();
        match self {
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut out);
                for record in records {
                    let view = record_view(record, zone);
                    let created_at = view.license_created_at.to_string();
                    writer.write_record([
                        &view.site_id,
                        &view.content_id,
                        &view.license_status,
                        &view.drm_type,
                        &view.user_id,
                        &view.device_id,
                        &view.device_model,
                        &view.platform_name,
                        &view.license_created_time,
                        &created_at,
                        view.error_code.as_deref().unwrap_or(""),
                        view.error_name.as_deref().unwrap_or(""),
                    ])?;
                }
                writer.flush()?;
            }
            Self::Ndjson => {
                for record in records {
                    serde_json::to_writer(&mut out, &record_view(record, zone))?;
                    out.push(b'\n');
                }
            }
        }
        Ok(out)
    }
}

/// Streams the filtered history of one site.
pub async fn export_history(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query.as_deref());
    let query = HistoryQuery::from_params(&params).map_err(ApiError::parameter)?;
    let format = ExportFormat::parse(params.get("format").map_err(ApiError::parameter)?)
        .map_err(ApiError::parameter)?;
    let site = find_site(&app, &caller, &query.site_id).await?;

    let (chunks, body) = mpsc::channel(4);
    let file_name = format!(
        "{}-history.{}",
        site.site_id,
        if format == ExportFormat::Csv {
            "csv"
        } else {
            "ndjson"
        }
    );
    tokio::spawn(send_pages(
        app.store.clone(),
        site,
        query.filter,
        format,
        app.time_zone,
        chunks,
    ));
    let headers = [
        (header::CONTENT_TYPE, format.content_type().to_owned()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ),
    ];
    Ok((headers, Body::from_stream(ReceiverStream::new(body))).into_response())
}

type Chunk = Result<Bytes, std::io::Error>;

/// Walks the history with a cursor and sends each page; a failure ends the
/// body early, so the client sees a broken transfer, never a short file
/// that looks complete.
async fn send_pages(
    store: SharedStore,
    site: Site,
    filter: HistoryFilter,
    format: ExportFormat,
    zone: Tz,
    chunks: mpsc::Sender<Chunk>,
) {
    if format == ExportFormat::Csv
        && chunks
            .send(Ok(Bytes::from_static(CSV_HEADER.as_bytes())))
            .await
            .is_err()
    {
        return;
    }
    let mut after = None;
    loop {
        let window = HistoryWindow {
            after,
            offset: 0,
            limit: PAGE,
        };
        let page = match store.read_history(&site, &filter, window).await {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(error = ?error, site.id = %site.site_id, "history export stopped");
                let _ = chunks
                    .send(Err(std::io::Error::other("history export failed")))
                    .await;
                return;
            }
        };
        let full = page.len() as i64 == PAGE;
        after = page.last().map(|last| Cursor {
            created_at: last.created_at,
            id: last.id,
        });
        let bytes = match format.write(page, zone) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(error = %error, "history export could not be written");
                let _ = chunks
                    .send(Err(std::io::Error::other("history export failed")))
                    .await;
                return;
            }
        };
        if chunks.send(Ok(Bytes::from(bytes))).await.is_err() || !full {
            return;
        }
    }
}
