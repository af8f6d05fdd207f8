//! CPIX key exchange over SPEKE v2 (issue 5, part 6): a packager's
//! request comes back with keys that the license endpoint then serves.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const KID: &str = "6c5f5206-7d98-4808-84d8-94f132c1e9fe";
const CLEARKEY_SYSTEM: &str = "e1e1e1e1-e1e1-e1e1-e1e1-e1e1e1e1e1e1";
const WIDEVINE_SYSTEM: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";

/// A packager's CPIX 2.3 request for one kid of `movie-42`.
fn cpix_request() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX contentId="movie-42" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{KID}" commonEncryptionScheme="cenc"></cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
    <cpix:DRMSystem kid="{KID}" systemId="{CLEARKEY_SYSTEM}"><cpix:PSSH/></cpix:DRMSystem>
    <cpix:DRMSystem kid="{KID}" systemId="{WIDEVINE_SYSTEM}"><cpix:PSSH/></cpix:DRMSystem>
  </cpix:DRMSystemList>
</cpix:CPIX>"#
    )
}

/// Creates a running site through the API; answers its id and KMS token.
async fn create_running_site(app: &TestApp) -> (String, String) {
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(json!({"siteName": "packager_site"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let site_id = created["content"]["siteId"].as_str().unwrap().to_owned();
    let kms_token = created["content"]["kmsToken"].as_str().unwrap().to_owned();
    app.call(Method::PUT, &format!("/api/v1/sites/{site_id}/on"), None)
        .await;
    (site_id, kms_token)
}

async fn exchange(app: &TestApp, kms_token: &str, document: String) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/cpix/{kms_token}")))
        .header("content-type", "application/xml")
        .header("x-speke-version", "2.0")
        .header("x-speke-user-agent", "packager-test/1")
        .body(document)
        .send()
        .await
        .unwrap()
}

/// The text between the first `open` and the next `close` tag.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {text}"))
        + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

#[tokio::test]
async fn cpix_requests_are_filled_with_keys_the_license_endpoint_serves() {
    let app = TestApp::spawn().await;
    let (site_id, kms_token) = create_running_site(&app).await;

    let response = exchange(&app, &kms_token, cpix_request()).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-speke-version"], "2.0");
    assert_eq!(response.headers()["x-speke-user-agent"], "packager-test/1");
    let answer = response.text().await.unwrap();
    let key = STANDARD
        .decode(between(&answer, "<pskc:PlainValue>", "</pskc:PlainValue>"))
        .unwrap();
    assert_eq!(key.len(), 16);
    let kid_hex = KID.replace('-', "");
    let pssh = STANDARD
        .decode(between(&answer, "<cpix:PSSH>", "</cpix:PSSH>"))
        .unwrap();
    assert_eq!(&pssh[4..8], b"pssh");
    assert_eq!(hex::encode(&pssh[12..28]), CLEARKEY_SYSTEM.replace('-', ""));
    assert_eq!(hex::encode(&pssh[32..48]), kid_hex);
    assert!(answer.contains(&format!(
        r#"<cpix:DRMSystem kid="{KID}" systemId="{WIDEVINE_SYSTEM}"><cpix:PSSH/></cpix:DRMSystem>"#
    )));

    // The ClearKey license for the kid carries the very same key.
    let kid_b64 = URL_SAFE_NO_PAD.encode(hex::decode(&kid_hex).unwrap());
    let license_token = STANDARD.encode(json!({"siteId": site_id, "contentId": "movie-42", "drmType": "ClearKey", "responseFormat": "ORIGINAL", "userId": USER1_MD5}).to_string());
    let license = app
        .issue_license(
            &license_token,
            json!({"kids": [kid_b64], "type": "temporary"}).to_string(),
        )
        .await;
    let (status, body) = json_of(license).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["keys"][0]["k"], URL_SAFE_NO_PAD.encode(&key));
}

#[tokio::test]
async fn the_same_kid_asked_twice_gets_the_same_key() {
    let app = TestApp::spawn().await;
    let (site_id, kms_token) = create_running_site(&app).await;

    let first = exchange(&app, &kms_token, cpix_request())
        .await
        .text()
        .await
        .unwrap();
    let second = exchange(&app, &kms_token, cpix_request())
        .await
        .text()
        .await
        .unwrap();
    let (_, keys) = app
        .get_json(&format!("/api/v1/sites/{site_id}/contents/movie-42/keys"))
        .await;

    let key_of =
        |answer: &str| between(answer, "<pskc:PlainValue>", "</pskc:PlainValue>").to_owned();
    assert_eq!(key_of(&first), key_of(&second));
    assert_eq!(keys["total"], 1, "{keys}");
    assert_eq!(keys["content"][0]["kid"], KID.replace('-', ""));
}

#[tokio::test]
async fn invalid_cpix_documents_get_422_with_the_reason() {
    let app = TestApp::spawn().await;
    let (_, kms_token) = create_running_site(&app).await;
    let no_kid = cpix_request().replace(
        &format!(r#"<cpix:ContentKey kid="{KID}""#),
        "<cpix:ContentKey",
    );

    let (broken_status, broken) =
        json_of(exchange(&app, &kms_token, "<cpix:CPIX".to_owned()).await).await;
    let (kid_status, kid) = json_of(exchange(&app, &kms_token, no_kid).await).await;
    let (unknown_status, unknown) =
        json_of(exchange(&app, "not-a-kms-token", cpix_request()).await).await;

    assert_eq!(broken_status, StatusCode::UNPROCESSABLE_ENTITY, "{broken}");
    assert_service_error(&broken, "289014");
    assert!(message(&broken).contains("XML"), "{broken}");
    assert_eq!(kid_status, StatusCode::UNPROCESSABLE_ENTITY, "{kid}");
    assert!(message(&kid).contains("ContentKey has no kid"), "{kid}");
    assert_eq!(unknown_status, StatusCode::NOT_FOUND, "{unknown}");
    assert_service_error(&unknown, "289015");
    assert!(!unknown.to_string().contains("not-a-kms-token"));
}

#[tokio::test]
async fn cpix_documents_must_be_well_formed_with_one_root_before_keys_are_stored() {
    let app = TestApp::spawn().await;
    let (site_id, kms_token) = create_running_site(&app).await;
    let whole = cpix_request();
    let truncated = whole.trim_end().trim_end_matches("</cpix:CPIX>").to_owned();
    let trailing = format!("{whole}<cpix:ContentKeyList/>");
    let two_roots = format!(
        "{whole}{}",
        whole.replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, "")
    );

    let mut answers = Vec::new();
    for document in [truncated, trailing, two_roots] {
        answers.push(json_of(exchange(&app, &kms_token, document).await).await);
    }
    let (_, keys) = app
        .get_json(&format!("/api/v1/sites/{site_id}/contents/movie-42/keys"))
        .await;

    let reasons: Vec<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_service_error(body, "289014");
            message(body)
        })
        .collect();
    assert!(
        reasons[0].contains("ends before its root element is closed"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("more than one root element"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("more than one root element"),
        "{}",
        reasons[2]
    );
    assert_eq!(keys["total"], 0, "{keys}");
}

#[tokio::test]
async fn a_content_key_kid_without_uuid_dashes_gets_422() {
    let app = TestApp::spawn().await;
    let (site_id, kms_token) = create_running_site(&app).await;
    let compact = cpix_request().replace(KID, &KID.replace('-', ""));

    let (status, body) = json_of(exchange(&app, &kms_token, compact).await).await;
    let (_, keys) = app
        .get_json(&format!("/api/v1/sites/{site_id}/contents/movie-42/keys"))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_service_error(&body, "289014");
    assert_eq!(
        message(&body),
        format!(
            "invalid CPIX document: ContentKey kid \"{}\" is not a UUID with dashes",
            KID.replace('-', "")
        )
    );
    assert_eq!(keys["total"], 0, "{keys}");
}

#[tokio::test]
async fn cpix_reasons_say_what_is_wrong_with_the_document() {
    let app = TestApp::spawn().await;
    let (_, kms_token) = create_running_site(&app).await;
    let entity = cpix_request().replace(r#"contentId="movie-42""#, r#"contentId="&nope;""#);
    let mut not_utf8 = cpix_request().into_bytes();
    let at = not_utf8.windows(8).position(|w| w == b"movie-42").unwrap();
    not_utf8[at] = 0xff;

    let (hello_status, hello) = json_of(exchange(&app, &kms_token, "hello".to_owned()).await).await;
    let (entity_status, entity) = json_of(exchange(&app, &kms_token, entity).await).await;
    let (bytes_status, bytes) = json_of(
        app.client
            .post(app.url(&format!("/api/v1/cpix/{kms_token}")))
            .header("content-type", "application/xml")
            .body(not_utf8)
            .send()
            .await
            .unwrap(),
    )
    .await;

    for (status, body) in [
        (hello_status, &hello),
        (entity_status, &entity),
        (bytes_status, &bytes),
    ] {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_service_error(body, "289014");
    }
    assert_eq!(
        message(&hello),
        "invalid CPIX document: the document is not XML: it holds no element"
    );
    assert!(
        message(&entity).starts_with("invalid CPIX document: attribute contentId cannot be read ("),
        "{entity}"
    );
    assert!(
        message(&bytes).starts_with("invalid CPIX document: attribute contentId cannot be read ("),
        "{bytes}"
    );
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap()
}
