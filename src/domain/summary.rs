//! The history summary [extension]: `GET /api/v1/license/statistics/summary`
//! answers, for the filters of the history query, licenses over time by
//! status, counts by DRM type and by platform, and the most frequent
//! failure reasons. Charts and the command line read it.

use super::drm::DrmType;
use super::history::{HistoryFilter, MAX_EPOCH_MS};
use super::params::{ParamError, QueryParams};

/// Failure reasons a summary lists at most.
pub const TOP_FAILURES: i64 = 10;

/// Windows up to this long are summarised by the hour, longer ones by the day.
const HOURLY_UP_TO_MS: i64 = 2 * 24 * 3_600_000;

/// Length of one time-series bucket; buckets are aligned to UTC hours or
/// days, the spans the history counters keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

impl Interval {
    /// Length in ms.
    pub fn ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 24 * 3_600_000,
        }
    }

    /// The wire name: `hour` or `day`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// `interval` when given, else by the hour for a window of two days at
    /// most and by the day otherwise.
    pub fn from_params(params: &QueryParams, filter: &HistoryFilter) -> Result<Self, ParamError> {
        match params.get("interval")? {
            Some("hour") => Ok(Self::Hour),
            Some("day") => Ok(Self::Day),
            Some(_) => Err(ParamError::new("interval", "must be hour or day")),
            None => {
                let width = filter.end.unwrap_or(MAX_EPOCH_MS) - filter.start.unwrap_or(0);
                Ok(match width <= HOURLY_UP_TO_MS {
                    true => Self::Hour,
                    false => Self::Day,
                })
            }
        }
    }
}

/// Licenses that started in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesBucket {
    /// Start of the bucket, epoch ms.
    pub start: i64,
    /// Issued licenses.
    pub success: i64,
    /// Refused requests.
    pub fail: i64,
}

/// How many records one failure reason has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// Error code, e.g. `289004`.
    pub code: String,
    /// Error name, e.g. `DRM_TYPE_NOT_ALLOWED`.
    pub name: String,
    /// Records with it.
    pub count: i64,
}

/// Aggregates over one site's filtered history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorySummary {
    /// Every matching record.
    pub total: i64,
    /// Non-empty buckets, oldest first.
    pub series: Vec<SeriesBucket>,
    /// Non-zero counts per DRM type in [`DrmType::ALL`] order, then records
    /// whose token named none (`None`).
    pub by_drm_type: Vec<(Option<DrmType>, i64)>,
    /// Counts per platform wire name, largest first.
    pub by_platform: Vec<(String, i64)>,
    /// The most frequent failure reasons, largest first.
    pub top_failures: Vec<FailureCount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(query: &str, start: Option<i64>, end: Option<i64>) -> Result<Interval, ParamError> {
        let filter = HistoryFilter {
            start,
            end,
            ..HistoryFilter::default()
        };
        Interval::from_params(&QueryParams::parse(Some(query)), &filter)
    }

    #[test]
    fn short_windows_are_hourly_and_long_or_open_ones_daily() {
        assert_eq!(
            interval("", Some(0), Some(HOURLY_UP_TO_MS)),
            Ok(Interval::Hour)
        );
        assert_eq!(
            interval("", Some(0), Some(HOURLY_UP_TO_MS + 1)),
            Ok(Interval::Day)
        );
        assert_eq!(interval("", Some(5), None), Ok(Interval::Day));
        assert_eq!(interval("interval=hour", None, None), Ok(Interval::Hour));
        assert_eq!(
            interval("interval=week", None, None).unwrap_err().param,
            "interval"
        );
    }
}
