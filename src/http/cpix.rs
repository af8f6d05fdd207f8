//! `POST /api/v1/cpix/{kmsToken}` [extension]: CPIX key exchange for
//! packagers (SPEKE v2). The site's KMS token in the path is the
//! credential, as SPEKE clients cannot sign NCP requests. Keys are the
//! site's content keys: a kid asked for again gets the same key, and a
//! new kid gets a fresh random key, stored sealed like any other.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{ApiPath, RawBody};
use super::AppState;
use crate::domain::cpix::{self, CpixRequest};
use crate::domain::ids::{kms_token_digest, ContentId, ContentKey, Kid};
use crate::domain::site::{Site, SiteStatus};
use crate::store::{StoreError, StoredContentKey};

/// Answers a CPIX request with its content keys filled in.
#[utoipa::path(
    post,
    path = "/api/v1/cpix/{kmsToken}",
    tag = "content keys",
    params(
        ("kmsToken" = String, Path, description = "The site's KMS token; the credential of this call"),
    ),
    request_body(content = String, content_type = "application/xml", description = "A CPIX document asking for content keys"),
    responses((status = 200, description = "[extension] The CPIX document with its keys filled in", content_type = "application/xml", body = String))
)]
pub async fn exchange_keys(
    State(app): State<AppState>,
    ApiPath(kms_token): ApiPath<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let site = site_of_kms_token(&app, &kms_token).await?;
    if site.status == SiteStatus::Deleted {
        return Err(ApiError::SiteDeleted(site.site_id));
    }
    let request = CpixRequest::parse(&body).map_err(ApiError::InvalidCpix)?;

    let mut keys = HashMap::with_capacity(request.kids.len());
    for kid in &request.kids {
        let key = content_key(&app, &site, &request.content_id, *kid).await?;
        keys.insert(*kid, key);
    }
    let answer = cpix::fill(&body, &keys).map_err(ApiError::InvalidCpix)?;
    tracing::info!(site.id = %site.site_id, content.id = %request.content_id, keys = keys.len(), "content keys exchanged over CPIX");

    // SPEKE v2 clients expect their x-speke-* headers back.
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        answer,
    )
        .into_response();
    for (name, value) in &headers {
        if name.as_str().starts_with("x-speke-") {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// The site whose KMS token this is. Sites whose token has no digest yet
/// (created before the digests, or by operator tools) are indexed on the
/// first miss, then the lookup is tried once more.
async fn site_of_kms_token(app: &AppState, kms_token: &str) -> Result<Site, ApiError> {
    let digest = kms_token_digest(kms_token);
    let mut owner = app.store.find_kms_token_owner(&digest).await?;
    if owner.is_none() {
        for (site_pk, sealed) in app.store.list_unindexed_kms_tokens().await? {
            let token = app
                .master_key
                .open(&sealed)
                .map_err(|error| ApiError::Internal(error.into()))?;
            let token = String::from_utf8_lossy(&token);
            app.store
                .index_kms_token(site_pk, &kms_token_digest(&token))
                .await?;
        }
        owner = app.store.find_kms_token_owner(&digest).await?;
    }
    let Some((account_id, site_id)) = owner else {
        return Err(ApiError::KmsTokenUnknown);
    };
    app.store
        .find_site(account_id, &site_id)
        .await?
        .ok_or(ApiError::KmsTokenUnknown)
}

/// The stored key of `kid`, or a new one stored now. Two packagers asking
/// for a new kid at once both end up with whichever key was stored first.
async fn content_key(
    app: &AppState,
    site: &Site,
    content_id: &ContentId,
    kid: Kid,
) -> Result<ContentKey, ApiError> {
    if let Some(key) = stored_key(app, site, content_id, kid).await? {
        return Ok(key);
    }
    let key = ContentKey::generate();
    let stored = StoredContentKey {
        kid,
        key_sealed: app.master_key.seal(&key.0),
        created_at: app.clock.now_ms(),
    };
    match app
        .store
        .insert_content_key(site.pk, content_id.as_str(), &stored)
        .await
    {
        Ok(()) => Ok(key),
        Err(StoreError::Conflict(_)) => {
            stored_key(app, site, content_id, kid)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("content key vanished after a conflict"))
                })
        }
        Err(error) => Err(error.into()),
    }
}

async fn stored_key(
    app: &AppState,
    site: &Site,
    content_id: &ContentId,
    kid: Kid,
) -> Result<Option<ContentKey>, ApiError> {
    let found = app
        .store
        .find_content_keys(site.pk, content_id.as_str(), &[kid])
        .await?;
    found
        .first()
        .map(|stored| app.open_content_key(stored))
        .transpose()
}
