//! `TestApp`: starts the service on port 0 with a frozen clock and the
//! fixtures of `shared/cases/README.md`, and offers helpers named after
//! API calls.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use multidrm::clock::ManualClock;
use multidrm::config::Settings;
use multidrm::domain::ids::{ContentKey, Kid};
use multidrm::domain::site::SiteStatus;
use multidrm::http::AppState;
use multidrm::signing::SignedHeaders;
use multidrm::startup::App;
use multidrm::store::{NewSite, StoredContentKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The frozen server clock of every case: 2026-12-03T03:00:00Z.
pub const T0: i64 = 1_796_266_800_000;
/// Account 1's key pair.
pub const KEY1: &str = "TESTACCESSKEY0000001";
pub const SECRET1: &str = "TESTSECRETKEY000000000000000000000000001";
/// Account 2's key pair.
pub const KEY2: &str = "TESTACCESSKEY0000002";
pub const SECRET2: &str = "TESTSECRETKEY000000000000000000000000002";
/// Account 1's site.
pub const SITE1: &str = "drm-20261203000000-TEST1";
/// Account 2's site.
pub const SITE2: &str = "drm-20261203000000-TEST2";
/// md5("user-0001").
pub const USER1_MD5: &str = "6322bd3dea79f605aa8380cef52770f3";
pub const ORIGIN: &str = "https://player.example.test";

/// Content keys of the shared fixtures: (content, kid hex, key hex).
pub const FIXTURE_KEYS: [(&str, &str, &str); 5] = [
    (
        "content-0001",
        "11223344556677889900aabbccddeeff",
        "ffeeddccbbaa00998877665544332211",
    ),
    (
        "content-0002",
        "0123456789abcdef0123456789abcdef",
        "00112233445566778899aabbccddeeff",
    ),
    (
        "content-0002",
        "fedcba9876543210fedcba9876543210",
        "0f0e0d0c0b0a09080706050403020100",
    ),
    (
        "content-0003",
        "a06a6f51885847f8bc52ad8c5a5a4006",
        "b537b1141cef8d580f7e8a4efba57b65",
    ),
    (
        "content-0003",
        "11223344556677889900aabbccddeeff",
        "ffeeddccbbaa00998877665544332211",
    ),
];

/// A running service and a client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// A service with both accounts' keys and their running sites, and the
    /// fixture content keys on site 1.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        let mut settings = Settings {
            data_dir: data_dir.path().to_owned(),
            database_url: fresh_database_url().await,
            ..Settings::default()
        };
        adjust(&mut settings);
        let clock = Arc::new(ManualClock::at(T0));
        let app = App::open(settings, clock.clone())
            .await
            .expect("the service opens");
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async move {
                let _ = stop.await;
            })
            .await
            .expect("the service serves");
        });
        let test_app = Self {
            address,
            clock,
            state,
            client: reqwest::Client::new(),
            data_dir,
            shutdown: Some(shutdown),
            server: Some(server),
        };
        test_app.seed().await;
        test_app
    }

    /// A service speaking HTTPS only, with a fresh self-signed certificate
    /// for `localhost`, and a client builder that trusts it and resolves
    /// `localhost` to the service.
    pub async fn spawn_over_tls() -> (Self, reqwest::ClientBuilder) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = tempfile::tempdir().unwrap();
        let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let app = Self::spawn_with(|settings| {
            settings.tls_cert = Some(cert);
            settings.tls_key = Some(key);
        })
        .await;
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", app.address);
        (app, client)
    }

    async fn seed(&self) {
        let store = &*self.state.store;
        let key = &self.state.master_key;
        multidrm::admin::add_access_key(store, key, "account-1", KEY1, SECRET1, T0)
            .await
            .unwrap();
        multidrm::admin::add_access_key(store, key, "account-2", KEY2, SECRET2, T0)
            .await
            .unwrap();
        self.seed_site(SITE1, "account-1").await;
        self.seed_site(SITE2, "account-2").await;
        for (content, kid, secret) in FIXTURE_KEYS {
            self.seed_content_key(SITE1, content, kid, secret).await;
        }
    }

    /// Stores a running site with a fixed id, as the cases' fixtures need.
    pub async fn seed_site(&self, site_id: &str, account: &str) {
        let store = &*self.state.store;
        let account_id = store.ensure_account(account, T0).await.unwrap();
        let site = NewSite {
            site_id: site_id.to_owned(),
            account_id,
            name: "fixture_site".to_owned(),
            policy_id: 0,
            kms_token_sealed: self.state.master_key.seal(b"fixture-kms-token"),
            fairplay_sealed: None,
            created_at: T0,
        };
        let created = store.insert_site(&site, "fixture").await.unwrap();
        store
            .set_site_status(created.pk, SiteStatus::Running, "fixture on", T0)
            .await
            .unwrap();
    }

    /// Registers a content key directly in the store.
    pub async fn seed_content_key(&self, site_id: &str, content: &str, kid: &str, key: &str) {
        let store = &*self.state.store;
        let account = if site_id == SITE2 {
            "account-2"
        } else {
            "account-1"
        };
        let account_id = store.ensure_account(account, T0).await.unwrap();
        let site = store
            .find_site(account_id, site_id)
            .await
            .unwrap()
            .expect("seeded site");
        let sealed = self
            .state
            .master_key
            .seal(&ContentKey::from_hex(key).unwrap().0);
        let stored = StoredContentKey {
            kid: Kid::from_hex(kid).unwrap(),
            key_sealed: sealed,
            created_at: T0,
        };
        store
            .insert_content_key(site.pk, content, &stored)
            .await
            .unwrap();
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.address, path_and_query)
    }

    /// A request signed with `key`/`secret` at the clock's current time.
    pub fn signed_as(
        &self,
        method: Method,
        path_and_query: &str,
        key: &str,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        let now = multidrm::clock::Clock::now_ms(&*self.clock);
        let headers = SignedHeaders::new(method.as_str(), path_and_query, now, key, secret);
        let mut request = self.client.request(method, self.url(path_and_query));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        request
    }

    /// A request signed as account 1.
    pub fn signed(&self, method: Method, path_and_query: &str) -> reqwest::RequestBuilder {
        self.signed_as(method, path_and_query, KEY1, SECRET1)
    }

    /// `GET` as account 1; answers status and JSON body.
    pub async fn get_json(&self, path_and_query: &str) -> (StatusCode, Value) {
        json_of(
            self.signed(Method::GET, path_and_query)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Any call signed with `key`/`secret`, with an optional JSON body;
    /// answers status and JSON body.
    pub async fn call_as(
        &self,
        key: &str,
        secret: &str,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.signed_as(method, path_and_query, key, secret);
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.unwrap()).await
    }

    /// Any call as account 1, with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(KEY1, SECRET1, method, path_and_query, body)
            .await
    }

    /// `POST /api/v1/license` as account 1 with a token and JSON body.
    pub async fn issue_license(
        &self,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.issue_license_typed(token, "application/json", body)
            .await
    }

    /// `POST /api/v1/license` as account 1 with a body of `content_type`.
    pub async fn issue_license_typed(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.signed(Method::POST, "/api/v1/license")
            .header("x-drm-token", token)
            .header("origin", ORIGIN)
            .header("content-type", content_type)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/v1/license/statistics?<query>` as account 1.
    pub async fn history(&self, query: &str) -> (StatusCode, Value) {
        self.get_json(&format!("/api/v1/license/statistics?{query}"))
            .await
    }

    /// Every history record of site 1, newest first.
    pub async fn all_history(&self) -> Vec<Value> {
        let (status, body) = self.history(&format!("siteId={SITE1}&pageSize=100")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["content"].as_array().unwrap().clone()
    }

    /// Sets the server clock.
    pub fn set_time(&self, now_ms: i64) {
        self.clock.set(now_ms);
    }

    /// Stops the server and waits for the writer to finish.
    pub async fn stop(self) {
        self.stop_keep_files().await;
    }

    /// Stops the server and hands back its data folder for inspection.
    pub async fn stop_keep_files(self) -> tempfile::TempDir {
        // The writer ends only when every handle to it is gone, ours included.
        let Self {
            state,
            client,
            shutdown,
            server,
            data_dir,
            ..
        } = self;
        drop((state, client));
        if let Some(shutdown) = shutdown {
            let _ = shutdown.send(());
        }
        if let Some(server) = server {
            server.await.unwrap();
        }
        data_dir
    }
}

/// Variable naming a PostgreSQL server to run the suite against; unset,
/// each test gets its own SQLite file.
pub const TEST_DATABASE_VARIABLE: &str = "TEST_POSTGRES_URL";

/// A new, empty database on the server named by
/// `TEST_POSTGRES_URL`, or empty (SQLite in the data folder).
pub async fn fresh_database_url() -> String {
    let Ok(server) = std::env::var(TEST_DATABASE_VARIABLE) else {
        return String::new();
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("the test PostgreSQL server answers");
    let name = format!("multidrm_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("a test database");
    let (prefix, rest) = server.rsplit_once('/').expect("the URL names a database");
    let query = rest
        .split_once('?')
        .map(|(_, query)| format!("?{query}"))
        .unwrap_or_default();
    format!("{prefix}/{name}{query}")
}

/// Status and JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, body)
}

/// An X-DRM-TOKEN in the standard padded alphabet.
pub fn token(site: &str, content: &str, drm: &str, user: &str) -> String {
    STANDARD.encode(json!({"siteId": site, "contentId": content, "drmType": drm, "responseFormat": "ORIGINAL", "userId": user}).to_string())
}

/// Asserts the service error shape with `code`.
pub fn assert_service_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["name"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Asserts NCP's gateway authentication failure shape.
pub fn assert_auth_failure(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["errorCode"], "200", "{body}");
    assert_eq!(body["error"]["message"], "Authentication Failed", "{body}");
    assert!(body.get("content").is_none());
}
