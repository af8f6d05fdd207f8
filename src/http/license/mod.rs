//! `POST /api/v1/license` (spec section 6). The token names the site; from
//! then on the request is attributable, so whatever happens writes exactly
//! one history record, committed before the response leaves; the one
//! exception is a Widevine service-certificate request, which issues no
//! license. ClearKey is answered here; Widevine, PlayReady and FairPlay go
//! to the site's upstream license server (`upstream`).

pub mod fairplay;
mod upstream;

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::ApiError;
use super::extract::{Caller, RawBody};
use super::policies::find_policy;
use super::AppState;
use crate::domain::clearkey::{self, LicenseRequest, SessionType};
use crate::domain::device::{DeviceInfo, ReportedDevice};
use crate::domain::drm::DrmType;
use crate::domain::history::{NewLicenseRecord, RecordKey};
use crate::domain::site::{Site, SiteStatus};
use crate::domain::token::{DrmToken, RawToken, ResponseFormat};
use crate::domain::widevine::{self, ClientInfo};
use crate::monitoring;
use crate::wire::{Envelope, LicenseJsonView};

pub use upstream::license_servers;

/// A license ready to send.
struct Issued {
    token: DrmToken,
    body: Vec<u8>,
    content_type: String,
    /// What the upstream's answer says about the device.
    reported: ReportedDevice,
}

/// Issues (or refuses) a license and records the outcome.
#[utoipa::path(
    post,
    path = "/api/v1/license",
    tag = "license",
    params(
        ("x-drm-token" = String, Header, description = "base64 of {siteId, contentId, drmType, responseFormat, userId}"),
        ("x-drm-device-id" = Option<String>, Header, description = "The player's device id"),
    ),
    request_body(description = "The CDM's license request as the CDM made it, any bytes; ClearKey: W3C EME JSON {kids, type}", content(("application/octet-stream"))),
    responses((status = 200, description = "The license: the CDM's answer for ORIGINAL, a JSON envelope for JSON", content(
        ("application/octet-stream"),
        (Envelope<LicenseJsonView> = "application/json")
    )))
)]
pub async fn issue_license(
    State(app): State<AppState>,
    caller: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let raw = RawToken::decode(header_text(&headers, "x-drm-token"))
        .map_err(|error| ApiError::InvalidDrmToken(error.to_string()))?;
    let site = app
        .store
        .find_site(caller.account_id, &raw.site_id)
        .await?
        .ok_or_else(|| ApiError::SiteNotFound(raw.site_id.clone()))?;
    let detected = DeviceInfo::detect(
        header_text(&headers, "user-agent"),
        header_text(&headers, "x-drm-device-id"),
        peer.ip(),
    );
    let requested_at = app.clock.now_ms();

    let outcome = issue(&app, &site, &raw, &headers, &body).await;

    let device = reported_device(detected, &raw, &body, &outcome);
    if is_certificate_request(&raw, &body) {
        tracing::debug!(site.id = %site.site_id, "service certificate request, not recorded");
    } else {
        let record = history_record(&site, &raw, &outcome, &device, requested_at);
        app.writer.record(record).await?;
        log_outcome(&site, &raw, &outcome);
        monitoring::license(raw.partial().drm_type, outcome.is_ok());
    }
    let issued = outcome?;
    Ok(respond(issued, &device))
}

/// The detected device, corrected by what the upstream's answer and, for
/// Widevine, the CDM's clear client info report, in that order of trust.
fn reported_device(
    detected: DeviceInfo,
    raw: &RawToken,
    body: &[u8],
    outcome: &Result<Issued, ApiError>,
) -> DeviceInfo {
    let from_upstream = outcome
        .as_ref()
        .map(|issued| issued.reported.clone())
        .unwrap_or_default();
    let from_cdm = match raw.partial().drm_type {
        Some(DrmType::Widevine) => ClientInfo::from_license_request(body)
            .map(|info| info.reported())
            .unwrap_or_default(),
        _ => ReportedDevice::default(),
    };
    detected.with_reported(from_upstream.or(from_cdm))
}

/// A Widevine service-certificate request issues no license, so it
/// writes no history record.
fn is_certificate_request(raw: &RawToken, body: &[u8]) -> bool {
    raw.partial().drm_type == Some(DrmType::Widevine) && widevine::is_certificate_request(body)
}

async fn issue(
    app: &AppState,
    site: &Site,
    raw: &RawToken,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Issued, ApiError> {
    let token = raw
        .validate()
        .map_err(|error| ApiError::InvalidDrmToken(error.to_string()))?;
    match site.status {
        SiteStatus::Running => {}
        SiteStatus::Ready => return Err(ApiError::SiteNotOn(site.site_id.clone())),
        SiteStatus::Deleted => return Err(ApiError::SiteDeleted(site.site_id.clone())),
    }
    let policy = find_policy(app, site.account_id, site.policy_id).await?;
    if !policy.allows(token.drm_type) {
        return Err(ApiError::DrmTypeNotAllowed(token.drm_type));
    }
    match token.drm_type {
        DrmType::ClearKey => {
            let request = LicenseRequest::parse(body)
                .map_err(|error| ApiError::InvalidLicenseRequest(error.to_string()))?;
            if request.session_type == SessionType::PersistentLicense && !policy.allows_persistent()
            {
                return Err(ApiError::SessionTypeNotAllowed);
            }
            let body = clearkey_license(app, site, &token, &request).await?;
            Ok(Issued {
                token,
                body,
                content_type: "application/json".to_owned(),
                reported: ReportedDevice::default(),
            })
        }
        DrmType::FairPlay if site.fairplay_sealed.is_none() => {
            Err(ApiError::FairPlayCertIncomplete(site.site_id.clone()))
        }
        _ => upstream::forward(app, site, token, headers, body).await,
    }
}

/// Looks up every requested kid; one unknown kid refuses the whole request.
async fn clearkey_license(
    app: &AppState,
    site: &Site,
    token: &DrmToken,
    request: &LicenseRequest,
) -> Result<Vec<u8>, ApiError> {
    let stored = app
        .store
        .find_content_keys(site.pk, token.content_id.as_str(), &request.kids)
        .await?;
    let mut keys = Vec::with_capacity(request.kids.len());
    for kid in &request.kids {
        let Some(found) = stored.iter().find(|key| key.kid == *kid) else {
            return Err(ApiError::DrmInfoNotFound(format!(
                "no content key for kid {} ({}) of content {}",
                kid.to_base64url(),
                kid.to_hex(),
                token.content_id
            )));
        };
        keys.push((*kid, app.open_content_key(found)?));
    }
    Ok(clearkey::license_response(&keys, request.session_type))
}

fn history_record(
    site: &Site,
    raw: &RawToken,
    outcome: &Result<Issued, ApiError>,
    device: &DeviceInfo,
    at: i64,
) -> NewLicenseRecord {
    let partial = raw.partial();
    let (content_id, drm_type, user_id) = match outcome {
        Ok(issued) => (
            issued.token.content_id.to_string(),
            Some(issued.token.drm_type),
            issued.token.user_id.clone(),
        ),
        Err(_) => (
            partial
                .content_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            partial.drm_type,
            partial.user_id.unwrap_or_default(),
        ),
    };
    NewLicenseRecord {
        key: RecordKey::generate(),
        site_pk: site.pk,
        content_id,
        drm_type,
        user_id,
        device_id: device.device_id.clone(),
        device_model: device.device_model.clone(),
        platform: device.platform,
        created_at: at,
        failure: outcome.as_ref().err().map(ApiError::fail_reason),
    }
}

fn log_outcome(site: &Site, raw: &RawToken, outcome: &Result<Issued, ApiError>) {
    let partial = raw.partial();
    let content = partial
        .content_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let drm = partial.drm_type.map_or("", DrmType::name);
    match outcome {
        Ok(_) => {
            tracing::info!(site.id = %site.site_id, content.id = %content, "drm.type" = drm, outcome = "success", "license issued")
        }
        Err(error) => {
            let reason = error.fail_reason();
            tracing::info!(site.id = %site.site_id, content.id = %content, "drm.type" = drm, outcome = "fail", error.code = %reason.code, error.name = %reason.name, "license refused");
        }
    }
}

fn respond(issued: Issued, device: &DeviceInfo) -> Response {
    match issued.token.response_format {
        ResponseFormat::Original => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, issued.content_type)],
            issued.body,
        )
            .into_response(),
        ResponseFormat::Json => Json(Envelope::one(LicenseJsonView {
            drm_type: issued.token.drm_type.name().to_owned(),
            license: STANDARD.encode(&issued.body),
            device_id: device.device_id.clone(),
            device_model: device.device_model.clone(),
            platform_name: device.platform.name().to_owned(),
        }))
        .into_response(),
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
