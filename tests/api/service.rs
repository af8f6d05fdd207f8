//! Service-wide behaviour: group commit under concurrency, durable
//! records across a restart, health, request ids and the public prefix.

use std::sync::Arc;

use multidrm::domain::history::{HistoryFilter, HistoryWindow};
use multidrm::signing::SignedHeaders;
use reqwest::{Method, StatusCode};

use crate::helpers::*;

const KIDS: &str = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_licenses_are_all_recorded_and_survive_a_restart() {
    let app = Arc::new(TestApp::spawn().await);

    let mut requests = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        requests.push(tokio::spawn(async move {
            let token = token(SITE1, "content-0001", "ClearKey", &format!("user-{i}"));
            app.issue_license(&token, KIDS).await.status()
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    let (_, body) = app.history(&format!("siteId={SITE1}&pageSize=1")).await;
    let app = Arc::into_inner(app).expect("every request finished");
    let url = app.state.settings.effective_database_url();
    let _data_dir = app.stop_keep_files().await;

    assert_eq!(body["total"], 200);
    let store = multidrm::store::open(&url).await.unwrap();
    let account = store.ensure_account("account-1", T0).await.unwrap();
    let site = store.find_site(account, SITE1).await.unwrap().unwrap();
    let (_, total) = store
        .search_history(
            &site,
            &HistoryFilter::default(),
            HistoryWindow {
                after: None,
                offset: 0,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 200, "records were lost across the restart");
}

#[tokio::test]
async fn health_answers_without_authentication() {
    let app = TestApp::spawn().await;

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;

    let given = app
        .signed(Method::GET, "/api/v1/sites")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let generated = app
        .signed(Method::GET, "/api/v1/sites")
        .send()
        .await
        .unwrap();

    assert_eq!(given.headers()["x-ncp-trace-id"], "abc-123");
    assert_eq!(generated.headers()["x-ncp-trace-id"].len(), 32);
}

#[tokio::test]
async fn unknown_routes_answer_in_the_gateway_shape() {
    let app = TestApp::spawn().await;

    let (status, body) = app.get_json("/api/v1/nowhere").await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["errorCode"], "300");
    assert_eq!(body["error"]["message"], "Not Found Exception");
}

#[tokio::test]
async fn behind_a_public_prefix_signatures_cover_the_prefix_with_or_without_a_proxy() {
    let app = TestApp::spawn_with(|settings| settings.public_base_path = "/drm".to_owned()).await;
    let send = |sent_path: &'static str, signed_path: &'static str| {
        let headers = SignedHeaders::new("GET", signed_path, T0, KEY1, SECRET1);
        let mut request = app.client.get(app.url(sent_path));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        request.send()
    };

    let direct = send("/drm/api/v1/sites?pageNo=1", "/drm/api/v1/sites?pageNo=1")
        .await
        .unwrap();
    let proxied = send("/api/v1/sites?pageNo=1", "/drm/api/v1/sites?pageNo=1")
        .await
        .unwrap();
    let unprefixed = send("/api/v1/sites?pageNo=1", "/api/v1/sites?pageNo=1")
        .await
        .unwrap();

    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(proxied.status(), StatusCode::OK);
    assert_eq!(unprefixed.status(), StatusCode::UNAUTHORIZED);
}
