//! Content keys [extension]: register a given key or have one generated,
//! and list a content's key ids. A key is shown only in the answer that
//! created it; at rest it is sealed with the master key.

use axum::extract::State;
use axum::Json;

use super::error::ApiError;
use super::extract::{ApiPath, Caller, RawBody};
use super::sites::{find_site, live_site};
use super::AppState;
use crate::domain::ids::{ContentId, ContentKey, Kid};
use crate::store::{StoreError, StoredContentKey};
use crate::wire::{ContentKeyRequest, ContentKeyView, Envelope};

/// `POST /api/v1/sites/{siteId}/contents/{contentId}/keys`: an empty body
/// generates a key, `{"kid", "key"}` registers the given one.
#[utoipa::path(
    post,
    path = "/api/v1/sites/{siteId}/contents/{contentId}/keys",
    tag = "content keys",
    params(
        ("siteId" = String, Path, description = "The site"),
        ("contentId" = String, Path, pattern = "^[A-Za-z0-9_-]{3,100}$", description = "3..100 of letters, digits, '-' and '_'"),
    ),
    request_body(content = Option<ContentKeyRequest>, description = "Empty to have a key generated, or the kid and key to register"),
    responses((status = 200, description = "The key, shown only now", body = Envelope<ContentKeyView>))
)]
pub async fn register_content_key(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((site_id, content_id)): ApiPath<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Json<Envelope<ContentKeyView>>, ApiError> {
    let site = live_site(&app, &caller, &site_id).await?;
    let content_id = content_id_param(&content_id)?;
    let (kid, key) = if body.iter().all(u8::is_ascii_whitespace) {
        (Kid(rand::random()), ContentKey::generate())
    } else {
        parse_given_key(&body)?
    };

    let stored = StoredContentKey {
        kid,
        key_sealed: app.master_key.seal(&key.0),
        created_at: app.clock.now_ms(),
    };
    app.store
        .insert_content_key(site.pk, content_id.as_str(), &stored)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => ApiError::ContentKeyExists(kid.to_hex()),
            other => other.into(),
        })?;
    tracing::info!(site.id = %site.site_id, content.id = %content_id, kid = %kid.to_hex(), "content key registered");

    Ok(Json(Envelope::one(ContentKeyView {
        site_id: site.site_id,
        content_id: content_id.to_string(),
        kid: kid.to_hex(),
        key: Some(key.to_hex()),
        created_time: stored.created_at,
    })))
}

/// `GET /api/v1/sites/{siteId}/contents/{contentId}/keys`: kids only.
#[utoipa::path(
    get,
    path = "/api/v1/sites/{siteId}/contents/{contentId}/keys",
    tag = "content keys",
    params(
        ("siteId" = String, Path, description = "The site"),
        ("contentId" = String, Path, pattern = "^[A-Za-z0-9_-]{3,100}$", description = "3..100 of letters, digits, '-' and '_'"),
    ),
    responses((status = 200, description = "The content's key ids, without keys", body = Envelope<Vec<ContentKeyView>>))
)]
pub async fn list_content_keys(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((site_id, content_id)): ApiPath<(String, String)>,
) -> Result<Json<Envelope<Vec<ContentKeyView>>>, ApiError> {
    let site = find_site(&app, &caller, &site_id).await?;
    let content_id = content_id_param(&content_id)?;
    let keys = app
        .store
        .list_content_keys(site.pk, content_id.as_str())
        .await?;
    let total = keys.len() as i64;
    let views = keys
        .into_iter()
        .map(|key| ContentKeyView {
            site_id: site.site_id.clone(),
            content_id: content_id.to_string(),
            kid: key.kid.to_hex(),
            key: None,
            created_time: key.created_at,
        })
        .collect();
    Ok(Json(Envelope::page(views, total)))
}

fn content_id_param(text: &str) -> Result<ContentId, ApiError> {
    ContentId::parse(text).ok_or_else(|| {
        ApiError::InvalidParameter(
            "contentId must be 3 to 100 letters, digits, '-' or '_'".to_owned(),
        )
    })
}

fn parse_given_key(body: &[u8]) -> Result<(Kid, ContentKey), ApiError> {
    let request: ContentKeyRequest = serde_json::from_slice(body).map_err(|error| {
        ApiError::JsonParse(format!(
            "body must be empty or {{\"kid\", \"key\"}}: {error}"
        ))
    })?;
    let kid = Kid::from_hex(&request.kid)
        .ok_or_else(|| ApiError::InvalidParameter("kid must be 32 hex digits".to_owned()))?;
    let key = ContentKey::from_hex(&request.key)
        .ok_or_else(|| ApiError::InvalidParameter("key must be 32 hex digits".to_owned()))?;
    Ok((kid, key))
}
