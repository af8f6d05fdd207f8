//! Accounts are walls: every endpoint answers another account's site
//! exactly as it answers a missing one, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const MISSING: &str = "drm-20991231000000-NOPE0";

/// Every site-scoped endpoint, with `{}` standing for the site id.
const ENDPOINTS: [(&str, &str, Option<&str>); 12] = [
    ("GET", "/api/v1/sites/{}", None),
    (
        "PUT",
        "/api/v1/sites/{}",
        Some(r#"{"siteName":"taken_over","policyId":0}"#),
    ),
    ("PUT", "/api/v1/sites/{}/on", None),
    ("PUT", "/api/v1/sites/{}/off", None),
    ("DELETE", "/api/v1/sites/{}", None),
    ("GET", "/api/v1/sites/{}/contents/content-0001/keys", None),
    ("POST", "/api/v1/sites/{}/contents/content-0001/keys", None),
    ("GET", "/api/v1/sites/siteLog?siteId={}", None),
    ("GET", "/api/v1/license/statistics?siteId={}", None),
    (
        "GET",
        "/api/v1/license/statistics?siteId={}&status=success",
        None,
    ),
    (
        "GET",
        "/api/v1/license/statistics/export?siteId={}&format=ndjson",
        None,
    ),
    (
        "GET",
        "/api/v1/license/statistics/export?siteId={}&format=xlsx",
        None,
    ),
];

async fn call_as_account_2(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app
        .signed_as(method, path, KEY2, SECRET2)
        .header("content-type", "application/json");
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    json_of(request.send().await.unwrap()).await
}

#[tokio::test]
async fn another_accounts_site_answers_exactly_like_a_missing_one_on_every_endpoint() {
    let app = TestApp::spawn().await;

    for (method, template, body) in ENDPOINTS {
        let (status, answer) =
            call_as_account_2(&app, method, &template.replace("{}", SITE1), body).await;
        let (missing_status, missing) =
            call_as_account_2(&app, method, &template.replace("{}", MISSING), body).await;

        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {template}: {answer}"
        );
        assert_eq!(missing_status, StatusCode::NOT_FOUND, "{method} {template}");
        assert_eq!(answer["error"]["code"], "281003");
        assert_eq!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .replace(SITE1, MISSING),
            missing["error"]["message"]
        );
    }

    let (_, site) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    assert_eq!(
        site["content"]["siteStatus"], "RUNNING",
        "account 2 changed account 1's site"
    );
    assert_eq!(site["content"]["siteName"], "fixture_site");
    let (_, keys) = app
        .get_json(&format!("/api/v1/sites/{SITE1}/contents/content-0001/keys"))
        .await;
    assert_eq!(keys["total"], 1);
}

#[tokio::test]
async fn site_lists_and_logs_show_only_the_callers_own_sites() {
    let app = TestApp::spawn().await;

    let (_, sites) = call_as_account_2(&app, "GET", "/api/v1/sites", None).await;
    let (_, log) = call_as_account_2(&app, "GET", "/api/v1/sites/siteLog", None).await;

    let ids: Vec<&str> = sites["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| site["siteId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [SITE2]);
    assert!(
        log["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["siteId"] == SITE2),
        "{log}"
    );
    assert_eq!(log["total"], 2);
}

#[tokio::test]
async fn a_disabled_access_key_is_refused() {
    let app = TestApp::spawn().await;

    assert!(app.state.store.disable_access_key(KEY1).await.unwrap());
    let (status, body) = app.get_json("/api/v1/sites").await;

    assert_auth_failure(status, &body);
    assert!(
        body["error"]["details"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
}

/// Every DRM type's license route and the FairPlay certificate route, with
/// a token naming a site.
fn token_calls(site: &str) -> Vec<(Method, &'static str, String)> {
    let mut calls: Vec<_> = ["ClearKey", "Widevine", "PlayReady", "FairPlay"]
        .into_iter()
        .map(|drm| {
            let token = token(site, "content-0001", drm, "user-0001");
            (Method::POST, "/api/v1/license", token)
        })
        .collect();
    calls.push((
        Method::GET,
        "/api/v1/license/fairPlay",
        token(site, "content-0001", "FairPlay", "user-0001"),
    ));
    calls
}

#[tokio::test]
async fn a_token_naming_another_accounts_site_answers_like_a_missing_site_and_records_nothing() {
    let app = TestApp::spawn().await;

    for ((method, path, theirs), (_, _, missing)) in
        token_calls(SITE1).into_iter().zip(token_calls(MISSING))
    {
        let call = |token: String| {
            app.signed_as(method.clone(), path, KEY2, SECRET2)
                .header("x-drm-token", token)
                .body(r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#)
                .send()
        };
        let (status, answer) = json_of(call(theirs).await.unwrap()).await;
        let (missing_status, missing_answer) = json_of(call(missing).await.unwrap()).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(missing_status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_service_error(&answer, "281003");
        assert_eq!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .replace(SITE1, MISSING),
            missing_answer["error"]["message"],
            "{method} {path}"
        );
    }

    let (_, history) = app.history(&format!("siteId={SITE1}")).await;
    assert_eq!(
        history["total"], 0,
        "a record was written to account 1's site"
    );
}

#[tokio::test]
async fn a_site_cannot_be_moved_under_another_accounts_policy() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/policy",
            Some(json!({"policyName": "account_1_only"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let policy_id = created["content"]["policyId"].clone();

    let (status, answer) = app
        .call_as(
            KEY2,
            SECRET2,
            Method::PUT,
            &format!("/api/v1/sites/{SITE2}"),
            Some(json!({"siteName": "fixture_site", "policyId": policy_id})),
        )
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_service_error(&answer, "289001");
    let (_, site) = app
        .call_as(
            KEY2,
            SECRET2,
            Method::GET,
            &format!("/api/v1/sites/{SITE2}"),
            None,
        )
        .await;
    assert_eq!(site["content"]["policyId"], 0, "{site}");
}
