//! Site endpoints (spec section 4): list, create, detail, update, on, off,
//! delete and the site log. Every lookup is scoped to the caller's account.

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{Datelike, TimeZone};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Caller};
use super::license::license_servers;
use super::openapi::{PageParams, TimeParams};
use super::policies::{applicable_policy, find_policy};
use super::AppState;
use crate::domain::body::from_json;
use crate::domain::drm::DrmType;
use crate::domain::fairplay::{FairPlayCertInput, FairPlayCredentials};
use crate::domain::ids::{generate_kms_token, SiteId};
use crate::domain::params::{Page, QueryParams, TimeRange};
use crate::domain::policy::BASIC_POLICY_ID;
use crate::domain::site::{Site, SiteName, SiteStatus};
use crate::domain::upstream::{LicenseServers, LicenseServersInput};
use crate::store::NewSite;
use crate::wire::{
    Envelope, FairPlayCertView, LicenseServersView, SiteLogItem, SiteRequest, SiteView,
    StatisticsView,
};

const MASK: &str = "********";

/// `GET /api/v1/sites`
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    tag = "sites",
    params(
        PageParams,
    ),
    responses((status = 200, description = "One page of the caller's sites", body = Envelope<Vec<SiteView>>))
)]
pub async fn list_sites(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<Vec<SiteView>>>, ApiError> {
    let page =
        Page::from_params(&QueryParams::parse(query.as_deref())).map_err(ApiError::parameter)?;
    let (sites, total) = app.store.list_sites(caller.account_id, page).await?;
    let mut views = Vec::with_capacity(sites.len());
    for site in &sites {
        views.push(site_view(&app, site, false).await?);
    }
    Ok(Json(Envelope::page(views, total)))
}

/// `POST /api/v1/sites`
#[utoipa::path(
    post,
    path = "/api/v1/sites",
    tag = "sites",
    request_body = SiteRequest,
    responses((status = 200, description = "The new site, READY and off", body = Envelope<SiteView>))
)]
pub async fn create_site(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let request: SiteRequest = from_json(&body).map_err(ApiError::parameter)?;
    let name = site_name(&request.site_name)?;
    let policy_id = request.policy_id.unwrap_or(BASIC_POLICY_ID);
    let policy = applicable_policy(&app, &caller, policy_id).await?;
    let fairplay = seal_fairplay(&app, request.fair_play_cert).await?;
    let servers = request.license_servers.map(checked_servers).transpose()?;
    let now = app.clock.now_ms();
    let new_site = NewSite {
        site_id: SiteId::generate(now).to_string(),
        account_id: caller.account_id,
        name: name.as_str().to_owned(),
        policy_id: policy.id,
        kms_token_sealed: app.master_key.seal(generate_kms_token().as_bytes()),
        fairplay_sealed: fairplay,
        created_at: now,
    };
    let mut event = format!(
        "site created as {} with policy {} by {}",
        name.as_str(),
        policy.name(),
        caller.access_key
    );
    if let Some(servers) = &servers {
        event.push_str(&servers_changed(servers));
    }
    let site = app
        .store
        .insert_site_logged(&new_site, &caller.audit(&event, now))
        .await?;
    if let Some(servers) = &servers {
        app.store
            .save_license_servers(site.pk, &app.seal_json(servers)?)
            .await?;
    }
    tracing::info!(site.id = %site.site_id, "site created");
    Ok(Json(Envelope::one(site_view(&app, &site, true).await?)))
}

/// `GET /api/v1/sites/{siteId}`
#[utoipa::path(
    get,
    path = "/api/v1/sites/{siteId}",
    tag = "sites",
    params(
        ("siteId" = String, Path, description = "The site"),
    ),
    responses((status = 200, description = "The site, with its KMS token", body = Envelope<SiteView>))
)]
pub async fn get_site(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(site_id): ApiPath<String>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let site = find_site(&app, &caller, &site_id).await?;
    Ok(Json(Envelope::one(site_view(&app, &site, true).await?)))
}

/// `PUT /api/v1/sites/{siteId}`
#[utoipa::path(
    put,
    path = "/api/v1/sites/{siteId}",
    tag = "sites",
    params(
        ("siteId" = String, Path, description = "The site"),
    ),
    request_body = SiteRequest,
    responses((status = 200, description = "The updated site", body = Envelope<SiteView>))
)]
pub async fn update_site(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(site_id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let request: SiteRequest = from_json(&body).map_err(ApiError::parameter)?;
    let mut site = live_site(&app, &caller, &site_id).await?;
    let name = site_name(&request.site_name)?;
    let policy_id = request.policy_id.unwrap_or(site.policy_id);
    let policy = applicable_policy(&app, &caller, policy_id).await?;
    let credentials_changed = request.fair_play_cert.is_some();
    if let Some(sealed) = seal_fairplay(&app, request.fair_play_cert).await? {
        site.fairplay_sealed = Some(sealed);
    }
    let servers = request.license_servers.map(checked_servers).transpose()?;
    site.name = name.as_str().to_owned();
    site.policy_id = policy.id;
    let mut event = format!(
        "site updated to name {} and policy {} by {}",
        site.name,
        policy.name(),
        caller.access_key
    );
    if credentials_changed {
        event.push_str("; FairPlay credentials changed");
    }
    if let Some(servers) = &servers {
        event.push_str(&servers_changed(servers));
        app.store
            .save_license_servers(site.pk, &app.seal_json(servers)?)
            .await?;
    }
    app.store
        .update_site(&site, &caller.audit(&event, app.clock.now_ms()))
        .await?;
    Ok(Json(Envelope::one(site_view(&app, &site, true).await?)))
}

/// `PUT /api/v1/sites/{siteId}/on`
#[utoipa::path(
    put,
    path = "/api/v1/sites/{siteId}/on",
    tag = "sites",
    params(
        ("siteId" = String, Path, description = "The site"),
    ),
    responses((status = 200, description = "The site, RUNNING", body = Envelope<SiteView>))
)]
pub async fn turn_site_on(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(site_id): ApiPath<String>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let site = live_site(&app, &caller, &site_id).await?;
    if site.status == SiteStatus::Running {
        return Err(ApiError::SiteNotOff(site.site_id));
    }
    change_status(&app, &caller, site, SiteStatus::Running, "site turned on").await
}

/// `PUT /api/v1/sites/{siteId}/off`
#[utoipa::path(
    put,
    path = "/api/v1/sites/{siteId}/off",
    tag = "sites",
    params(
        ("siteId" = String, Path, description = "The site"),
    ),
    responses((status = 200, description = "The site, READY", body = Envelope<SiteView>))
)]
pub async fn turn_site_off(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(site_id): ApiPath<String>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let site = live_site(&app, &caller, &site_id).await?;
    if site.status != SiteStatus::Running {
        return Err(ApiError::SiteNotOn(site.site_id));
    }
    change_status(&app, &caller, site, SiteStatus::Ready, "site turned off").await
}

/// `DELETE /api/v1/sites/{siteId}` [extension]: the history stays readable.
#[utoipa::path(
    delete,
    path = "/api/v1/sites/{siteId}",
    tag = "sites",
    params(
        ("siteId" = String, Path, description = "The site"),
    ),
    responses((status = 200, description = "The site, DELETED", body = Envelope<SiteView>))
)]
pub async fn delete_site(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(site_id): ApiPath<String>,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let site = live_site(&app, &caller, &site_id).await?;
    change_status(&app, &caller, site, SiteStatus::Deleted, "site deleted").await
}

/// `GET /api/v1/sites/siteLog`; `siteId` is optional (decided, as for the
/// policy log), `startTime` and `endTime` bound the entries' times.
#[utoipa::path(
    get,
    path = "/api/v1/sites/siteLog",
    tag = "sites",
    params(
        ("siteId" = Option<String>, Query, description = "Only this site's entries"),
        TimeParams,
        PageParams,
    ),
    responses((status = 200, description = "Site log entries, newest first", body = Envelope<Vec<SiteLogItem>>))
)]
pub async fn list_site_log(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<Vec<SiteLogItem>>>, ApiError> {
    let params = QueryParams::parse(query.as_deref());
    let page = Page::from_params(&params).map_err(ApiError::parameter)?;
    let range = TimeRange::from_params(&params).map_err(ApiError::parameter)?;
    let site_pk = match params.get("siteId").map_err(ApiError::parameter)? {
        Some(site_id) => Some(find_site(&app, &caller, site_id).await?.pk),
        None => None,
    };
    let (events, total) = app
        .store
        .list_site_events(caller.account_id, site_pk, range, page)
        .await?;
    let items = events
        .into_iter()
        .map(|event| SiteLogItem {
            site_id: event.subject,
            description: event.description,
            timestamp: event.timestamp,
            access_key: event.access_key,
        })
        .collect();
    Ok(Json(Envelope::page(items, total)))
}

async fn change_status(
    app: &AppState,
    caller: &Caller,
    mut site: Site,
    status: SiteStatus,
    what: &str,
) -> Result<Json<Envelope<SiteView>>, ApiError> {
    let event = format!("{what} by {}", caller.access_key);
    app.store
        .set_site_status_logged(site.pk, status, &caller.audit(&event, app.clock.now_ms()))
        .await?;
    site.status = status;
    tracing::info!(site.id = %site.site_id, site.status = status.name(), "site status changed");
    Ok(Json(Envelope::one(site_view(app, &site, true).await?)))
}

/// The caller's site `site_id`, deleted ones included; another account's
/// site answers exactly like a missing one.
pub async fn find_site(app: &AppState, caller: &Caller, site_id: &str) -> Result<Site, ApiError> {
    app.store
        .find_site(caller.account_id, site_id)
        .await?
        .ok_or_else(|| ApiError::SiteNotFound(site_id.to_owned()))
}

/// The caller's site, refusing deleted ones.
pub async fn live_site(app: &AppState, caller: &Caller, site_id: &str) -> Result<Site, ApiError> {
    let site = find_site(app, caller, site_id).await?;
    if site.status == SiteStatus::Deleted {
        return Err(ApiError::SiteDeleted(site.site_id));
    }
    Ok(site)
}

fn site_name(text: &str) -> Result<SiteName, ApiError> {
    SiteName::parse(text).ok_or_else(|| {
        ApiError::InvalidParameter("siteName must be 3 to 20 letters, digits or '_'".to_owned())
    })
}

async fn seal_fairplay(
    app: &AppState,
    input: Option<FairPlayCertInput>,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(input) = input else { return Ok(None) };
    let credentials = input
        .resolve(&app.http_client)
        .await
        .map_err(|error| ApiError::InvalidParameter(error.to_string()))?;
    app.seal_json(&credentials).map(Some)
}

fn checked_servers(input: LicenseServersInput) -> Result<LicenseServers, ApiError> {
    input
        .validate()
        .map_err(|error| ApiError::InvalidParameter(error.to_string()))
}

/// The site log's words for new license servers: DRM types only, since
/// URLs and headers may carry credentials.
fn servers_changed(servers: &LicenseServers) -> String {
    let names: Vec<&str> = servers
        .configured()
        .into_iter()
        .map(DrmType::name)
        .collect();
    match names.is_empty() {
        true => "; license servers removed".to_owned(),
        false => format!("; license servers set for {}", names.join(", ")),
    }
}

async fn site_view(app: &AppState, site: &Site, detail: bool) -> Result<SiteView, ApiError> {
    let statistics = app
        .store
        .site_statistics(site.pk, month_start_ms(app))
        .await?;
    let policy = find_policy(app, site.account_id, site.policy_id).await?;
    let kms_token = match detail {
        true => Some(open_text(app, &site.kms_token_sealed)?),
        false => None,
    };
    let fair_play_cert = match &site.fairplay_sealed {
        Some(sealed) => {
            let credentials: FairPlayCredentials = app.open_json(sealed)?;
            Some(FairPlayCertView {
                cert_file: credentials.cert_file_source,
                private_key: MASK.to_owned(),
                private_encrypted_string: MASK.to_owned(),
                secret_key: MASK.to_owned(),
            })
        }
        None => None,
    };
    let servers = license_servers(app, site).await?;
    let license_servers =
        (!servers.configured().is_empty()).then(|| LicenseServersView::from(&servers));
    Ok(SiteView {
        disabled: site.status == SiteStatus::Deleted,
        site_id: site.site_id.clone(),
        site_name: site.name.clone(),
        site_status: site.status.name().to_owned(),
        site_enabled_yn: site.status == SiteStatus::Running,
        policy_id: site.policy_id,
        policy_name: policy.name().to_owned(),
        kms_token,
        fair_play_cert,
        license_servers,
        statistics: StatisticsView {
            monthly_active_users: statistics.monthly_active_users,
            monthly_active_devices: statistics.monthly_active_devices,
            monthly_active_licenses: statistics.monthly_active_licenses,
        },
        site_created_time: site.created_at,
    })
}

fn open_text(app: &AppState, sealed: &[u8]) -> Result<String, ApiError> {
    let bytes = app
        .master_key
        .open(sealed)
        .map_err(|error| ApiError::Internal(error.into()))?;
    String::from_utf8(bytes.to_vec()).map_err(|error| ApiError::Internal(error.into()))
}

/// Start of the current month in the history time zone, epoch ms.
fn month_start_ms(app: &AppState) -> i64 {
    let now = app
        .time_zone
        .timestamp_millis_opt(app.clock.now_ms())
        .single();
    now.and_then(|now| {
        app.time_zone
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .earliest()
    })
    .map_or(0, |start| start.timestamp_millis())
}
