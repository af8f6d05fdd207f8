//! The license history page: the filter form, one page of records from
//! the history API, paging, auto-refresh and the export of exactly what
//! the filters select, through the API's own export.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::filters::Filters;
use super::page::{self, PageError};
use super::session::Console;
use super::sites;
use crate::http::AppState;

/// Records per page of the table.
const PAGE_SIZE: i64 = 20;
/// Seconds between reloads when auto-refresh is on.
const REFRESH_SECONDS: u32 = 10;

/// `GET /console/history`
pub async fn history_page(
    State(app): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let sites = sites::account_sites(&app, &console).await?;
    let action = console.link("/history");
    let filters = match Filters::read(query.as_deref(), &sites) {
        Ok(filters) => filters,
        Err(refused) => return refused.page(&console, "License history", &sites, &action),
    };
    if filters.site_id.is_empty() {
        return Ok(page::no_site(&console, "License history").into_response());
    }

    let api_query = filters.api_query(app.clock.now_ms(), app.time_zone);
    let listed = crate::http::history::list_history(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some(format!(
            "{api_query}&pageNo={}&pageSize={PAGE_SIZE}",
            filters.page_no
        ))),
    )
    .await;
    let listed = match listed {
        Ok(listed) => listed.0,
        Err(error) => {
            let form = filters.form(&sites, &action);
            return page::refused_filters(&console, "License history", form, error);
        }
    };
    let total = listed.total.unwrap_or(0);
    let export = |format: &str| format!("{}/export?format={format}&{api_query}", action);
    let with = |change: &dyn Fn(&mut Filters)| {
        let mut changed = filters.clone();
        change(&mut changed);
        format!("{action}?{}", changed.console_query())
    };
    let refresh_link = with(&|f: &mut Filters| f.refresh = !f.refresh);
    let last_page = (total + PAGE_SIZE - 1) / PAGE_SIZE;

    let body = html! {
        (filters.form(&sites, &action))
        div.toolbar {
            p #total { (total) " records" }
            a #refresh href=(refresh_link) role="switch" aria-checked=(filters.refresh) {
                "Auto-refresh: " @if filters.refresh { "on" } @else { "off" }
            }
            a #export-csv href=(export("csv")) download { "Export CSV" }
            a #export-xlsx href=(export("xlsx")) download { "Export XLSX" }
        }
        div.table-wrap {
            table #history {
                caption { "License history, newest first" }
                (page::head(&[
                    "Created",
                    "Status",
                    "DRM type",
                    "Content id",
                    "User id (MD5)",
                    "Device id",
                    "Device model",
                    "Platform",
                    "Error",
                ]))
                tbody {
                    @for record in &listed.content {
                        tr {
                            td { (page::time(record.license_created_at, app.time_zone)) }
                            td { (record.license_status) }
                            td { (record.drm_type) }
                            td { (record.content_id) }
                            td.mono { (record.user_id) }
                            td.mono { (record.device_id) }
                            td { (record.device_model) }
                            td { (record.platform_name) }
                            td { (record.error_name.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if filters.page_no > 1 {
                a #previous rel="prev" href=(with(&|f: &mut Filters| f.page_no -= 1)) { "Previous" }
            }
            span #page { "Page " (filters.page_no) " of " (last_page.max(1)) }
            @if filters.page_no < last_page {
                a #next rel="next" href=(with(&|f: &mut Filters| f.page_no += 1)) { "Next" }
            }
        }
    };
    let refresh = filters.refresh.then_some(REFRESH_SECONDS);
    Ok(page::frame(&console, "License history", refresh, body).into_response())
}

/// `GET /console/history/export?format=...&<history API query>`: the API's
/// export for the signed-in account.
pub async fn export(
    State(app): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    Ok(crate::http::export::export_history(State(app), console.caller, RawQuery(query)).await?)
}
