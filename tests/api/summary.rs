//! `GET /api/v1/license/statistics/summary` [extension] over a seeded data
//! set whose answers are stated here: series by status from counters and
//! partial hours, counts by DRM type and platform, failure reasons,
//! filters, and accounts that cannot see each other.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const KNOWN_KID: &str = "ESIzRFVmd4iZAKq7zN3u_w";
const UNKNOWN_KID: &str = "EHfv7MCyTQKs4zweUuL7Sw";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// s0..s5: (time, DRM type, kid, user agent). T0 is 03:00 UTC, so the day
/// buckets start at T0 - 3 h.
fn data_set() -> [(i64, &'static str, &'static str, &'static str); 6] {
    [
        (T0 - 2 * DAY + 10 * MINUTE, "ClearKey", KNOWN_KID, LINUX),
        (T0 - 2 * DAY + 20 * MINUTE, "ClearKey", KNOWN_KID, WINDOWS),
        (T0 - DAY + 30 * MINUTE, "ClearKey", UNKNOWN_KID, LINUX),
        (T0 - 150 * MINUTE, "Widevine", KNOWN_KID, LINUX),
        (T0 - 20 * MINUTE, "ClearKey", KNOWN_KID, LINUX),
        (T0 - 10 * MINUTE, "ClearKey", UNKNOWN_KID, WINDOWS),
    ]
}

async fn seeded_app() -> TestApp {
    let app = TestApp::spawn().await;
    for (at, drm, kid, agent) in data_set() {
        app.set_time(at);
        app.signed(Method::POST, "/api/v1/license")
            .header("x-drm-token", token(SITE1, "content-0001", drm, "user-a"))
            .header("user-agent", agent)
            .body(format!(r#"{{"kids":["{kid}"],"type":"temporary"}}"#))
            .send()
            .await
            .unwrap();
    }
    app.set_time(T0);
    app
}

async fn summary(app: &TestApp, query: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/v1/license/statistics/summary?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["content"].clone()
}

fn bucket(start: i64, success: i64, fail: i64) -> Value {
    json!({ "start": start, "success": success, "fail": fail })
}

#[tokio::test]
async fn the_whole_history_is_summarised_by_day() {
    let app = seeded_app().await;

    let content = summary(&app, &format!("siteId={SITE1}")).await;

    assert_eq!(
        content,
        json!({
            "total": 6,
            "interval": "day",
            "series": [
                bucket(T0 - 2 * DAY - 3 * HOUR, 2, 0),
                bucket(T0 - DAY - 3 * HOUR, 0, 1),
                bucket(T0 - 3 * HOUR, 1, 2),
            ],
            "byDrmType": [
                { "drmType": "Widevine", "count": 1 },
                { "drmType": "ClearKey", "count": 5 },
            ],
            "byPlatform": [
                { "platformName": "PLATFORM_LINUX", "count": 4 },
                { "platformName": "PLATFORM_WINDOWS", "count": 2 },
            ],
            "topFailures": [
                { "errorCode": "2810012", "errorName": "LICENSE_DRM_INFO_NOT_FOUND", "count": 2 },
                { "errorCode": "289010", "errorName": "UPSTREAM_NOT_CONFIGURED", "count": 1 },
            ],
        })
    );
}

#[tokio::test]
async fn a_window_inside_two_days_is_summarised_by_the_hour_with_partial_ends() {
    let app = seeded_app().await;
    // From 03:15 on the day before to 02:45: s2 lies in the partial first
    // hour, s3 in a whole hour read from the counters, s4 in the partial last.
    let window = format!(
        "siteId={SITE1}&startTime={}&endTime={}",
        T0 - DAY + 15 * MINUTE,
        T0 - 15 * MINUTE
    );

    let content = summary(&app, &window).await;

    assert_eq!(content["total"], 3);
    assert_eq!(content["interval"], "hour");
    assert_eq!(
        content["series"],
        json!([
            bucket(T0 - DAY, 0, 1),
            bucket(T0 - 3 * HOUR, 0, 1),
            bucket(T0 - HOUR, 1, 0),
        ])
    );
    assert_eq!(
        content["byDrmType"],
        json!([{ "drmType": "Widevine", "count": 1 }, { "drmType": "ClearKey", "count": 2 }])
    );
    assert_eq!(
        content["byPlatform"],
        json!([{ "platformName": "PLATFORM_LINUX", "count": 3 }])
    );
    assert_eq!(content["topFailures"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn drm_type_platform_and_status_filters_narrow_every_part() {
    let app = seeded_app().await;

    let windows_clearkey = summary(
        &app,
        &format!("siteId={SITE1}&drmType=clearkey&platform=PLATFORM_WINDOWS&interval=day"),
    )
    .await;
    let successes = summary(&app, &format!("siteId={SITE1}&status=success")).await;
    let hourly = summary(&app, &format!("siteId={SITE1}&status=fail&interval=hour")).await;

    assert_eq!(windows_clearkey["total"], 2);
    assert_eq!(
        windows_clearkey["series"],
        json!([
            bucket(T0 - 2 * DAY - 3 * HOUR, 1, 0),
            bucket(T0 - 3 * HOUR, 0, 1)
        ])
    );
    assert_eq!(
        windows_clearkey["byDrmType"],
        json!([{ "drmType": "ClearKey", "count": 2 }])
    );
    assert_eq!(
        windows_clearkey["topFailures"],
        json!([{ "errorCode": "2810012", "errorName": "LICENSE_DRM_INFO_NOT_FOUND", "count": 1 }])
    );
    assert_eq!(successes["total"], 3);
    assert_eq!(successes["topFailures"], json!([]));
    assert_eq!(
        successes["byPlatform"],
        json!([
            { "platformName": "PLATFORM_LINUX", "count": 2 },
            { "platformName": "PLATFORM_WINDOWS", "count": 1 },
        ])
    );
    assert_eq!(
        hourly["series"],
        json!([
            bucket(T0 - DAY, 0, 1),
            bucket(T0 - 3 * HOUR, 0, 1),
            bucket(T0 - HOUR, 0, 1),
        ])
    );
}

#[tokio::test]
async fn the_list_takes_the_same_drm_type_and_platform_filters() {
    let app = seeded_app().await;

    let (status, body) = app
        .history(&format!(
            "siteId={SITE1}&drmType=ClearKey&platform=PLATFORM_WINDOWS"
        ))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    let times: Vec<&Value> = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| &record["licenseCreatedAt"])
        .collect();
    assert_eq!(
        times,
        [&json!(T0 - 10 * MINUTE), &json!(T0 - 2 * DAY + 20 * MINUTE)]
    );
}

#[tokio::test]
async fn another_accounts_site_is_not_found_and_its_own_summary_is_empty() {
    let app = seeded_app().await;

    let (foreign, body) = app
        .call_as(
            KEY2,
            SECRET2,
            Method::GET,
            &format!("/api/v1/license/statistics/summary?siteId={SITE1}"),
            None,
        )
        .await;
    let (own, own_body) = app
        .call_as(
            KEY2,
            SECRET2,
            Method::GET,
            &format!("/api/v1/license/statistics/summary?siteId={SITE2}"),
            None,
        )
        .await;

    assert_eq!(foreign, StatusCode::NOT_FOUND);
    assert_service_error(&body, "281003");
    assert_eq!(own, StatusCode::OK);
    assert_eq!(
        own_body["content"],
        json!({
            "total": 0, "interval": "day", "series": [], "byDrmType": [],
            "byPlatform": [], "topFailures": [],
        })
    );
}

#[tokio::test]
async fn bad_summary_parameters_are_400_naming_them_and_unsigned_calls_401() {
    let app = TestApp::spawn().await;
    let path = "/api/v1/license/statistics/summary";

    let (week, week_body) = app
        .get_json(&format!("{path}?siteId={SITE1}&interval=week"))
        .await;
    let (platform, platform_body) = app
        .get_json(&format!("{path}?siteId={SITE1}&platform=linux"))
        .await;
    let (no_site, no_site_body) = app.get_json(&format!("{path}?interval=day")).await;
    let unsigned = app
        .client
        .get(app.url(&format!("{path}?siteId={SITE1}")))
        .send()
        .await
        .unwrap();
    let (unsigned_status, unsigned_body) = json_of(unsigned).await;

    assert_eq!(week, StatusCode::BAD_REQUEST);
    assert_service_error(&week_body, "280003");
    assert!(week_body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("interval"));
    assert_eq!(platform, StatusCode::BAD_REQUEST);
    assert!(platform_body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("platform"));
    assert_eq!(no_site, StatusCode::BAD_REQUEST);
    assert!(no_site_body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("siteId"));
    assert_auth_failure(unsigned_status, &unsigned_body);
}
