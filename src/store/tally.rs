//! Exact history totals without counting rows. Every committed record adds
//! one, in its own transaction, to a counter for each (site, facet, span,
//! bucket, status) it falls in:
//! - facets: `all`, its DRM type (`drm:4`) and its device model
//!   (`model:Chrome`), the filters whose matches can run into millions;
//! - spans: the UTC hour, day and 32-day block holding it, each aligned
//!   to the epoch, so every block is whole days and every day whole hours.
//!
//! A window then splits into at most two partial hours at its ends, counted
//! from the records through an index, and whole buckets in between, read
//! from the coarsest span that fits: a three-year window costs about 150
//! counter rows whatever the number of records. The same counters let a
//! deep page start next to its first row instead of reading every newer
//! one. Content, user and device id searches match few records each and
//! are counted from their index.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use crate::domain::drm::DrmType;
use crate::domain::history::{HistoryFilter, NewLicenseRecord, SearchFilter, MAX_EPOCH_MS};

/// One hour, the finest span.
pub const HOUR: i64 = 3_600_000;
/// One day.
pub const DAY: i64 = 24 * HOUR;
/// 32 days, the coarsest span.
pub const BLOCK: i64 = 32 * DAY;
const SPANS: [i64; 3] = [HOUR, DAY, BLOCK];

/// Below this offset a page is read by skipping rows; above it, counters
/// find where the page starts.
const SEEK_FROM: i64 = 1000;

/// What a counter knows about a record.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// Internal key of the site.
    pub site_pk: i64,
    /// Epoch ms.
    pub created_at: i64,
    /// Stored status code.
    pub status: i64,
    /// Stored DRM type code.
    pub drm_type: Option<i64>,
    /// Device model.
    pub device_model: &'a str,
}

impl<'a> From<&'a NewLicenseRecord> for Counted<'a> {
    fn from(record: &'a NewLicenseRecord) -> Self {
        Self {
            site_pk: record.site_pk,
            created_at: record.created_at,
            status: i64::from(record.failure.is_some()),
            drm_type: record.drm_type.map(DrmType::code),
            device_model: &record.device_model,
        }
    }
}

/// Which counter a change applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountKey {
    /// Internal key of the site.
    pub site_pk: i64,
    /// `all`, `drm:<code>` or `model:<name>`.
    pub facet: String,
    /// Length of the bucket, ms.
    pub span: i64,
    /// Start of the bucket, epoch ms.
    pub bucket: i64,
    /// Stored status code.
    pub status: i64,
}

/// The counter changes for `records`, `sign` 1 when they are added and -1
/// when they are removed. Sorted by key, so that concurrent writers lock
/// counter rows in one order.
pub fn changes<'a>(
    records: impl IntoIterator<Item = Counted<'a>>,
    sign: i64,
) -> Vec<(CountKey, i64)> {
    let mut tally = Tally::default();
    for record in records {
        tally.add(record, sign);
    }
    tally.into_changes()
}

/// A facet as a [`Tally`] keeps it: device models by their number in the
/// tally's own list, so that adding a record allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FacetId {
    All,
    Drm(i64),
    Model(usize),
}

/// Counter changes gathered record by record, at the hour: every record
/// touches three hour counters (all, its DRM type, its model), and the day
/// and block counters are derived from the hours once, at the end. An
/// import of millions of records keeps one of these for the whole load.
#[derive(Debug, Default)]
pub struct Tally {
    models: HashMap<String, usize>,
    model_names: Vec<String>,
    hours: HashMap<(i64, FacetId, i64, i64), i64>,
}

impl Tally {
    /// Counts `record` coming (`sign` 1) or going (-1).
    pub fn add(&mut self, record: Counted<'_>, sign: i64) {
        let model = match self.models.get(record.device_model) {
            Some(&number) => number,
            None => {
                let number = self.model_names.len();
                self.model_names.push(record.device_model.to_owned());
                self.models.insert(record.device_model.to_owned(), number);
                number
            }
        };
        let hour = floor(record.created_at, HOUR);
        let facets = [
            Some(FacetId::All),
            record.drm_type.map(FacetId::Drm),
            Some(FacetId::Model(model)),
        ];
        for facet in facets.into_iter().flatten() {
            *self
                .hours
                .entry((record.site_pk, facet, hour, record.status))
                .or_insert(0) += sign;
        }
    }

    /// The changes to every span's counters, sorted by key, without zeros.
    pub fn into_changes(self) -> Vec<(CountKey, i64)> {
        let mut changes = BTreeMap::new();
        for ((site_pk, facet, hour, status), n) in self.hours {
            let facet = match facet {
                FacetId::All => "all".to_owned(),
                FacetId::Drm(code) => format!("drm:{code}"),
                FacetId::Model(number) => format!("model:{}", self.model_names[number]),
            };
            for span in SPANS {
                let key = CountKey {
                    site_pk,
                    facet: facet.clone(),
                    span,
                    bucket: floor(hour, span),
                    status,
                };
                *changes.entry(key).or_insert(0) += n;
            }
        }
        changes.into_iter().filter(|(_, n)| *n != 0).collect()
    }
}

/// The counters that describe `filter`'s search, if any do. No counter
/// crosses a platform, or a DRM type with a device model.
pub fn facet(filter: &HistoryFilter) -> Option<String> {
    if filter.platform.is_some() {
        return None;
    }
    match (&filter.search, &filter.drm_type) {
        (None, None) => Some("all".to_owned()),
        (Some(SearchFilter::DrmType(drm)), None) | (None, Some(drm)) => {
            Some(format!("drm:{}", drm.code()))
        }
        (Some(SearchFilter::DrmType(searched)), Some(drm)) if searched == drm => {
            Some(format!("drm:{}", drm.code()))
        }
        (Some(SearchFilter::DeviceModel(model)), None) => Some(format!("model:{model}")),
        _ => None,
    }
}

/// Buckets of one span whose start lies in `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Span of the buckets.
    pub span: i64,
    /// First bucket start, inclusive.
    pub from: i64,
    /// Last bucket start, exclusive.
    pub to: i64,
}

/// One bucket's count, summed over the statuses asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Span of the bucket.
    pub span: i64,
    /// Start of the bucket, epoch ms.
    pub start: i64,
    /// Records in it.
    pub count: i64,
}

/// How a window splits: sub-hour ends (inclusive ms ranges) read from the
/// records, and whole buckets read from the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The partial hour at the newer end.
    pub newer_edge: Option<(i64, i64)>,
    /// The partial hour at the older end.
    pub older_edge: Option<(i64, i64)>,
    /// Whole buckets in between, in no particular order.
    pub pieces: Vec<Piece>,
}

impl Plan {
    /// The split of the inclusive window `[start, end]`.
    pub fn of(start: Option<i64>, end: Option<i64>) -> Self {
        let start = start.unwrap_or(0);
        let stop = end.unwrap_or(MAX_EPOCH_MS) + 1;
        let (first, last) = (ceil(start, HOUR), floor(stop, HOUR));
        if first >= last {
            return Self {
                newer_edge: (start < stop).then_some((start, stop - 1)),
                older_edge: None,
                pieces: Vec::new(),
            };
        }
        let mut pieces = Vec::new();
        split(first, last, 0, &mut pieces);
        Self {
            newer_edge: (last < stop).then_some((last, stop - 1)),
            older_edge: (start < first).then_some((start, first - 1)),
            pieces,
        }
    }
}

fn split(from: i64, to: i64, level: usize, pieces: &mut Vec<Piece>) {
    let span = SPANS[level];
    let Some(&coarser) = SPANS.get(level + 1) else {
        pieces.push(Piece { span, from, to });
        return;
    };
    let (inner_from, inner_to) = (ceil(from, coarser), floor(to, coarser));
    if inner_from >= inner_to {
        pieces.push(Piece { span, from, to });
        return;
    }
    if from < inner_from {
        pieces.push(Piece {
            span,
            from,
            to: inner_from,
        });
    }
    split(inner_from, inner_to, level + 1, pieces);
    if inner_to < to {
        pieces.push(Piece {
            span,
            from: inner_to,
            to,
        });
    }
}

pub(super) fn floor(ms: i64, span: i64) -> i64 {
    ms - ms.rem_euclid(span)
}

pub(super) fn ceil(ms: i64, span: i64) -> i64 {
    floor(ms + span - 1, span)
}

/// What the tally reads from one database snapshot.
#[async_trait]
pub trait TallySource: Send {
    /// Counts a site's filtered records by reading them.
    async fn count_records(
        &mut self,
        site_pk: i64,
        filter: &HistoryFilter,
    ) -> Result<i64, sqlx::Error>;
    /// Counter sums per bucket among `pieces`, newest bucket first.
    async fn buckets(
        &mut self,
        site_pk: i64,
        facet: &str,
        filter: &HistoryFilter,
        pieces: &[Piece],
    ) -> Result<Vec<Bucket>, sqlx::Error>;
}

/// The exact number of records in a site's filtered history.
pub async fn total<S: TallySource + ?Sized>(
    source: &mut S,
    site_pk: i64,
    filter: &HistoryFilter,
) -> Result<i64, sqlx::Error> {
    let Some(facet) = facet(filter) else {
        return source.count_records(site_pk, filter).await;
    };
    let plan = Plan::of(filter.start, filter.end);
    let mut total = 0;
    for (from, to) in plan.newer_edge.into_iter().chain(plan.older_edge) {
        total += source
            .count_records(site_pk, &between(filter, from, to))
            .await?;
    }
    if !plan.pieces.is_empty() {
        let buckets = source
            .buckets(site_pk, &facet, filter, &plan.pieces)
            .await?;
        total += buckets.iter().map(|bucket| bucket.count).sum::<i64>();
    }
    Ok(total)
}

/// Where a page at `offset` starts: a filter whose newer end is moved past
/// every whole bucket the page lies below, and the offset left within it.
pub async fn seek<S: TallySource + ?Sized>(
    source: &mut S,
    site_pk: i64,
    filter: &HistoryFilter,
    offset: i64,
) -> Result<(HistoryFilter, i64), sqlx::Error> {
    let facet = match facet(filter) {
        Some(facet) if offset >= SEEK_FROM => facet,
        _ => return Ok((filter.clone(), offset)),
    };
    let plan = Plan::of(filter.start, filter.end);
    let mut skipped = 0;
    let mut newer_end = filter.end;
    if let Some((from, to)) = plan.newer_edge {
        let edge = source
            .count_records(site_pk, &between(filter, from, to))
            .await?;
        if offset < edge {
            return Ok((filter.clone(), offset));
        }
        skipped = edge;
        newer_end = Some(from - 1);
    }
    let mut pieces = plan.pieces;
    while !pieces.is_empty() {
        let buckets = source.buckets(site_pk, &facet, filter, &pieces).await?;
        pieces = Vec::new();
        for bucket in buckets {
            if offset - skipped >= bucket.count {
                skipped += bucket.count;
                newer_end = Some(bucket.start - 1);
                continue;
            }
            if let Some(finer) = SPANS.iter().rev().find(|&&span| span < bucket.span) {
                pieces.push(Piece {
                    span: *finer,
                    from: bucket.start,
                    to: bucket.start + bucket.span,
                });
            }
            break;
        }
    }
    let mut narrowed = filter.clone();
    narrowed.end = newer_end;
    Ok((narrowed, offset - skipped))
}

pub(super) fn between(filter: &HistoryFilter, from: i64, to: i64) -> HistoryFilter {
    HistoryFilter {
        start: Some(from),
        end: Some(to),
        ..filter.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one range `plan` covers; panics on a gap or an overlap.
    fn covered(plan: &Plan) -> (i64, i64) {
        let mut ranges: Vec<(i64, i64)> = plan
            .pieces
            .iter()
            .map(|piece| (piece.from, piece.to - 1))
            .chain(plan.newer_edge)
            .chain(plan.older_edge)
            .collect();
        ranges.sort();
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "gap or overlap in {ranges:?}");
        }
        (ranges[0].0, ranges[ranges.len() - 1].1)
    }

    #[test]
    fn a_window_is_covered_once_by_edges_and_whole_buckets() {
        let start = 5 * BLOCK - 3 * DAY - 2 * HOUR - 17;
        let end = 9 * BLOCK + 4 * DAY + 5 * HOUR + 12;
        let plan = Plan::of(Some(start), Some(end));

        assert_eq!(covered(&plan), (start, end));
        for piece in &plan.pieces {
            assert_eq!(piece.from % piece.span, 0);
            assert_eq!(piece.to % piece.span, 0);
        }
        assert!(plan.pieces.contains(&Piece {
            span: BLOCK,
            from: 5 * BLOCK,
            to: 9 * BLOCK
        }));
        assert_eq!(plan.older_edge, Some((start, start + 16)));
        assert_eq!(plan.newer_edge, Some((end - 12, end)));
    }

    #[test]
    fn a_window_inside_one_hour_is_all_edge() {
        let plan = Plan::of(Some(HOUR + 5), Some(2 * HOUR - 5));

        assert_eq!(plan.pieces, Vec::new());
        assert_eq!(plan.newer_edge, Some((HOUR + 5, 2 * HOUR - 5)));
        assert_eq!(plan.older_edge, None);
    }

    #[test]
    fn an_open_window_needs_no_edges() {
        let plan = Plan::of(None, None);

        assert_eq!((plan.newer_edge, plan.older_edge), (None, None));
        assert_eq!(covered(&plan), (0, MAX_EPOCH_MS));
    }

    #[test]
    fn changes_count_each_facet_and_span_once_and_cancel_out() {
        let record = Counted {
            site_pk: 7,
            created_at: BLOCK + DAY + HOUR + 1,
            status: 1,
            drm_type: Some(4),
            device_model: "Chrome",
        };
        let added = changes([record, record], 1);

        assert_eq!(added.len(), 9);
        assert!(added.iter().all(|(_, n)| *n == 2));
        assert!(added.iter().any(|(key, _)| key.facet == "model:Chrome"
            && key.span == DAY
            && key.bucket == BLOCK + DAY));
        let mut both = added.clone();
        both.extend(changes([record, record], -1));
        let mut sums = BTreeMap::new();
        for (key, n) in both {
            *sums.entry(key).or_insert(0) += n;
        }
        assert!(sums.values().all(|n| *n == 0));
    }
}
