//! One test per case in `shared/cases/` (its id in the name), variants
//! included; `sig-06` searches the server's logs and so lives in
//! `tests/secret_logs.rs` with a process-wide log capture. Cases about
//! upstream license servers (`fps-01`, `wv-01`) need upstream doubles and
//! live in `upstream.rs`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const HISTORY_QUERY: &str =
    "/api/v1/license/statistics?siteId=drm-20261203000000-TEST1&pageNo=1&pageSize=20";
const TOKEN_CONTENT_0001: &str = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiQ2xlYXJLZXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";
const TOKEN_CONTENT_0003: &str = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDMiLCJkcm1UeXBlIjoiQ2xlYXJLZXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";

/// Sends a history request with literal signature headers, as a case gives them.
async fn raw_get(
    app: &TestApp,
    path_and_query: &str,
    timestamp: &str,
    signature: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(path_and_query))
        .header("x-ncp-apigw-timestamp", timestamp)
        .header("x-ncp-iam-access-key", KEY1)
        .header("x-ncp-apigw-signature-v2", signature)
        .header("x-ncp-region_code", "KR")
        .send()
        .await
        .unwrap();
    json_of(response).await
}

#[tokio::test]
async fn sig_01_signature_over_another_timestamp_than_the_header_is_refused() {
    let app = TestApp::spawn().await;

    let (status, body) = raw_get(
        &app,
        HISTORY_QUERY,
        "1796266800000",
        "3GoOt2yNHhzhhW6lC0A4CbeO80wsW1o5dl2oBuTDzeM=",
    )
    .await;
    let (control_status, control) = raw_get(
        &app,
        HISTORY_QUERY,
        "1796266800000",
        "VyjyUZpRrqXs+f8uE0RUj4m0nrRvY5821rg+J2jyAt0=",
    )
    .await;

    assert_auth_failure(status, &body);
    assert_eq!(control_status, StatusCode::OK, "{control}");
    assert_eq!(control["success"], true);
}

#[tokio::test]
async fn sig_02_timestamps_in_seconds_or_outside_five_minutes_are_refused_naming_the_timestamp() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "1796266800",
            "HYs2YgjcZFQw/njROYxNVcgAdjMC/Hg1YY0b4c4LdrI=",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "1796266499999",
            "VmNgZvxo9xfQa3xQDrD85PbmVio7G2EWlbceGc8D4Zc=",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "1796266501000",
            "m4CS6knvtiO7oEtAPRkJSjMuVNG07I6HBzo5qWdH/Gc=",
            StatusCode::OK,
        ),
        (
            "1796267099000",
            "NtNVNpFU/CtjEJNgHCXDAiodBJ8NT5URR+CQdP66bOA=",
            StatusCode::OK,
        ),
        (
            "1796267100001",
            "0GxtAuoHbznoo1n59N+W881VxfRby1DFdqMWv6cunpY=",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "2026-12-03T03:00:00Z",
            "mZ4n71TSjNFFmhE3414S7rNXiyVHPzaYWBbRe5igUmg=",
            StatusCode::UNAUTHORIZED,
        ),
    ];

    for (timestamp, signature, expected) in cases {
        let (status, body) = raw_get(&app, HISTORY_QUERY, timestamp, signature).await;

        assert_eq!(status, expected, "timestamp {timestamp}: {body}");
        if expected == StatusCode::UNAUTHORIZED {
            assert_auth_failure(status, &body);
            let details = body["error"]["details"].as_str().unwrap();
            assert!(details.contains("x-ncp-apigw-timestamp"), "{details}");
            assert!(
                !details.contains(timestamp),
                "details echo the value: {details}"
            );
        }
    }
}

#[tokio::test]
async fn sig_03_a_signature_without_the_query_string_is_refused() {
    let app = TestApp::spawn().await;

    let (status, body) = raw_get(
        &app,
        HISTORY_QUERY,
        "1796266800000",
        "HNm0RnuyWuVr6kagdcY5ptizmBqW1LxBbfN+yt5tWOM=",
    )
    .await;

    assert_auth_failure(status, &body);
    assert!(
        body["error"]["details"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{body}"
    );
}

#[tokio::test]
async fn sig_05_a_trailing_newline_in_the_string_to_sign_is_refused() {
    let app = TestApp::spawn().await;

    let (status, body) = raw_get(
        &app,
        HISTORY_QUERY,
        "1796266800000",
        "9OJr3hPcFJs5acmBMhPRdXiifuZTzGXcLkywc8zLikA=",
    )
    .await;

    assert_auth_failure(status, &body);
}

#[tokio::test]
async fn ck_01_kids_in_any_base64_form_are_answered_in_unpadded_base64url() {
    let app = TestApp::spawn().await;
    let expected = json!({"keys": [{"kty": "oct", "kid": "oGpvUYhYR_i8Uq2MWlpABg", "k": "tTexFBzvjVgPfopO-6V7ZQ"}], "type": "temporary"});

    for kid in [
        "oGpvUYhYR/i8Uq2MWlpABg",
        "oGpvUYhYR_i8Uq2MWlpABg",
        "oGpvUYhYR/i8Uq2MWlpABg==",
    ] {
        let response = app
            .issue_license(
                TOKEN_CONTENT_0003,
                format!(r#"{{"kids": ["{kid}"], "type": "temporary"}}"#),
            )
            .await;

        assert_eq!(response.status(), StatusCode::OK, "kid {kid}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, expected, "kid {kid}");
    }
    let response = app
        .issue_license(
            TOKEN_CONTENT_0003,
            r#"{"kids": ["a06a6f51-8858-47f8"], "type": "temporary"}"#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ck_02_the_jwk_carries_kty_oct_and_the_content_key_not_the_kid() {
    let app = TestApp::spawn().await;

    let response = app
        .issue_license(
            TOKEN_CONTENT_0001,
            r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"], "type": "temporary"}"#,
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"keys": [{"kty": "oct", "kid": "ESIzRFVmd4iZAKq7zN3u_w", "k": "_-7dzLuqAJmId2ZVRDMiEQ"}], "type": "temporary"})
    );
    assert_ne!(body["keys"][0]["k"], body["keys"][0]["kid"]);
    let history = app.all_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["licenseStatus"], "success");
    assert_eq!(history[0]["siteId"], SITE1);
    assert_eq!(history[0]["contentId"], "content-0001");
    assert_eq!(history[0]["drmType"], "ClearKey");
    assert_eq!(history[0]["userId"], USER1_MD5);
}

#[tokio::test]
async fn ck_03_an_unknown_kid_is_a_404_naming_it_with_a_fail_record() {
    let app = TestApp::spawn().await;

    let response = app
        .issue_license(
            TOKEN_CONTENT_0001,
            r#"{"kids": ["EHfv7MCyTQKs4zweUuL7Sw"], "type": "temporary"}"#,
        )
        .await;
    let (status, body) = json_of(response).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_service_error(&body, "2810012");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EHfv7MCyTQKs4zweUuL7Sw"),
        "{body}"
    );
    let history = app.all_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["licenseStatus"], "fail");
    assert_eq!(history[0]["siteId"], SITE1);
    assert_eq!(history[0]["contentId"], "content-0001");
    assert_eq!(history[0]["drmType"], "ClearKey");
    assert_eq!(history[0]["userId"], USER1_MD5);
    assert_eq!(history[0]["errorCode"], "2810012");
    assert_eq!(history[0]["errorName"], "LICENSE_DRM_INFO_NOT_FOUND");
}

#[tokio::test]
async fn ck_04_garbage_bodies_are_a_400_with_one_fail_record_each() {
    let app = TestApp::spawn().await;
    let bodies = [
        "[object Object]",
        "",
        "{}",
        r#"{"kids":[],"type":"temporary"}"#,
        r#"{"kids":"ESIzRFVmd4iZAKq7zN3u_w"}"#,
    ];

    for body in bodies {
        let (status, answer) = json_of(app.issue_license(TOKEN_CONTENT_0001, body).await).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body:?}");
        assert_service_error(&answer, "289008");
    }
    let (_, first) = json_of(
        app.issue_license(TOKEN_CONTENT_0001, "[object Object]")
            .await,
    )
    .await;
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"expected {"kids":[...],"type":...}"#),
        "{first}"
    );
    let history = app.all_history().await;
    assert_eq!(history.len(), bodies.len() + 1);
    assert!(history
        .iter()
        .all(|record| record["licenseStatus"] == "fail" && record["contentId"] == "content-0001"));
}

#[tokio::test]
async fn cors_01_preflight_needs_no_authentication_and_allows_the_real_headers() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/license"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-drm-token")
        .send()
        .await
        .unwrap();

    assert!(
        response.status() == StatusCode::OK || response.status() == StatusCode::NO_CONTENT,
        "{}",
        response.status()
    );
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "content-type",
        "x-drm-token",
        "x-ncp-apigw-timestamp",
        "x-ncp-iam-access-key",
        "x-ncp-apigw-signature-v2",
    ] {
        assert!(allowed.contains(header), "{header} not allowed: {allowed}");
    }
    assert!(headers.contains_key("access-control-max-age"));
    assert!(app.all_history().await.is_empty());
}

#[tokio::test]
async fn cors_02_error_responses_carry_cors_headers_too() {
    let app = TestApp::spawn().await;

    let bad_token = app
        .issue_license(
            "not-a-token!!",
            r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"], "type": "temporary"}"#,
        )
        .await;
    let unsigned = app
        .client
        .post(app.url("/api/v1/license"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();

    assert_eq!(bad_token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad_token.headers()["access-control-allow-origin"], "*");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.headers()["access-control-allow-origin"], "*");
    let (_, body) = json_of(bad_token).await;
    assert_service_error(&body, "289003");
}

#[tokio::test]
async fn tok_01_tokens_that_are_not_base64_json_are_a_400_and_write_no_record() {
    let app = TestApp::spawn().await;
    let kids = r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"], "type": "temporary"}"#;
    let no_drm_type = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";

    for token in ["not-a-token!!", "aGVsbG8="] {
        let (status, body) = json_of(app.issue_license(token, kids).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token}");
        assert_service_error(&body, "289003");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not base64 of a JSON object"),
            "{body}"
        );
    }
    let missing = app
        .signed(Method::POST, "/api/v1/license")
        .body(kids)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(
        app.all_history().await.is_empty(),
        "unattributable requests wrote records"
    );

    let (status, body) = json_of(app.issue_license(no_drm_type, kids).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drmType"),
        "{body}"
    );
    let history = app.all_history().await;
    assert_eq!(
        history.len(),
        1,
        "a token naming our site records its failure"
    );
    assert_eq!(history[0]["licenseStatus"], "fail");
    assert_eq!(history[0]["drmType"], "");
}

#[tokio::test]
async fn tok_01_a_token_for_another_accounts_site_answers_like_a_missing_site() {
    let app = TestApp::spawn().await;
    let other = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDIiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiQ2xlYXJLZXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";

    let (status, body) = json_of(
        app.issue_license(other, r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"]}"#)
            .await,
    )
    .await;
    let missing = token(
        "drm-20991231000000-NOPE0",
        "content-0001",
        "ClearKey",
        "user-0001",
    );
    let (missing_status, missing_body) = json_of(
        app.issue_license(&missing, r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"]}"#)
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    assert_service_error(&body, "281003");
    assert_eq!(body["error"]["name"], missing_body["error"]["name"]);
    let (_, theirs) = json_of(
        app.signed_as(
            Method::GET,
            &format!("/api/v1/license/statistics?siteId={SITE2}"),
            KEY2,
            SECRET2,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        theirs["total"], 0,
        "a record was written to the other account's site"
    );
}

#[tokio::test]
async fn tok_01_a_token_without_padding_is_accepted() {
    let app = TestApp::spawn().await;

    let response = app
        .issue_license(
            TOKEN_CONTENT_0001.trim_end_matches('='),
            r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"], "type": "temporary"}"#,
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tok_02_an_empty_user_id_is_refused_and_never_recorded_as_the_md5_of_nothing() {
    let app = TestApp::spawn().await;
    let empty_user = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiQ2xlYXJLZXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiIn0=";
    let kids = r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"], "type": "temporary"}"#;

    let (status, body) = json_of(app.issue_license(empty_user, kids).await).await;
    let given_md5 = app
        .issue_license(
            &token(
                SITE1,
                "content-0001",
                "ClearKey",
                "d41d8cd98f00b204e9800998ecf8427e",
            ),
            kids,
        )
        .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("userId"),
        "{body}"
    );
    assert_eq!(given_md5.status(), StatusCode::OK);
    let history = app.all_history().await;
    assert_eq!(history.len(), 2);
    let refused = &history[1];
    assert_eq!(refused["licenseStatus"], "fail");
    assert_eq!(refused["userId"], "");
    assert_eq!(
        history[0]["userId"], "d41d8cd98f00b204e9800998ecf8427e",
        "a client-supplied MD5 is kept as given"
    );
}

/// Issues `count` licenses at consecutive milliseconds ending at `last_ms`.
async fn issue_many(app: &TestApp, count: i64, last_ms: i64) {
    for i in 0..count {
        app.set_time(last_ms - count + 1 + i);
        let response = app
            .issue_license(
                TOKEN_CONTENT_0001,
                r#"{"kids": ["ESIzRFVmd4iZAKq7zN3u_w"]}"#,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.set_time(T0);
}

#[tokio::test]
async fn hist_03_page_numbers_start_at_one_and_sizes_stay_within_bounds() {
    let app = TestApp::spawn().await;
    issue_many(&app, 25, T0).await;
    let base = format!("siteId={SITE1}");

    for bad in [
        "pageNo=0&pageSize=10",
        "pageNo=1&pageSize=101",
        "pageSize=0",
        "pageNo=abc",
    ] {
        let (status, body) = app.history(&format!("{base}&{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_service_error(&body, "280003");
        let named = bad.split('=').next().unwrap();
        let param = if bad == "pageNo=1&pageSize=101" {
            "pageSize"
        } else {
            named
        };
        assert!(
            body["error"]["message"].as_str().unwrap().contains(param),
            "{bad}: {body}"
        );
    }
    let (status, page3) = app.history(&format!("{base}&pageNo=3&pageSize=10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page3["content"].as_array().unwrap().len(), 5);
    assert_eq!(page3["total"], 25);
    let (_, page4) = app.history(&format!("{base}&pageNo=4&pageSize=10")).await;
    assert_eq!(page4["content"], json!([]));
    assert_eq!(page4["total"], 25);
    let (_, default) = app.history(&base).await;
    assert_eq!(default["content"].as_array().unwrap().len(), 20);
    assert_eq!(
        default["content"][0]["licenseCreatedAt"], T0,
        "first page holds the newest record"
    );
}

#[tokio::test]
async fn hist_04_the_legacy_page_size_no_name_is_honoured() {
    let app = TestApp::spawn().await;
    issue_many(&app, 60, T0).await;

    let (status, body) = app
        .history(&format!("siteId={SITE1}&pageNo=1&pageSizeNo=30"))
        .await;
    let (conflict, error) = app
        .history(&format!("siteId={SITE1}&pageSize=20&pageSizeNo=30"))
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["content"].as_array().unwrap().len(), 30);
    assert_eq!(body["total"], 60);
    assert_eq!(conflict, StatusCode::BAD_REQUEST);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pageSizeNo"));
}

#[tokio::test]
async fn hist_05_inverted_ranges_are_a_400_and_bounds_are_inclusive_to_the_millisecond() {
    let app = TestApp::spawn().await;
    issue_many(&app, 3, 1_796_266_800_001).await;
    let base = format!("siteId={SITE1}");

    let (inverted, body) = app
        .history(&format!(
            "{base}&startTime=1796266800001&endTime=1796266800000"
        ))
        .await;
    let (_, exact) = app
        .history(&format!(
            "{base}&startTime=1796266800000&endTime=1796266800000"
        ))
        .await;
    let (_, upper) = app.history(&format!("{base}&endTime=1796266800000")).await;
    let (_, lower) = app
        .history(&format!("{base}&startTime=1796266800000"))
        .await;
    let (negative, _) = app.history(&format!("{base}&startTime=-1")).await;
    let (exponent, _) = app.history(&format!("{base}&startTime=1.5e12")).await;

    assert_eq!(inverted, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("endTime is before startTime"),
        "{body}"
    );
    assert_eq!(exact["total"], 1);
    assert_eq!(
        exact["content"][0]["licenseCreatedAt"],
        1_796_266_800_000_i64
    );
    assert_eq!(upper["total"], 2);
    assert_eq!(lower["total"], 2);
    assert_eq!(negative, StatusCode::BAD_REQUEST);
    assert_eq!(exponent, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn chromium_clearkey_request_for_two_kids_gets_both_keys_in_request_order() {
    let app = TestApp::spawn().await;
    let body = r#"{"kids":["oGpvUYhYR_i8Uq2MWlpABg","ESIzRFVmd4iZAKq7zN3u_w"],"type":"temporary"}"#;

    let response = app.issue_license(TOKEN_CONTENT_0003, body).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"keys":[{"kty":"oct","kid":"oGpvUYhYR_i8Uq2MWlpABg","k":"tTexFBzvjVgPfopO-6V7ZQ"},{"kty":"oct","kid":"ESIzRFVmd4iZAKq7zN3u_w","k":"_-7dzLuqAJmId2ZVRDMiEQ"}],"type":"temporary"})
    );
    let history = app.all_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["contentId"], "content-0003");
    assert_eq!(history[0]["licenseStatus"], "success");
}
