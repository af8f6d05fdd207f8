//! The history summary, written once for both engines over a
//! [`SummarySource`]. Totals and DRM type counts come from the counters
//! through [`tally::total`]; the time series reads whole buckets from the
//! hour and day counters and only its partial end buckets from the
//! records. Platforms and failure reasons have no counters and are grouped
//! from the records.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::status_code;
use super::tally::{self, Piece, TallySource};
use crate::domain::drm::DrmType;
use crate::domain::history::{HistoryFilter, LicenseStatus, MAX_EPOCH_MS};
use crate::domain::summary::{FailureCount, HistorySummary, Interval, SeriesBucket, TOP_FAILURES};

/// What a summary reads from one database snapshot.
#[async_trait]
pub trait SummarySource: TallySource {
    /// Records per (bucket of `interval` ms, status).
    async fn record_series(
        &mut self,
        site_pk: i64,
        filter: &HistoryFilter,
        interval: i64,
    ) -> Result<Vec<(i64, i64, i64)>, sqlx::Error>;
    /// Counter sums of `facet` per (bucket, status) in `piece`.
    async fn counter_series(
        &mut self,
        site_pk: i64,
        facet: &str,
        filter: &HistoryFilter,
        piece: Piece,
    ) -> Result<Vec<(i64, i64, i64)>, sqlx::Error>;
    /// Records per platform, largest first.
    async fn platform_counts(
        &mut self,
        site_pk: i64,
        filter: &HistoryFilter,
    ) -> Result<Vec<(String, i64)>, sqlx::Error>;
    /// The `limit` most frequent (code, name) among `filter`'s records.
    async fn failure_counts(
        &mut self,
        site_pk: i64,
        filter: &HistoryFilter,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>, sqlx::Error>;
}

/// Summarises a site's filtered history.
pub async fn summarize<S: SummarySource + ?Sized>(
    source: &mut S,
    site_pk: i64,
    filter: &HistoryFilter,
    interval: Interval,
) -> Result<HistorySummary, sqlx::Error> {
    let total = tally::total(source, site_pk, filter).await?;
    let series = series(source, site_pk, filter, interval.ms()).await?;

    let mut by_drm_type = Vec::new();
    let mut typed = 0;
    for drm in DrmType::ALL {
        let only = HistoryFilter {
            drm_type: Some(drm),
            ..filter.clone()
        };
        let count = match filter.drm_type {
            Some(chosen) if chosen != drm => 0,
            _ => tally::total(source, site_pk, &only).await?,
        };
        typed += count;
        if count > 0 {
            by_drm_type.push((Some(drm), count));
        }
    }
    if total > typed {
        by_drm_type.push((None, total - typed));
    }

    let by_platform = source.platform_counts(site_pk, filter).await?;
    let top_failures = failures(source, site_pk, filter).await?;
    Ok(HistorySummary {
        total,
        series,
        by_drm_type,
        by_platform,
        top_failures,
    })
}

/// Non-empty buckets, oldest first: whole ones from the counters when a
/// facet describes the filter, the partial ends from the records.
async fn series<S: SummarySource + ?Sized>(
    source: &mut S,
    site_pk: i64,
    filter: &HistoryFilter,
    interval: i64,
) -> Result<Vec<SeriesBucket>, sqlx::Error> {
    let start = filter.start.unwrap_or(0);
    let stop = filter.end.unwrap_or(MAX_EPOCH_MS) + 1;
    let (first, last) = (tally::ceil(start, interval), tally::floor(stop, interval));
    let rows = match tally::facet(filter) {
        Some(facet) if first < last => {
            let piece = Piece {
                span: interval,
                from: first,
                to: last,
            };
            let mut rows = source
                .counter_series(site_pk, &facet, filter, piece)
                .await?;
            for (from, to) in [(start, first - 1), (last, stop - 1)] {
                if from <= to {
                    let edge = tally::between(filter, from, to);
                    rows.extend(source.record_series(site_pk, &edge, interval).await?);
                }
            }
            rows
        }
        _ => source.record_series(site_pk, filter, interval).await?,
    };

    let mut buckets: BTreeMap<i64, SeriesBucket> = BTreeMap::new();
    for (start, status, count) in rows {
        let bucket = buckets.entry(start).or_insert(SeriesBucket {
            start,
            ..SeriesBucket::default()
        });
        match status == status_code(LicenseStatus::Success) {
            true => bucket.success += count,
            false => bucket.fail += count,
        }
    }
    Ok(buckets
        .into_values()
        .filter(|bucket| bucket.success + bucket.fail > 0)
        .collect())
}

async fn failures<S: SummarySource + ?Sized>(
    source: &mut S,
    site_pk: i64,
    filter: &HistoryFilter,
) -> Result<Vec<FailureCount>, sqlx::Error> {
    if filter.status == Some(LicenseStatus::Success) {
        return Ok(Vec::new());
    }
    let failed = HistoryFilter {
        status: Some(LicenseStatus::Fail),
        ..filter.clone()
    };
    let rows = source
        .failure_counts(site_pk, &failed, TOP_FAILURES)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(code, name, count)| FailureCount { code, name, count })
        .collect())
}
