//! The playback demo [extension], served only with `serve --demo`: a page
//! that plays a DASH manifest with Shaka Player against this service, shows
//! the license exchange and the content's history. The page never holds a
//! secret: it asks `/demo/sign` for headers signed here, on the server, with
//! the access key the operator chose (`demo_access_key`).

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::AppState;
use crate::domain::params::QueryParams;
use crate::domain::token::RawToken;
use crate::signing::SignedHeaders;

/// The page; its script calls the routes below by relative URLs, so it
/// works under a public prefix too.
const DEMO_PAGE: &str = include_str!("demo.html");

/// `GET /demo`: the player page.
pub async fn demo_page() -> Html<&'static str> {
    Html(DEMO_PAGE)
}

/// `GET /demo/shaka-player.js`: Shaka Player's compiled script, read from
/// `demo_shaka_js` (npm's `shaka-player` package ships it).
pub async fn shaka_player(State(app): State<AppState>) -> Response {
    let path = &app.settings.demo_shaka_js;
    match tokio::fs::read(path).await {
        Ok(script) => ([(header::CONTENT_TYPE, "text/javascript")], script).into_response(),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "the demo page cannot load Shaka Player");
            let message = format!(
                "Shaka Player is not at {}: `npm install shaka-player` and set MULTIDRM_DEMO_SHAKA_JS to its dist/shaka-player.compiled.js",
                path.display()
            );
            (StatusCode::NOT_FOUND, message).into_response()
        }
    }
}

/// `GET /demo/sign?siteId=&contentId=&userId=`: what a customer's backend
/// hands its player, made now: the license URL with its signature headers
/// and X-DRM-TOKEN, and the content's history URL with its own headers.
pub async fn sign_for_player(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = QueryParams::parse(query.as_deref());
    let site_id = params.require("siteId").map_err(ApiError::parameter)?;
    let content_id = params.require("contentId").map_err(ApiError::parameter)?;
    let user_id = params.get("userId").map_err(ApiError::parameter)?;
    let token = clearkey_token(site_id, content_id, user_id.unwrap_or("demo-user"))?;

    let opened = demo_secret(&app).await?;
    let secret = std::str::from_utf8(&opened).map_err(|error| ApiError::Internal(error.into()))?;
    let key = &app.settings.demo_access_key;
    let now = app.clock.now_ms();
    let prefix = &app.settings.public_base_path;
    let license_url = format!("{prefix}/api/v1/license");
    let history_url = format!(
        "{prefix}/api/v1/license/statistics?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("siteId", site_id)
            .append_pair("searchCondition", "contentId")
            .append_pair("searchKeyword", content_id)
            .finish()
    );

    let mut license_headers =
        header_map(SignedHeaders::new("POST", &license_url, now, key, secret));
    license_headers.insert("x-drm-token".to_owned(), json!(token));
    let history_headers = header_map(SignedHeaders::new("GET", &history_url, now, key, secret));
    Ok(Json(json!({
        "license": { "url": license_url, "headers": license_headers },
        "history": { "url": history_url, "headers": history_headers },
    })))
}

/// A ClearKey X-DRM-TOKEN, checked by the service's own rules so that the
/// page learns of a bad content or user id before the license request.
fn clearkey_token(site_id: &str, content_id: &str, user_id: &str) -> Result<String, ApiError> {
    let token = json!({ "siteId": site_id, "contentId": content_id, "drmType": "CLEARKEY", "responseFormat": "ORIGINAL", "userId": user_id });
    let encoded = STANDARD.encode(token.to_string());
    RawToken::decode(Some(&encoded))
        .and_then(|raw| raw.validate())
        .map_err(|error| ApiError::InvalidDrmToken(error.to_string()))?;
    Ok(encoded)
}

/// The secret of the demo's access key, opened from the database.
async fn demo_secret(app: &AppState) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let key = app
        .store
        .find_access_key(&app.settings.demo_access_key)
        .await?;
    let Some(key) = key.filter(|key| key.enabled) else {
        return Err(ApiError::AuthenticationFailed(
            "the demo's access key (MULTIDRM_DEMO_ACCESS_KEY) is unknown or disabled",
        ));
    };
    app.master_key
        .open(&key.secret_sealed)
        .map_err(|error| ApiError::Internal(error.into()))
}

fn header_map(signed: SignedHeaders) -> Map<String, Value> {
    signed
        .pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect()
}
