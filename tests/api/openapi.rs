//! The served OpenAPI document against the router behind it: every
//! documented operation is routed, no other method on a documented path
//! is, and the document itself is served without a signature.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{json_of, TestApp};

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// `GET /api/v1/openapi.json`, unsigned.
async fn served_document(app: &TestApp) -> (reqwest::StatusCode, Value) {
    let url = app.url("/api/v1/openapi.json");
    json_of(app.client.get(url).send().await.unwrap()).await
}

/// The document's operations as `(METHOD, path template)`.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    operations
}

/// A path template with every `{parameter}` filled in.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "probe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn openapi_lists_exactly_the_operations_the_router_serves() {
    let app = TestApp::spawn().await;

    let (status, document) = served_document(&app).await;
    let documented = documented(&document);
    let mut served = BTreeSet::new();
    let templates: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    for template in templates {
        for method in METHODS {
            let response = app
                .signed(method.clone(), &concrete(template))
                .send()
                .await
                .unwrap();
            let (status, body) = json_of(response).await;
            let unrouted = status == 404 && body["error"]["errorCode"] == "300";
            if !unrouted {
                served.insert((method.to_string(), template.clone()));
            }
        }
    }

    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(served, documented);
    assert!(documented.len() >= 23, "{documented:?}");
}

#[tokio::test]
async fn openapi_describes_the_signature_and_both_error_shapes() {
    let app = TestApp::spawn().await;

    let (_, document) = served_document(&app).await;

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["ncpTimestamp"]["name"], "x-ncp-apigw-timestamp");
    assert_eq!(schemes["ncpAccessKey"]["name"], "x-ncp-iam-access-key");
    assert_eq!(schemes["ncpSignature"]["name"], "x-ncp-apigw-signature-v2");
    let sites = &document["paths"]["/api/v1/sites"]["get"];
    assert_eq!(
        sites["security"][0].as_object().unwrap().len(),
        3,
        "{sites}"
    );
    assert_eq!(
        sites["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["ErrorBody"]["oneOf"].as_array().unwrap().len(), 2);
    assert_eq!(
        schemas["ServiceError"]["required"],
        serde_json::json!(["code", "name", "message"])
    );
    assert_eq!(
        schemas["GatewayError"]["required"],
        serde_json::json!(["errorCode", "message", "details"])
    );
    let cpix = &document["paths"]["/api/v1/cpix/{kmsToken}"]["post"];
    assert!(cpix.get("security").is_none(), "{cpix}");
    let history = document["paths"]["/api/v1/license/statistics"]["get"].to_string();
    assert!(history.contains("\"cursor\""), "{history}");
    let envelope = &document["components"]["schemas"]["Envelope_Vec_HistoryRecordView"];
    assert!(
        envelope["properties"].get("nextCursor").is_some(),
        "{envelope}"
    );
    assert!(document["paths"]
        .get("/api/v1/license/statistics/export")
        .is_some());
}
