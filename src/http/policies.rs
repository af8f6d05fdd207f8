//! Policy endpoints (spec section 5): list, detail, create, update,
//! delete, copy and the policy log. Every lookup is scoped to the caller's
//! account; the built-in `Basic` policy 0 is everyone's and read-only.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::Value;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Caller};
use super::openapi::{PageParams, TimeParams};
use super::AppState;
use crate::domain::params::{Page, QueryParams, TimeRange};
use crate::domain::policy::{
    Policy, PolicyListWindow, PolicySettings, PolicyStatus, BASIC_POLICY_ID,
};
use crate::wire::{Envelope, PolicyLogItem, PolicyView};

/// `GET /api/v1/policy`: `Basic` first, then the account's, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/policy",
    tag = "policies",
    params(
        PageParams,
    ),
    responses((status = 200, description = "One page of policies", body = Envelope<Vec<PolicyView>>))
)]
pub async fn list_policies(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<Vec<PolicyView>>>, ApiError> {
    let page =
        Page::from_params(&QueryParams::parse(query.as_deref())).map_err(ApiError::parameter)?;
    let window = PolicyListWindow::of(page);
    let (own, own_total) = app
        .store
        .list_policies(caller.account_id, window.offset, window.limit)
        .await?;
    let basic = window.with_basic.then(Policy::basic);
    let views = basic.iter().chain(&own).map(PolicyView::from).collect();
    Ok(Json(Envelope::page(views, own_total + 1)))
}

/// `GET /api/v1/policy/{policyId}`
#[utoipa::path(
    get,
    path = "/api/v1/policy/{policyId}",
    tag = "policies",
    params(
        ("policyId" = i64, Path, description = "The policy; 0 is the built-in Basic"),
    ),
    responses((status = 200, description = "The policy", body = Envelope<PolicyView>))
)]
pub async fn get_policy(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(policy_id): ApiPath<i64>,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let policy = find_policy(&app, caller.account_id, policy_id).await?;
    Ok(Json(Envelope::one(PolicyView::from(&policy))))
}

/// `POST /api/v1/policy`
#[utoipa::path(
    post,
    path = "/api/v1/policy",
    tag = "policies",
    request_body = PolicySettings,
    responses((status = 200, description = "The new policy", body = Envelope<PolicyView>))
)]
pub async fn create_policy(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let settings = PolicySettings::from_json(body).map_err(ApiError::parameter)?;
    let event = format!(
        "policy created as {} by {}",
        settings.policy_name.as_str(),
        caller.access_key
    );
    insert_policy(&app, &caller, &settings, &event).await
}

/// `POST /api/v1/policy/{policyId}/copy`: a new policy named `Copy_<name>`.
#[utoipa::path(
    post,
    path = "/api/v1/policy/{policyId}/copy",
    tag = "policies",
    params(
        ("policyId" = i64, Path, description = "The policy; 0 is the built-in Basic"),
    ),
    responses((status = 200, description = "The copy", body = Envelope<PolicyView>))
)]
pub async fn copy_policy(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(policy_id): ApiPath<i64>,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let source = find_policy(&app, caller.account_id, policy_id).await?;
    let mut settings = source.settings;
    settings.policy_name = settings.policy_name.copy();
    let event = format!(
        "policy created as {}, a copy of policy {}, by {}",
        settings.policy_name.as_str(),
        source.id,
        caller.access_key
    );
    insert_policy(&app, &caller, &settings, &event).await
}

/// `PUT /api/v1/policy/{policyId}`: replaces every setting; fields left
/// out take `Basic`'s values, as on create.
#[utoipa::path(
    put,
    path = "/api/v1/policy/{policyId}",
    tag = "policies",
    params(
        ("policyId" = i64, Path, description = "The policy; 0 is the built-in Basic"),
    ),
    request_body = PolicySettings,
    responses((status = 200, description = "The updated policy", body = Envelope<PolicyView>))
)]
pub async fn update_policy(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(policy_id): ApiPath<i64>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let policy = changeable_policy(&app, &caller, policy_id).await?;
    let settings = PolicySettings::from_json(body).map_err(ApiError::parameter)?;
    let changes = settings.changes_from(&policy.settings);
    let event = match changes.is_empty() {
        true => format!("policy updated by {}; nothing changed", caller.access_key),
        false => format!(
            "policy updated by {}: {}",
            caller.access_key,
            changes.join("; ")
        ),
    };
    let now = app.clock.now_ms();
    app.store
        .update_policy(
            caller.account_id,
            policy_id,
            &settings,
            &caller.audit(&event, now),
        )
        .await?;
    tracing::info!(policy.id = policy_id, "policy updated");
    reread(&app, &caller, policy_id).await
}

/// `DELETE /api/v1/policy/{policyId}`: refused while a site uses it.
#[utoipa::path(
    delete,
    path = "/api/v1/policy/{policyId}",
    tag = "policies",
    params(
        ("policyId" = i64, Path, description = "The policy; 0 is the built-in Basic"),
    ),
    responses((status = 200, description = "The policy, DELETED", body = Envelope<PolicyView>))
)]
pub async fn delete_policy(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(policy_id): ApiPath<i64>,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    changeable_policy(&app, &caller, policy_id).await?;
    let event = format!("policy deleted by {}", caller.access_key);
    let now = app.clock.now_ms();
    let deleted = app
        .store
        .delete_policy(caller.account_id, policy_id, &caller.audit(&event, now))
        .await?;
    if !deleted {
        return Err(ApiError::PolicyInUse(policy_id));
    }
    tracing::info!(policy.id = policy_id, "policy deleted");
    reread(&app, &caller, policy_id).await
}

/// `GET /api/v1/policy/policyLog`; `policyId` is optional (decided), and
/// `startTime` and `endTime` bound the entries' times.
#[utoipa::path(
    get,
    path = "/api/v1/policy/policyLog",
    tag = "policies",
    params(
        ("policyId" = Option<i64>, Query, description = "Only this policy's entries"),
        TimeParams,
        PageParams,
    ),
    responses((status = 200, description = "Policy log entries, newest first", body = Envelope<Vec<PolicyLogItem>>))
)]
pub async fn list_policy_log(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Envelope<Vec<PolicyLogItem>>>, ApiError> {
    let params = QueryParams::parse(query.as_deref());
    let page = Page::from_params(&params).map_err(ApiError::parameter)?;
    let range = TimeRange::from_params(&params).map_err(ApiError::parameter)?;
    let policy_id = params
        .integer("policyId", 0..=i64::MAX)
        .map_err(ApiError::parameter)?;
    if let Some(policy_id) = policy_id {
        find_policy(&app, caller.account_id, policy_id).await?;
    }
    let (events, total) = app
        .store
        .list_policy_events(caller.account_id, policy_id, range, page)
        .await?;
    let items = events
        .into_iter()
        .map(|event| PolicyLogItem {
            policy_id: event.subject,
            description: event.description,
            timestamp: event.timestamp,
            access_key: event.access_key,
        })
        .collect();
    Ok(Json(Envelope::page(items, total)))
}

/// The policy `policy_id` as `account_id` sees it: `Basic`, or one of the
/// account's own, deleted ones included; another account's policy answers
/// exactly like a missing one.
pub async fn find_policy(
    app: &AppState,
    account_id: i64,
    policy_id: i64,
) -> Result<Policy, ApiError> {
    if policy_id == BASIC_POLICY_ID {
        return Ok(Policy::basic());
    }
    app.store
        .find_policy(account_id, policy_id)
        .await?
        .ok_or(ApiError::PolicyNotFound(policy_id))
}

/// A policy a site of the caller may be given: it exists and is not deleted.
pub async fn applicable_policy(
    app: &AppState,
    caller: &Caller,
    policy_id: i64,
) -> Result<Policy, ApiError> {
    let policy = find_policy(app, caller.account_id, policy_id).await?;
    if policy.status == PolicyStatus::Deleted {
        return Err(ApiError::PolicyDeleted(policy_id));
    }
    Ok(policy)
}

/// A policy the caller may update or delete: not `Basic`, not deleted.
async fn changeable_policy(
    app: &AppState,
    caller: &Caller,
    policy_id: i64,
) -> Result<Policy, ApiError> {
    if policy_id == BASIC_POLICY_ID {
        return Err(ApiError::PolicyReadOnly);
    }
    applicable_policy(app, caller, policy_id).await
}

async fn insert_policy(
    app: &AppState,
    caller: &Caller,
    settings: &PolicySettings,
    event: &str,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let entry = caller.audit(event, app.clock.now_ms());
    let policy = app
        .store
        .insert_policy(caller.account_id, settings, &entry)
        .await?;
    tracing::info!(policy.id = policy.id, "policy created");
    Ok(Json(Envelope::one(PolicyView::from(&policy))))
}

async fn reread(
    app: &AppState,
    caller: &Caller,
    policy_id: i64,
) -> Result<Json<Envelope<PolicyView>>, ApiError> {
    let policy = find_policy(app, caller.account_id, policy_id).await?;
    Ok(Json(Envelope::one(PolicyView::from(&policy))))
}
