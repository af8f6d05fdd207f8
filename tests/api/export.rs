//! History export [extension]: the same filters as the history API, as CSV
//! or NDJSON, streamed across as many store pages as the history needs.

use md5::Digest;
use multidrm::domain::device::Platform;
use multidrm::domain::drm::DrmType;
use multidrm::domain::history::{NewLicenseRecord, RecordKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const KIDS: &str = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#;

async fn export(app: &TestApp, query: &str) -> (StatusCode, String, String) {
    let response = app
        .signed(
            reqwest::Method::GET,
            &format!("/api/v1/license/statistics/export?{query}"),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn ndjson_export_lines_are_the_history_records_with_the_same_filters() {
    let app = TestApp::spawn().await;
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        app.set_time(T0 + i as i64);
        app.issue_license(&token(SITE1, "content-0001", "ClearKey", user), KIDS)
            .await;
    }
    app.issue_license(&token(SITE1, "content-0001", "Widevine", "d"), KIDS)
        .await;

    let (status, content_type, body) = export(
        &app,
        &format!("siteId={SITE1}&format=ndjson&status=success"),
    )
    .await;
    let (_, history) = app.history(&format!("siteId={SITE1}&status=success")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(&lines, history["content"].as_array().unwrap());
    assert_eq!(lines.len(), 3);
}

#[tokio::test]
async fn csv_export_has_a_header_and_one_row_per_record() {
    let app = TestApp::spawn().await;
    app.issue_license(&token(SITE1, "content-0001", "ClearKey", "a"), KIDS)
        .await;
    app.issue_license(
        &token(SITE1, "content-0001", "ClearKey", "b"),
        r#"{"kids":["EHfv7MCyTQKs4zweUuL7Sw"]}"#,
    )
    .await;

    let (status, content_type, body) = export(&app, &format!("siteId={SITE1}")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "siteId,contentId,licenseStatus,drmType,userId,deviceId,deviceModel,platformName,licenseCreatedTime,licenseCreatedAt,errorCode,errorName");
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].contains(",fail,ClearKey,")
            && lines[1].ends_with(",2810012,LICENSE_DRM_INFO_NOT_FOUND"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(",success,ClearKey,") && lines[2].ends_with(",,"),
        "{}",
        lines[2]
    );
}

#[tokio::test]
async fn an_export_larger_than_one_store_page_streams_every_record_once() {
    let app = TestApp::spawn().await;
    let account = app
        .state
        .store
        .ensure_account("account-1", T0)
        .await
        .unwrap();
    let site = app
        .state
        .store
        .find_site(account, SITE1)
        .await
        .unwrap()
        .unwrap();
    let records: Vec<NewLicenseRecord> = (0..7000)
        .map(|i| NewLicenseRecord {
            key: RecordKey::generate(),
            site_pk: site.pk,
            content_id: "content-0001".to_owned(),
            drm_type: Some(DrmType::ClearKey),
            user_id: format!("{i:032x}"),
            device_id: "dev".to_owned(),
            device_model: "model".to_owned(),
            platform: Platform::Linux,
            created_at: T0 - i / 3,
            failure: None,
        })
        .collect();
    app.state
        .store
        .insert_license_records(&records)
        .await
        .unwrap();

    let (status, _, body) = export(&app, &format!("siteId={SITE1}&format=ndjson")).await;

    assert_eq!(status, StatusCode::OK);
    let mut users: Vec<String> = body
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["userId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(users.len(), 7000);
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 7000, "a record was sent twice");
}

#[tokio::test]
async fn exports_validate_like_the_history_and_respect_accounts() {
    let app = TestApp::spawn().await;

    let (format, _, format_body) = export(&app, &format!("siteId={SITE1}&format=xml")).await;
    let (inverted, _, _) = export(&app, &format!("siteId={SITE1}&startTime=2&endTime=1")).await;
    let (other, _, other_body) = export(&app, &format!("siteId={SITE2}")).await;

    assert_eq!(format, StatusCode::BAD_REQUEST);
    assert!(
        format_body.contains("format must be csv, ndjson or xlsx"),
        "{format_body}"
    );
    assert_eq!(inverted, StatusCode::BAD_REQUEST);
    assert_eq!(other, StatusCode::NOT_FOUND);
    assert!(other_body.contains("281003"));
}

#[tokio::test]
async fn xlsx_export_is_a_workbook_with_the_history_rows() {
    use calamine::Reader;
    let app = TestApp::spawn().await;
    for user in ["a", "b"] {
        app.issue_license(&token(SITE1, "content-0001", "ClearKey", user), KIDS)
            .await;
    }

    let response = app
        .signed(
            reqwest::Method::GET,
            &format!("/api/v1/license/statistics/export?siteId={SITE1}&format=xlsx"),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|row| row.iter().map(|cell| cell.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], "siteId");
    assert_eq!(rows[0][11], "errorName");
    assert_eq!(rows[1][0], SITE1);
    assert_eq!(rows[1][2], "success");
    assert_eq!(rows[2][4], hex::encode(md5::Md5::digest(b"a")));
}
