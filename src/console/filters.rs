//! The filter form shared by the history and statistics pages: site,
//! period (presets or custom dates in the history time zone), status, DRM
//! type, platform and search condition, turned into the API's query.

use axum::response::Response;
use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;
use maud::{html, Markup};

use super::page::{self, PageError};
use super::session::Console;
use crate::domain::device::Platform;
use crate::domain::drm::DrmType;
use crate::domain::params::{ParamError, QueryParams, MAX_PAGE_NO};
use crate::http::ApiError;
use crate::wire::SiteView;

const DAY_MS: i64 = 24 * 3_600_000;

/// The period presets: (value, label).
const PERIODS: [(&str, &str); 4] = [
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom"),
];

/// The search conditions of the history API: (value, label).
const CONDITIONS: [(&str, &str); 5] = [
    ("contentId", "Content id"),
    ("userId", "User id"),
    ("deviceId", "Device id"),
    ("deviceModel", "Device model"),
    ("drmType", "DRM type"),
];

/// Every parameter of the console's query, each given at most once.
const NAMES: [&str; 11] = [
    "siteId",
    "period",
    "from",
    "to",
    "status",
    "drmType",
    "platform",
    "searchCondition",
    "searchKeyword",
    "pageNo",
    "refresh",
];

/// The filters as the console's query string carries them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The chosen site; the first of the account's when none is.
    pub site_id: String,
    period: String,
    from: String,
    to: String,
    status: String,
    drm_type: String,
    platform: String,
    condition: String,
    keyword: String,
    /// 1-based page of the history table.
    pub page_no: i64,
    /// Whether the page reloads itself.
    pub refresh: bool,
}

/// Filters the console cannot use: the values as given, to show them
/// again in the form, and the first one at fault.
#[derive(Debug)]
pub struct Refused {
    /// The filters as given.
    pub filters: Filters,
    /// What is wrong with them.
    pub error: ParamError,
}

impl Refused {
    /// The page saying what is wrong above the form, with the status the
    /// API gives a bad parameter.
    pub fn page(
        self,
        console: &Console,
        title: &str,
        sites: &[SiteView],
        action: &str,
    ) -> Result<Response, PageError> {
        let form = self.filters.form(sites, action);
        page::refused_filters(console, title, form, ApiError::parameter(self.error))
    }
}

impl Filters {
    /// Reads the console's query. Without a site it takes the account's
    /// first, without a period the last 7 days. What the API never sees as
    /// given (a repeated parameter, the period and its dates, the page) is
    /// checked here, `pageNo` within the API's bounds; the site and the
    /// other filters are left to the API, which answers an unknown site or
    /// another account's as not found.
    pub fn read(query: Option<&str>, sites: &[SiteView]) -> Result<Self, Box<Refused>> {
        let params = QueryParams::parse(query);
        let text = |name: &'static str| params.get(name).ok().flatten().unwrap_or("").to_owned();
        let site_id = match text("siteId") {
            chosen if chosen.is_empty() => sites
                .first()
                .map(|site| site.site_id.clone())
                .unwrap_or_default(),
            chosen => chosen,
        };
        let period = match text("period") {
            period if period.is_empty() => "7d".to_owned(),
            period => period,
        };
        let mut filters = Self {
            site_id,
            period,
            from: text("from"),
            to: text("to"),
            status: text("status"),
            drm_type: text("drmType"),
            platform: text("platform"),
            condition: text("searchCondition"),
            keyword: text("searchKeyword"),
            page_no: 1,
            refresh: text("refresh") == "on",
        };
        match filters.check(&params) {
            Ok(page_no) => {
                filters.page_no = page_no;
                Ok(filters)
            }
            Err(error) => Err(Box::new(Refused { filters, error })),
        }
    }

    /// The first fault among what the API does not see as given; else the
    /// page number.
    fn check(&self, params: &QueryParams) -> Result<i64, ParamError> {
        for name in NAMES {
            params.get(name)?;
        }
        if !PERIODS.iter().any(|(value, _)| *value == self.period) {
            return Err(ParamError::new(
                "period",
                "must be today, 7d, 30d or custom",
            ));
        }
        let from = day("from", &self.from)?;
        let to = day("to", &self.to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(ParamError::new("to", "is before from"));
            }
        }
        Ok(params.integer("pageNo", 1..=MAX_PAGE_NO)?.unwrap_or(1))
    }

    /// The console query of these filters, for links.
    pub fn console_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("siteId", &self.site_id)
            .append_pair("period", &self.period);
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("status", &self.status),
            ("drmType", &self.drm_type),
            ("platform", &self.platform),
            ("searchCondition", &self.condition),
            ("searchKeyword", &self.keyword),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if self.page_no > 1 {
            query.append_pair("pageNo", &self.page_no.to_string());
        }
        if self.refresh {
            query.append_pair("refresh", "on");
        }
        query.finish()
    }

    /// The history API's query for these filters, the period fixed to
    /// epoch ms at `now`, without paging.
    pub fn api_query(&self, now: i64, zone: Tz) -> String {
        let (start, end) = self.window(now, zone);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("siteId", &self.site_id);
        if let Some(start) = start {
            query.append_pair("startTime", &start.to_string());
        }
        if let Some(end) = end {
            query.append_pair("endTime", &end.to_string());
        }
        for (name, value) in [
            ("status", &self.status),
            ("drmType", &self.drm_type),
            ("platform", &self.platform),
            ("searchCondition", &self.condition),
            ("searchKeyword", &self.keyword),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// The period as inclusive epoch ms bounds.
    pub fn window(&self, now: i64, zone: Tz) -> (Option<i64>, Option<i64>) {
        match self.period.as_str() {
            "today" => (day_start(now, zone), Some(now)),
            "30d" => (Some((now - 30 * DAY_MS).max(0)), Some(now)),
            "custom" => {
                let from = date(&self.from).and_then(|day| midnight(day, zone));
                let to = date(&self.to)
                    .and_then(|day| day.checked_add_days(Days::new(1)))
                    .and_then(|day| midnight(day, zone))
                    .map(|next| next - 1);
                (from, to)
            }
            _ => (Some((now - 7 * DAY_MS).max(0)), Some(now)),
        }
    }

    /// The filter form; `action` is the page it reloads.
    pub fn form(&self, sites: &[SiteView], action: &str) -> Markup {
        html! {
            form.filters method="get" action=(action) aria-label="Filters" {
                div.field {
                    label for="f-site" { "Site" }
                    select #f-site name="siteId" {
                        // A site beyond the listed ones, or one the API refused.
                        @if !self.site_id.is_empty() && !sites.iter().any(|site| site.site_id == self.site_id) {
                            option value=(self.site_id) selected { (self.site_id) }
                        }
                        @for site in sites {
                            option value=(site.site_id) selected[site.site_id == self.site_id] {
                                (site.site_name) " (" (site.site_id) ")"
                            }
                        }
                    }
                }
                div.field {
                    label for="f-period" { "Period" }
                    select #f-period name="period" {
                        @for (value, label) in PERIODS {
                            option value=(value) selected[self.period == value] { (label) }
                        }
                    }
                }
                div.field {
                    label for="f-from" { "From (custom)" }
                    input #f-from type="date" name="from" value=(self.from);
                }
                div.field {
                    label for="f-to" { "To (custom)" }
                    input #f-to type="date" name="to" value=(self.to);
                }
                div.field {
                    label for="f-status" { "Status" }
                    select #f-status name="status" {
                        option value="" { "Any" }
                        option value="success" selected[self.status == "success"] { "Success" }
                        option value="fail" selected[self.status == "fail"] { "Fail" }
                    }
                }
                div.field {
                    label for="f-drm" { "DRM type" }
                    select #f-drm name="drmType" {
                        option value="" { "Any" }
                        @for drm in DrmType::ALL {
                            option value=(drm.name()) selected[self.drm_type == drm.name()] { (drm.name()) }
                        }
                    }
                }
                div.field {
                    label for="f-platform" { "Platform" }
                    select #f-platform name="platform" {
                        option value="" { "Any" }
                        @for platform in Platform::ALL {
                            option value=(platform.name()) selected[self.platform == platform.name()] { (platform.name()) }
                        }
                    }
                }
                div.field {
                    label for="f-condition" { "Search condition" }
                    select #f-condition name="searchCondition" {
                        option value="" { "None" }
                        @for (value, label) in CONDITIONS {
                            option value=(value) selected[self.condition == value] { (label) }
                        }
                    }
                }
                div.field {
                    label for="f-keyword" { "Keyword" }
                    input #f-keyword type="search" name="searchKeyword" value=(self.keyword);
                }
                @if self.refresh {
                    input type="hidden" name="refresh" value="on";
                }
                div.field.actions {
                    button type="submit" { "Apply" }
                }
            }
        }
    }
}

/// A day of a custom period, `yyyy-mm-dd`, whose midnight in any time
/// zone is an epoch ms the API accepts.
fn date(text: &str) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let first = NaiveDate::from_ymd_opt(1970, 1, 2)?;
    let last = NaiveDate::from_ymd_opt(9999, 12, 30)?;
    (first..=last).contains(&day).then_some(day)
}

/// The day parameter `name` holds, if any.
fn day(name: &'static str, text: &str) -> Result<Option<NaiveDate>, ParamError> {
    if text.is_empty() {
        return Ok(None);
    }
    date(text).map(Some).ok_or_else(|| {
        ParamError::new(
            name,
            "must be a date from 1970-01-02 to 9999-12-30 (yyyy-mm-dd)",
        )
    })
}

fn midnight(day: NaiveDate, zone: Tz) -> Option<i64> {
    zone.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|time| time.timestamp_millis())
}

fn day_start(now: i64, zone: Tz) -> Option<i64> {
    let today = zone.timestamp_millis_opt(now).single()?.date_naive();
    midnight(today, zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::MAX_EPOCH_MS;

    /// 2026-12-03T03:00:00Z, noon in Seoul.
    const NOW: i64 = 1_796_266_800_000;

    fn filters(query: &str) -> Filters {
        Filters::read(Some(query), &[]).expect("usable filters")
    }

    fn refused(query: &str) -> ParamError {
        Filters::read(Some(query), &[])
            .expect_err("refused filters")
            .error
    }

    #[test]
    fn presets_end_now_and_today_starts_at_midnight_in_the_history_zone() {
        let seoul = chrono_tz::Asia::Seoul;

        assert_eq!(
            filters("period=today").window(NOW, chrono_tz::UTC),
            (Some(NOW - 3 * 3_600_000), Some(NOW))
        );
        assert_eq!(
            filters("period=today").window(NOW, seoul),
            (Some(NOW - 12 * 3_600_000), Some(NOW))
        );
        assert_eq!(
            filters("period=30d").window(NOW, seoul),
            (Some(NOW - 30 * DAY_MS), Some(NOW))
        );
        assert_eq!(
            filters("").window(NOW, seoul),
            (Some(NOW - 7 * DAY_MS), Some(NOW))
        );
    }

    #[test]
    fn unknown_periods_bad_dates_pages_and_repeats_are_refused_by_name() {
        let date = "must be a date from 1970-01-02 to 9999-12-30 (yyyy-mm-dd)";
        let page = "must be an integer from 1 to 100000000";

        assert_eq!(
            refused("period=forever"),
            ParamError::new("period", "must be today, 7d, 30d or custom")
        );
        assert_eq!(
            refused("period=custom&from=garbage&to=x"),
            ParamError::new("from", date)
        );
        assert_eq!(refused("from=2026-12-01&to=x"), ParamError::new("to", date));
        assert_eq!(refused("from=1970-01-01"), ParamError::new("from", date));
        assert_eq!(refused("to=9999-12-31"), ParamError::new("to", date));
        assert_eq!(
            refused("from=2026-12-02&to=2026-12-01"),
            ParamError::new("to", "is before from")
        );
        assert_eq!(refused("pageNo=0"), ParamError::new("pageNo", page));
        assert_eq!(
            refused("pageNo=99999999999"),
            ParamError::new("pageNo", page)
        );
        assert_eq!(
            refused("siteId=a&siteId=b"),
            ParamError::new("siteId", "is given more than once")
        );
        assert_eq!(filters("pageNo=100000000").page_no, 100_000_000);
        let widest = filters("period=custom&from=1970-01-02&to=9999-12-30");
        assert_eq!(
            widest.window(NOW, chrono_tz::Etc::GMTMinus14).0,
            Some(DAY_MS - 14 * 3_600_000)
        );
        assert_eq!(
            widest.window(NOW, chrono_tz::Etc::GMTPlus12).1,
            Some(MAX_EPOCH_MS - 12 * 3_600_000)
        );
    }

    #[test]
    fn a_refusal_keeps_the_values_as_given_for_the_form() {
        let refused = Filters::read(Some("siteId=s&period=custom&from=garbage&status=fail"), &[])
            .expect_err("refused filters");

        assert_eq!(
            refused.filters.console_query(),
            "siteId=s&period=custom&from=garbage&status=fail"
        );
    }

    #[test]
    fn custom_dates_cover_whole_days_and_may_be_open() {
        let both = filters("period=custom&from=2026-12-01&to=2026-12-02");
        let open = filters("period=custom&to=2026-12-02");

        assert_eq!(
            both.window(NOW, chrono_tz::UTC),
            (
                Some(NOW - 2 * DAY_MS - 3 * 3_600_000),
                Some(NOW - 3 * 3_600_000 - 1)
            )
        );
        assert_eq!(
            open.window(NOW, chrono_tz::UTC),
            (None, Some(NOW - 3 * 3_600_000 - 1))
        );
    }

    #[test]
    fn the_api_query_carries_the_filters_but_not_the_page() {
        let chosen = filters(
            "siteId=s&period=custom&from=2026-12-01&status=fail&drmType=Widevine&platform=PLATFORM_TV&searchCondition=contentId&searchKeyword=a%26b&pageNo=3&refresh=on",
        );

        assert_eq!(
            chosen.api_query(NOW, chrono_tz::UTC),
            "siteId=s&startTime=1796083200000&status=fail&drmType=Widevine&platform=PLATFORM_TV&searchCondition=contentId&searchKeyword=a%26b"
        );
        assert_eq!(chosen.page_no, 3);
        assert!(chosen.refresh);
        assert!(chosen.console_query().ends_with("&pageNo=3&refresh=on"));
    }
}
