//! The filter form shared by the history and statistics pages: site,
//! period (presets or custom dates in the history time zone), status, DRM
//! type, platform and search condition, turned into the API's query.

use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;
use maud::{html, Markup};

use crate::domain::device::Platform;
use crate::domain::drm::DrmType;
use crate::domain::params::QueryParams;
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

impl Filters {
    /// Reads the console's query; unknown or repeated values fall back to
    /// their defaults, and the API judges the rest.
    pub fn read(query: Option<&str>, sites: &[SiteView]) -> Self {
        let params = QueryParams::parse(query);
        let text = |name: &'static str| params.get(name).ok().flatten().unwrap_or("").to_owned();
        let chosen = text("siteId");
        let site_id = sites
            .iter()
            .find(|site| site.site_id == chosen)
            .or(sites.first())
            .map(|site| site.site_id.clone())
            .unwrap_or(chosen);
        let period = text("period");
        let period = match PERIODS.iter().any(|(value, _)| *value == period) {
            true => period,
            false => "7d".to_owned(),
        };
        Self {
            site_id,
            period,
            from: text("from"),
            to: text("to"),
            status: text("status"),
            drm_type: text("drmType"),
            platform: text("platform"),
            condition: text("searchCondition"),
            keyword: text("searchKeyword"),
            page_no: params
                .integer("pageNo", 1..=100_000)
                .ok()
                .flatten()
                .unwrap_or(1),
            refresh: text("refresh") == "on",
        }
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

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
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

    /// 2026-12-03T03:00:00Z, noon in Seoul.
    const NOW: i64 = 1_796_266_800_000;

    fn filters(query: &str) -> Filters {
        Filters::read(Some(query), &[])
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
            filters("period=forever").window(NOW, seoul),
            (Some(NOW - 7 * DAY_MS), Some(NOW))
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
