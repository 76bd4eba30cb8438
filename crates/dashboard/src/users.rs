//! Users: look a profile up by external id, email or alias, and see its attributes, its custom
//! events and purchases (as `/users/export/ids` sums them), the campaigns and Canvases it
//! received or is in, and its recent webhooks with their outcomes. Requires
//! `users.export.ids`, as the export endpoint does.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use leadwire_profiles::{History, Identifier, Profile, UserAlias};
use leadwire_store::{ActivityQuery, JobInfo, StoreError};
use maud::html;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::{Dashboard, DashboardError, Permission, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new().route("/dashboard/users", get(lookup))
}

#[derive(Debug, Default, Deserialize)]
struct LookupQuery {
    /// `external_id`, `email` or `alias`.
    by: Option<String>,
    q: Option<String>,
    /// The alias label, with `by=alias`.
    label: Option<String>,
}

/// How many of the user's newest custom events are shown.
const RECENT_EVENTS: usize = 20;

/// How many of the newest deliveries are searched for the user's.
const RECENT_JOBS: usize = 2000;

fn identifier(q: &LookupQuery) -> Option<Identifier> {
    let value = q.q.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    Some(match q.by.as_deref() {
        Some("email") => Identifier::Email(value.to_lowercase()),
        Some("alias") => Identifier::Alias(UserAlias {
            alias_name: value.to_owned(),
            alias_label: q.label.as_deref().unwrap_or("").trim().to_owned(),
        }),
        _ => Identifier::ExternalId(value.to_owned()),
    })
}

fn value_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What was found about one user.
struct Found {
    profile: Profile,
    history: History,
    /// `(campaign name, last received)`.
    campaigns: Vec<(String, DateTime<Utc>)>,
    /// `(Canvas name, last entered, the step the user is in now)`.
    canvases: Vec<(String, DateTime<Utc>, Option<String>)>,
    /// The newest custom events.
    events: Vec<leadwire_store::EventRow>,
}

async fn lookup(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(q): Query<LookupQuery>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::UsersExportIds)?;
    let tr = d.tr(signed.lang());
    let by = q.by.clone().unwrap_or_else(|| "external_id".into());
    let wanted = identifier(&q);
    let found = match &wanted {
        Some(id) => find(&d, id.clone()).await?,
        None => None,
    };
    let (jobs, entries) = match (&found, &d.webhooks) {
        (Some(f), Some(w)) => {
            let label = f
                .profile
                .external_id
                .clone()
                .unwrap_or_else(|| f.profile.braze_id.clone());
            let jobs: Vec<JobInfo> = w
                .jobs(None, RECENT_JOBS)
                .await?
                .into_iter()
                .filter(|j| j.user_id == label)
                .take(50)
                .collect();
            let entries = w
                .activity(ActivityQuery {
                    user_id: Some(label),
                    limit: Some(20),
                    ..ActivityQuery::default()
                })
                .await?;
            (jobs, entries)
        }
        _ => (Vec::new(), Vec::new()),
    };
    let templates: std::collections::HashMap<String, String> = match &d.webhooks {
        Some(w) if !jobs.is_empty() => w
            .list_templates(true, 10_000, 0)
            .await?
            .into_iter()
            .map(|r| (r.id, r.definition.template.name))
            .collect(),
        _ => Default::default(),
    };
    let body = html! {
        h1 { (tr.t("users-title")) }
        (page::api_help(tr, "POST /users/export/ids"))
        form.filters method="get" action="/dashboard/users" role="search" {
            fieldset {
                legend { (tr.t("users-find")) }
                div.filter-grid {
                    div {
                        label for="u-by" { (tr.t("users-by")) }
                        select id="u-by" name="by" {
                            option value="external_id" selected[by == "external_id"] { (tr.t("users-by-external-id")) }
                            option value="email" selected[by == "email"] { (tr.t("users-by-email")) }
                            option value="alias" selected[by == "alias"] { (tr.t("users-by-alias")) }
                        }
                    }
                    div {
                        label for="u-q" { (tr.t("users-value")) }
                        input id="u-q" name="q" type="text" value=(q.q.as_deref().unwrap_or(""));
                    }
                    div {
                        label for="u-label" { (tr.t("users-alias-label")) }
                        input id="u-label" name="label" type="text" value=(q.label.as_deref().unwrap_or(""));
                    }
                }
                p.actions { button type="submit" { (tr.t("users-find-button")) } }
            }
        }
        @if wanted.is_some() && found.is_none() {
            p.field-error role="alert" id="user-not-found" { (tr.t("users-not-found")) }
        }
        @if let Some(f) = &found {
            @let p = &f.profile;
            section aria-labelledby="profile-title" id="profile" {
                h2 id="profile-title" { (p.external_id.as_deref().unwrap_or(&p.braze_id)) }
                dl.facts {
                    dt { (tr.t("users-external-id")) } dd { (p.external_id.as_deref().unwrap_or("—")) }
                    dt { (tr.t("users-braze-id")) } dd { code { (p.braze_id) } }
                    @for a in &p.aliases { dt { (tr.t("users-alias")) } dd { (a.alias_label) ": " (a.alias_name) } }
                    dt { (tr.t("users-created")) } dd { (p.created_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                    dt { (tr.t("users-updated")) } dd { (p.updated_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                }
                h3 { (tr.t("users-attributes")) }
                table.list id="attributes" {
                    thead { tr { th scope="col" { (tr.t("column-name")) } th scope="col" { (tr.t("compose-value")) } } }
                    tbody {
                        @for (k, v) in p.standard.iter().chain(p.custom.iter()) {
                            tr data-attribute=(k) { th scope="row" { (k) } td { (value_text(v)) } }
                        }
                    }
                }
                h3 { (tr.t("users-events")) }
                @if f.history.custom_events.is_empty() && f.history.purchases.is_empty() {
                    p { (tr.t("users-no-events")) }
                } @else {
                    table.list {
                        thead { tr {
                            th scope="col" { (tr.t("column-name")) }
                            th scope="col" { (tr.t("column-count")) }
                            th scope="col" { (tr.t("users-first")) }
                            th scope="col" { (tr.t("users-last")) }
                        } }
                        tbody {
                            @for e in f.history.custom_events.iter().chain(f.history.purchases.iter()) {
                                tr { th scope="row" { (e.name) } td { (e.count) } td { (e.first) } td { (e.last) } }
                            }
                        }
                    }
                }
                @if !f.events.is_empty() {
                    h3 { (tr.t("users-recent-events")) }
                    table.list id="recent-events" {
                        thead { tr {
                            th scope="col" { (tr.t("column-time")) }
                            th scope="col" { (tr.t("column-name")) }
                            th scope="col" { (tr.t("users-properties")) }
                        } }
                        tbody {
                            @for e in &f.events {
                                tr data-event=(e.name) {
                                    td { (e.time) }
                                    th scope="row" { (e.name) }
                                    td { code { (e.properties.to_string()) } }
                                }
                            }
                        }
                    }
                }
                h3 { (tr.t("users-received")) }
                @if f.campaigns.is_empty() && f.canvases.is_empty() {
                    p { (tr.t("users-received-none")) }
                } @else {
                    ul id="received" {
                        @for (name, at) in &f.campaigns {
                            li { (tr.ta("users-campaign-received", &[("name", name.clone().into()), ("time", at.format("%Y-%m-%d %H:%M UTC").to_string().into())])) }
                        }
                        @for (name, at, step) in &f.canvases {
                            li {
                                (tr.ta("users-canvas-entered", &[("name", name.clone().into()), ("time", at.format("%Y-%m-%d %H:%M UTC").to_string().into())]))
                                @if let Some(step) = step { " " (tr.ta("users-canvas-in-step", &[("step", step.clone().into())])) }
                            }
                        }
                    }
                }
                h3 { (tr.t("users-webhooks")) }
                @if jobs.is_empty() {
                    p { (tr.t("users-webhooks-none")) }
                } @else {
                    table.list id="user-deliveries" {
                        thead { tr {
                            th scope="col" { (tr.t("column-state")) }
                            th scope="col" { (tr.t("column-status")) }
                            th scope="col" { (tr.t("column-template")) }
                            th scope="col" { (tr.t("column-attempts")) }
                            th scope="col" { (tr.t("column-error")) }
                        } }
                        tbody {
                            @for j in &jobs {
                                tr data-state=(j.state.as_str()) {
                                    td { (tr.t(page::job_state_id(j.state))) }
                                    td { (j.last_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                                    td { (templates.get(&j.template_id).map_or(j.template_id.as_str(), String::as_str)) }
                                    td { (j.attempts) }
                                    td.message { (j.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                @if !entries.is_empty() {
                    h3 { (tr.t("activity-entries")) }
                    ul {
                        @for e in &entries {
                            li { a href={ "/dashboard/activity/" (e.id) } { (page::time(e.row.at)) } " — " (e.row.message) }
                        }
                    }
                }
            }
        }
    };
    let title = tr.t("users-title");
    Ok(page::document(tr, Some(&signed), &title, "users", body).into_response())
}

/// The profile, its history, and what it received, from one snapshot.
async fn find(d: &Dashboard, id: Identifier) -> Result<Option<Found>, DashboardError> {
    let campaigns: Vec<(String, String)> = match &d.campaigns {
        Some(c) => c
            .campaigns()
            .await?
            .into_iter()
            .map(|r| (r.id, r.spec.name))
            .collect(),
        None => Vec::new(),
    };
    let canvases: Vec<(String, String)> = match &d.canvases {
        Some(c) => c
            .canvases()
            .await?
            .into_iter()
            .map(|r| (r.id, r.spec.name))
            .collect(),
        None => Vec::new(),
    };
    let found = d
        .store
        .read(move |tx| {
            let Some((profile, history)) = tx.profile_with_history(&id)? else {
                return Ok::<_, StoreError>(None);
            };
            let mut received = Vec::new();
            for (cid, name) in &campaigns {
                if let Some(at) = tx.last_received(cid, &profile.braze_id)? {
                    received.push((name.clone(), at));
                }
            }
            let mut entered = Vec::new();
            for (cid, name) in &canvases {
                if let Some(at) = tx.last_entry(cid, &profile.braze_id)? {
                    let open = tx.open_journeys(cid, &profile.braze_id)?;
                    let step = open.last().and_then(|j| {
                        serde_json::from_str::<Json>(&j.state)
                            .ok()
                            .and_then(|s| s.get("step").and_then(Json::as_str).map(str::to_owned))
                    });
                    entered.push((name.clone(), at, step));
                }
            }
            let events = tx.recent_events(&profile.braze_id, RECENT_EVENTS)?;
            Ok(Some(Found {
                profile,
                history,
                campaigns: received,
                canvases: entered,
                events,
            }))
        })
        .await?;
    Ok(found)
}
