//! Widevine, PlayReady and FairPlay through upstream license servers
//! (issue 5, parts 3 to 5), with the doubles of `upstream_double`; the
//! field cases `wv-01` and `fps-01` included.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::upstream_double::{Answer, UpstreamDouble};

/// wv-01's token: content-0001, Widevine, ORIGINAL.
const WV_TOKEN: &str = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiV2lkZXZpbmUiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";
/// fps-01's token: content-0001, FairPlay, ORIGINAL.
const FPS_TOKEN: &str = "eyJzaXRlSWQiOiJkcm0tMjAyNjEyMDMwMDAwMDAtVEVTVDEiLCJjb250ZW50SWQiOiJjb250ZW50LTAwMDEiLCJkcm1UeXBlIjoiRmFpclBsYXkiLCJyZXNwb25zZUZvcm1hdCI6Ik9SSUdJTkFMIiwidXNlcklkIjoiNjMyMmJkM2RlYTc5ZjYwNWFhODM4MGNlZjUyNzcwZjMifQ==";
const BINARY: &str = "application/octet-stream";
const FORM: &str = "application/x-www-form-urlencoded";
/// A FairPlay application certificate, as bytes that are not UTF-8.
const FPS_CERT: [u8; 6] = [0x30, 0x82, 0xff, 0x00, 0xc3, 0x28];

/// Gives site 1 the upstream license servers `servers`.
async fn set_license_servers(app: &TestApp, servers: Value) -> Value {
    let request = json!({"siteName": "fixture_site", "policyId": 0, "licenseServers": servers});
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/sites/{SITE1}"),
            Some(request),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Gives site 1 a Widevine upstream: a double answering `answer`.
async fn widevine_upstream(app: &TestApp, answer: Answer) -> UpstreamDouble {
    let upstream = UpstreamDouble::start(answer).await;
    set_license_servers(app, json!({"widevine": {"url": upstream.url}})).await;
    upstream
}

/// The one history record of site 1.
async fn only_record(app: &TestApp) -> Value {
    let mut history = app.all_history().await;
    assert_eq!(history.len(), 1, "{history:?}");
    history.remove(0)
}

/// Gives site 1 FairPlay credentials and `upstream` as its key server.
async fn set_fairplay(app: &TestApp, upstream: &UpstreamDouble) {
    let cert = format!("data:;base64,{}", STANDARD.encode(FPS_CERT));
    let request = json!({"siteName": "fixture_site", "fairPlayCert": {"certFile": cert, "privateKey": "data:;base64,a2V5", "secretKey": "ask"}, "licenseServers": {"fairplay": {"url": upstream.url}}});
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/sites/{SITE1}"),
            Some(request),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An X-DRM-TOKEN for site 1 with every field chosen.
fn token_with(drm: &str, format: &str) -> String {
    STANDARD.encode(json!({"siteId": SITE1, "contentId": "content-0001", "drmType": drm, "responseFormat": format, "userId": USER1_MD5}).to_string())
}

#[tokio::test]
async fn wv_01_binary_widevine_challenge_is_passed_through_byte_for_byte() {
    let app = TestApp::spawn().await;
    let upstream = widevine_upstream(&app, Answer::bytes(&[0x0a, 0x0b, 0x0c, 0x0d, 0xff])).await;
    let challenge = hex::decode("08011210fffe80c328000102").unwrap();

    let response = app.issue_license_typed(WV_TOKEN, BINARY, challenge).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], BINARY);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        [0x0a, 0x0b, 0x0c, 0x0d, 0xff]
    );
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(hex::encode(&received[0].body), "08011210fffe80c328000102");
    let record = only_record(&app).await;
    assert_eq!(record["drmType"], "Widevine");
    assert_eq!(record["licenseStatus"], "success");
    assert_eq!(record["contentId"], "content-0001");
}

#[tokio::test]
async fn static_headers_reach_the_upstream_and_only_their_names_are_shown() {
    let app = TestApp::spawn().await;
    let upstream = UpstreamDouble::start(Answer::bytes(b"license")).await;
    let servers = json!({"playready": {"url": upstream.url, "headers": {"X-Api-Key": "static-credential-1"}}});

    let site = set_license_servers(&app, servers).await;
    let response = app
        .signed(Method::POST, "/api/v1/license")
        .header("x-drm-token", token_with("PlayReady", "ORIGINAL"))
        .header("content-type", "text/xml; charset=utf-8")
        .header(
            "soapaction",
            "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"",
        )
        .body(b"<soap:Envelope/>".to_vec())
        .send()
        .await
        .unwrap();
    let (_, detail) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    let (_, log) = app
        .get_json(&format!("/api/v1/sites/siteLog?siteId={SITE1}"))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let received = &upstream.received()[0];
    assert_eq!(received.headers["x-api-key"], "static-credential-1");
    assert_eq!(received.headers["content-type"], "text/xml; charset=utf-8");
    assert_eq!(
        received.headers["soapaction"],
        "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\""
    );
    assert_eq!(received.body, b"<soap:Envelope/>");
    let shown = json!({"widevine": null, "playready": {"url": upstream.url, "headerNames": ["x-api-key"]}, "fairplay": null});
    assert_eq!(site["content"]["licenseServers"], shown);
    assert_eq!(detail["content"]["licenseServers"], shown);
    for answer in [&site, &detail, &log] {
        assert!(
            !answer.to_string().contains("static-credential-1"),
            "{answer}"
        );
    }
    assert!(log["content"][0]["description"]
        .as_str()
        .unwrap()
        .ends_with("license servers set for PlayReady"));
}

#[tokio::test]
async fn answers_in_json_format_wrap_the_license_with_the_upstreams_device_details() {
    let app = TestApp::spawn().await;
    let answer = json!({"license": "opaque", "deviceId": "upstream-device-7", "deviceModel": "Pixel-8", "platformName": "PLATFORM_ANDROID"});
    let upstream = widevine_upstream(
        &app,
        Answer {
            content_type: "application/json",
            ..Answer::bytes(answer.to_string().as_bytes())
        },
    )
    .await;

    let response = app
        .issue_license_typed(
            &token_with("WIDEVINE", "JSON"),
            BINARY,
            vec![0x08, 0x01, 0xff],
        )
        .await;
    let (status, body) = json_of(response).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let content = &body["content"];
    assert_eq!(content["drmType"], "Widevine");
    assert_eq!(
        STANDARD
            .decode(content["license"].as_str().unwrap())
            .unwrap(),
        answer.to_string().as_bytes()
    );
    assert_eq!(content["deviceId"], "upstream-device-7");
    assert_eq!(content["deviceModel"], "Pixel-8");
    assert_eq!(content["platformName"], "PLATFORM_ANDROID");
    assert_eq!(upstream.received()[0].body, [0x08, 0x01, 0xff]);
    let record = only_record(&app).await;
    assert_eq!(record["deviceModel"], "Pixel-8");
    assert_eq!(record["platformName"], "PLATFORM_ANDROID");
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_gives_a_quick_502_and_a_fail_record() {
    let app = TestApp::spawn_with(|settings| settings.upstream_timeout_ms = 300).await;
    let upstream = widevine_upstream(
        &app,
        Answer {
            delay: Duration::from_secs(5),
            ..Answer::bytes(b"too late")
        },
    )
    .await;

    let started = Instant::now();
    let response = app
        .issue_license_typed(WV_TOKEN, BINARY, vec![0x08, 0x01])
        .await;
    let elapsed = started.elapsed();
    let (status, body) = json_of(response).await;

    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_service_error(&body, "289013");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(upstream.received().len(), 1);
    let record = only_record(&app).await;
    assert_eq!(record["licenseStatus"], "fail");
    assert_eq!(record["errorCode"], "289013");
    assert_eq!(record["errorName"], "UPSTREAM_TIMEOUT");
}

#[tokio::test]
async fn upstream_errors_and_unreachable_upstreams_give_502_and_fail_records() {
    let app = TestApp::spawn().await;
    let failing = UpstreamDouble::start(Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        ..Answer::bytes(b"upstream broke")
    })
    .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/license", listener.local_addr().unwrap())
    };
    set_license_servers(
        &app,
        json!({"widevine": {"url": failing.url}, "playready": {"url": closed}}),
    )
    .await;

    let (error_status, error_body) = json_of(
        app.issue_license_typed(WV_TOKEN, BINARY, vec![0x08, 0x01])
            .await,
    )
    .await;
    let playready = token_with("PlayReady", "ORIGINAL");
    let (closed_status, closed_body) = json_of(
        app.issue_license_typed(&playready, BINARY, vec![0x3c])
            .await,
    )
    .await;

    assert_eq!(error_status, StatusCode::BAD_GATEWAY, "{error_body}");
    assert_service_error(&error_body, "289012");
    assert!(error_body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HTTP 500"));
    assert_eq!(closed_status, StatusCode::BAD_GATEWAY, "{closed_body}");
    assert_service_error(&closed_body, "289012");
    assert!(!closed_body.to_string().contains(&closed), "{closed_body}");
    let history = app.all_history().await;
    let codes: Vec<(&str, &str)> = history
        .iter()
        .map(|row| {
            (
                row["licenseStatus"].as_str().unwrap(),
                row["errorName"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [("fail", "UPSTREAM_FAILED"), ("fail", "UPSTREAM_FAILED")]
    );
}

#[tokio::test]
async fn widevine_certificate_requests_pass_through_without_a_license_record() {
    let app = TestApp::spawn().await;
    let upstream = widevine_upstream(&app, Answer::bytes(&[0x08, 0x05, 0x12, 0x00])).await;

    let response = app
        .issue_license_typed(WV_TOKEN, BINARY, vec![0x08, 0x04])
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        [0x08, 0x05, 0x12, 0x00]
    );
    assert_eq!(upstream.received()[0].body, [0x08, 0x04]);
    assert_eq!(app.all_history().await, Vec::<Value>::new());
}

/// The messages of the published Widevine license protocol that carry
/// the client identification, declared here independently of the service.
mod license_protocol {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SignedMessage {
        #[prost(int32, optional, tag = "1")]
        pub r#type: Option<i32>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub msg: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LicenseRequest {
        #[prost(message, optional, tag = "1")]
        pub client_id: Option<ClientIdentification>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub key_control_nonce_deprecated: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ClientIdentification {
        #[prost(int32, optional, tag = "1")]
        pub r#type: Option<i32>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub token: Option<Vec<u8>>,
        #[prost(message, repeated, tag = "3")]
        pub client_info: Vec<NameValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NameValue {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub value: Option<String>,
    }
}

/// A Widevine license request with unencrypted client identification.
fn widevine_license_request(client_info: &[(&str, &str)]) -> Vec<u8> {
    use license_protocol::*;
    let client_id = ClientIdentification {
        r#type: Some(1),
        token: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        client_info: client_info
            .iter()
            .map(|(name, value)| NameValue {
                name: Some((*name).to_owned()),
                value: Some((*value).to_owned()),
            })
            .collect(),
    };
    let request = LicenseRequest {
        client_id: Some(client_id),
        key_control_nonce_deprecated: Some(vec![0xff; 4]),
    };
    SignedMessage {
        r#type: Some(1),
        msg: Some(request.encode_to_vec()),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn clear_widevine_client_info_names_the_device_in_history() {
    let app = TestApp::spawn().await;
    let upstream = widevine_upstream(&app, Answer::bytes(&[0x0a, 0xff])).await;
    let challenge = widevine_license_request(&[
        ("company_name", "Google"),
        ("model_name", "ChromeCDM"),
        ("architecture_name", "x86-64"),
        ("platform_name", "Windows"),
        ("widevine_cdm_version", "4.10.2830.0"),
    ]);

    // The User-Agent says Linux; the CDM's own report wins.
    let response = app
        .issue_license_typed(WV_TOKEN, BINARY, challenge.clone())
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.received()[0].body, challenge);
    let record = only_record(&app).await;
    assert_eq!(record["deviceModel"], "Google-ChromeCDM-x86-64-4.10.2830.0");
    assert_eq!(record["platformName"], "PLATFORM_WINDOWS");
}

#[tokio::test]
async fn fps_01_every_spc_encoding_reaches_the_upstream_as_the_same_bytes() {
    let app = TestApp::spawn().await;
    let upstream = UpstreamDouble::start(Answer::bytes(&[0xc0, 0xff, 0xee, 0x01])).await;
    set_fairplay(&app, &upstream).await;
    let spc = hex::decode("fbefff00107e3f").unwrap();
    let variants: [(&str, Vec<u8>); 4] = [
        (FORM, b"spc=%2B%2B%2F%2FABB%2BPw%3D%3D".to_vec()),
        (FORM, b"spc=--__ABB-Pw".to_vec()),
        (FORM, b"spc=++//ABB+Pw==".to_vec()),
        (BINARY, spc.clone()),
    ];

    for (content_type, body) in variants {
        let response = app.issue_license_typed(FPS_TOKEN, content_type, body).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], BINARY);
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            [0xc0, 0xff, 0xee, 0x01]
        );
    }

    let received: Vec<Vec<u8>> = upstream.received().into_iter().map(|r| r.body).collect();
    assert_eq!(received, vec![spc; 4]);
    let history = app.all_history().await;
    assert_eq!(history.len(), 4);
    assert!(history
        .iter()
        .all(|row| row["drmType"] == "FairPlay" && row["licenseStatus"] == "success"));
}

#[tokio::test]
async fn fps_01_form_data_without_spc_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let upstream = UpstreamDouble::start(Answer::bytes(&[0xc0])).await;
    set_fairplay(&app, &upstream).await;

    let response = app
        .issue_license_typed(FPS_TOKEN, FORM, "assetId=content-0001")
        .await;
    let (status, body) = json_of(response).await;

    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_service_error(&body, "289008");
    assert!(body["error"]["message"].as_str().unwrap().contains("'spc'"));
    assert!(upstream.received().is_empty());
    let record = only_record(&app).await;
    assert_eq!(record["licenseStatus"], "fail");
    assert_eq!(record["drmType"], "FairPlay");
}

#[tokio::test]
async fn the_fairplay_certificate_is_served_and_needs_credentials() {
    let app = TestApp::spawn().await;
    let path = "/api/v1/license/fairPlay";
    let without = app
        .signed(Method::GET, path)
        .header("x-drm-token", FPS_TOKEN)
        .send()
        .await
        .unwrap();
    let (without_status, without_body) = json_of(without).await;
    let upstream = UpstreamDouble::start(Answer::bytes(&[0xc0])).await;
    set_fairplay(&app, &upstream).await;

    let with = app
        .signed(Method::GET, path)
        .header("x-drm-token", FPS_TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(without_status, StatusCode::CONFLICT, "{without_body}");
    assert_service_error(&without_body, "2810011");
    assert_eq!(with.status(), StatusCode::OK);
    assert_eq!(with.bytes().await.unwrap().as_ref(), FPS_CERT);
}

#[tokio::test]
async fn a_site_without_an_upstream_for_the_drm_type_keeps_refusing_it() {
    let app = TestApp::spawn().await;
    let upstream = widevine_upstream(&app, Answer::bytes(b"never")).await;

    let playready = token_with("PlayReady", "ORIGINAL");
    let (status, body) = json_of(app.issue_license_typed(&playready, BINARY, vec![1]).await).await;
    let (fps_status, fps_body) =
        json_of(app.issue_license_typed(FPS_TOKEN, BINARY, vec![1]).await).await;

    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_service_error(&body, "289010");
    assert_eq!(fps_status, StatusCode::CONFLICT, "{fps_body}");
    assert_service_error(&fps_body, "2810011");
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn bad_license_servers_are_refused_without_echoing_header_values() {
    let app = TestApp::spawn().await;
    let path = format!("/api/v1/sites/{SITE1}");
    let request =
        |servers: Value| Some(json!({"siteName": "fixture_site", "licenseServers": servers}));

    let (url_status, url_body) = app
        .call(
            Method::PUT,
            &path,
            request(json!({"widevine": {"url": "ftp://x"}})),
        )
        .await;
    let (header_status, header_body) = app
        .call(
            Method::PUT,
            &path,
            request(json!({"fairplay": {"url": "https://l.example", "headers": {"x-key": "secret\nvalue"}}})),
        )
        .await;
    let (unknown_status, _) = app
        .call(
            Method::PUT,
            &path,
            request(json!({"clearkey": {"url": "https://l.example"}})),
        )
        .await;

    assert_eq!(url_status, StatusCode::BAD_REQUEST);
    assert_service_error(&url_body, "280003");
    assert!(url_body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("licenseServers.widevine.url"));
    assert_eq!(header_status, StatusCode::BAD_REQUEST);
    assert!(!header_body.to_string().contains("secret"), "{header_body}");
    assert_eq!(unknown_status, StatusCode::BAD_REQUEST);
}
