//! The HTTP layer: shared state, the one router listing every route, and
//! the layers around it (public prefix, CORS, request tracing, load
//! shedding, body limit and timeout, signature and rate limit).

mod auth;
mod content_keys;
mod cpix;
mod demo;
pub mod error;
pub(crate) mod export;
pub(crate) mod extract;
mod health;
pub(crate) mod history;
mod license;
pub mod openapi;
pub(crate) mod policies;
pub mod rate_limit;
pub(crate) mod sites;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, Method};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, Layer, ServiceBuilder};
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::ids::ContentKey;
use crate::secrets::MasterKey;
use crate::store::{HistoryWriter, SharedStore, StoredContentKey};

pub use auth::SigningTarget;
pub use error::ApiError;
pub use rate_limit::KeyRateLimiter;

/// What every handler can reach: one shared [`Services`], so that the
/// clones the router makes for each request cost one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares `services` with every handler.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The service's parts, behind [`AppState`].
pub struct Services {
    /// Storage.
    pub store: SharedStore,
    /// The batching history writer.
    pub writer: HistoryWriter,
    /// The service clock.
    pub clock: SharedClock,
    /// Seals and opens stored secrets.
    pub master_key: MasterKey,
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Zone of `licenseCreatedTime`.
    pub time_zone: Tz,
    /// Client for fetching FairPlay credential files.
    pub http_client: reqwest::Client,
    /// The per-access-key rate limit, when one is set.
    pub rate_limiter: Option<Arc<KeyRateLimiter>>,
}

impl Services {
    /// Seals `value` as JSON with the master key.
    pub fn seal_json<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, ApiError> {
        let json = serde_json::to_vec(value).map_err(|error| ApiError::Internal(error.into()))?;
        Ok(self.master_key.seal(&json))
    }

    /// Opens a stored content key.
    pub fn open_content_key(&self, stored: &StoredContentKey) -> Result<ContentKey, ApiError> {
        let plain = self
            .master_key
            .open(&stored.key_sealed)
            .map_err(|error| ApiError::Internal(error.into()))?;
        let bytes: [u8; 16] = plain.as_slice().try_into().map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("stored content key is not 16 bytes"))
        })?;
        Ok(ContentKey(bytes))
    }

    /// Opens JSON sealed by [`Services::seal_json`].
    pub fn open_json<T: serde::de::DeserializeOwned>(&self, sealed: &[u8]) -> Result<T, ApiError> {
        let json = self
            .master_key
            .open(sealed)
            .map_err(|error| ApiError::Internal(error.into()))?;
        serde_json::from_slice(&json).map_err(|error| ApiError::Internal(error.into()))
    }
}

/// Every signed route of the JSON API with its OpenAPI description;
/// compare with `shared/spec/API.md`.
fn signed_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sites::list_sites, sites::create_site))
        .routes(routes!(sites::list_site_log))
        .routes(routes!(
            sites::get_site,
            sites::update_site,
            sites::delete_site
        ))
        .routes(routes!(sites::turn_site_on))
        .routes(routes!(sites::turn_site_off))
        .routes(routes!(policies::list_policies, policies::create_policy))
        .routes(routes!(policies::list_policy_log))
        .routes(routes!(
            policies::get_policy,
            policies::update_policy,
            policies::delete_policy
        ))
        .routes(routes!(policies::copy_policy))
        .routes(routes!(
            content_keys::list_content_keys,
            content_keys::register_content_key
        ))
        .routes(routes!(license::issue_license))
        .routes(routes!(license::fairplay::get_fairplay_certificate))
        .routes(routes!(history::list_history))
        .routes(routes!(export::export_history))
        .routes(routes!(history::summarize_history))
}

/// Routes that carry no signature, each with its OpenAPI description. The
/// KMS token in the CPIX path authenticates key exchange (see `cpix`).
fn unsigned_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cpix::exchange_keys))
        .routes(routes!(health::health))
        .routes(routes!(openapi::openapi_document))
}

/// The OpenAPI document of every route above.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(signed_routes(), unsigned_routes())
}

/// Every route of the service: the documented ones, the demo's, and the
/// fallbacks, inside the layers. A JSON route belongs in `signed_routes` or
/// `unsigned_routes` with its annotation; only HTML pages join here.
fn routes(state: AppState) -> Router {
    let (signed, _) = signed_routes().split_for_parts();
    let api = signed.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::verify_signature,
    ));
    let (unsigned, _) = unsigned_routes().split_for_parts();

    Router::new()
        .merge(api)
        .merge(unsigned)
        .merge(demo_routes(&state.settings))
        .merge(crate::console::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(route_not_found)
        .layer(DefaultBodyLimit::max(state.settings.body_limit_bytes))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(
            state.settings.body_read_timeout_ms,
        )))
        // One limit shared by every route: past it a request is answered 503
        // at once rather than queued, so memory stays bounded under load.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(
                    state.settings.max_concurrent_requests,
                )),
        )
        .layer(middleware::from_fn(trace::trace_request))
        .layer(cors())
        .with_state(state)
}

/// The playback demo's unsigned routes, only when the operator enabled it.
fn demo_routes(settings: &Settings) -> Router<AppState> {
    if !settings.demo {
        return Router::new();
    }
    tracing::info!(access_key = %settings.demo_access_key, "demo page at /demo signs license and history requests with this access key");
    Router::new()
        .route("/demo", get(demo::demo_page))
        .route("/demo/shaka-player.js", get(demo::shaka_player))
        .route("/demo/sign", get(demo::sign_for_player))
}

async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn overloaded(_: BoxError) -> ApiError {
    tracing::debug!("request refused: max_concurrent_requests are being handled");
    ApiError::Overloaded
}

/// Players call from their own origin; no cookies are involved, so any
/// origin may call, and every response (errors included) says so.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-drm-token"),
            HeaderName::from_static("x-drm-device-id"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static(crate::signing::TIMESTAMP_HEADER),
            HeaderName::from_static(crate::signing::ACCESS_KEY_HEADER),
            HeaderName::from_static(crate::signing::SIGNATURE_HEADER),
            HeaderName::from_static(crate::signing::REGION_HEADER),
        ])
        .expose_headers([HeaderName::from_static(trace::TRACE_ID_HEADER)])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The complete service: the router behind the public-prefix rewrite,
/// which must run before routing.
pub fn service(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let prefix = state.settings.public_base_path.clone();
    let router = routes(state);
    tower::util::MapRequestLayer::new(move |request| auth::apply_public_prefix(&prefix, request))
        .layer(router)
}
