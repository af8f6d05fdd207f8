//! Case `sig-06` and its kind: requests carrying known secrets (console
//! sign-ins included), after which everything the server logged (at every
//! level) is searched for them. The capture is process-wide, so this file is its own test binary.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::{Arc, Mutex};

use helpers::*;
use reqwest::{Method, StatusCode};

const CORRECT_SIGNATURE: &str = "VyjyUZpRrqXs+f8uE0RUj4m0nrRvY5821rg+J2jyAt0=";
const HISTORY_QUERY: &str =
    "/api/v1/license/statistics?siteId=drm-20261203000000-TEST1&pageNo=1&pageSize=20";

#[tokio::test]
async fn sig_06_a_secret_pasted_as_signature_is_never_echoed_in_the_response_or_logs() {
    let logs = CapturedLogs::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .init();
    let app = TestApp::spawn().await;

    let pasted = app
        .client
        .get(app.url(HISTORY_QUERY))
        .header("x-ncp-apigw-timestamp", "1796266800000")
        .header("x-ncp-iam-access-key", KEY1)
        .header("x-ncp-apigw-signature-v2", SECRET1)
        .header("x-ncp-region_code", "KR")
        .send()
        .await
        .unwrap();
    let pasted_status = pasted.status();
    let pasted_text = pasted.text().await.unwrap();
    let issued = app
        .issue_license(
            &token(SITE1, "content-0001", "ClearKey", "user-0001"),
            r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#,
        )
        .await;
    let issued_status = issued.status();
    let issued_text = issued.text().await.unwrap();
    let (history_status, _) = app.get_json(HISTORY_QUERY).await;
    let (key_status, _) = app
        .signed(
            Method::POST,
            &format!("/api/v1/sites/{SITE1}/contents/content-0009/keys"),
        )
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut console_statuses = Vec::new();
    let mut session_ids = Vec::new();
    for secret in [SECRET2, SECRET1] {
        let signed_in = no_redirects
            .post(app.url("/console/sign-in"))
            .form(&[("accessKey", KEY1), ("secretKey", secret)])
            .send()
            .await
            .unwrap();
        console_statuses.push(signed_in.status());
        session_ids.extend(
            signed_in
                .headers()
                .get("set-cookie")
                .and_then(|cookie| cookie.to_str().ok()?.split(';').next()?.split_once('='))
                .map(|(_, id)| id.to_owned()),
        );
    }
    app.stop().await;

    assert_eq!(pasted_status, StatusCode::UNAUTHORIZED);
    assert_eq!(issued_status, StatusCode::OK);
    assert_eq!(
        (history_status, key_status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        console_statuses,
        [StatusCode::UNAUTHORIZED, StatusCode::SEE_OTHER]
    );
    assert_eq!(session_ids.len(), 1);
    for secret in [SECRET1, CORRECT_SIGNATURE] {
        assert!(
            !pasted_text.contains(secret),
            "the 401 contains {secret}: {pasted_text}"
        );
    }
    let logged = logs.text();
    assert!(
        logged.contains("request refused by the signature check"),
        "the refusal was not logged"
    );
    assert!(
        logged.contains("license issued"),
        "the issuance was not logged"
    );
    let content_key_b64 = "_-7dzLuqAJmId2ZVRDMiEQ";
    assert!(
        logged.contains("console sign-in refused"),
        "the console refusal was not logged"
    );
    for secret in [
        SECRET1,
        SECRET2,
        &session_ids[0],
        CORRECT_SIGNATURE,
        "ffeeddccbbaa00998877665544332211",
        content_key_b64,
        "eyJzaXRlSWQi",
    ] {
        assert!(!logged.contains(secret), "the logs contain {secret}");
    }
    assert!(
        issued_text.contains(content_key_b64),
        "the license itself carries the key"
    );
}

/// A log sink for tests that search the server's logs.
#[derive(Clone, Default)]
pub struct CapturedLogs(pub Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
