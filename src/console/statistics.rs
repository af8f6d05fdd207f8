//! The statistics page: the history filters, and charts of the summary
//! endpoint's answer for them.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use maud::{html, Markup, PreEscaped};

use super::charts;
use super::filters::Filters;
use super::page::{self, PageError};
use super::session::Console;
use super::sites::account_sites;
use crate::domain::summary::Interval;
use crate::http::AppState;
use crate::wire::{SeriesBucketView, SummaryView};

/// Buckets drawn at most when empty ones are filled in.
const MAX_BUCKETS: i64 = 800;

/// `GET /console/statistics`
pub async fn statistics_page(
    State(app): State<AppState>,
    console: Console,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let sites = account_sites(&app, &console).await?;
    let action = console.link("/statistics");
    let filters = match Filters::read(query.as_deref(), &sites) {
        Ok(filters) => filters,
        Err(refused) => return refused.page(&console, "Statistics", &sites, &action),
    };
    if filters.site_id.is_empty() {
        return Ok(page::no_site(&console, "Statistics").into_response());
    }

    let now = app.clock.now_ms();
    let api_query = filters.api_query(now, app.time_zone);
    let summary = crate::http::history::summarize_history(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some(api_query)),
    )
    .await;
    let summary = match summary {
        Ok(summary) => summary.0.content,
        Err(error) => {
            let form = filters.form(&sites, &action);
            return page::refused_filters(&console, "Statistics", form, error);
        }
    };
    let interval = match summary.interval.as_str() {
        "hour" => Interval::Hour,
        _ => Interval::Day,
    };
    let series = filled(
        &summary.series,
        filters.window(now, app.time_zone),
        interval,
    );
    let label = |start: i64| {
        let format = match interval {
            Interval::Hour => "%m-%d %H:00",
            Interval::Day => "%m-%d",
        };
        Utc.timestamp_millis_opt(start)
            .single()
            .map(|time| time.format(format).to_string())
            .unwrap_or_default()
    };
    let over_time = charts::over_time(&series, label).map_err(PageError::internal)?;

    let body = html! {
        (filters.form(&sites, &action))
        p #total { (summary.total) " records" }
        figure #chart-over-time {
            figcaption { "Licenses per " (interval.name()) " (UTC), success and fail" }
            (PreEscaped(over_time))
        }
        (category_chart("chart-drm-types", "By DRM type", drm_types(&summary))?)
        (category_chart("chart-platforms", "By platform", platforms(&summary))?)
        (category_chart("chart-failures", "Top failure reasons", failures(&summary))?)
    };
    Ok(page::frame(&console, "Statistics", None, body).into_response())
}

/// A bar chart with its numbers in a table beside it.
fn category_chart(id: &str, title: &str, items: Vec<(String, i64)>) -> Result<Markup, PageError> {
    let svg = charts::bars(&items).map_err(PageError::internal)?;
    Ok(html! {
        figure id=(id) {
            figcaption { (title) }
            @if items.is_empty() {
                p { "No records." }
            } @else {
                (PreEscaped(svg))
                table.counts {
                    caption { (title) }
                    tbody {
                        @for (name, count) in &items {
                            tr { th scope="row" { (name) } td { (count) } }
                        }
                    }
                }
            }
        }
    })
}

fn drm_types(summary: &SummaryView) -> Vec<(String, i64)> {
    summary
        .by_drm_type
        .iter()
        .map(|item| {
            let name = match item.drm_type.is_empty() {
                true => "(none)".to_owned(),
                false => item.drm_type.clone(),
            };
            (name, item.count)
        })
        .collect()
}

fn platforms(summary: &SummaryView) -> Vec<(String, i64)> {
    summary
        .by_platform
        .iter()
        .map(|item| (item.platform_name.clone(), item.count))
        .collect()
}

fn failures(summary: &SummaryView) -> Vec<(String, i64)> {
    summary
        .top_failures
        .iter()
        .map(|item| {
            (
                format!("{} {}", item.error_code, item.error_name),
                item.count,
            )
        })
        .collect()
}

/// The series with empty buckets filled in across a bounded window, so
/// that quiet periods show as gaps; an open window keeps the non-empty ones.
fn filled(
    series: &[SeriesBucketView],
    window: (Option<i64>, Option<i64>),
    interval: Interval,
) -> Vec<SeriesBucketView> {
    let (Some(start), Some(end)) = window else {
        return series.to_vec();
    };
    let step = interval.ms();
    let first = start - start.rem_euclid(step);
    if (end - first) / step > MAX_BUCKETS {
        return series.to_vec();
    }
    (0..=(end - first) / step)
        .map(|index| {
            let start = first + index * step;
            series
                .iter()
                .find(|bucket| bucket.start == start)
                .copied()
                .unwrap_or(SeriesBucketView {
                    start,
                    success: 0,
                    fail: 0,
                })
        })
        .collect()
}
