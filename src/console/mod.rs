//! The web console at `/console`: server-rendered pages over the same
//! handlers as the JSON API, for someone signed in with an access key and
//! its secret. No script runs in it: pages are HTML and inline SVG charts
//! under a strict Content-Security-Policy, changes are POSTed forms that
//! carry the session's CSRF token, and auto-refresh is a meta refresh.

mod charts;
mod filters;
mod history;
mod page;
mod policies;
mod session;
mod sites;
mod statistics;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::AppState;

/// The stylesheet, served by the binary so that no inline style is needed.
const STYLESHEET: &str = include_str!("console.css");

/// No script, no inline style, nothing from another origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every console route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/history", get(history::history_page))
        .route("/console/history/export", get(history::export))
        .route("/console/statistics", get(statistics::statistics_page))
        .route(
            "/console/sites",
            get(sites::sites_page).post(sites::create_site),
        )
        .route(
            "/console/sites/{site_id}",
            get(sites::site_page).post(sites::update_site),
        )
        .route("/console/sites/{site_id}/toggle", post(sites::toggle_site))
        .route(
            "/console/policies",
            get(policies::policies_page).post(policies::create_policy),
        )
        .route(
            "/console/policies/{policy_id}",
            get(policies::policy_page).post(policies::update_policy),
        )
        .route(
            "/console/policies/{policy_id}/copy",
            post(policies::copy_policy),
        )
        .route(
            "/console/policies/{policy_id}/delete",
            post(policies::delete_policy),
        )
        .route("/console/console.css", get(stylesheet))
        .layer(middleware::map_response(secure_headers))
}

async fn home(console: session::Console) -> Redirect {
    Redirect::to(&console.link("/history"))
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// Headers on every console answer: the CSP, no sniffing, no caching of
/// pages that show account data, and no referrer beyond the origin.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
