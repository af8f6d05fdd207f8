//! Several multidrm processes on one PostgreSQL database: every license a
//! client saw acknowledged is in the history exactly once, whichever node
//! issued it and whichever node is asked. Runs when
//! `TEST_POSTGRES_URL` names a PostgreSQL server (`.ci/run` sets it).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use support::client::{create_key, fresh_postgres_database, stored_user, Signer};
use support::serve::serve;

mod support {
    pub mod client;
    pub mod serve;
}

const NODES: usize = 3;
const LICENSES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_record_every_acknowledged_license_exactly_once() {
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipped: TEST_POSTGRES_URL names no PostgreSQL server");
        return;
    };
    let url = fresh_postgres_database(&server, "multidrm_nodes").await;
    let master_key = "7f".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--database-url",
        url.as_str(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    let env = [("MULTIDRM_MASTER_KEY", master_key.as_str())];
    let signer = Signer::new(create_key(&common, &env));
    let nodes: Vec<_> = (0..NODES).map(|_| serve(&common, &env)).collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|(_, address, _, _)| address.clone())
        .collect();

    let site: Value = signer
        .request(reqwest::Method::POST, &addresses[0], "/api/v1/sites")
        .json(&json!({"siteName": "shared_site"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let site_id = site["content"]["siteId"].as_str().unwrap().to_owned();
    let on = signer
        .request(
            reqwest::Method::PUT,
            &addresses[1],
            &format!("/api/v1/sites/{site_id}/on"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 200);
    let registered = signer
        .request(reqwest::Method::POST, &addresses[2], &format!("/api/v1/sites/{site_id}/contents/movie-1/keys"))
        .json(&json!({"kid": "11223344556677889900aabbccddeeff", "key": "ffeeddccbbaa00998877665544332211"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);

    let mut requests = Vec::new();
    for i in 0..LICENSES {
        let (signer, node) = (signer.clone(), addresses[i % NODES].clone());
        let token = STANDARD.encode(json!({"siteId": site_id, "contentId": "movie-1", "drmType": "ClearKey", "userId": format!("viewer-{i}")}).to_string());
        requests.push(tokio::spawn(async move {
            let response = signer
                .request(reqwest::Method::POST, &node, "/api/v1/license")
                .header("x-drm-token", token)
                .body(r#"{"kids":["ESIzRFVmd4iZAKq7zN3u_w"]}"#)
                .send()
                .await;
            (
                i,
                response
                    .map(|response| response.status().as_u16())
                    .unwrap_or(0),
            )
        }));
    }
    let mut acknowledged = Vec::new();
    for request in requests {
        let (i, status) = request.await.unwrap();
        if status == 200 {
            acknowledged.push(stored_user(&format!("viewer-{i}")));
        }
    }

    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut cursor = String::new();
    let mut total;
    loop {
        let path = format!("/api/v1/license/statistics?siteId={site_id}&pageSize=100{cursor}");
        let page: Value = signer
            .request(reqwest::Method::GET, &addresses[2], &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total = page["total"].as_i64().unwrap();
        for record in page["content"].as_array().unwrap() {
            *counts
                .entry(record["userId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let Some(next) = page["nextCursor"].as_str() else {
            break;
        };
        cursor = format!("&cursor={next}");
    }
    drop(nodes);

    assert_eq!(
        acknowledged.len(),
        LICENSES,
        "every node should have answered"
    );
    assert_eq!(total, LICENSES as i64);
    for user in &acknowledged {
        assert_eq!(
            counts.get(user),
            Some(&1),
            "user {user} is not in the history exactly once"
        );
    }
}
