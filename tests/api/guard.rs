//! Guard rails: the request and connection limits, the per-key rate
//! limit, HTTPS, the header and idle timeouts, graceful shutdown and the
//! Prometheus metrics of a real `serve` process.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{create_key, Signer};
use crate::helpers::*;
use crate::serve::serve;

/// Connects a raw TCP client, for requests reqwest cannot make (slow or
/// unfinished ones).
async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address)
        .await
        .expect("the server accepts")
}

/// Reads until the server closes the connection, or fails after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        // A reset counts as closed too.
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {limit:?}"
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// Starts a CPIX request whose body never arrives, so that it stays in
/// flight, holding one of `max_concurrent_requests`, until dropped.
async fn request_in_flight(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(b"POST /api/v1/cpix/some-token HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n<cpix")
        .await
        .unwrap();
    stream
}

/// Polls `GET /healthz` until it answers 200 again.
async fn wait_until_healthy(app: &TestApp) {
    for _ in 0..100 {
        let answer = app.client.get(app.url("/healthz")).send().await;
        if answer.is_ok_and(|answer| answer.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the service did not recover");
}

#[tokio::test]
async fn a_request_past_max_concurrent_requests_is_answered_503_with_retry_after() {
    let app = TestApp::spawn_with(|settings| settings.max_concurrent_requests = 1).await;
    let busy = request_in_flight(&app).await;
    // The in-flight request takes the only slot once the server reads it.
    let mut refused = None;
    for _ in 0..100 {
        let answer = app.client.get(app.url("/healthz")).send().await.unwrap();
        if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = refused.expect("a second request is refused while the first is in flight");
    assert_eq!(refused.headers()["retry-after"], "1");
    let (_, body) = json_of(refused).await;
    assert_service_error(&body, "289016");
    assert_eq!(body["error"]["name"], "SERVICE_OVERLOADED");

    drop(busy);
    wait_until_healthy(&app).await;
}

#[tokio::test]
async fn a_connection_past_max_connections_gets_one_503_and_is_closed() {
    let app = TestApp::spawn_with(|settings| settings.max_connections = 1).await;
    // A finished request proves the first connection holds the only slot.
    let mut first = connect(&app).await;
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    first.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let mut second = connect(&app).await;
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut second, Duration::from_secs(5)).await;

    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\"289016\""), "{answer}");
    drop(first);
    wait_until_healthy(&app).await;
}

#[tokio::test]
async fn an_access_key_past_its_rate_limit_gets_429_and_another_key_does_not() {
    let app = TestApp::spawn_with(|settings| {
        // Two requests at once, then one per 1000 s: the test never refills.
        settings.rate_limit_per_second = 0.001;
        settings.rate_limit_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let (status, body) = app.get_json("/api/v1/sites").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let limited = app
        .signed(Method::GET, "/api/v1/sites")
        .send()
        .await
        .unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = json_of(limited).await;
    let (other_status, _) = app
        .call_as(KEY2, SECRET2, Method::GET, "/api/v1/sites", None)
        .await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["errorCode"], "420");
    assert_eq!(body["error"]["message"], "Rate Limited");
    assert!((990..=1000).contains(&retry_after), "{retry_after}");
    assert_eq!(other_status, StatusCode::OK);
}

#[tokio::test]
async fn license_requests_count_against_their_access_key() {
    let app = TestApp::spawn_with(|settings| {
        settings.rate_limit_per_second = 0.001;
        settings.rate_limit_burst = 1;
    })
    .await;
    let token = token(SITE1, "content-0001", "ClearKey", "user-0001");
    let body = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#;

    let first = app.issue_license(&token, body).await.status();
    let second = app.issue_license(&token, body).await;

    assert_eq!(first, StatusCode::OK);
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let (_, answer) = json_of(second).await;
    assert_eq!(answer["error"]["errorCode"], "420");
    // A refused request never reached the site: it is not in the history,
    // as a second key of the same account, with its own allowance, shows.
    let state = &app.state;
    multidrm::admin::add_access_key(
        &*state.store,
        &state.master_key,
        "account-1",
        OTHER_KEY,
        OTHER_SECRET,
        T0,
    )
    .await
    .unwrap();
    let query = format!("/api/v1/license/statistics?siteId={SITE1}");
    let (status, history) = app
        .call_as(OTHER_KEY, OTHER_SECRET, Method::GET, &query, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["total"], 1, "{history}");
}

/// A second key pair of account 1.
const OTHER_KEY: &str = "TESTACCESSKEY0000003";
const OTHER_SECRET: &str = "TESTSECRETKEY000000000000000000000000003";

#[tokio::test]
async fn bad_signatures_do_not_spend_a_keys_allowance() {
    let app = TestApp::spawn_with(|settings| {
        settings.rate_limit_per_second = 0.001;
        settings.rate_limit_burst = 1;
    })
    .await;
    for _ in 0..3 {
        let (status, _) = app
            .call_as(KEY1, SECRET2, Method::GET, "/api/v1/sites", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    let (status, body) = app.get_json("/api/v1/sites").await;

    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn serve_speaks_https_with_the_configured_certificate() {
    let (app, client) = TestApp::spawn_over_tls().await;
    let client = client.build().unwrap();
    let port = app.address.port();

    let over_tls = client
        .get(format!("https://localhost:{port}/api/v1/sites"))
        .send()
        .await
        .unwrap();
    let in_clear = app.client.get(app.url("/healthz")).send().await;

    assert_eq!(over_tls.status(), StatusCode::UNAUTHORIZED);
    let (_, body) = json_of(over_tls).await;
    assert_eq!(body["error"]["errorCode"], "200");
    assert!(in_clear.is_err(), "plain HTTP was answered: {in_clear:?}");
}

#[tokio::test]
async fn a_missing_certificate_stops_the_service_before_it_opens_the_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = multidrm::config::Settings {
        data_dir: data_dir.path().join("data"),
        tls_cert: Some(data_dir.path().join("missing-cert.pem")),
        tls_key: Some(data_dir.path().join("missing-key.pem")),
        ..Default::default()
    };

    let opened =
        multidrm::startup::App::open(settings, std::sync::Arc::new(multidrm::clock::SystemClock))
            .await;

    let error = format!("{:#}", opened.err().expect("the service refuses to open"));
    assert!(error.contains("reading the TLS certificate"), "{error}");
    assert!(
        !data_dir.path().join("data").exists(),
        "the data folder was created"
    );
}

#[tokio::test]
async fn a_client_sending_its_headers_slowly_is_disconnected_at_the_header_timeout() {
    let app = TestApp::spawn_with(|settings| settings.header_read_timeout_ms = 500).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();

    // One header line every 100 ms: the headers would never end.
    let mut closed = false;
    for line in 0..50 {
        if stream
            .write_all(format!("x-slow-{line}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut chunk = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut chunk)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }

    let elapsed = started.elapsed();
    assert!(closed, "the slow client was still connected after 5 s");
    assert!(
        elapsed >= Duration::from_millis(450),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "closed too late: {elapsed:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let app = TestApp::spawn_with(|settings| settings.header_read_timeout_ms = 500).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();

    let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_refused_and_the_connection_closed() {
    let app = TestApp::spawn_with(|settings| settings.body_read_timeout_ms = 300).await;
    let mut stream = request_in_flight(&app).await;
    let started = Instant::now();

    let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await;

    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("the request body could not be read"),
        "{answer}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let app = TestApp::spawn().await;
    let mut stream = connect(&app).await;
    let document = r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" contentId="c"/>"#;
    let head = format!(
        "POST /api/v1/cpix/unknown-token HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
        document.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&document.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&document.as_bytes()[10..]).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;

    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("KMS_TOKEN_NOT_FOUND"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the service stops once the request is answered")
        .unwrap();
}

/// The value of the sample of `name` whose labels include every pair.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .find(|line| {
            labels
                .iter()
                .all(|(label, value)| line.contains(&format!("{label}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_licenses_by_outcome_and_history_commits() {
    let database_url = fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--database-url",
        database_url.as_str(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    let signer = Signer::new(create_key(&common, &[]));
    let (_server, address, seen, _log) =
        serve(&common, &[("MULTIDRM_METRICS_LISTEN", "127.0.0.1:0")]);
    let metrics_url = seen
        .iter()
        .find_map(|line| line.split("url=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the metrics address is logged")
        .to_owned();

    let site: Value = signer
        .request(Method::POST, &address, "/api/v1/sites")
        .json(&json!({"siteName": "metered"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let site_id = site["content"]["siteId"].as_str().unwrap().to_owned();
    for (method, path) in [
        (Method::PUT, format!("/api/v1/sites/{site_id}/on")),
        (Method::GET, format!("/api/v1/sites/{site_id}")),
    ] {
        let answer = signer
            .request(method, &address, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    signer.request(Method::POST, &address, &format!("/api/v1/sites/{site_id}/contents/movie-1/keys"))
        .json(&json!({"kid": "11223344556677889900aabbccddeeff", "key": "ffeeddccbbaa00998877665544332211"}))
        .send()
        .await
        .unwrap();
    let token = token(&site_id, "movie-1", "ClearKey", "viewer");
    for (kid, expected) in [
        ("ESIzRFVmd4iZAKq7zN3u_w", 200),
        ("AAAAAAAAAAAAAAAAAAAAAA", 404),
    ] {
        let answer = signer
            .request(Method::POST, &address, "/api/v1/license")
            .header("x-drm-token", &token)
            .body(format!(r#"{{"kids":["{kid}"]}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), expected);
    }
    let metrics = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let requests = |route: &str, status: &str| {
        sample(
            &metrics,
            "multidrm_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(
        requests("/api/v1/sites/{siteId}", "200"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        requests("/api/v1/sites/{siteId}/on", "200"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(requests("/api/v1/license", "200"), Some(1.0), "{metrics}");
    assert_eq!(requests("/api/v1/license", "404"), Some(1.0), "{metrics}");
    let licenses = |outcome: &str| {
        sample(
            &metrics,
            "multidrm_licenses_total",
            &[("drm_type", "ClearKey"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (licenses("success"), licenses("fail")),
        (Some(1.0), Some(1.0)),
        "{metrics}"
    );
    let commits = sample(
        &metrics,
        "multidrm_history_commit_seconds_count",
        &[("outcome", "committed")],
    );
    assert_eq!(commits, Some(2.0), "{metrics}");
    assert!(
        sample(&metrics, "multidrm_history_queue_depth", &[]).is_some(),
        "{metrics}"
    );
    assert!(
        metrics.contains("multidrm_history_commit_seconds_bucket{"),
        "{metrics}"
    );
}
