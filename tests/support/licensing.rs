//! A client of a real `multidrm serve` process for durability tests: an
//! access key made with the CLI, a ClearKey site, license requests whose
//! user id names each one, and the history as stored.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::{Digest, Md5};
use multidrm::signing::SignedHeaders;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

/// The content key every test license asks for.
const KID_HEX: &str = "11223344556677889900aabbccddeeff";
const KID_BASE64URL: &str = "ESIzRFVmd4iZAKq7zN3u_w";

/// A fresh database on the PostgreSQL server at `server`, as a URL.
pub async fn fresh_postgres_database(server: &str, prefix: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = server
        .split_once('?')
        .unwrap_or((server, ""))
        .0
        .rsplit_once('/')
        .unwrap();
    format!("{base}/{name}")
}

/// Creates an access key with `multidrm keys create`; answers its JSON.
pub fn create_key(common: &[&str], env: &[(&str, &str)]) -> Value {
    let created = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(common)
        .args(["keys", "create", "--json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    serde_json::from_slice(&created.stdout).unwrap()
}

/// A client signing with one access key.
#[derive(Clone)]
pub struct Signer {
    client: reqwest::Client,
    key: Value,
}

impl Signer {
    /// Signs with `key` (the JSON of `keys create`).
    pub fn new(key: Value) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { client, key }
    }

    fn request(&self, method: reqwest::Method, node: &str, path: &str) -> reqwest::RequestBuilder {
        let now = chrono::Utc::now().timestamp_millis();
        let headers = SignedHeaders::new(
            method.as_str(),
            path,
            now,
            self.key["accessKey"].as_str().unwrap(),
            self.key["secretKey"].as_str().unwrap(),
        );
        let mut request = self.client.request(method, format!("http://{node}{path}"));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        request
    }

    /// Creates a site that is on and has the test content key; answers its id.
    pub async fn clearkey_site(&self, node: &str) -> String {
        let site: Value = self
            .request(reqwest::Method::POST, node, "/api/v1/sites")
            .json(&json!({"siteName": "durability"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let site_id = site["content"]["siteId"].as_str().unwrap().to_owned();
        let on = self
            .request(
                reqwest::Method::PUT,
                node,
                &format!("/api/v1/sites/{site_id}/on"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(on.status(), 200);
        let path = format!("/api/v1/sites/{site_id}/contents/movie-1/keys");
        let registered = self
            .request(reqwest::Method::POST, node, &path)
            .json(&json!({"kid": KID_HEX, "key": "ffeeddccbbaa00998877665544332211"}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 200);
        site_id
    }

    /// Asks for a ClearKey license for `user`; answers the status, or the
    /// transport error when no answer came.
    pub async fn issue(&self, node: &str, site_id: &str, user: &str) -> Result<u16, String> {
        self.license_request(node, site_id, user)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|error| error.to_string())
    }

    /// Asks for a ClearKey license for `user`; answers the response.
    pub async fn issue_response(&self, node: &str, site_id: &str, user: &str) -> reqwest::Response {
        self.license_request(node, site_id, user)
            .send()
            .await
            .unwrap()
    }

    fn license_request(&self, node: &str, site_id: &str, user: &str) -> reqwest::RequestBuilder {
        let token = json!({"siteId": site_id, "contentId": "movie-1", "drmType": "ClearKey", "userId": user});
        self.request(reqwest::Method::POST, node, "/api/v1/license")
            .header("x-drm-token", STANDARD.encode(token.to_string()))
            .body(format!(r#"{{"kids":["{KID_BASE64URL}"]}}"#))
    }

    /// The `total` the history API answers for the site.
    pub async fn history_total(&self, node: &str, site_id: &str) -> i64 {
        let path = format!("/api/v1/license/statistics?siteId={site_id}&pageSize=1");
        let page: Value = self
            .request(reqwest::Method::GET, node, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["total"]
            .as_i64()
            .unwrap_or_else(|| panic!("no total in {page}"))
    }
}

/// The user id a record of `user` is stored under (its MD5).
pub fn stored_user(user: &str) -> String {
    hex::encode(Md5::digest(user))
}

/// How many records each stored user id has, read from the database itself.
pub async fn stored_records(database_url: &str) -> HashMap<String, usize> {
    let query = "SELECT user_id, COUNT(*) AS n FROM license_records GROUP BY user_id";
    let rows = if database_url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut connection).await.unwrap();
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect::<Vec<_>>()
    } else {
        let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut connection).await.unwrap();
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect::<Vec<_>>()
    };
    rows.into_iter()
        .map(|(user, n)| (user, n as usize))
        .collect()
}

/// Asserts that each of `acknowledged` is stored exactly once, that no user
/// is stored twice, and that the API's total counts every stored record.
pub fn assert_exactly_once(
    acknowledged: &[String],
    stored: &HashMap<String, usize>,
    api_total: i64,
) {
    for user in acknowledged {
        assert_eq!(
            stored.get(&stored_user(user)),
            Some(&1),
            "acknowledged license of {user} is not in the history exactly once"
        );
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert_eq!(api_total, stored.values().sum::<usize>() as i64);
}
