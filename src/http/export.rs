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
use super::sites::find_site;
use super::AppState;
use crate::domain::cursor::Cursor;
use crate::domain::history::{HistoryFilter, HistoryQuery, HistoryWindow};
use crate::domain::params::QueryParams;
use crate::domain::site::Site;
use crate::history_file::ExportFormat;
use crate::store::SharedStore;

/// Records read from the store per step of the walk.
const PAGE: i64 = 1000;
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
    let file_name = format!("{}-history.{}", site.site_id, format.extension());
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
    let header = format.header();
    if !header.is_empty() && chunks.send(Ok(Bytes::from_static(header))).await.is_err() {
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
