//! The playback demo [extension]: off unless enabled, and when on, the
//! headers it signs for the page are accepted by the license and history
//! routes while the secret never leaves the server.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const KIDS: &str = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"],"type":"temporary"}"#;

async fn spawn_with_demo() -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.demo = true;
        settings.demo_access_key = KEY1.to_owned();
    })
    .await
}

#[tokio::test]
async fn the_demo_routes_do_not_exist_unless_enabled() {
    let app = TestApp::spawn().await;

    for path in [
        "/demo",
        "/demo/sign?siteId=x&contentId=y",
        "/demo/shaka-player.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_demo_page_is_served_when_enabled() {
    let app = spawn_with_demo().await;

    let response = app.client.get(app.url("/demo")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("demo/shaka-player.js"), "{page}");
    assert!(!page.contains(SECRET1));
    app.stop().await;
}

#[tokio::test]
async fn headers_signed_by_the_demo_issue_a_license_and_read_its_history() {
    let app = spawn_with_demo().await;
    let query = format!("siteId={SITE1}&contentId=content-0001&userId=user-0001");

    let signed = demo_sign(&app, &query).await;
    let license = send(&app, reqwest::Method::POST, &signed["license"], KIDS).await;
    let history = send(&app, reqwest::Method::GET, &signed["history"], "").await;

    assert!(!signed.to_string().contains(SECRET1), "{signed}");
    assert_eq!(license.0, StatusCode::OK, "{}", license.1);
    assert_eq!(license.1["keys"][0]["kid"], "ESIzRFVmd4iZAKq7zN3u_w");
    assert_eq!(history.0, StatusCode::OK, "{}", history.1);
    assert_eq!(history.1["total"], 1, "{}", history.1);
    assert_eq!(history.1["content"][0]["contentId"], "content-0001");
    assert_eq!(history.1["content"][0]["userId"], USER1_MD5);
    app.stop().await;
}

#[tokio::test]
async fn the_demo_refuses_to_sign_without_a_content_id() {
    let app = spawn_with_demo().await;

    let response = app
        .client
        .get(app.url(&format!("/demo/sign?siteId={SITE1}")))
        .send()
        .await
        .unwrap();

    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_service_error(&body, "280003");
    app.stop().await;
}

#[tokio::test]
async fn the_demo_says_so_when_its_access_key_is_unknown() {
    let app = TestApp::spawn_with(|settings| {
        settings.demo = true;
        settings.demo_access_key = "NOSUCHACCESSKEY00000".to_owned();
    })
    .await;

    let response = app
        .client
        .get(app.url(&format!("/demo/sign?siteId={SITE1}&contentId=content-0001")))
        .send()
        .await
        .unwrap();

    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body.to_string().contains("MULTIDRM_DEMO_ACCESS_KEY"),
        "{body}"
    );
    app.stop().await;
}

async fn demo_sign(app: &TestApp, query: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/demo/sign?{query}")))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Sends what the demo handed out, as the page would.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    target: &Value,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, app.url(target["url"].as_str().unwrap()));
    for (name, value) in target["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    json_of(request.body(body).send().await.unwrap()).await
}
