//! End-to-end check of case `chromium-clearkey-request` with a real browser:
//! Debian's headless Chromium, driven through chromedriver, opens a player
//! page served from a second origin, asks its own ClearKey CDM for a license
//! request through EME, POSTs it cross-origin (so with a real CORS preflight)
//! to the running service and hands the answer back to the CDM.

#[path = "support/browser.rs"]
mod chrome;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use chrome::ChromeDriver;
use fantoccini::Client;
use helpers::{TestApp, KEY1, SECRET1, SITE1, T0, USER1_MD5};
use multidrm::signing::SignedHeaders;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// content-0003's kids a06a6f51885847f8bc52ad8c5a5a4006 and
/// 11223344556677889900aabbccddeeff, in unpadded base64url.
const KIDS: [&str; 2] = ["oGpvUYhYR_i8Uq2MWlpABg", "ESIzRFVmd4iZAKq7zN3u_w"];

/// A minimal player: everything a web player does between "I need keys"
/// and "keys are usable", with the license server's answer reported instead
/// of thrown so that a failing test shows what the service sent.
const PLAYER_PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>ClearKey player</title></head>
<body>
<script>
function base64url(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function requestClearKeyLicense({ licenseUrl, headers, kids }) {
  const access = await navigator.requestMediaKeySystemAccess('org.w3.clearkey', [{
    initDataTypes: ['keyids'],
    videoCapabilities: [{ contentType: 'video/mp4; codecs="avc1.42E01E"' }],
  }]);
  const mediaKeys = await access.createMediaKeys();
  const session = mediaKeys.createSession('temporary');
  const messaged = new Promise((resolve) =>
    session.addEventListener('message', resolve, { once: true }));
  await session.generateRequest('keyids', new TextEncoder().encode(JSON.stringify({ kids })));
  const message = await messaged;
  const cdmMessage = new TextDecoder().decode(message.message);

  let response;
  try {
    response = await fetch(licenseUrl, { method: 'POST', mode: 'cors', headers, body: message.message });
  } catch (error) {
    return { messageType: message.messageType, cdmMessage, fetchError: `${error.name}: ${error.message}` };
  }
  const license = await response.arrayBuffer();
  const answer = {
    messageType: message.messageType,
    cdmMessage,
    licenseStatus: response.status,
    licenseContentType: response.headers.get('content-type'),
    licenseBody: new TextDecoder().decode(license),
  };
  if (!response.ok) {
    return answer;
  }

  const keysChanged = new Promise((resolve) =>
    session.addEventListener('keystatuseschange', resolve, { once: true }));
  try {
    await session.update(license);
  } catch (error) {
    return { ...answer, updateError: `${error.name}: ${error.message}` };
  }
  await keysChanged;
  const keyStatuses = [];
  session.keyStatuses.forEach((status, keyId) => keyStatuses.push({ kid: base64url(keyId), status }));
  return { ...answer, keyStatuses };
}
</script>
</body>
</html>
"#;

/// Hands the page's promise to WebDriver's callback; a rejection becomes an
/// `error` field rather than a script timeout.
const RUN_PLAYER: &str = r#"
const [request, done] = arguments;
requestClearKeyLicense(request).then(done, (error) => done({ error: `${error.name}: ${error.message}` }));
"#;

#[tokio::test]
async fn chromium_clearkey_request_the_cdm_accepts_licenses_for_two_kids_and_the_history_records_it(
) {
    let app = TestApp::spawn().await;
    let (page_url, page_server) = serve_player_page().await;
    let profile = tempfile::tempdir().expect("a temporary browser profile");
    let driver = ChromeDriver::start().await;
    let browser = driver.open_browser(profile.path()).await;

    let outcome = play(&browser, &page_url, license_request(&app)).await;
    browser.close().await.expect("the browser session closes");
    drop(driver);
    page_server.abort();
    let outcome = outcome.expect("the player script runs");

    assert_eq!(outcome.get("error"), None, "{outcome:#}");
    assert_eq!(outcome.get("fetchError"), None, "{outcome:#}");
    assert_eq!(outcome["messageType"], "license-request", "{outcome:#}");
    let cdm_message: Value = serde_json::from_str(outcome["cdmMessage"].as_str().unwrap())
        .unwrap_or_else(|error| panic!("the CDM message is JSON ({error}): {outcome:#}"));
    assert_eq!(cdm_message, json!({"kids": KIDS, "type": "temporary"}));
    assert_eq!(outcome["licenseStatus"], 200, "{outcome:#}");
    assert!(
        outcome["licenseContentType"]
            .as_str()
            .is_some_and(|value| value.starts_with("application/json")),
        "{outcome:#}"
    );
    let license: Value = serde_json::from_str(outcome["licenseBody"].as_str().unwrap())
        .unwrap_or_else(|error| panic!("the license is JSON ({error}): {outcome:#}"));
    assert_eq!(license, expected_license(), "{outcome:#}");
    assert_eq!(outcome.get("updateError"), None, "{outcome:#}");
    let key_statuses = outcome["keyStatuses"].as_array().expect("key statuses");
    assert_eq!(key_statuses.len(), 2, "{outcome:#}");
    assert!(
        key_statuses.iter().all(|key| key["status"] == "usable"),
        "{outcome:#}"
    );
    let mut usable_kids: Vec<&str> = key_statuses
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    usable_kids.sort_unstable();
    let mut expected_kids = KIDS;
    expected_kids.sort_unstable();
    assert_eq!(usable_kids, expected_kids, "{outcome:#}");

    let (status, history) = app
        .history(&format!(
            "siteId={SITE1}&searchCondition=contentId&searchKeyword=content-0003"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["total"], 1, "{history}");
    let record = &history["content"][0];
    assert_eq!(record["licenseStatus"], "success", "{record}");
    assert_eq!(record["drmType"], "ClearKey", "{record}");
    assert_eq!(record["userId"], USER1_MD5, "{record}");
    assert_eq!(record["platformName"], "PLATFORM_LINUX", "{record}");
    assert!(
        record["deviceModel"]
            .as_str()
            .is_some_and(|model| model.starts_with("Chrome-Linux-")),
        "{record}"
    );

    app.stop().await;
}

/// The case's right answer: both content keys as unpadded base64url JWKs.
fn expected_license() -> Value {
    json!({
        "keys": [
            {"kty": "oct", "kid": "oGpvUYhYR_i8Uq2MWlpABg", "k": "tTexFBzvjVgPfopO-6V7ZQ"},
            {"kty": "oct", "kid": "ESIzRFVmd4iZAKq7zN3u_w", "k": "_-7dzLuqAJmId2ZVRDMiEQ"},
        ],
        "type": "temporary",
    })
}

/// What the page sends: the service's license URL and the headers a
/// customer's backend would hand its player. The server clock stays at T0,
/// so a signature made for T0 stays valid for the whole test.
fn license_request(app: &TestApp) -> Value {
    let signed = SignedHeaders::new("POST", "/api/v1/license", T0, KEY1, SECRET1);
    let mut headers: serde_json::Map<String, Value> = signed
        .pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect();
    headers.insert(
        "x-drm-token".to_owned(),
        json!(helpers::token(
            SITE1,
            "content-0003",
            "CLEARKEY",
            "user-0001"
        )),
    );
    headers.insert("content-type".to_owned(), json!("application/json"));
    json!({ "licenseUrl": app.url("/api/v1/license"), "headers": headers, "kids": KIDS })
}

/// Serves [`PLAYER_PAGE`] on its own port, so the page's origin differs
/// from the service's (host `localhost` against `127.0.0.1`, and the port).
async fn serve_player_page() -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let router = Router::new().route("/", get(|| async { Html(PLAYER_PAGE) }));
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the page server serves");
    });
    (format!("http://localhost:{port}/"), server)
}

async fn play(
    browser: &Client,
    page_url: &str,
    request: Value,
) -> Result<Value, fantoccini::error::CmdError> {
    browser.goto(page_url).await?;
    browser.execute_async(RUN_PLAYER, vec![request]).await
}
