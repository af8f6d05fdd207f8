//! A signing client of a real `multidrm serve` process, with an access key
//! made by the CLI, and the databases such tests run on.

use std::process::Command;
use std::time::Duration;

use md5::{Digest, Md5};
use multidrm::signing::SignedHeaders;
use serde_json::Value;
use sqlx::Connection;

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

    /// A request to `node`, signed.
    pub fn request(
        &self,
        method: reqwest::Method,
        node: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
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
}

/// The user id a record of `user` is stored under (its MD5).
pub fn stored_user(user: &str) -> String {
    hex::encode(Md5::digest(user))
}
