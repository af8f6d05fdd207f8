//! History query strings (`GET /api/v1/license/statistics` and its export):
//! parameter decoding, paging, the time range and cursors. A query that is
//! accepted must read back the same once written out again, and a cursor
//! issued for it must lead back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multidrm::domain::cursor::Cursor;
use multidrm::domain::history::{HistoryQuery, SearchFilter, MAX_EPOCH_MS};
use multidrm::domain::params::{Page, ParamError, QueryParams, TimeRange, MAX_PAGE_NO};

/// Every parameter a history query reads, as the client spells it.
const KNOWN_PARAMS: [&str; 12] = [
    "siteId",
    "searchCondition",
    "searchKeyword",
    "startTime",
    "endTime",
    "status",
    "pageNo",
    "pageSize",
    "pageSizeNo",
    "cursor",
    "drmType",
    "platform",
];

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let params = QueryParams::parse(Some(raw));

    let page = Page::from_params(&params);
    if let Ok(page) = page {
        check_page(page);
    }
    if let Ok(range) = TimeRange::from_params(&params) {
        check_range(range);
    }

    match HistoryQuery::from_params(&params) {
        Ok(query) => {
            assert_eq!(Ok(query.page), page);
            check_query(&query, raw);
        }
        Err(error) => check_error(&error),
    }
});

fn check_page(page: Page) {
    assert!((1..=MAX_PAGE_NO).contains(&page.number), "{page:?}");
    assert!((1..=100).contains(&page.size), "{page:?}");
    assert!(page.offset() >= 0, "{page:?}");
}

fn check_range(range: TimeRange) {
    for bound in [range.start, range.end].into_iter().flatten() {
        assert!((0..=MAX_EPOCH_MS).contains(&bound), "{range:?}");
    }
    if let (Some(start), Some(end)) = (range.start, range.end) {
        assert!(start <= end, "{range:?}");
    }
}

fn check_error(error: &ParamError) {
    assert!(
        KNOWN_PARAMS.contains(&error.param.as_ref()),
        "a fault names {:?}, which the query does not read",
        error.param
    );
    assert!(!error.problem.is_empty());
}

fn check_query(query: &HistoryQuery, raw: &str) {
    assert!(!query.site_id.is_empty());
    if query.after.is_some() {
        assert_eq!(query.page.number, 1, "a cursor walk with a page number");
    }

    let written = write_query(query, query.after);
    let reread = HistoryQuery::from_params(&QueryParams::parse(Some(&written)));
    assert_eq!(reread.as_ref(), Ok(query), "{written:?} reads differently");

    // Any position a walk may reach: the numbers come from the input so that
    // the fuzzer varies them, including negative and extreme ones.
    let cursor = Cursor {
        created_at: query.filter.end.unwrap_or(i64::MAX),
        id: i64::MIN + raw.len() as i64,
    };
    let text = cursor.encode(&query.site_id, &query.filter);
    assert_eq!(
        Cursor::decode(&text, &query.site_id, &query.filter),
        Ok(cursor),
        "cursor {text:?} does not lead back"
    );

    let continued =
        HistoryQuery::from_params(&QueryParams::parse(Some(&write_query(query, Some(cursor)))));
    if query.page.number == 1 {
        let expected = HistoryQuery {
            after: Some(cursor),
            ..query.clone()
        };
        assert_eq!(continued, Ok(expected));
    } else {
        assert_eq!(continued.map_err(|error| error.param), Err("pageNo".into()));
    }
}

/// The query string a client would send for `query`, continuing at `after`.
fn write_query(query: &HistoryQuery, after: Option<Cursor>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("siteId", &query.site_id);
    if let Some(search) = &query.filter.search {
        let (condition, keyword) = match search {
            SearchFilter::ContentId(id) => ("contentId", id.as_str()),
            SearchFilter::DrmType(drm) => ("drmType", drm.name()),
            SearchFilter::UserId(id) => ("userId", id.as_str()),
            SearchFilter::DeviceId(id) => ("deviceId", id.as_str()),
            SearchFilter::DeviceModel(model) => ("deviceModel", model.as_str()),
        };
        out.append_pair("searchCondition", condition);
        out.append_pair("searchKeyword", keyword);
    }
    if let Some(start) = query.filter.start {
        out.append_pair("startTime", &start.to_string());
    }
    if let Some(end) = query.filter.end {
        out.append_pair("endTime", &end.to_string());
    }
    if let Some(status) = query.filter.status {
        out.append_pair("status", status.name());
    }
    if let Some(drm) = query.filter.drm_type {
        out.append_pair("drmType", drm.name());
    }
    if let Some(platform) = query.filter.platform {
        out.append_pair("platform", platform.name());
    }
    out.append_pair("pageNo", &query.page.number.to_string());
    out.append_pair("pageSize", &query.page.size.to_string());
    if let Some(cursor) = after {
        out.append_pair("cursor", &cursor.encode(&query.site_id, &query.filter));
    }
    out.finish()
}
