//! Sites, content keys and the rules of issuance that depend on them:
//! lifecycle, validation, the site log, secrets at rest, and malformed
//! input that must never become a 5xx.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn create_site(app: &TestApp, name: &str) -> Value {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(json!({"siteName": name, "policyId": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["content"].clone()
}

#[tokio::test]
async fn a_new_site_is_ready_and_off_until_turned_on() {
    let app = TestApp::spawn().await;

    let site = create_site(&app, "my_site_1").await;

    let id = site["siteId"].as_str().unwrap();
    assert!(
        id.starts_with("drm-20261203030000-") && id.len() == 24,
        "{id}"
    );
    assert_eq!(site["siteStatus"], "READY");
    assert_eq!(site["siteEnabledYn"], false);
    assert_eq!(site["disabled"], false);
    assert_eq!(site["policyId"], 0);
    assert_eq!(site["policyName"], "Basic");
    assert_eq!(site["siteCreatedTime"], T0);
    assert_eq!(site["kmsToken"].as_str().unwrap().len(), 32);
    assert_eq!(
        site["statistics"],
        json!({"monthlyActiveUsers": 0, "monthlyActiveDevices": 0, "monthlyActiveLicenses": 0})
    );
    let (_, list) = app.get_json("/api/v1/sites?pageSize=100").await;
    assert_eq!(list["total"], 2);
    assert!(
        list["content"][0].get("kmsToken").is_none(),
        "lists do not show the KMS token"
    );
}

#[tokio::test]
async fn on_and_off_follow_the_lifecycle_and_refuse_repeats() {
    let app = TestApp::spawn().await;
    let id = create_site(&app, "lifecycle").await["siteId"]
        .as_str()
        .unwrap()
        .to_owned();

    let (off_first, off_error) = app
        .call(Method::PUT, &format!("/api/v1/sites/{id}/off"), None)
        .await;
    let (on, on_body) = app
        .call(Method::PUT, &format!("/api/v1/sites/{id}/on"), None)
        .await;
    let (on_again, on_again_error) = app
        .call(Method::PUT, &format!("/api/v1/sites/{id}/on"), None)
        .await;
    let (off, off_body) = app
        .call(Method::PUT, &format!("/api/v1/sites/{id}/off"), None)
        .await;

    assert_eq!(off_first, StatusCode::CONFLICT);
    assert_service_error(&off_error, "281005");
    assert_eq!(on, StatusCode::OK);
    assert_eq!(
        (
            on_body["content"]["siteStatus"].as_str(),
            on_body["content"]["siteEnabledYn"].as_bool()
        ),
        (Some("RUNNING"), Some(true))
    );
    assert_eq!(on_again, StatusCode::CONFLICT);
    assert_service_error(&on_again_error, "281006");
    assert_eq!(off, StatusCode::OK);
    assert_eq!(off_body["content"]["siteStatus"], "READY");
    let (_, log) = app
        .get_json(&format!("/api/v1/sites/siteLog?siteId={id}"))
        .await;
    let descriptions: Vec<&str> = log["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["description"].as_str().unwrap())
        .collect();
    assert_eq!(log["total"], 3);
    assert!(
        descriptions[0].starts_with("site turned off by TESTACCESSKEY0000001"),
        "{descriptions:?}"
    );
    assert!(
        descriptions[1].starts_with("site turned on"),
        "{descriptions:?}"
    );
    assert!(
        descriptions[2].starts_with("site created as lifecycle"),
        "{descriptions:?}"
    );
}

#[tokio::test]
async fn a_site_that_is_off_refuses_licenses_and_records_the_refusal() {
    let app = TestApp::spawn().await;
    app.call(Method::PUT, &format!("/api/v1/sites/{SITE1}/off"), None)
        .await;

    let (status, body) = json_of(
        app.issue_license(
            &token(SITE1, "content-0001", "ClearKey", "u"),
            r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#,
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_service_error(&body, "281005");
    let history = app.all_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["errorName"], "SITE_STATUS_NOT_ON");
}

#[tokio::test]
async fn site_fields_are_validated() {
    let app = TestApp::spawn().await;

    for name in ["ab", "this_name_is_far_too_long", "bad name", "bad-name"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/sites",
                Some(json!({"siteName": name})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("siteName"),
            "{body}"
        );
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(json!({"siteName": "good", "policyId": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_service_error(&body, "289001");
    let (status, body) = json_of(
        app.signed(Method::POST, "/api/v1/sites")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_service_error(&body, "280001");
}

#[tokio::test]
async fn update_and_delete_keep_the_history_readable() {
    let app = TestApp::spawn().await;
    app.issue_license(
        &token(SITE1, "content-0001", "ClearKey", "u"),
        r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#,
    )
    .await;

    let (updated, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/sites/{SITE1}"),
            Some(json!({"siteName": "renamed", "policyId": 0})),
        )
        .await;
    let (deleted, deleted_body) = app
        .call(Method::DELETE, &format!("/api/v1/sites/{SITE1}"), None)
        .await;
    let (on_deleted, on_error) = app
        .call(Method::PUT, &format!("/api/v1/sites/{SITE1}/on"), None)
        .await;
    let (refused, refusal) = json_of(
        app.issue_license(
            &token(SITE1, "content-0001", "ClearKey", "u"),
            r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#,
        )
        .await,
    )
    .await;

    assert_eq!(updated, StatusCode::OK);
    assert_eq!(body["content"]["siteName"], "renamed");
    assert_eq!(deleted, StatusCode::OK);
    assert_eq!(
        (
            deleted_body["content"]["siteStatus"].as_str(),
            deleted_body["content"]["disabled"].as_bool()
        ),
        (Some("DELETED"), Some(true))
    );
    assert_eq!(on_deleted, StatusCode::CONFLICT);
    assert_service_error(&on_error, "281004");
    assert_eq!(refused, StatusCode::CONFLICT);
    assert_service_error(&refusal, "281004");
    let history = app.all_history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0]["licenseStatus"].as_str(),
            history[1]["licenseStatus"].as_str()
        ),
        (Some("fail"), Some("success"))
    );
}

#[tokio::test]
async fn fairplay_credentials_from_data_uris_are_stored_and_shown_masked() {
    let app = TestApp::spawn().await;
    let cert = "data:application/octet-stream;base64,MIIBcert";
    let request = json!({"siteName": "fps_site", "fairPlayCert": {"certFile": cert, "privateKey": "data:;base64,c2VjcmV0LWtleS1ieXRlcw==", "privateEncryptedString": "pass-phrase-1", "secretKey": "ask-secret-1"}});

    let (status, body) = app.call(Method::POST, "/api/v1/sites", Some(request)).await;
    let (bad, bad_body) = app.call(Method::POST, "/api/v1/sites", Some(json!({"siteName": "fps_bad", "fairPlayCert": {"certFile": "ftp://x", "privateKey": "data:,k"}}))).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["content"]["fairPlayCert"],
        json!({"certFile": cert, "privateKey": "********", "privateEncryptedString": "********", "secretKey": "********"})
    );
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    assert!(
        bad_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("certFile"),
        "{bad_body}"
    );
}

#[tokio::test]
async fn content_keys_are_generated_or_registered_and_shown_only_once() {
    let app = TestApp::spawn().await;
    let path = format!("/api/v1/sites/{SITE1}/contents/movie-42/keys");

    let (generated, generated_body) = app.call(Method::POST, &path, None).await;
    let given = json!({"kid": "a06a6f51-8858-47f8-bc52-ad8c5a5a4006", "key": "b537b1141cef8d580f7e8a4efba57b65"});
    let (registered, registered_body) = app.call(Method::POST, &path, Some(given.clone())).await;
    let (again, again_body) = app.call(Method::POST, &path, Some(given)).await;
    let (bad, _) = app
        .call(
            Method::POST,
            &path,
            Some(json!({"kid": "xyz", "key": "b537b1141cef8d580f7e8a4efba57b65"})),
        )
        .await;
    let (bad_content, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/sites/{SITE1}/contents/a%20b/keys"),
            None,
        )
        .await;
    let (_, list) = app.get_json(&path).await;

    assert_eq!(generated, StatusCode::OK);
    assert_eq!(generated_body["content"]["key"].as_str().unwrap().len(), 32);
    assert_eq!(registered, StatusCode::OK);
    assert_eq!(
        registered_body["content"]["kid"],
        "a06a6f51885847f8bc52ad8c5a5a4006"
    );
    assert_eq!(
        registered_body["content"]["key"],
        "b537b1141cef8d580f7e8a4efba57b65"
    );
    assert_eq!(again, StatusCode::CONFLICT);
    assert_service_error(&again_body, "289007");
    assert_eq!(
        (bad, bad_content),
        (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST)
    );
    assert_eq!(list["total"], 2);
    assert!(
        list["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|key| key.get("key").is_none()),
        "{list}"
    );
    let license = app
        .issue_license(
            &token(SITE1, "movie-42", "ClearKey", "u"),
            r#"{"kids":["oGpvUYhYR_i8Uq2MWlpABg"]}"#,
        )
        .await;
    assert_eq!(license.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_database_alone_reveals_no_secret() {
    let app = TestApp::spawn().await;
    let url = app.state.settings.effective_database_url();
    let data_dir = app.stop_keep_files().await;

    let bytes = database_bytes(&url, data_dir.path()).await;
    let key_bytes = hex::decode("ffeeddccbbaa00998877665544332211").unwrap();

    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    for secret in [
        SECRET1.as_bytes(),
        key_bytes.as_slice(),
        b"fixture-kms-token",
    ] {
        assert!(
            !contains(secret),
            "{:?} is readable",
            String::from_utf8_lossy(secret)
        );
        assert!(
            !contains(hex::encode(secret).as_bytes()),
            "{:?} is readable as hex",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(
        contains(SITE1.as_bytes()),
        "the scan does not see the data at all"
    );
}

/// Everything the database holds, as bytes: the SQLite files, or every
/// PostgreSQL table rendered as text (bytea as hex).
async fn database_bytes(url: &str, data_dir: &std::path::Path) -> Vec<u8> {
    if url.starts_with("sqlite:") {
        let db_path = data_dir.join("multidrm.db");
        let mut bytes = std::fs::read(&db_path).unwrap();
        for suffix in ["-wal", "-shm"] {
            if let Ok(more) = std::fs::read(format!("{}{suffix}", db_path.display())) {
                bytes.extend(more);
            }
        }
        return bytes;
    }
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let mut text = String::new();
    for table in [
        "accounts",
        "access_keys",
        "sites",
        "site_events",
        "content_keys",
        "license_records",
        "meta",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
            .fetch_all(&mut connection)
            .await
            .unwrap();
        text.extend(rows);
    }
    text.into_bytes()
}

#[tokio::test]
async fn persistent_sessions_and_json_answers_follow_the_policy_and_token() {
    let app = TestApp::spawn().await;
    let json_token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        json!({"siteId": SITE1, "contentId": "content-0001", "drmType": "clearkey", "responseFormat": "json", "userId": "u"}).to_string(),
    );

    let (persistent, refusal) = json_of(
        app.issue_license(
            &token(SITE1, "content-0001", "ClearKey", "u"),
            r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"],"type":"persistent-license"}"#,
        )
        .await,
    )
    .await;
    let (status, body) = json_of(
        app.issue_license(&json_token, r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#)
            .await,
    )
    .await;

    assert_eq!(persistent, StatusCode::FORBIDDEN);
    assert_service_error(&refusal, "289005");
    assert_eq!(status, StatusCode::OK);
    let license = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        body["content"]["license"].as_str().unwrap(),
    )
    .unwrap();
    let license: Value = serde_json::from_slice(&license).unwrap();
    assert_eq!(license["keys"][0]["k"], "_-7dzLuqAJmId2ZVRDMiEQ");
    assert_eq!(body["content"]["drmType"], "ClearKey");
    assert_eq!(body["content"]["platformName"], "PLATFORM_LINUX");
}

#[tokio::test]
async fn malformed_requests_never_get_a_server_error() {
    let app = TestApp::spawn_with(|settings| settings.body_limit_bytes = 4096).await;
    let token = token(SITE1, "content-0001", "ClearKey", "u");
    let big = "x".repeat(10_000);
    let requests: Vec<(Method, String, Vec<u8>)> = vec![
        (
            Method::POST,
            "/api/v1/license".into(),
            vec![0xff, 0xfe, 0x00],
        ),
        (
            Method::POST,
            "/api/v1/license".into(),
            big.clone().into_bytes(),
        ),
        (Method::POST, "/api/v1/sites".into(), b"[]".to_vec()),
        (Method::POST, "/api/v1/sites".into(), big.into_bytes()),
        (
            Method::PUT,
            format!("/api/v1/sites/{SITE1}"),
            b"{\"siteName\": 5}".to_vec(),
        ),
        (Method::GET, "/api/v1/sites/%FF%FE".into(), vec![]),
        (
            Method::GET,
            "/api/v1/sites?pageNo=99999999999999999999".into(),
            vec![],
        ),
        (
            Method::GET,
            "/api/v1/license/statistics?siteId=%FF&startTime=%00".into(),
            vec![],
        ),
        (Method::GET, "/api/v1/nothing-here".into(), vec![]),
        (Method::PATCH, "/api/v1/sites".into(), vec![]),
        (
            Method::POST,
            format!("/api/v1/sites/{SITE1}/contents/content-0001/keys"),
            b"{\"kid\":1}".to_vec(),
        ),
    ];

    for (method, path, body) in requests {
        let response = app
            .signed(method.clone(), &path)
            .header("x-drm-token", &token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);

        assert!(
            status.is_client_error(),
            "{method} {path}: {status} {answer}"
        );
        assert!(
            answer["error"].is_object(),
            "{method} {path}: not in an error shape: {answer}"
        );
    }
    let (status, body) = json_of(
        app.signed(Method::POST, "/api/v1/license")
            .header("x-drm-token", &token)
            .body("y".repeat(5000))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["errorCode"], "430");
}

#[tokio::test]
async fn site_body_field_faults_are_280003_naming_the_field_path() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"siteName": "bad_fields", "licenseServers": {"widevine": {"url": "https://license.example/wv", "headers": {"x-a": 5}}}}),
            "licenseServers.widevine.headers.x-a",
        ),
        (
            json!({"siteName": "bad_fields", "licenseServers": {"clearkey": {"url": "https://license.example/ck"}}}),
            "licenseServers.clearkey",
        ),
        (
            json!({"siteName": "bad_fields", "licenseServers": {"widevine": {}}}),
            "licenseServers.widevine",
        ),
        (
            json!({"siteName": "bad_fields", "fairPlayCert": {"certFile": "x"}}),
            "fairPlayCert",
        ),
    ];

    let mut answers = Vec::new();
    for (body, _) in &cases {
        answers.push(
            app.call(
                Method::PUT,
                &format!("/api/v1/sites/{SITE1}"),
                Some(body.clone()),
            )
            .await,
        );
    }
    let created = app
        .call(Method::POST, "/api/v1/sites", Some(cases[0].0.clone()))
        .await;

    for ((status, answer), (_, path)) in answers
        .iter()
        .chain([&created])
        .zip(cases.iter().chain([&cases[0]]))
    {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{answer}");
        assert_service_error(answer, "280003");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{path} ")), "{message}");
        assert!(!message.contains("line 1"), "{message}");
    }
}
