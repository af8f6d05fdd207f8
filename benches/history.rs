//! History benchmark: imports records into two sites with `multidrm
//! history import` from an NDJSON file, then times the history query mix
//! over real HTTP with signatures, and prints rates and latency percentiles.
//!
//! `cargo bench --bench history` runs a small size; `BENCH_RECORDS=10000000`
//! the full one. `BENCH_DATABASE_URL=postgres://...` runs it on PostgreSQL;
//! `BENCH_REPEAT` sets how often each query runs (default 200).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multidrm::clock::SystemClock;
use multidrm::config::Settings;
use multidrm::domain::device::Platform;
use multidrm::domain::drm::DrmType;
use multidrm::signing::SignedHeaders;
use multidrm::startup::App;
use multidrm::store::NewSite;

const KEY: &str = "BENCHACCESSKEY000001";
const SECRET: &str = "BENCHSECRETKEY00000000000000000000000001";
const SITES: [&str; 2] = ["drm-20261203000000-BENCH", "drm-20261203000000-OTHER"];
const THREE_YEARS_MS: i64 = 3 * 365 * 86_400_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let records = env_number("BENCH_RECORDS", 100_000);
    let repeat = env_number("BENCH_REPEAT", 200);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database_url = std::env::var("BENCH_DATABASE_URL").unwrap_or_default();
    let settings = Settings {
        data_dir: dir.path().to_owned(),
        database_url: database_url.clone(),
        log: "warn".to_owned(),
        ..Settings::default()
    };
    let app = App::open(settings, Arc::new(SystemClock))
        .await
        .expect("the service opens");
    let state = app.state.clone();
    multidrm::admin::add_access_key(&*state.store, &state.master_key, "bench", KEY, SECRET, 0)
        .await
        .unwrap();
    let account = state.store.ensure_account("bench", 0).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();

    for site_id in SITES {
        let site = NewSite {
            site_id: site_id.to_owned(),
            account_id: account,
            name: "bench".to_owned(),
            policy_id: 0,
            kms_token_sealed: state.master_key.seal(b"bench"),
            fairplay_sealed: None,
            created_at: 0,
        };
        state.store.insert_site(&site, "bench").await.unwrap();
    }
    let file = dir.path().join("history.ndjson");
    write_history_file(&file, records, now);

    // The import runs as the operator would run it: the release binary, in
    // a process of its own, beside the idle service.
    let started = Instant::now();
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_multidrm"));
    import
        .arg("--data-dir")
        .arg(dir.path())
        .args(["history", "import", "--account", "bench"])
        .arg(&file);
    if !database_url.is_empty() {
        import.args(["--database-url", &database_url]);
    }
    let imported = import.output().expect("multidrm history import runs");
    let load = started.elapsed();
    assert!(
        imported.status.success(),
        "the import failed: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    std::fs::remove_file(&file).unwrap();
    println!(
        "imported {} records into {} sites in {:.1} s: {:.0} records/s",
        records * SITES.len(),
        SITES.len(),
        load.as_secs_f64(),
        (records * SITES.len()) as f64 / load.as_secs_f64()
    );
    // The import logs how long each of its phases took.
    for phase in String::from_utf8_lossy(&imported.stderr)
        .lines()
        .filter(|line| line.contains("seconds="))
    {
        println!("  import: {}", phase.trim());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));

    let site = SITES[0];
    let day = 86_400_000;
    let within = |from: i64| move |i: usize| record_time(i, records, now) >= from;
    // Each query with the test its matching records pass, so that every
    // answer's total is checked against the generated data.
    type Matches = Box<dyn Fn(usize) -> bool>;
    let mix: [(&str, String, Matches); 12] = [
        (
            "no filter, page 1, size 100",
            format!("siteId={site}&pageSize=100"),
            Box::new(|_| true),
        ),
        (
            "no filter, page 1000, size 100",
            format!("siteId={site}&pageSize=100&pageNo=1000"),
            Box::new(|_| true),
        ),
        (
            "contentId",
            format!("siteId={site}&searchCondition=contentId&searchKeyword=content-00042"),
            Box::new(|i| i % 1000 == 42),
        ),
        (
            "drmType",
            format!("siteId={site}&searchCondition=drmType&searchKeyword=Widevine"),
            Box::new(|i| i % 4 == 0),
        ),
        (
            "userId",
            format!("siteId={site}&searchCondition=userId&searchKeyword=user-77"),
            Box::new(|i| i % 5000 == 77),
        ),
        (
            "deviceId",
            format!("siteId={site}&searchCondition=deviceId&searchKeyword=device-123"),
            Box::new(|i| i % 20_000 == 123),
        ),
        (
            "deviceModel",
            format!(
                "siteId={site}&searchCondition=deviceModel&searchKeyword=Chrome-Android-ARM64-131"
            ),
            Box::new(|i| i % 3 == 1),
        ),
        (
            "status=fail",
            format!("siteId={site}&status=fail"),
            Box::new(|i| i % 10 == 0),
        ),
        (
            "1 day window",
            format!("siteId={site}&startTime={}&endTime={now}", now - day),
            Box::new(within(now - day)),
        ),
        (
            "30 day window",
            format!("siteId={site}&startTime={}&endTime={now}", now - 30 * day),
            Box::new(within(now - 30 * day)),
        ),
        (
            "3 year window",
            format!(
                "siteId={site}&startTime={}&endTime={now}",
                now - THREE_YEARS_MS
            ),
            Box::new(within(now - THREE_YEARS_MS)),
        ),
        (
            "pageSize 1",
            format!("siteId={site}&pageSize=1"),
            Box::new(|_| true),
        ),
    ];
    let client = reqwest::Client::new();
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>12}",
        "query", "p50 ms", "p99 ms", "max ms", "total"
    );
    for (name, query, matches) in mix {
        let expected = (0..records).filter(|&i| matches(i)).count() as i64;
        let path = format!("/api/v1/license/statistics?{query}");
        let mut latencies = Vec::with_capacity(repeat);
        let mut total = 0;
        for _ in 0..repeat {
            let signed = SignedHeaders::new(
                "GET",
                &path,
                chrono::Utc::now().timestamp_millis(),
                KEY,
                SECRET,
            );
            let mut request = client.get(format!("http://{address}{path}"));
            for (header, value) in signed.pairs() {
                request = request.header(header, value);
            }
            let started = Instant::now();
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            latencies.push(started.elapsed());
            total = body["total"].as_i64().expect("a history answer");
        }
        assert_eq!(total, expected, "{name}: the total is not exact");
        latencies.sort();
        let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
        println!(
            "{name:<34} {:>10.2} {:>10.2} {:>10.2} {total:>12}",
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0))
        );
    }
    // Shutdown waits for open connections and then for the history writer,
    // which ends only when every handle to the service state is gone.
    drop(client);
    drop(state);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    println!(
        "peak RSS of this process (loader, server and client together): {} MB",
        peak_rss_kb() / 1024
    );
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Writes the NDJSON file the import reads: `count` records for each
/// site, the i-th of them spread evenly over three years before `now`.
fn write_history_file(path: &std::path::Path, count: usize, now: i64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for site_id in SITES {
        for i in 0..count {
            let fail = i.is_multiple_of(10);
            let model = [
                "Chrome-Linux-x86_64-131",
                "Chrome-Android-ARM64-131",
                "Safari-iOS-ARM64-18",
            ][i % 3];
            let platform = [Platform::Linux, Platform::Android, Platform::Ios][i % 3];
            let line = serde_json::json!({
                "siteId": site_id,
                "contentId": format!("content-{:05}", i % 1000),
                "licenseStatus": if fail { "fail" } else { "success" },
                "drmType": DrmType::ALL[i % 4].name(),
                "userId": format!("{:032x}", md5_of(&format!("user-{}", i % 5000))),
                "deviceId": format!("device-{}", i % 20_000),
                "deviceModel": model,
                "platformName": platform.name(),
                "licenseCreatedAt": record_time(i, count, now),
                "errorCode": fail.then_some("2810012"),
                "errorName": fail.then_some("LICENSE_DRM_INFO_NOT_FOUND"),
            });
            serde_json::to_writer(&mut out, &line).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    out.flush().unwrap();
}

/// When the i-th of `count` records was created.
fn record_time(i: usize, count: usize, now: i64) -> i64 {
    now - THREE_YEARS_MS + (THREE_YEARS_MS / count as i64) * i as i64
}

fn md5_of(text: &str) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(text).into())
}
