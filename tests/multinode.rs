//! Several multidrm processes on one database: every license a client saw
//! acknowledged is in the history exactly once, whichever node issued it
//! and whichever node is asked, and a console session started on one node
//! is known to all. The license test runs when `TEST_POSTGRES_URL` names a
//! PostgreSQL server (`.ci/run` sets it); the session test runs on that
//! server too, or else on one SQLite file shared by the nodes.

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

/// A console page or form answer: its status, where it redirects and the
/// session cookie it sets, if any.
struct Answer {
    status: u16,
    location: String,
    cookie: Option<String>,
    body: String,
}

async fn console(
    client: &reqwest::Client,
    method: reqwest::Method,
    node: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    let mut request = client.request(method.clone(), format!("http://{node}/console{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("multidrm_console={cookie}"));
    }
    if method == reqwest::Method::POST {
        request = request.form(form);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let location = header("location").unwrap_or_default();
    let cookie = header("set-cookie").and_then(|cookie| {
        let value = cookie
            .strip_prefix("multidrm_console=")?
            .split(';')
            .next()?;
        (!value.is_empty()).then(|| value.to_owned())
    });
    Answer {
        status: response.status().as_u16(),
        location,
        cookie,
        body: response.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_started_on_one_node_works_on_another_and_ends_on_all() {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("TEST_POSTGRES_URL") {
        Ok(server) => fresh_postgres_database(&server, "multidrm_sessions").await,
        Err(_) => format!("sqlite://{}", dir.path().join("shared.db").display()),
    };
    let master_key = "7f".repeat(32);
    let common = [
        "--database-url",
        url.as_str(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    let env = [("MULTIDRM_MASTER_KEY", master_key.as_str())];
    let key = create_key(&common, &env);
    let (access_key, secret_key) = (
        key["accessKey"].as_str().unwrap(),
        key["secretKey"].as_str().unwrap(),
    );
    let (_first, a, _, _) = serve(&common, &env);
    let (_second, b, _, _) = serve(&common, &env);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let credentials = [("accessKey", access_key), ("secretKey", secret_key)];

    let signed_in = console(&client, post.clone(), &a, "/sign-in", None, &credentials).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = signed_in.cookie.expect("sign-in sets the session cookie");

    let page = console(&client, get.clone(), &b, "/sites", Some(&session), &[]).await;
    assert_eq!(page.status, 200, "the other node knows the session");
    let csrf = page
        .body
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's forms carry the CSRF token")
        .to_owned();

    let created = console(
        &client,
        post.clone(),
        &a,
        "/sites",
        Some(&session),
        &[("csrf", &csrf), ("siteName", "made_through_node_a")],
    )
    .await;
    assert_eq!(created.status, 303, "the token is valid on every node");
    let sites = console(&client, get.clone(), &b, "/sites", Some(&session), &[]).await;
    assert!(sites.body.contains("made_through_node_a"));

    let signed_out = console(
        &client,
        post.clone(),
        &b,
        "/sign-out",
        Some(&session),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(signed_out.status, 303);
    for node in [&a, &b] {
        let after = console(&client, get.clone(), node, "/sites", Some(&session), &[]).await;
        assert_eq!(
            after.status, 303,
            "signing out on one node ends the session on all"
        );
        assert!(after.location.ends_with("/console/sign-in"));
    }

    let again = console(&client, post, &b, "/sign-in", None, &credentials).await;
    let session = again.cookie.expect("a second sign-in sets a new cookie");
    let disabled = std::process::Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(common)
        .args(["keys", "disable", access_key])
        .envs(env)
        .output()
        .unwrap();
    assert!(disabled.status.success());
    let after = console(&client, get, &a, "/sites", Some(&session), &[]).await;
    assert_eq!(after.status, 303, "disabling the key ends its sessions");
}
