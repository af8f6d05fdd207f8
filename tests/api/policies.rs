//! Policies (spec section 5): the API, validation of every field, the
//! read-only `Basic` policy, policies in use, accounts as walls, the
//! policy and site logs, and issuance under a site's policy.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A policy body with every field set away from `Basic`'s values.
fn full_policy(name: &str) -> Value {
    json!({
        "policyName": name,
        "persistent": true,
        "rentalDuration": 86400,
        "playbackDuration": 7200,
        "drmPolicyConfig": {
            "widevine": {"useYn": true, "securityLevel": 3, "hdcp": "HDCP_V2_1", "cgms": "COPY_ONCE",
                         "disableAnalogOutputYn": true, "hdcpSrmRule": "CURRENT_SRM", "deviceRevocation": true},
            "playready": {"useYn": false, "securityLevel": 3000, "digitalVideoProtectionLevel": 270,
                          "analogVideoProtectionLevel": 201, "digitalAudioProtectionLevel": 301, "hdcpUseYn": true},
            "fairplay": {"useYn": true, "hdcpEnforcement": "1", "allowAirPlay": false, "allowAvAdaptor": false},
            "clearkey": {"useYn": true}
        }
    })
}

/// `POST /api/v1/policy` as account 1.
async fn post_policy(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, "/api/v1/policy", Some(body)).await
}

/// `POST /api/v1/policy` as account 1, expecting success.
async fn create_policy(app: &TestApp, body: Value) -> Value {
    let (status, answer) = post_policy(app, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["content"].clone()
}

/// Puts `SITE1` under `policy_id`.
async fn apply_to_site1(app: &TestApp, policy_id: &Value) {
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/sites/{SITE1}"),
            Some(json!({"siteName": "fixture_site", "policyId": policy_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The descriptions and access keys of a log answer.
fn entries(log: &Value) -> Vec<(String, String)> {
    log["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["description"].as_str().unwrap().to_owned(),
                item["accessKey"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn basic_policy_zero_is_listed_first_and_is_read_only() {
    let app = TestApp::spawn().await;

    let (_, list) = app.get_json("/api/v1/policy").await;
    let (detail_status, detail) = app.get_json("/api/v1/policy/0").await;
    let (update, update_error) = app
        .call(Method::PUT, "/api/v1/policy/0", Some(full_policy("mine")))
        .await;
    let (delete, delete_error) = app.call(Method::DELETE, "/api/v1/policy/0", None).await;
    let (_, after) = app.get_json("/api/v1/policy/0").await;

    assert_eq!(list["total"], 1);
    assert_eq!(list["content"][0]["policyId"], 0);
    assert_eq!(list["content"][0]["policyName"], "Basic");
    assert_eq!(detail_status, StatusCode::OK);
    assert_eq!(detail["content"]["policyStatus"], "READY");
    assert_eq!(detail["content"]["persistent"], false);
    for drm in ["widevine", "playready", "fairplay", "clearkey"] {
        assert_eq!(
            detail["content"]["drmPolicyConfig"][drm]["useYn"], true,
            "{drm}"
        );
    }
    assert_eq!(update, StatusCode::FORBIDDEN);
    assert_service_error(&update_error, "289006");
    assert_eq!(delete, StatusCode::FORBIDDEN);
    assert_service_error(&delete_error, "289006");
    assert_eq!(after, detail);
}

#[tokio::test]
async fn a_created_policy_holds_every_field_and_lists_newest_first_after_basic() {
    let app = TestApp::spawn().await;
    let body = full_policy("movies");

    let first = create_policy(&app, body.clone()).await;
    app.set_time(T0 + 1000);
    let second = create_policy(&app, json!({"policyName": "series"})).await;
    let (_, detail) = app
        .get_json(&format!("/api/v1/policy/{}", first["policyId"]))
        .await;
    let (_, list) = app.get_json("/api/v1/policy").await;
    let (_, page_two) = app.get_json("/api/v1/policy?pageNo=2&pageSize=2").await;

    for field in [
        "policyName",
        "persistent",
        "rentalDuration",
        "playbackDuration",
        "drmPolicyConfig",
    ] {
        assert_eq!(first[field], body[field], "{field}");
    }
    assert_eq!(first["policyStatus"], "READY");
    assert_eq!(first["disabled"], false);
    assert_eq!(first["policyCreatedTime"], T0);
    assert_eq!(first["policyUpdateTime"], T0);
    assert_eq!(first["policyDeletedTime"], Value::Null);
    assert_eq!(detail["content"], first);
    assert_eq!(
        second["drmPolicyConfig"]["widevine"],
        json!({"useYn": true, "securityLevel": 1, "hdcp": "HDCP_NONE", "cgms": "CGMS_NONE",
               "disableAnalogOutputYn": false, "hdcpSrmRule": "HDCP_SRM_RULE_NONE", "deviceRevocation": false})
    );
    assert_ne!(first["policyId"], second["policyId"]);
    let names: Vec<&str> = list["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|policy| policy["policyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Basic", "series", "movies"]);
    assert_eq!(list["total"], 3);
    assert_eq!(page_two["total"], 3);
    assert_eq!(page_two["content"].as_array().unwrap().len(), 1);
    assert_eq!(page_two["content"][0]["policyName"], "movies");
}

/// A valid policy body with `value` at the `/`-separated `path`.
fn with_field(path: &str, value: Value) -> Value {
    let mut body = json!({"policyName": "checked", "persistent": true, "drmPolicyConfig": {
        "widevine": {}, "playready": {}, "fairplay": {}, "clearkey": {}}});
    let (parent, key) = match path.rsplit_once('/') {
        Some((parent, key)) => (format!("/{parent}"), key),
        None => (String::new(), path),
    };
    body.pointer_mut(&parent)
        .expect("the body has every parent")[key] = value;
    body
}

#[tokio::test]
async fn every_field_refuses_values_outside_the_spec_naming_the_field() {
    let app = TestApp::spawn().await;
    let refused: Vec<(&str, Value)> = vec![
        ("policyName", json!("ab")),
        ("policyName", json!("a_twenty_one_chars_xx")),
        ("policyName", json!("bad name")),
        ("policyName", json!("bad-name")),
        ("policyName", json!(7)),
        ("persistent", json!("yes")),
        ("rentalDuration", json!(-1)),
        ("rentalDuration", json!(2_147_483_648_i64)),
        ("rentalDuration", json!(1.5)),
        ("rentalDuration", json!("10")),
        ("playbackDuration", json!(-1)),
        ("playbackDuration", json!(2_147_483_648_i64)),
        ("drmPolicyConfig/widevine/useYn", json!("Y")),
        ("drmPolicyConfig/widevine/securityLevel", json!(0)),
        ("drmPolicyConfig/widevine/securityLevel", json!(6)),
        ("drmPolicyConfig/widevine/hdcp", json!("HDCP_V3")),
        ("drmPolicyConfig/widevine/hdcp", json!("hdcp_none")),
        ("drmPolicyConfig/widevine/cgms", json!("COPY_TWICE")),
        ("drmPolicyConfig/widevine/disableAnalogOutputYn", json!(1)),
        ("drmPolicyConfig/widevine/hdcpSrmRule", json!("LATEST_SRM")),
        ("drmPolicyConfig/widevine/deviceRevocation", json!("no")),
        ("drmPolicyConfig/playready/useYn", json!(null)),
        ("drmPolicyConfig/playready/securityLevel", json!(151)),
        (
            "drmPolicyConfig/playready/digitalVideoProtectionLevel",
            json!(200),
        ),
        (
            "drmPolicyConfig/playready/analogVideoProtectionLevel",
            json!(250),
        ),
        (
            "drmPolicyConfig/playready/digitalAudioProtectionLevel",
            json!(270),
        ),
        ("drmPolicyConfig/playready/hdcpUseYn", json!("true")),
        ("drmPolicyConfig/fairplay/useYn", json!(0)),
        ("drmPolicyConfig/fairplay/hdcpEnforcement", json!("2")),
        ("drmPolicyConfig/fairplay/hdcpEnforcement", json!(-1)),
        ("drmPolicyConfig/fairplay/allowAirPlay", json!("true")),
        ("drmPolicyConfig/fairplay/allowAvAdaptor", json!([])),
        ("drmPolicyConfig/clearkey/useYn", json!("N")),
        ("drmPolicyConfig/widevine", json!("on")),
    ];

    for (path, value) in refused {
        let (status, body) = post_policy(&app, with_field(path, value.clone())).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} = {value}: {body}");
        assert_service_error(&body, "280003");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&path.replace('/', ".")),
            "{path} = {value}: {message}"
        );
    }
    let (_, list) = app.get_json("/api/v1/policy").await;
    assert_eq!(list["total"], 1, "a refused body creates nothing");
}

#[tokio::test]
async fn every_value_the_spec_allows_is_accepted_up_to_the_boundaries() {
    let app = TestApp::spawn().await;
    let accepted: Vec<(&str, Vec<Value>)> = vec![
        (
            "policyName",
            vec![json!("abc"), json!("A_twenty_chars_name1")],
        ),
        (
            "rentalDuration",
            vec![json!(0), json!(1), json!(2_147_483_647_i64)],
        ),
        ("playbackDuration", vec![json!(0), json!(2_147_483_647_i64)]),
        (
            "drmPolicyConfig/widevine/securityLevel",
            (1..=5).map(|level| json!(level)).collect(),
        ),
        (
            "drmPolicyConfig/widevine/hdcp",
            [
                "HDCP_NONE",
                "HDCP_V1",
                "HDCP_V2",
                "HDCP_V2_1",
                "HDCP_V2_2",
                "HDCP_NO_DIGITAL_OUTPUT",
            ]
            .map(|name| json!(name))
            .to_vec(),
        ),
        (
            "drmPolicyConfig/widevine/cgms",
            ["CGMS_NONE", "COPY_FREE", "COPY_ONCE", "COPY_NEVER"]
                .map(|name| json!(name))
                .to_vec(),
        ),
        (
            "drmPolicyConfig/widevine/hdcpSrmRule",
            ["HDCP_SRM_RULE_NONE", "CURRENT_SRM"]
                .map(|name| json!(name))
                .to_vec(),
        ),
        (
            "drmPolicyConfig/playready/securityLevel",
            [150, 2000, 3000].map(|level| json!(level)).to_vec(),
        ),
        (
            "drmPolicyConfig/playready/digitalVideoProtectionLevel",
            [100, 250, 270, 300, 301].map(|level| json!(level)).to_vec(),
        ),
        (
            "drmPolicyConfig/playready/analogVideoProtectionLevel",
            [100, 150, 200, 201].map(|level| json!(level)).to_vec(),
        ),
        (
            "drmPolicyConfig/playready/digitalAudioProtectionLevel",
            [100, 250, 300, 301].map(|level| json!(level)).to_vec(),
        ),
        (
            "drmPolicyConfig/fairplay/hdcpEnforcement",
            ["-1", "0", "1"].map(|name| json!(name)).to_vec(),
        ),
    ];

    for (path, values) in accepted {
        for value in values {
            let (status, body) = post_policy(&app, with_field(path, value.clone())).await;

            assert_eq!(status, StatusCode::OK, "{path} = {value}: {body}");
            let shown = body["content"].pointer(&format!("/{path}")).cloned();
            assert_eq!(shown, Some(value), "{path}");
        }
    }
}

#[tokio::test]
async fn a_rental_duration_needs_persistent_and_bodies_must_be_json_objects() {
    let app = TestApp::spawn().await;

    let (rental, rental_error) =
        post_policy(&app, json!({"policyName": "rental", "rentalDuration": 60})).await;
    let (explicit, _) = post_policy(
        &app,
        json!({"policyName": "rental", "persistent": false, "rentalDuration": 1}),
    )
    .await;
    let (persistent, persistent_body) = post_policy(
        &app,
        json!({"policyName": "rental", "persistent": true, "rentalDuration": 60}),
    )
    .await;
    let (missing, missing_error) = post_policy(&app, json!({})).await;
    let (array, array_error) = post_policy(&app, json!([])).await;
    let (garbage, garbage_error) = json_of(
        app.signed(Method::POST, "/api/v1/policy")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(rental, StatusCode::BAD_REQUEST);
    assert_service_error(&rental_error, "280003");
    assert!(rental_error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("rentalDuration"));
    assert_eq!(explicit, StatusCode::BAD_REQUEST);
    assert_eq!(persistent, StatusCode::OK);
    assert_eq!(persistent_body["content"]["rentalDuration"], 60);
    assert_eq!(missing, StatusCode::BAD_REQUEST);
    assert!(missing_error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("policyName"));
    assert_eq!(array, StatusCode::BAD_REQUEST);
    assert_service_error(&array_error, "280003");
    assert_eq!(garbage, StatusCode::BAD_REQUEST);
    assert_service_error(&garbage_error, "280001");
}

#[tokio::test]
async fn update_replaces_the_settings_and_copy_makes_a_new_policy_named_copy_of() {
    let app = TestApp::spawn().await;
    let created = create_policy(&app, full_policy("movies")).await;
    let id = created["policyId"].clone();
    let mut changed = full_policy("movies_hd");
    changed["drmPolicyConfig"]["widevine"]["securityLevel"] = json!(5);
    app.set_time(T0 + 5000);

    let (updated, update_body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/policy/{id}"),
            Some(changed.clone()),
        )
        .await;
    let (copied, copy_body) = app
        .call(Method::POST, &format!("/api/v1/policy/{id}/copy"), None)
        .await;
    let long = create_policy(&app, json!({"policyName": "a_twenty_char_name_x"})).await;
    let (_, long_copy) = app
        .call(
            Method::POST,
            &format!("/api/v1/policy/{}/copy", long["policyId"]),
            None,
        )
        .await;
    let (basic_copied, basic_copy) = app.call(Method::POST, "/api/v1/policy/0/copy", None).await;
    let (missing, missing_error) = app
        .call(Method::PUT, "/api/v1/policy/999", Some(changed))
        .await;

    assert_eq!(updated, StatusCode::OK, "{update_body}");
    let policy = &update_body["content"];
    assert_eq!(policy["policyName"], "movies_hd");
    assert_eq!(policy["drmPolicyConfig"]["widevine"]["securityLevel"], 5);
    assert_eq!(policy["policyCreatedTime"], T0);
    assert_eq!(policy["policyUpdateTime"], T0 + 5000);
    assert_eq!(copied, StatusCode::OK, "{copy_body}");
    let copy = &copy_body["content"];
    assert_eq!(copy["policyName"], "Copy_movies_hd");
    assert_ne!(copy["policyId"], id);
    assert_eq!(copy["drmPolicyConfig"], policy["drmPolicyConfig"]);
    assert_eq!(copy["rentalDuration"], policy["rentalDuration"]);
    assert_eq!(long_copy["content"]["policyName"], "Copy_a_twenty_char_n");
    assert_eq!(basic_copied, StatusCode::OK);
    assert_eq!(basic_copy["content"]["policyName"], "Copy_Basic");
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_service_error(&missing_error, "289001");
}

#[tokio::test]
async fn a_policy_in_use_cannot_be_deleted_and_a_deleted_one_changes_nothing() {
    let app = TestApp::spawn().await;
    let policy = create_policy(&app, full_policy("in_use")).await;
    let id = policy["policyId"].clone();
    apply_to_site1(&app, &id).await;

    let (in_use, in_use_error) = app
        .call(Method::DELETE, &format!("/api/v1/policy/{id}"), None)
        .await;
    let (_, site) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    apply_to_site1(&app, &json!(0)).await;
    app.set_time(T0 + 60_000);
    let (deleted, deleted_body) = app
        .call(Method::DELETE, &format!("/api/v1/policy/{id}"), None)
        .await;
    let (again, again_error) = app
        .call(Method::DELETE, &format!("/api/v1/policy/{id}"), None)
        .await;
    let (update, update_error) = app
        .call(
            Method::PUT,
            &format!("/api/v1/policy/{id}"),
            Some(full_policy("revived")),
        )
        .await;
    let (assign, assign_error) = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(json!({"siteName": "late_site", "policyId": id})),
        )
        .await;
    let (_, detail) = app.get_json(&format!("/api/v1/policy/{id}")).await;

    assert_eq!(in_use, StatusCode::CONFLICT);
    assert_service_error(&in_use_error, "289002");
    assert_eq!(site["content"]["policyId"], id);
    assert_eq!(site["content"]["policyName"], "in_use");
    assert_eq!(deleted, StatusCode::OK, "{deleted_body}");
    assert_eq!(deleted_body["content"]["policyStatus"], "DELETED");
    assert_eq!(deleted_body["content"]["disabled"], true);
    assert_eq!(deleted_body["content"]["policyDeletedTime"], T0 + 60_000);
    for (status, error) in [
        (again, again_error),
        (update, update_error),
        (assign, assign_error),
    ] {
        assert_eq!(status, StatusCode::CONFLICT);
        assert_service_error(&error, "289011");
    }
    assert_eq!(detail["content"], deleted_body["content"]);
}

#[tokio::test]
async fn a_deleted_site_does_not_hold_its_policy() {
    let app = TestApp::spawn().await;
    let id = create_policy(&app, json!({"policyName": "held"})).await["policyId"].clone();
    apply_to_site1(&app, &id).await;
    app.call(Method::DELETE, &format!("/api/v1/sites/{SITE1}"), None)
        .await;

    let (status, body) = app
        .call(Method::DELETE, &format!("/api/v1/policy/{id}"), None)
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn another_accounts_policy_answers_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let mine = create_policy(&app, full_policy("private")).await;
    let id = mine["policyId"].as_i64().unwrap();
    let missing = id + 1000;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/policy/{}".into(), None),
        (
            Method::PUT,
            "/api/v1/policy/{}".into(),
            Some(full_policy("taken_over")),
        ),
        (Method::DELETE, "/api/v1/policy/{}".into(), None),
        (Method::POST, "/api/v1/policy/{}/copy".into(), None),
        (
            Method::GET,
            "/api/v1/policy/policyLog?policyId={}".into(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/sites".into(),
            Some(json!({"siteName": "intruder", "policyId": "{}"})),
        ),
    ];

    for (method, template, body) in calls {
        let with_id = |value: i64| {
            let text = body
                .as_ref()
                .map(|body| body.to_string().replace("\"{}\"", &value.to_string()));
            (
                template.replace("{}", &value.to_string()),
                text.map(|text| serde_json::from_str::<Value>(&text).unwrap()),
            )
        };
        let (path, body_of_other) = with_id(id);
        let (missing_path, body_of_missing) = with_id(missing);
        let (status, answer) = app
            .call_as(KEY2, SECRET2, method.clone(), &path, body_of_other)
            .await;
        let (missing_status, missing_answer) = app
            .call_as(
                KEY2,
                SECRET2,
                method.clone(),
                &missing_path,
                body_of_missing,
            )
            .await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(status, missing_status, "{method} {path}");
        assert_service_error(&answer, "289001");
        assert_eq!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .replace(&id.to_string(), "N"),
            missing_answer["error"]["message"]
                .as_str()
                .unwrap()
                .replace(&missing.to_string(), "N"),
            "{method} {path}"
        );
    }
    let (_, theirs) = app
        .call_as(KEY2, SECRET2, Method::GET, "/api/v1/policy", None)
        .await;
    let (_, their_log) = app
        .call_as(KEY2, SECRET2, Method::GET, "/api/v1/policy/policyLog", None)
        .await;
    let (_, after) = app.get_json(&format!("/api/v1/policy/{id}")).await;
    assert_eq!(theirs["total"], 1, "{theirs}");
    assert_eq!(their_log["total"], 0, "{their_log}");
    assert_eq!(after["content"], mine);
}

#[tokio::test]
async fn every_policy_change_is_logged_newest_first_with_its_access_key() {
    let app = TestApp::spawn().await;
    let id = create_policy(&app, json!({"policyName": "logged"})).await["policyId"].clone();
    app.set_time(T0 + 1000);
    let mut update = json!({"policyName": "logged"});
    update["drmPolicyConfig"] = json!({"widevine": {"useYn": false}});
    app.call(Method::PUT, &format!("/api/v1/policy/{id}"), Some(update))
        .await;
    app.set_time(T0 + 2000);
    let copy = app
        .call(Method::POST, &format!("/api/v1/policy/{id}/copy"), None)
        .await
        .1["content"]["policyId"]
        .clone();
    app.set_time(T0 + 3000);
    app.call(Method::DELETE, &format!("/api/v1/policy/{id}"), None)
        .await;

    let (_, all) = app.get_json("/api/v1/policy/policyLog").await;
    let (_, one) = app
        .get_json(&format!("/api/v1/policy/policyLog?policyId={id}"))
        .await;
    let (_, window) = app
        .get_json(&format!(
            "/api/v1/policy/policyLog?startTime={}&endTime={}",
            T0 + 1000,
            T0 + 2000
        ))
        .await;
    let (_, paged) = app
        .get_json("/api/v1/policy/policyLog?pageNo=2&pageSize=1")
        .await;
    let (inverted, inverted_error) = app
        .get_json(&format!(
            "/api/v1/policy/policyLog?startTime={}&endTime={T0}",
            T0 + 1
        ))
        .await;
    let (bad_id, _) = app.get_json("/api/v1/policy/policyLog?policyId=abc").await;
    let (_, basic) = app.get_json("/api/v1/policy/policyLog?policyId=0").await;

    assert_eq!(all["total"], 4);
    assert_eq!(
        entries(&all),
        [
            (format!("policy deleted by {KEY1}"), KEY1.to_owned()),
            (
                format!("policy created as Copy_logged, a copy of policy {id}, by {KEY1}"),
                KEY1.to_owned()
            ),
            (
                format!("policy updated by {KEY1}: drmPolicyConfig.widevine.useYn: true -> false"),
                KEY1.to_owned()
            ),
            (
                format!("policy created as logged by {KEY1}"),
                KEY1.to_owned()
            ),
        ]
    );
    let timestamps: Vec<i64> = all["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(timestamps, [T0 + 3000, T0 + 2000, T0 + 1000, T0]);
    assert_eq!(all["content"][1]["policyId"], copy);
    assert_eq!(one["total"], 3);
    assert!(one["content"]
        .as_array()
        .unwrap()
        .iter()
        .all(|item| item["policyId"] == id));
    assert_eq!(window["total"], 2);
    assert_eq!(paged["total"], 4);
    assert_eq!(paged["content"], json!([all["content"][1]]));
    assert_eq!(inverted, StatusCode::BAD_REQUEST);
    assert!(inverted_error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("endTime"));
    assert_eq!(bad_id, StatusCode::BAD_REQUEST);
    assert_eq!(basic["total"], 0);
}

#[tokio::test]
async fn the_site_log_names_the_access_key_and_filters_by_time() {
    let app = TestApp::spawn().await;
    let (_, created) = app
        .call(
            Method::POST,
            "/api/v1/sites",
            Some(json!({"siteName": "audited"})),
        )
        .await;
    let site = created["content"]["siteId"].as_str().unwrap().to_owned();
    let policy = create_policy(&app, json!({"policyName": "for_site"})).await;
    app.set_time(T0 + 1000);
    app.call(
        Method::PUT,
        &format!("/api/v1/sites/{site}"),
        Some(json!({"siteName": "audited", "policyId": policy["policyId"]})),
    )
    .await;
    app.set_time(T0 + 2000);
    app.call(Method::PUT, &format!("/api/v1/sites/{site}/on"), None)
        .await;

    let (_, log) = app
        .get_json(&format!("/api/v1/sites/siteLog?siteId={site}"))
        .await;
    let (_, later) = app
        .get_json(&format!(
            "/api/v1/sites/siteLog?siteId={site}&startTime={}",
            T0 + 1
        ))
        .await;
    let (_, earlier) = app
        .get_json(&format!(
            "/api/v1/sites/siteLog?siteId={site}&endTime={}",
            T0 + 1000
        ))
        .await;

    assert_eq!(log["total"], 3);
    assert!(entries(&log).iter().all(|(_, key)| key == KEY1), "{log}");
    assert_eq!(
        entries(&log)[1].0,
        format!("site updated to name audited and policy for_site by {KEY1}")
    );
    assert_eq!(log["content"][0]["siteId"], site);
    assert_eq!(later["total"], 2);
    assert_eq!(earlier["total"], 2);
    assert_eq!(earlier["content"][1]["timestamp"], T0);
}

#[tokio::test]
async fn a_drm_type_the_policy_turns_off_is_refused_with_a_fail_record() {
    let app = TestApp::spawn().await;
    let mut body = json!({"policyName": "no_clearkey"});
    body["drmPolicyConfig"] = json!({"clearkey": {"useYn": false}});
    let policy = create_policy(&app, body).await;
    apply_to_site1(&app, &policy["policyId"]).await;
    let kids = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#;

    let (refused, refusal) = json_of(
        app.issue_license(&token(SITE1, "content-0001", "ClearKey", "u"), kids)
            .await,
    )
    .await;
    let history = app.all_history().await;
    let mut allowed = json!({"policyName": "no_clearkey"});
    allowed["drmPolicyConfig"] = json!({"clearkey": {"useYn": true}});
    app.call(
        Method::PUT,
        &format!("/api/v1/policy/{}", policy["policyId"]),
        Some(allowed),
    )
    .await;
    let issued = app
        .issue_license(&token(SITE1, "content-0001", "ClearKey", "u"), kids)
        .await;

    assert_eq!(refused, StatusCode::FORBIDDEN);
    assert_service_error(&refusal, "289004");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["licenseStatus"], "fail");
    assert_eq!(history[0]["drmType"], "ClearKey");
    assert_eq!(history[0]["errorCode"], "289004");
    assert_eq!(history[0]["errorName"], "DRM_TYPE_NOT_ALLOWED");
    assert_eq!(issued.status(), StatusCode::OK);
}

#[tokio::test]
async fn persistent_sessions_need_a_policy_with_persistent() {
    let app = TestApp::spawn().await;
    let temporary = create_policy(&app, json!({"policyName": "temporary"})).await;
    let persistent = create_policy(
        &app,
        json!({"policyName": "keeps", "persistent": true, "rentalDuration": 3600}),
    )
    .await;
    let request = r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"],"type":"persistent-license"}"#;
    let token = token(SITE1, "content-0001", "ClearKey", "u");
    let ask = || app.issue_license(&token, request);

    apply_to_site1(&app, &temporary["policyId"]).await;
    let (refused, refusal) = json_of(ask().await).await;
    apply_to_site1(&app, &persistent["policyId"]).await;
    let (issued, license) = json_of(ask().await).await;

    assert_eq!(refused, StatusCode::FORBIDDEN);
    assert_service_error(&refusal, "289005");
    assert_eq!(issued, StatusCode::OK, "{license}");
    assert_eq!(license["type"], "persistent-license");
    let history = app.all_history().await;
    let outcomes: Vec<(&str, &str)> = history
        .iter()
        .map(|record| {
            (
                record["licenseStatus"].as_str().unwrap(),
                record["errorName"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("success", ""), ("fail", "SESSION_TYPE_NOT_ALLOWED")]
    );
}

#[tokio::test]
async fn a_site_update_without_policy_id_keeps_the_sites_policy() {
    let app = TestApp::spawn().await;
    let id = create_policy(&app, json!({"policyName": "kept"})).await["policyId"].clone();
    apply_to_site1(&app, &id).await;

    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/sites/{SITE1}"),
            Some(json!({"siteName": "renamed_site"})),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"]["siteName"], "renamed_site");
    assert_eq!(body["content"]["policyId"], id);
    assert_eq!(body["content"]["policyName"], "kept");
    let (_, detail) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    assert_eq!(detail["content"]["policyId"], id);
}

#[tokio::test]
async fn policy_bodies_take_objects_and_strings_only_and_name_the_field_in_api_words() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!(["arr_pol", true, 86400, 0, [[false]]]),
            "body must be an object, not an array",
        ),
        (
            json!({"policyName": "arr_cfg", "drmPolicyConfig": []}),
            "drmPolicyConfig must be an object, not an array",
        ),
        (
            json!({"policyName": "arr_wv", "drmPolicyConfig": {"widevine": [false]}}),
            "drmPolicyConfig.widevine must be an object, not an array",
        ),
        (
            json!({"policyName": "map_enum", "drmPolicyConfig": {"widevine": {"hdcp": {"HDCP_V1": null}}}}),
            "drmPolicyConfig.widevine.hdcp must be a string",
        ),
        (
            json!({"policyName": "num_cfg", "drmPolicyConfig": 5}),
            "drmPolicyConfig must be an object, not integer `5`",
        ),
    ];

    let mut answers = Vec::new();
    for (body, _) in &cases {
        answers.push(post_policy(&app, body.clone()).await);
    }
    let (path_status, path_error) = app.get_json("/api/v1/policy/abc").await;
    let (_, list) = app.get_json("/api/v1/policy?pageSize=100").await;

    for ((status, answer), (_, expected)) in answers.iter().zip(&cases) {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{answer}");
        assert_service_error(answer, "280003");
        assert_eq!(answer["error"]["message"], *expected, "{answer}");
    }
    assert_eq!(path_status, StatusCode::BAD_REQUEST, "{path_error}");
    assert_eq!(
        path_error["error"]["message"],
        "policyId must be an integer, not \"abc\""
    );
    assert_eq!(list["total"], 1, "only Basic: {list}");
}
