//! The policies page: the account's policies (and the built-in `Basic`);
//! create, edit, copy and delete; a policy's log. Every change goes
//! through the API's own policy handlers, which validate the settings.

use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, Redirect};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::page::{self, csrf_field, PageError};
use super::session::{Change, Console};
use crate::domain::drm::DrmType;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::{policies, ApiError, AppState};
use crate::wire::PolicyView;

/// The DRM systems of a policy: (field in `drmPolicyConfig`, label).
const SYSTEMS: [(&str, DrmType); 4] = [
    ("widevine", DrmType::Widevine),
    ("playready", DrmType::PlayReady),
    ("fairplay", DrmType::FairPlay),
    ("clearkey", DrmType::ClearKey),
];

/// `GET /console/policies`
pub async fn policies_page(
    State(app): State<AppState>,
    console: Console,
) -> Result<Html<String>, PageError> {
    let listed = policies::list_policies(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some("pageSize=100".to_owned())),
    )
    .await?
    .0;
    let body = html! {
        div.table-wrap {
            table #policies {
                caption { "Policies: Basic, then the account's, newest first" }
                (page::head(&[
                    "Id",
                    "Name",
                    "Status",
                    "DRM types",
                    "Persistent",
                    "Rental (s)",
                    "Playback (s)",
                    "Actions",
                ]))
                tbody {
                    @for policy in &listed.content {
                        tr data-policy=(policy.policy_id) {
                            td { (policy.policy_id) }
                            td { a href=(console.link(&format!("/policies/{}", policy.policy_id))) { (policy.policy_name) } }
                            td { (policy.policy_status) }
                            td { (allowed(policy)) }
                            td { @if policy.persistent { "yes" } @else { "no" } }
                            td { (policy.rental_duration) }
                            td { (policy.playback_duration) }
                            td.actions { (actions(&console, policy)) }
                        }
                    }
                }
            }
        }
        h2 { "Create a policy" }
        form.stack method="post" action=(console.link("/policies")) {
            (csrf_field(&console))
            (common_fields(None))
            fieldset {
                legend { "DRM types allowed" }
                @for (field, drm) in SYSTEMS {
                    label.check {
                        input type="checkbox" name=(field) value="on" checked;
                        " " (drm.name())
                    }
                }
            }
            button type="submit" { "Create policy" }
        }
    };
    Ok(page::frame(&console, "Policies", None, body))
}

/// The DRM types a policy allows, by name.
fn allowed(policy: &PolicyView) -> String {
    let config = serde_json::to_value(&policy.drm_policy_config).unwrap_or(Value::Null);
    SYSTEMS
        .iter()
        .filter(|(field, _)| config[field]["useYn"] == true)
        .map(|(_, drm)| drm.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn actions(console: &Console, policy: &PolicyView) -> Markup {
    let name = &policy.policy_name;
    let link = |action: &str| console.link(&format!("/policies/{}/{action}", policy.policy_id));
    html! {
        @if !policy.disabled {
            form.inline method="post" action=(link("copy")) {
                (csrf_field(console))
                button type="submit" aria-label=(format!("Copy {name}")) { "Copy" }
            }
            @if policy.policy_id != 0 {
                form.inline method="post" action=(link("delete")) {
                    (csrf_field(console))
                    button.danger type="submit" aria-label=(format!("Delete {name}")) { "Delete" }
                }
            }
        }
    }
}

/// Name, persistence and durations, filled from `policy` when editing.
fn common_fields(policy: Option<&PolicyView>) -> Markup {
    let name = policy.map_or("", |policy| policy.policy_name.as_str());
    let persistent = policy.is_some_and(|policy| policy.persistent);
    let rental = policy.map_or(0, |policy| policy.rental_duration);
    let playback = policy.map_or(0, |policy| policy.playback_duration);
    html! {
        label for="policy-name" { "Policy name (3 to 20 letters, digits or _)" }
        input #policy-name name="policyName" value=(name) required minlength="3" maxlength="20" pattern="[A-Za-z0-9_]+";
        label.check {
            input type="checkbox" name="persistent" value="on" checked[persistent];
            " Persistent licenses allowed"
        }
        label for="policy-rental" { "Rental duration, seconds (0 unlimited; needs persistent)" }
        input #policy-rental type="number" name="rentalDuration" min="0" max="2147483647" value=(rental);
        label for="policy-playback" { "Playback duration, seconds (0 unlimited)" }
        input #policy-playback type="number" name="playbackDuration" min="0" max="2147483647" value=(playback);
    }
}

/// The policy body's common fields from the form.
fn common_body(change: &Change) -> Result<Value, PageError> {
    let form = &change.form;
    let number = |name: &'static str| {
        form.integer(name, 0..=2_147_483_647)
            .map(|value| value.unwrap_or(0))
            .map_err(ApiError::parameter)
    };
    Ok(json!({
        "policyName": form.get("policyName").map_err(ApiError::parameter)?.unwrap_or(""),
        "persistent": form.get("persistent").map_err(ApiError::parameter)? == Some("on"),
        "rentalDuration": number("rentalDuration")?,
        "playbackDuration": number("playbackDuration")?,
    }))
}

/// `POST /console/policies`
pub async fn create_policy(
    State(app): State<AppState>,
    change: Change,
) -> Result<Redirect, PageError> {
    let mut body = common_body(&change)?;
    let mut config = serde_json::Map::new();
    for (field, _) in SYSTEMS {
        let checked = change.form.get(field).map_err(ApiError::parameter)? == Some("on");
        config.insert(field.to_owned(), json!({ "useYn": checked }));
    }
    body["drmPolicyConfig"] = Value::Object(config);
    let _ =
        policies::create_policy(State(app), change.console.caller.clone(), ApiJson(body)).await?;
    Ok(Redirect::to(&change.console.link("/policies")))
}

/// `GET /console/policies/{policyId}`: edit form and the policy's log.
pub async fn policy_page(
    State(app): State<AppState>,
    console: Console,
    Path(policy_id): Path<i64>,
) -> Result<Html<String>, PageError> {
    let policy = policies::get_policy(
        State(app.clone()),
        console.caller.clone(),
        ApiPath(policy_id),
    )
    .await?
    .0
    .content;
    let log = policies::list_policy_log(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some(format!("policyId={policy_id}&pageSize=100"))),
    )
    .await?
    .0;
    let config = serde_json::to_string_pretty(&policy.drm_policy_config)
        .map_err(|error| PageError::internal(error.into()))?;
    let editable = policy.policy_id != 0 && !policy.disabled;
    let body = html! {
        p { "Policy " (policy.policy_id) ", status " (policy.policy_status) "." }
        @if editable {
            h2 { "Edit" }
            form.stack method="post" action=(console.link(&format!("/policies/{policy_id}"))) {
                (csrf_field(&console))
                (common_fields(Some(&policy)))
                label for="policy-config" { "DRM settings (drmPolicyConfig, JSON)" }
                textarea #policy-config name="drmPolicyConfig" rows="16" spellcheck="false" { (config) }
                button type="submit" { "Save policy" }
            }
        } @else {
            pre.config { (config) }
        }
        h2 { "Policy log" }
        (page::log_table(
            "policy-log",
            log.content.iter().map(|entry| (entry.timestamp, entry.description.as_str())),
            app.time_zone,
        ))
    };
    Ok(page::frame(&console, "Policies", None, body))
}

/// `POST /console/policies/{policyId}`
pub async fn update_policy(
    State(app): State<AppState>,
    Path(policy_id): Path<i64>,
    change: Change,
) -> Result<Redirect, PageError> {
    let mut body = common_body(&change)?;
    let text = change
        .form
        .get("drmPolicyConfig")
        .map_err(ApiError::parameter)?;
    body["drmPolicyConfig"] = serde_json::from_str(text.unwrap_or("{}"))
        .map_err(|_| ApiError::InvalidParameter("drmPolicyConfig is not JSON".to_owned()))?;
    let target = change.console.link(&format!("/policies/{policy_id}"));
    let _ = policies::update_policy(
        State(app),
        change.console.caller,
        ApiPath(policy_id),
        ApiJson(body),
    )
    .await?;
    Ok(Redirect::to(&target))
}

/// `POST /console/policies/{policyId}/copy`
pub async fn copy_policy(
    State(app): State<AppState>,
    Path(policy_id): Path<i64>,
    change: Change,
) -> Result<Redirect, PageError> {
    let _ = policies::copy_policy(
        State(app),
        change.console.caller.clone(),
        ApiPath(policy_id),
    )
    .await?;
    Ok(Redirect::to(&change.console.link("/policies")))
}

/// `POST /console/policies/{policyId}/delete`
pub async fn delete_policy(
    State(app): State<AppState>,
    Path(policy_id): Path<i64>,
    change: Change,
) -> Result<Redirect, PageError> {
    let _ = policies::delete_policy(
        State(app),
        change.console.caller.clone(),
        ApiPath(policy_id),
    )
    .await?;
    Ok(Redirect::to(&change.console.link("/policies")))
}
