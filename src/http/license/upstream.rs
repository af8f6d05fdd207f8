//! Widevine, PlayReady and FairPlay through the site's upstream license
//! server [extension]: the request is already authorized; the CDM's
//! message goes out byte for byte and the answer comes back unchanged.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName};

use super::Issued;
use crate::domain::device::ReportedDevice;
use crate::domain::drm::DrmType;
use crate::domain::fairplay::read_spc;
use crate::domain::site::Site;
use crate::domain::token::DrmToken;
use crate::domain::upstream::{Forward, LicenseServers};
use crate::http::error::ApiError;
use crate::http::AppState;

/// Content type sent upstream when the player named none.
const BINARY: &str = "application/octet-stream";
/// PlayReady license servers route SOAP calls by this header.
const SOAP_ACTION: HeaderName = HeaderName::from_static("soapaction");

/// Forwards the message to the upstream configured for the token's DRM type.
pub(super) async fn forward(
    app: &AppState,
    site: &Site,
    token: DrmToken,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Issued, ApiError> {
    let drm = token.drm_type;
    let servers = license_servers(app, site).await?;
    let Some(upstream) = servers.get(drm) else {
        return Err(ApiError::UpstreamNotConfigured(drm));
    };
    let message = message(drm, headers, body)?;
    let timeout = Duration::from_millis(app.settings.upstream_timeout_ms);

    let answer = upstream
        .forward(&app.http_client, message, timeout)
        .await
        .inspect_err(|error| {
            tracing::warn!(site.id = %site.site_id, "drm.type" = drm.name(), error = %error, "upstream license server failed");
        })?;

    Ok(Issued {
        token,
        reported: ReportedDevice::from_json_answer(&answer.body),
        content_type: answer.content_type.unwrap_or_else(|| BINARY.to_owned()),
        body: answer.body,
    })
}

/// A site's upstream license servers; none configured reads as empty.
pub async fn license_servers(app: &AppState, site: &Site) -> Result<LicenseServers, ApiError> {
    match app.store.find_license_servers(site.pk).await? {
        Some(sealed) => app.open_json(&sealed),
        None => Ok(LicenseServers::default()),
    }
}

/// The bytes and headers that go upstream. FairPlay's SPC is unwrapped
/// from form data first, so the key server always gets the raw SPC.
fn message<'a>(
    drm: DrmType,
    headers: &'a HeaderMap,
    body: &Bytes,
) -> Result<Forward<'a>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if drm == DrmType::FairPlay {
        let spc = read_spc(content_type, body)
            .map_err(|error| ApiError::InvalidLicenseRequest(error.to_string()))?;
        return Ok(Forward {
            drm,
            body: spc,
            content_type: BINARY,
            passed: Vec::new(),
        });
    }
    let passed = headers
        .get(SOAP_ACTION)
        .map(|value| (SOAP_ACTION, value.clone()))
        .into_iter()
        .collect();
    Ok(Forward {
        drm,
        body: body.to_vec(),
        content_type: content_type.unwrap_or(BINARY),
        passed,
    })
}
