//! `GET /api/v1/license/statistics/export` [extension]: a site's filtered
//! history as CSV, NDJSON or XLSX, newest first, sent with bounded memory
//! whatever its size.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;
use super::extract::Caller;
use super::openapi::HistoryParams;
use super::sites::find_site;
use super::AppState;
use crate::domain::history::HistoryQuery;
use crate::domain::params::QueryParams;
use crate::history_file::{ExportFormat, XlsxExport};
use crate::store::HistoryWalk;

/// Streams the filtered history of one site.
#[utoipa::path(
    get,
    path = "/api/v1/license/statistics/export",
    tag = "history",
    params(
        HistoryParams,
        ("format" = Option<String>, Query, description = "csv, ndjson or xlsx (default csv)"),
    ),
    responses((status = 200, description = "[extension] Every matching record, newest first, streamed as a file", content(
        ("text/csv"),
        ("application/x-ndjson"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    )))
)]
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
    let walk = HistoryWalk::new(app.store.clone(), site, query.filter);
    tokio::spawn(send_export(walk, format, app.time_zone, chunks));
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

/// Sends the export; a failure ends the body with an error, so the client
/// sees a broken transfer, never a short file that looks complete.
async fn send_export(
    walk: HistoryWalk,
    format: ExportFormat,
    zone: Tz,
    chunks: mpsc::Sender<Chunk>,
) {
    let sent = match format {
        ExportFormat::Xlsx => send_xlsx(walk, zone, &chunks).await,
        ExportFormat::Csv | ExportFormat::Ndjson => send_lines(walk, format, zone, &chunks).await,
    };
    if let Err(error) = sent {
        tracing::error!(error = format!("{error:#}"), "history export stopped");
        let _ = chunks
            .send(Err(std::io::Error::other("history export failed")))
            .await;
    }
}

/// CSV and NDJSON leave as each page is read.
async fn send_lines(
    mut walk: HistoryWalk,
    format: ExportFormat,
    zone: Tz,
    chunks: &mpsc::Sender<Chunk>,
) -> anyhow::Result<()> {
    let header = format.header();
    if !header.is_empty() && chunks.send(Ok(Bytes::from_static(header))).await.is_err() {
        return Ok(());
    }
    while let Some(page) = walk.next_page().await? {
        if chunks
            .send(Ok(Bytes::from(format.write(page, zone)?)))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// An XLSX workbook is a zip and can only leave once built; it is built in
/// temporary files, not in memory, and then sent in pieces.
async fn send_xlsx(
    mut walk: HistoryWalk,
    zone: Tz,
    chunks: &mpsc::Sender<Chunk>,
) -> anyhow::Result<()> {
    let mut workbook = XlsxExport::new(zone);
    while let Some(page) = walk.next_page().await? {
        workbook.push(page)?;
    }
    let mut file =
        tokio::fs::File::from_std(tokio::task::spawn_blocking(move || workbook.finish()).await??);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0
            || chunks
                .send(Ok(Bytes::copy_from_slice(&buffer[..read])))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
}
