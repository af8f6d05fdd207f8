//! Accounts are walls: every endpoint answers another account's site
//! exactly as it answers a missing one, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const MISSING: &str = "drm-20991231000000-NOPE0";

/// Every site-scoped endpoint, with `{}` standing for the site id.
const ENDPOINTS: [(&str, &str, Option<&str>); 10] = [
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
