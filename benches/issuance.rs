//! Issuance benchmark: ClearKey licenses through the real `multidrm serve`
//! process, over HTTP with a signature on every request, each answered only
//! after its history record is committed. The load generator is this
//! program (tokio + reqwest), running beside the server on the same cores.
//!
//! 1. Throughput: `BENCH_CONNECTIONS` clients (default 64) send requests
//!    back to back for `BENCH_SECONDS` (default 10); prints licenses/s.
//! 2. Latency at half that rate: requests start on a fixed schedule (open
//!    loop, so a slow answer cannot hold back the next request) and each
//!    latency counts from its scheduled start; prints p50/p99/max.
//! 3. Durability: the server is killed with SIGKILL and the database
//!    reopened; every acknowledged license must be in the history.
//!
//! `BENCH_DATABASE_URL=postgres://...` runs it on PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use multidrm::clock::SystemClock;
use multidrm::config::Settings;
use multidrm::domain::history::{HistoryFilter, HistoryWindow};
use multidrm::domain::site::SiteStatus;
use multidrm::signing::SignedHeaders;
use multidrm::startup::App;
use multidrm::store::{NewSite, StoredContentKey};
use tokio::sync::Mutex;

#[path = "../tests/support/serve.rs"]
mod serve;

const KEY: &str = "BENCHACCESSKEY000001";
const SECRET: &str = "BENCHSECRETKEY00000000000000000000000001";
const SITE: &str = "drm-20261203000000-BENCH";
const CONTENT: &str = "content-0001";
const KID: [u8; 16] = *b"0123456789abcdef";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_owned(),
        database_url: std::env::var("BENCH_DATABASE_URL").unwrap_or_default(),
        log: "warn".to_owned(),
        ..Settings::default()
    }
}

/// An access key, a site and the content key the requests ask for.
async fn seed(dir: &std::path::Path) {
    let app = App::open(settings(dir), Arc::new(SystemClock))
        .await
        .expect("the service opens");
    let state = &app.state;
    multidrm::admin::add_access_key(&*state.store, &state.master_key, "bench", KEY, SECRET, 0)
        .await
        .unwrap();
    let account = state.store.ensure_account("bench", 0).await.unwrap();
    let site = NewSite {
        site_id: SITE.to_owned(),
        account_id: account,
        name: "bench".to_owned(),
        policy_id: 0,
        kms_token_sealed: state.master_key.seal(b"bench"),
        fairplay_sealed: None,
        created_at: 0,
    };
    let site = state.store.insert_site(&site, "bench").await.unwrap();
    state
        .store
        .set_site_status(site.pk, SiteStatus::Running, "bench", 0)
        .await
        .unwrap();
    let key = StoredContentKey {
        kid: multidrm::domain::ids::Kid(KID),
        key_sealed: state.master_key.seal(b"fedcba9876543210"),
        created_at: 0,
    };
    state
        .store
        .insert_content_key(site.pk, CONTENT, &key)
        .await
        .unwrap();
}

/// Sends one license request; true when a license came back.
async fn issue(client: &reqwest::Client, url: &str, token: &str, body: &str) -> bool {
    static SHOWN: AtomicBool = AtomicBool::new(false);
    let now = chrono::Utc::now().timestamp_millis();
    let signed = SignedHeaders::new("POST", "/api/v1/license", now, KEY, SECRET);
    let mut request = client
        .post(url)
        .header("x-drm-token", token)
        .body(body.to_owned());
    for (header, value) in signed.pairs() {
        request = request.header(header, value);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
        Ok(response) => {
            if !SHOWN.swap(true, Ordering::Relaxed) {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                eprintln!("refused: {status} {text}");
            }
            false
        }
        Err(error) => {
            if !SHOWN.swap(true, Ordering::Relaxed) {
                eprintln!("request failed: {error}");
            }
            false
        }
    }
}

#[tokio::main]
async fn main() {
    let connections = env_number("BENCH_CONNECTIONS", 64);
    let seconds = env_number("BENCH_SECONDS", 10);
    let dir = tempfile::tempdir().expect("a temporary folder");
    seed(dir.path()).await;

    let data_dir = dir.path().to_string_lossy().into_owned();
    let database_url = std::env::var("BENCH_DATABASE_URL").unwrap_or_default();
    let mut args = vec!["--data-dir", data_dir.as_str()];
    if !database_url.is_empty() {
        args.extend(["--database-url", database_url.as_str()]);
    }
    let log_filter =
        std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn,multidrm::startup=info".to_owned());
    let (server, address, _, log) = serve::serve(&args, &[("RUST_LOG", log_filter.as_str())]);
    let url = format!("http://{address}/api/v1/license");
    let token = STANDARD.encode(
        serde_json::json!({"siteId": SITE, "contentId": CONTENT, "drmType": "ClearKey", "userId": "bench-user"})
            .to_string(),
    );
    let body =
        serde_json::json!({"kids": [base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(KID)]})
            .to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize * 2)
        .build()
        .unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));

    // 1. Throughput, closed loop.
    let running = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        let (running, acknowledged) = (running.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                if issue(&client, &url, &token, &body).await {
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    running.store(false, Ordering::Relaxed);
    for handle in clients {
        handle.await.unwrap();
    }
    let issued = acknowledged.load(Ordering::Relaxed);
    let rate = issued as f64 / started.elapsed().as_secs_f64();
    println!("throughput: {issued} licenses in {seconds} s with {connections} connections: {rate:.0} licenses/s");

    // 2. Latency at half that rate, open loop.
    let target = (rate / 2.0).max(1.0);
    let interval = Duration::from_secs_f64(1.0 / target);
    let count = (target * seconds as f64) as u64;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let failures = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let mut requests = Vec::with_capacity(count as usize);
    for i in 0..count {
        let scheduled = begin + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        let (latencies, failures, acknowledged) =
            (latencies.clone(), failures.clone(), acknowledged.clone());
        requests.push(tokio::spawn(async move {
            if issue(&client, &url, &token, &body).await {
                acknowledged.fetch_add(1, Ordering::Relaxed);
                latencies.lock().await.push(scheduled.elapsed());
            } else {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for request in requests {
        request.await.unwrap();
    }
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let at = |fraction: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * fraction) as usize)
            .map_or(f64::NAN, |latency| latency.as_secs_f64() * 1000.0)
    };
    println!(
        "latency at {target:.0} licenses/s for {seconds} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        at(0.5),
        at(0.99),
        at(1.0),
        failures.load(Ordering::Relaxed)
    );

    // 3. Durability: kill -9, reopen, count.
    drop(server);
    if std::env::var("BENCH_LOG").is_ok() {
        for line in log.try_iter() {
            eprintln!("{line}");
        }
    }
    let app = App::open(settings(dir.path()), Arc::new(SystemClock))
        .await
        .expect("the database reopens after SIGKILL");
    let account = app.state.store.ensure_account("bench", 0).await.unwrap();
    let site = app
        .state
        .store
        .find_site(account, SITE)
        .await
        .unwrap()
        .expect("the bench site");
    let window = HistoryWindow {
        after: None,
        offset: 0,
        limit: 1,
    };
    let (_, stored) = app
        .state
        .store
        .search_history(&site, &HistoryFilter::default(), window)
        .await
        .unwrap();
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    println!("after kill -9: {stored} records stored for {acknowledged} acknowledged licenses");
    assert!(
        stored as u64 >= acknowledged,
        "an acknowledged license is missing from the history"
    );
}
