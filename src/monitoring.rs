//! Prometheus metrics: the names the service records through the `metrics`
//! facade, the process-wide recorder behind them and the `/metrics`
//! listener. Metrics count over every account, so they are served only on
//! their own address (`metrics_listen`), meant for a private network, and
//! never on the API's listener.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use axum::http::header;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::domain::drm::DrmType;

/// Requests by method, matched route template and status.
const HTTP_REQUESTS: &str = "multidrm_http_requests_total";
/// Request durations by method and route template.
const HTTP_REQUEST_SECONDS: &str = "multidrm_http_request_duration_seconds";
/// Recorded license requests by DRM type and outcome.
const LICENSES: &str = "multidrm_licenses_total";
/// Duration of history group commits, by outcome.
const HISTORY_COMMIT_SECONDS: &str = "multidrm_history_commit_seconds";
/// Records queued for the history writer when it took its last batch.
const HISTORY_QUEUE_DEPTH: &str = "multidrm_history_queue_depth";
/// Bytes of history records waiting in the outage spool.
const HISTORY_SPOOL_BYTES: &str = "multidrm_history_spool_bytes";
/// Connections refused because `max_connections` were open.
const CONNECTIONS_REFUSED: &str = "multidrm_connections_refused_total";

/// Histogram buckets, in seconds, for every `*_seconds` metric: from a
/// fast SQLite commit to an upstream license server at its timeout.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often histograms are compacted when nobody scrapes them.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for the whole process (once; later
/// calls answer the same handle). Until then every metric is a no-op.
pub fn install() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)
                .expect("only this function installs a metrics recorder");
            handle
        })
        .clone()
}

/// Binds `address` and serves `GET /metrics` there in the Prometheus text
/// format until the returned task is aborted.
pub async fn serve(address: &str) -> anyhow::Result<JoinHandle<()>> {
    let handle = install();
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for metrics on {address}"))?;
    tracing::info!(url = %format!("http://{}/metrics", listener.local_addr()?), "serving Prometheus metrics");

    let scraped = handle.clone();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let body = scraped.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    );
    Ok(tokio::spawn(async move {
        let upkeep = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                ticks.tick().await;
                handle.run_upkeep();
            }
        });
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(error = %error, "the metrics listener stopped");
        }
        upkeep.abort();
    }))
}

/// Counts one answered request under its route template (never the raw
/// path, which would make one series per site or token).
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let method = method.to_owned();
    let route = route.to_owned();
    metrics::histogram!(HTTP_REQUEST_SECONDS, "method" => method.clone(), "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
}

/// Counts one recorded license request; `drm_type` is absent when the
/// token named none valid.
pub fn license(drm_type: Option<DrmType>, issued: bool) {
    let drm_type = drm_type.map_or("unknown", DrmType::name);
    let outcome = if issued { "success" } else { "fail" };
    metrics::counter!(LICENSES, "drm_type" => drm_type, "outcome" => outcome).increment(1);
}

/// Records the duration of one history group commit.
pub fn history_commit(elapsed: Duration, committed: bool) {
    let outcome = if committed { "committed" } else { "failed" };
    metrics::histogram!(HISTORY_COMMIT_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// Sets how many records waited for the history writer.
pub fn history_queue_depth(records: usize) {
    metrics::gauge!(HISTORY_QUEUE_DEPTH).set(records as f64);
}

/// Sets the size of the outage spool.
pub fn history_spool_bytes(bytes: u64) {
    metrics::gauge!(HISTORY_SPOOL_BYTES).set(bytes as f64);
}

/// Counts one connection refused at the connection limit.
pub fn connection_refused() {
    metrics::counter!(CONNECTIONS_REFUSED).increment(1);
}
