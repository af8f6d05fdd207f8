//! `GET /api/v1/license/fairPlay` (spec section 6): the FairPlay
//! application certificate of the site the X-DRM-TOKEN names, which a
//! player needs before it can build an SPC.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::header_text;
use crate::domain::fairplay::FairPlayCredentials;
use crate::domain::token::RawToken;
use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::http::sites::live_site;
use crate::http::AppState;

/// Answers the certificate bytes as given to `fairPlayCert.certFile`.
#[utoipa::path(
    get,
    path = "/api/v1/license/fairPlay",
    tag = "license",
    params(
        ("x-drm-token" = String, Header, description = "Names the site"),
    ),
    responses((status = 200, description = "The FairPlay application certificate", content_type = "application/octet-stream", body = Vec<u8>))
)]
pub async fn get_fairplay_certificate(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let raw = RawToken::decode(header_text(&headers, "x-drm-token"))
        .map_err(|error| ApiError::InvalidDrmToken(error.to_string()))?;
    let site = live_site(&app, &caller, &raw.site_id).await?;
    let Some(sealed) = &site.fairplay_sealed else {
        return Err(ApiError::FairPlayCertIncomplete(site.site_id));
    };

    let credentials: FairPlayCredentials = app.open_json(sealed)?;
    let cert = STANDARD
        .decode(&credentials.cert)
        .map_err(|error| ApiError::Internal(error.into()))?;

    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        cert,
    )
        .into_response())
}
