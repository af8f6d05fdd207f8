//! Request tracing: every request runs in a span carrying its request id
//! (from `x-request-id` or generated), method, matched route and client
//! address; the id is echoed in `x-ncp-trace-id`. Each answer is also
//! counted in the metrics under its route template.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::monitoring;

/// Response header carrying the request id, as NCP names it.
pub const TRACE_ID_HEADER: &str = "x-ncp-trace-id";
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Middleware: wraps the request in its span and logs its outcome.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request.id = %id, http.method = %request.method(), http.route = %route, client.address = %client);

    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    monitoring::http_request(method.as_str(), &route, status, elapsed);

    span.in_scope(|| {
        if route == "/healthz" {
            tracing::debug!(http.status = status, duration_ms, "request finished");
        } else {
            tracing::info!(http.status = status, duration_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}
