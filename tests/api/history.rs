//! The history API over a seeded data set whose answers are stated here:
//! each filter alone and combined, ordering, paging walks, time zones.

use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const LINUX_CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const WINDOWS_FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const KID_0001: &str = "ESIzRFVmd4iZAKq7zN3u_w";
const KID_0002: &str = "ASNFZ4mrze8BI0VniavN7w";
const KID_UNKNOWN: &str = "EHfv7MCyTQKs4zweUuL7Sw";

/// One license request of the data set.
struct Seed {
    at: i64,
    user: &'static str,
    content: &'static str,
    drm: &'static str,
    kid: &'static str,
    device: &'static str,
    agent: &'static str,
}

fn t(i: i64) -> i64 {
    T0 - 10_000 + i * 1000
}

/// r0..r5; r4 and r5 share a millisecond so the id breaks the tie.
fn data_set() -> Vec<Seed> {
    let seed = |at, user, content, drm, kid, device, agent| Seed {
        at,
        user,
        content,
        drm,
        kid,
        device,
        agent,
    };
    vec![
        seed(
            t(0),
            "user-a",
            "content-0001",
            "ClearKey",
            KID_0001,
            "dev-1",
            LINUX_CHROME,
        ),
        seed(
            t(1),
            "user-b",
            "content-0001",
            "ClearKey",
            KID_0001,
            "dev-2",
            WINDOWS_FIREFOX,
        ),
        seed(
            t(2),
            "user-a",
            "content-0002",
            "ClearKey",
            KID_0002,
            "dev-1",
            LINUX_CHROME,
        ),
        seed(
            t(3),
            "user-c",
            "content-0001",
            "ClearKey",
            KID_UNKNOWN,
            "dev-3",
            LINUX_CHROME,
        ),
        seed(
            t(4),
            "user-a",
            "content-0001",
            "Widevine",
            KID_0001,
            "dev-2",
            LINUX_CHROME,
        ),
        seed(
            t(4),
            "user-b",
            "content-0003",
            "ClearKey",
            KID_0001,
            "dev-1",
            LINUX_CHROME,
        ),
    ]
}

async fn seeded_app() -> TestApp {
    let app = TestApp::spawn().await;
    for seed in data_set() {
        app.set_time(seed.at);
        app.signed(Method::POST, "/api/v1/license")
            .header(
                "x-drm-token",
                token(SITE1, seed.content, seed.drm, seed.user),
            )
            .header("x-drm-device-id", seed.device)
            .header("user-agent", seed.agent)
            .body(format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, seed.kid))
            .send()
            .await
            .unwrap();
    }
    app.set_time(T0);
    app
}

/// The records a query returns, as indexes into the data set.
async fn indexes(app: &TestApp, filter: &str) -> Vec<usize> {
    let (status, body) = app
        .history(&format!("siteId={SITE1}&pageSize=100{filter}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    let seeds = data_set();
    let records = body["content"].as_array().unwrap();
    assert_eq!(
        body["total"],
        records.len(),
        "{filter}: total differs from the rows"
    );
    records
        .iter()
        .map(|record| index_of(&seeds, record))
        .collect()
}

fn index_of(seeds: &[Seed], record: &Value) -> usize {
    let matches = |seed: &Seed| {
        record["licenseCreatedAt"] == seed.at
            && record["contentId"] == seed.content
            && record["deviceId"] == seed.device
    };
    seeds
        .iter()
        .position(matches)
        .unwrap_or_else(|| panic!("unexpected record {record}"))
}

#[tokio::test]
async fn history_is_newest_first_with_the_record_id_breaking_ties() {
    let app = seeded_app().await;

    assert_eq!(indexes(&app, "").await, [5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn each_search_condition_matches_exactly() {
    let app = seeded_app().await;
    let user_a_md5 = hex::encode(Md5::digest(b"user-a"));

    assert_eq!(
        indexes(
            &app,
            "&searchCondition=contentId&searchKeyword=content-0001"
        )
        .await,
        [4, 3, 1, 0]
    );
    assert_eq!(
        indexes(&app, "&searchCondition=contentId&searchKeyword=content-000").await,
        Vec::<usize>::new()
    );
    assert_eq!(
        indexes(&app, "&searchCondition=drmType&searchKeyword=clearkey").await,
        [5, 3, 2, 1, 0]
    );
    assert_eq!(
        indexes(&app, "&searchCondition=drmType&searchKeyword=WIDEVINE").await,
        [4]
    );
    assert_eq!(
        indexes(&app, "&searchCondition=userId&searchKeyword=user-a").await,
        [4, 2, 0]
    );
    assert_eq!(
        indexes(
            &app,
            &format!("&searchCondition=userId&searchKeyword={user_a_md5}")
        )
        .await,
        [4, 2, 0]
    );
    assert_eq!(
        indexes(&app, "&searchCondition=deviceId&searchKeyword=dev-1").await,
        [5, 2, 0]
    );
    assert_eq!(
        indexes(
            &app,
            "&searchCondition=deviceModel&searchKeyword=Firefox-Windows-x86_64-133"
        )
        .await,
        [1]
    );
}

#[tokio::test]
async fn status_and_time_filters_work_alone_and_combined() {
    let app = seeded_app().await;

    assert_eq!(indexes(&app, "&status=fail").await, [4, 3]);
    assert_eq!(indexes(&app, "&status=SUCCESS").await, [5, 2, 1, 0]);
    assert_eq!(
        indexes(&app, &format!("&startTime={}&endTime={}", t(1), t(3))).await,
        [3, 2, 1]
    );
    assert_eq!(indexes(&app, &format!("&startTime={}", t(4))).await, [5, 4]);
    assert_eq!(
        indexes(
            &app,
            &format!(
                "&searchCondition=contentId&searchKeyword=content-0001&status=success&startTime={}",
                t(1)
            )
        )
        .await,
        [1]
    );
    assert_eq!(
        indexes(
            &app,
            "&searchCondition=userId&searchKeyword=user-a&status=fail"
        )
        .await,
        [4]
    );
    assert_eq!(
        indexes(
            &app,
            &format!(
                "&searchCondition=deviceId&searchKeyword=dev-1&endTime={}",
                t(2)
            )
        )
        .await,
        [2, 0]
    );
}

#[tokio::test]
async fn records_carry_every_documented_field() {
    let app = seeded_app().await;

    let (_, body) = app.history(&format!("siteId={SITE1}&status=fail")).await;

    let widevine = &body["content"][0];
    assert_eq!(widevine["siteId"], SITE1);
    assert_eq!(widevine["drmType"], "Widevine");
    assert_eq!(widevine["userId"], hex::encode(Md5::digest(b"user-a")));
    assert_eq!(widevine["platformName"], "PLATFORM_LINUX");
    assert_eq!(widevine["deviceModel"], "Chrome-Linux-x86_64-131");
    assert_eq!(widevine["licenseCreatedTime"], "20261203025954");
    assert_eq!(widevine["licenseCreatedAt"], t(4));
    assert_eq!(widevine["errorName"], "UPSTREAM_NOT_CONFIGURED");
    let unknown_kid = &body["content"][1];
    assert_eq!(unknown_kid["errorCode"], "2810012");
}

#[tokio::test]
async fn a_paging_walk_returns_every_record_exactly_once() {
    let app = seeded_app().await;

    let mut seen = Vec::new();
    for page in 1..=3 {
        let (_, body) = app
            .history(&format!("siteId={SITE1}&pageSize=2&pageNo={page}"))
            .await;
        assert_eq!(body["total"], 6);
        let seeds = data_set();
        seen.extend(
            body["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| index_of(&seeds, record)),
        );
    }

    assert_eq!(seen, [5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn a_walk_with_end_time_pinned_is_stable_while_licenses_arrive() {
    let app = seeded_app().await;
    let pinned = format!("siteId={SITE1}&pageSize=4&endTime={T0}");

    let (_, first) = app.history(&format!("{pinned}&pageNo=1")).await;
    for i in 1..=5 {
        app.set_time(T0 + i);
        let response = app
            .issue_license(
                &token(SITE1, "content-0001", "ClearKey", "late-user"),
                format!(r#"{{"kids":["{KID_0001}"]}}"#),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, second) = app.history(&format!("{pinned}&pageNo=2")).await;
    let (_, everything) = app.history(&format!("siteId={SITE1}")).await;

    let seeds = data_set();
    let walked: Vec<usize> = [&first, &second]
        .iter()
        .flat_map(|page| {
            page["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| index_of(&seeds, record))
        })
        .collect();
    assert_eq!(walked, [5, 4, 3, 2, 1, 0]);
    assert_eq!(second["total"], 6);
    assert_eq!(everything["total"], 11);
}

#[tokio::test]
async fn created_time_follows_the_configured_zone_and_not_the_machines() {
    let app =
        TestApp::spawn_with(|settings| settings.history_time_zone = "Asia/Seoul".to_owned()).await;
    std::env::set_var("TZ", "America/New_York");

    let response = app
        .issue_license(
            &token(SITE1, "content-0001", "ClearKey", "u"),
            format!(r#"{{"kids":["{KID_0001}"]}}"#),
        )
        .await;
    let (_, body) = app.history(&format!("siteId={SITE1}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body["content"][0]["licenseCreatedTime"], "20261203120000");
    assert_eq!(body["content"][0]["licenseCreatedAt"], T0);
}

#[tokio::test]
async fn history_parameters_are_validated_by_name() {
    let app = TestApp::spawn().await;
    let cases = [
        ("pageNo=1", "siteId"),
        (
            "siteId=x&searchCondition=title&searchKeyword=a",
            "searchCondition",
        ),
        ("siteId=x&searchCondition=contentId", "searchKeyword"),
        ("siteId=x&searchKeyword=a", "searchCondition"),
        ("siteId=x&status=ok", "status"),
        ("siteId=x&endTime=soon", "endTime"),
    ];

    for (query, param) in cases {
        let (status, body) = app.history(query).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_service_error(&body, "280003");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(param),
            "{query}: {body}"
        );
    }
    let (status, body) = app.history("siteId=drm-20991231000000-NOPE0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_service_error(&body, "281003");
}

/// Follows `nextCursor` from the first page; answers the records in walk order.
async fn walk_with_cursor(
    app: &TestApp,
    query: &str,
    between_pages: impl Fn(usize) -> Option<i64>,
) -> Vec<usize> {
    let seeds = data_set();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let url = match &cursor {
            Some(cursor) => format!("{query}&cursor={cursor}"),
            None => query.to_owned(),
        };
        let (status, body) = app.history(&url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(
            body["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| index_of(&seeds, record)),
        );
        let Some(next) = body["nextCursor"].as_str() else {
            break;
        };
        cursor = Some(next.to_owned());
        if let Some(at) = between_pages(page) {
            app.set_time(at);
            let late = token(SITE1, "content-0001", "ClearKey", "late-user");
            assert_eq!(
                app.issue_license(&late, format!(r#"{{"kids":["{KID_0001}"]}}"#))
                    .await
                    .status(),
                StatusCode::OK
            );
        }
    }
    seen
}

#[tokio::test]
async fn a_cursor_walk_returns_every_record_once_and_ends_without_a_cursor() {
    let app = seeded_app().await;

    let walked = walk_with_cursor(&app, &format!("siteId={SITE1}&pageSize=4"), |_| None).await;
    let filtered = walk_with_cursor(
        &app,
        &format!("siteId={SITE1}&pageSize=1&status=success"),
        |_| None,
    )
    .await;
    let (_, exact) = app.history(&format!("siteId={SITE1}&pageSize=6")).await;

    assert_eq!(walked, [5, 4, 3, 2, 1, 0]);
    assert_eq!(filtered, [5, 2, 1, 0]);
    assert!(
        exact.get("nextCursor").is_none(),
        "a page holding the last record offers no next page"
    );
}

#[tokio::test]
async fn a_cursor_walk_is_stable_while_licenses_arrive() {
    let app = seeded_app().await;

    // Licenses issued during the walk are newer than its cursor and never shift it.
    let walked = walk_with_cursor(
        &app,
        &format!("siteId={SITE1}&pageSize=2"),
        |page| match page {
            0 => Some(T0 + 1),
            1 => Some(t(5)),
            _ => None,
        },
    )
    .await;

    assert_eq!(walked, [5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn a_cursor_is_refused_for_another_site_other_filters_or_with_a_page_number() {
    let app = seeded_app().await;
    let (_, first) = app.history(&format!("siteId={SITE1}&pageSize=2")).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    app.seed_site("drm-20261203000000-TEST3", "account-1").await;

    let cases = [
        (
            format!("siteId=drm-20261203000000-TEST3&cursor={cursor}"),
            "belongs to another site",
        ),
        (
            format!("siteId={SITE1}&pageSize=2&status=fail&cursor={cursor}"),
            "other filters",
        ),
        (
            format!("siteId={SITE1}&pageSize=2&pageNo=2&cursor={cursor}"),
            "cannot be combined with cursor",
        ),
        (
            format!("siteId={SITE1}&cursor=not-a-cursor"),
            "not a cursor",
        ),
    ];
    for (query, problem) in cases {
        let (status, body) = app.history(&query).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(problem),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn retention_removes_records_older_than_the_setting_and_keeps_totals_exact() {
    let app = TestApp::spawn_with(|settings| settings.history_retention_days = 30).await;
    let day = 86_400_000;
    for age_days in [45, 31, 29, 1] {
        app.set_time(T0 - age_days * day);
        let license = token(
            SITE1,
            "content-0001",
            "ClearKey",
            &format!("aged-{age_days}"),
        );
        assert_eq!(
            app.issue_license(&license, format!(r#"{{"kids":["{KID_0001}"]}}"#))
                .await
                .status(),
            StatusCode::OK
        );
    }
    app.set_time(T0);

    let deleted = multidrm::retention::purge_once(&app.state.store, T0, 30)
        .await
        .unwrap();
    let (_, body) = app.history(&format!("siteId={SITE1}")).await;

    assert_eq!(deleted, 2);
    assert_eq!(body["total"], 2);
    let ages: Vec<i64> = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| (T0 - record["licenseCreatedAt"].as_i64().unwrap()) / day)
        .collect();
    assert_eq!(ages, [1, 29]);
}

#[tokio::test]
async fn the_retention_job_runs_as_soon_as_it_starts() {
    let app = TestApp::spawn().await;
    app.set_time(T0 - 90 * 86_400_000);
    let old = token(SITE1, "content-0001", "ClearKey", "old-user");
    assert_eq!(
        app.issue_license(&old, format!(r#"{{"kids":["{KID_0001}"]}}"#))
            .await
            .status(),
        StatusCode::OK
    );
    app.set_time(T0);

    let job = multidrm::retention::spawn(app.state.store.clone(), app.state.clock.clone(), 30)
        .expect("a job for 30 days");
    let mut total = Value::Null;
    for _ in 0..50 {
        total = app.history(&format!("siteId={SITE1}")).await.1["total"].clone();
        if total == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    job.abort();

    assert_eq!(total, 0);
    assert!(
        multidrm::retention::spawn(app.state.store.clone(), app.state.clock.clone(), 0).is_none()
    );
}
