//! The sites page: the account's sites with status, an ON/OFF toggle and
//! this month's activity; creating and editing a site; a site's log.
//! Every change goes through the API's own site handlers.

use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, Redirect};
use maud::html;
use serde_json::json;

use super::page::{self, csrf_field, PageError};
use super::session::{Change, Console};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::{policies, sites, AppState};
use crate::wire::{PolicyView, SiteView};

/// The account's policies that a site may use (the first hundred).
async fn policy_choices(app: &AppState, console: &Console) -> Result<Vec<PolicyView>, PageError> {
    let listed = policies::list_policies(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some("pageSize=100".to_owned())),
    )
    .await?
    .0;
    Ok(listed
        .content
        .into_iter()
        .filter(|policy| !policy.disabled)
        .collect())
}

/// The account's sites, newest first (the first hundred).
pub async fn account_sites(app: &AppState, console: &Console) -> Result<Vec<SiteView>, PageError> {
    let listed = sites::list_sites(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some("pageSize=100".to_owned())),
    )
    .await?
    .0;
    Ok(listed.content)
}

/// `GET /console/sites`
pub async fn sites_page(
    State(app): State<AppState>,
    console: Console,
) -> Result<Html<String>, PageError> {
    let listed = account_sites(&app, &console).await?;
    let policies = policy_choices(&app, &console).await?;
    let body = html! {
        div.table-wrap {
            table #sites {
                caption { "Sites, newest first; activity of the current month" }
                (page::head(&[
                    "Name",
                    "Issuing",
                    "Site id",
                    "Status",
                    "Policy",
                    "Active users",
                    "Active devices",
                    "Licenses",
                ]))
                tbody {
                    @for site in &listed {
                        tr data-site=(site.site_id) {
                            td { a href=(console.link(&format!("/sites/{}", site.site_id))) { (site.site_name) } }
                            td { (toggle(&console, site)) }
                            td.mono { (site.site_id) }
                            td.status { (site.site_status) }
                            td { (site.policy_name) }
                            td { (site.statistics.monthly_active_users) }
                            td { (site.statistics.monthly_active_devices) }
                            td { (site.statistics.monthly_active_licenses) }
                        }
                    }
                }
            }
        }
        h2 { "Create a site" }
        (site_form(&console, &console.link("/sites"), None, &policies, "Create site"))
    };
    Ok(page::frame(&console, "Sites", None, body))
}

/// The ON/OFF switch of a site that is not deleted.
fn toggle(console: &Console, site: &SiteView) -> maud::Markup {
    if site.disabled {
        return html! { "deleted" };
    }
    let (state, action) = match site.site_enabled_yn {
        true => ("ON", "Turn off"),
        false => ("OFF", "Turn on"),
    };
    html! {
        form.inline method="post" action=(console.link(&format!("/sites/{}/toggle", site.site_id))) {
            (csrf_field(console))
            button.toggle type="submit" aria-label=(format!("{action} {}", site.site_name)) aria-pressed=(site.site_enabled_yn) {
                (state)
            }
        }
    }
}

fn site_form(
    console: &Console,
    action: &str,
    site: Option<&SiteView>,
    policies: &[PolicyView],
    submit: &str,
) -> maud::Markup {
    let name = site.map_or("", |site| site.site_name.as_str());
    let policy_id = site.map_or(0, |site| site.policy_id);
    html! {
        form.stack method="post" action=(action) {
            (csrf_field(console))
            label for="site-name" { "Site name (3 to 20 letters, digits or _)" }
            input #site-name name="siteName" value=(name) required minlength="3" maxlength="20" pattern="[A-Za-z0-9_]+";
            label for="site-policy" { "Policy" }
            select #site-policy name="policyId" {
                @for policy in policies {
                    option value=(policy.policy_id) selected[policy.policy_id == policy_id] {
                        (policy.policy_name) " (" (policy.policy_id) ")"
                    }
                }
            }
            button type="submit" { (submit) }
        }
    }
}

/// The JSON body of a site create or update from the form.
fn site_body(change: &Change) -> Result<serde_json::Value, PageError> {
    let site_name = change
        .form
        .get("siteName")
        .map_err(crate::http::ApiError::parameter)?;
    let policy_id = change
        .form
        .integer("policyId", 0..=i64::MAX)
        .map_err(crate::http::ApiError::parameter)?;
    Ok(json!({ "siteName": site_name.unwrap_or(""), "policyId": policy_id }))
}

/// `POST /console/sites`
pub async fn create_site(
    State(app): State<AppState>,
    change: Change,
) -> Result<Redirect, PageError> {
    let body = site_body(&change)?;
    let _ = sites::create_site(State(app), change.console.caller.clone(), ApiJson(body)).await?;
    Ok(Redirect::to(&change.console.link("/sites")))
}

/// `GET /console/sites/{siteId}`: edit form and the site's log.
pub async fn site_page(
    State(app): State<AppState>,
    console: Console,
    Path(site_id): Path<String>,
) -> Result<Html<String>, PageError> {
    let site = sites::get_site(State(app.clone()), console.caller.clone(), ApiPath(site_id))
        .await?
        .0
        .content;
    let policies = policy_choices(&app, &console).await?;
    let log = sites::list_site_log(
        State(app.clone()),
        console.caller.clone(),
        RawQuery(Some(format!("siteId={}&pageSize=100", site.site_id))),
    )
    .await?
    .0;
    let action = console.link(&format!("/sites/{}", site.site_id));
    let body = html! {
        p { "Site id " span.mono { (site.site_id) } ", status " (site.site_status) "." }
        @if !site.disabled {
            h2 { "Edit" }
            (site_form(&console, &action, Some(&site), &policies, "Save site"))
        }
        h2 { "Site log" }
        (page::log_table(
            "site-log",
            log.content.iter().map(|entry| (entry.timestamp, entry.description.as_str())),
            app.time_zone,
        ))
    };
    Ok(page::frame(&console, "Sites", None, body))
}

/// `POST /console/sites/{siteId}`
pub async fn update_site(
    State(app): State<AppState>,
    Path(site_id): Path<String>,
    change: Change,
) -> Result<Redirect, PageError> {
    let body = site_body(&change)?;
    let target = change.console.link(&format!("/sites/{site_id}"));
    let _ = sites::update_site(
        State(app),
        change.console.caller,
        ApiPath(site_id),
        ApiJson(body),
    )
    .await?;
    Ok(Redirect::to(&target))
}

/// `POST /console/sites/{siteId}/toggle`: on when off, off when on.
pub async fn toggle_site(
    State(app): State<AppState>,
    Path(site_id): Path<String>,
    change: Change,
) -> Result<Redirect, PageError> {
    let caller = change.console.caller.clone();
    let site = sites::live_site(&app, &caller, &site_id).await?;
    let path = ApiPath(site.site_id.clone());
    if site.status == crate::domain::site::SiteStatus::Running {
        let _ = sites::turn_site_off(State(app), caller, path).await?;
    } else {
        let _ = sites::turn_site_on(State(app), caller, path).await?;
    }
    Ok(Redirect::to(&change.console.link("/sites")))
}
