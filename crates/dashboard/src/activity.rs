//! The Message Activity Log: entries filtered by type, campaign or Canvas, user and time, a
//! detail view of each entry's request and response (secrets redacted by the service before
//! they were stored), recent deliveries, and both kept live with server-sent events.
//!
//! The live stream re-reads the log after the last entry it sent, once a second: the store
//! signals new triggers and due jobs, not activity, and an open page is a person watching, so a
//! one-second read per open page is the price of showing what happened without new plumbing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leadwire_store::{ActivityQuery, ActivityRecord, ActivityType, JobInfo};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, Permission, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/activity", get(list))
        .route("/dashboard/activity/stream", get(stream))
        .route("/dashboard/activity/{id}", get(detail))
}

/// The filter form's fields (all optional; empty means any).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub campaign_id: Option<String>,
    pub user_id: Option<String>,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field), read as UTC.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only entries after this id (the live stream).
    pub after_id: Option<i64>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `2026-01-31T12:00` or a full RFC 3339 time, as UTC.
fn parse_time(text: &str) -> Option<SystemTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.into());
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().into());
        }
    }
    None
}

impl Filters {
    /// The store's query; `Err(message id)` for a field that does not parse.
    fn query(&self, limit: usize) -> Result<ActivityQuery, &'static str> {
        let kind = match non_empty(&self.kind) {
            Some(k) => Some(k.parse::<ActivityType>().map_err(|_| "activity-bad-type")?),
            None => None,
        };
        let time = |v: &Option<String>| match non_empty(v) {
            Some(t) => parse_time(&t).map(Some).ok_or("activity-bad-time"),
            None => Ok(None),
        };
        Ok(ActivityQuery {
            campaign_id: non_empty(&self.campaign_id),
            user_id: non_empty(&self.user_id),
            kind,
            since: time(&self.since)?,
            until: time(&self.until)?,
            after_id: self.after_id,
            limit: Some(limit),
        })
    }

    /// The query string that repeats these filters (for the live stream's URL).
    fn query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("type", &self.kind),
            ("campaign_id", &self.campaign_id),
            ("user_id", &self.user_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = non_empty(v) {
                out.append_pair(k, &v);
            }
        }
        out.finish()
    }
}

/// An activity type's message id (`activity-type-render-error`).
pub(crate) fn type_id(kind: ActivityType) -> String {
    format!("activity-type-{}", kind.as_str().replace('_', "-"))
}

/// Campaign and Canvas names by id, for showing ids people can read.
async fn owner_names(d: &Dashboard) -> Result<Vec<(String, String)>, DashboardError> {
    let mut names = Vec::new();
    if let Some(c) = &d.campaigns {
        names.extend(
            c.campaigns()
                .await?
                .into_iter()
                .map(|r| (r.id, r.spec.name)),
        );
    }
    if let Some(c) = &d.canvases {
        names.extend(c.canvases().await?.into_iter().map(|r| (r.id, r.spec.name)));
    }
    Ok(names)
}

fn name_of<'a>(names: &'a [(String, String)], id: &'a str) -> &'a str {
    names
        .iter()
        .find(|(i, _)| i == id)
        .map_or(id, |(_, n)| n.as_str())
}

/// One entry's row (the page and the live stream render it the same).
fn entry_row(tr: Tr<'_>, names: &[(String, String)], e: &ActivityRecord) -> Markup {
    let r = &e.row;
    html! {
        tr id={ "entry-" (e.id) } data-type=(r.kind.as_str()) {
            td { time datetime=(leadwire_webhooks::templates::rfc3339(r.at)) { (page::time(r.at)) } }
            td { span.badge data-type=(r.kind.as_str()) { (tr.t(&type_id(r.kind))) } }
            td { (r.campaign_id.as_deref().map(|c| name_of(names, c)).unwrap_or("—")) }
            td { (r.user_id) }
            td.message { (r.message) }
            td { a href={ "/dashboard/activity/" (e.id) } aria-label=(tr.ta("activity-details-of", &[("id", e.id.into())])) { (tr.t("activity-details")) } }
        }
    }
}

/// Recent deliveries' rows.
fn delivery_rows(
    tr: Tr<'_>,
    names: &[(String, String)],
    templates: &HashMap<String, String>,
    jobs: &[JobInfo],
) -> Markup {
    html! {
        @for j in jobs {
            tr data-state=(j.state.as_str()) {
                td { span.badge data-state=(j.state.as_str()) { (tr.t(page::job_state_id(j.state))) } }
                td { (j.last_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                td { (j.user_id) }
                td { (j.campaign_id.as_deref().map(|c| name_of(names, c)).unwrap_or("—")) }
                td { (templates.get(&j.template_id).map_or(j.template_id.as_str(), String::as_str)) }
                td { (j.attempts) }
                td.message { (j.last_error.as_deref().unwrap_or("")) }
            }
        }
    }
}

async fn template_names(d: &Dashboard) -> Result<HashMap<String, String>, DashboardError> {
    Ok(d.webhooks()?
        .list_templates(true, 10_000, 0)
        .await?
        .into_iter()
        .map(|r| (r.id, r.definition.template.name))
        .collect())
}

const PAGE_SIZE: usize = 100;
const RECENT_DELIVERIES: usize = 20;

async fn list(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(filters): Query<Filters>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::ActivityRead)?;
    let tr = d.tr(signed.lang());
    let service = d.webhooks()?;
    let names = owner_names(&d).await?;
    let (entries, problem) = match filters.query(PAGE_SIZE) {
        Ok(mut query) => {
            query.after_id = None;
            (service.activity(query).await?, None)
        }
        Err(id) => (Vec::new(), Some(id)),
    };
    let last_id = match service
        .activity(leadwire_store::ActivityQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .first()
    {
        Some(e) => e.id,
        None => 0,
    };
    let campaign_filter = non_empty(&filters.campaign_id);
    let jobs = service
        .jobs(campaign_filter.clone(), RECENT_DELIVERIES)
        .await?;
    let templates = template_names(&d).await?;
    let live = format!(
        "/dashboard/activity/stream?after_id={last_id}&{}",
        filters.query_string()
    );
    let selected_kind = non_empty(&filters.kind).unwrap_or_default();
    let body = html! {
        h1 { (tr.t("activity-title")) }
        (page::api_help(tr, "GET /activity"))
        form.filters method="get" action="/dashboard/activity" {
            fieldset {
                legend { (tr.t("activity-filters")) }
                div.filter-grid {
                    div {
                        label for="f-type" { (tr.t("activity-filter-type")) }
                        select id="f-type" name="type" {
                            option value="" { (tr.t("activity-any")) }
                            @for k in ActivityType::ALL {
                                option value=(k.as_str()) selected[selected_kind == k.as_str()] { (tr.t(&type_id(k))) }
                            }
                        }
                    }
                    div {
                        label for="f-campaign" { (tr.t("activity-filter-campaign")) }
                        select id="f-campaign" name="campaign_id" {
                            option value="" { (tr.t("activity-any")) }
                            @for (id, name) in &names {
                                option value=(id) selected[campaign_filter.as_deref() == Some(id.as_str())] { (name) }
                            }
                        }
                    }
                    div {
                        label for="f-user" { (tr.t("activity-filter-user")) }
                        input id="f-user" name="user_id" type="text" value=(filters.user_id.as_deref().unwrap_or(""));
                    }
                    div {
                        label for="f-since" { (tr.t("activity-filter-since")) }
                        input id="f-since" name="since" type="datetime-local" value=(filters.since.as_deref().unwrap_or(""));
                    }
                    div {
                        label for="f-until" { (tr.t("activity-filter-until")) }
                        input id="f-until" name="until" type="datetime-local" value=(filters.until.as_deref().unwrap_or(""));
                    }
                }
                p.actions {
                    button type="submit" { (tr.t("activity-apply")) }
                    " " a href="/dashboard/activity" { (tr.t("activity-clear")) }
                }
                p.help { (tr.t("activity-times-utc")) }
            }
        }
        @if let Some(id) = problem { p.field-error role="alert" { (tr.t(id)) } }
        div id="live" data-live-src=(live) {
            p.visually-hidden id="live-announce" aria-live="polite" {}
            h2 id="deliveries-title" { (tr.t("activity-deliveries")) }
            table.list aria-labelledby="deliveries-title" {
                thead { tr {
                    th scope="col" { (tr.t("column-state")) }
                    th scope="col" { (tr.t("column-status")) }
                    th scope="col" { (tr.t("column-user")) }
                    th scope="col" { (tr.t("column-campaign")) }
                    th scope="col" { (tr.t("column-template")) }
                    th scope="col" { (tr.t("column-attempts")) }
                    th scope="col" { (tr.t("column-error")) }
                } }
                tbody id="delivery-rows" { (delivery_rows(tr, &names, &templates, &jobs)) }
            }
            h2 id="entries-title" { (tr.t("activity-entries")) }
            table.list aria-labelledby="entries-title" {
                thead { tr {
                    th scope="col" { (tr.t("column-time")) }
                    th scope="col" { (tr.t("column-type")) }
                    th scope="col" { (tr.t("column-campaign")) }
                    th scope="col" { (tr.t("column-user")) }
                    th scope="col" { (tr.t("column-message")) }
                    th scope="col" { (tr.t("column-actions")) }
                } }
                tbody id="activity-rows" {
                    @for e in &entries { (entry_row(tr, &names, e)) }
                }
            }
            @if entries.is_empty() { p id="activity-empty" { (tr.t("activity-none")) } }
        }
    };
    let title = tr.t("activity-title");
    Ok(page::document(tr, Some(&signed), &title, "activity", body).into_response())
}

fn json_block(value: Option<&Json>, key: &str) -> String {
    value
        .and_then(|v| v.get(key))
        .map(|v| match v {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

fn json_headers(value: Option<&Json>) -> Vec<(String, String)> {
    value
        .and_then(|v| v.get("headers"))
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get(0)?.as_str()?.to_owned(),
                        p.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn detail(
    State(d): State<Dashboard>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::ActivityRead)?;
    let tr = d.tr(signed.lang());
    let found = d
        .webhooks()?
        .activity(ActivityQuery {
            after_id: Some(id - 1),
            limit: Some(1),
            ..ActivityQuery::default()
        })
        .await?
        .into_iter()
        .find(|e| e.id == id);
    let Some(entry) = found else {
        return Err(DashboardError::NotFound(format!("#{id}")));
    };
    let names = owner_names(&d).await?;
    let r = &entry.row;
    let title = tr.ta("activity-entry-title", &[("id", id.into())]);
    let body = html! {
        h1 { (title) }
        p { a href="/dashboard/activity" { (tr.t("activity-back")) } }
        dl.facts {
            dt { (tr.t("column-time")) } dd { (page::time(r.at)) }
            dt { (tr.t("column-type")) } dd { (tr.t(&type_id(r.kind))) }
            dt { (tr.t("column-campaign")) } dd { (r.campaign_id.as_deref().map(|c| name_of(&names, c)).unwrap_or("—")) }
            @if let Some(step) = &r.step_id { dt { (tr.t("column-step")) } dd { (step) } }
            dt { (tr.t("column-user")) } dd { (r.user_id) }
            @if let Some(t) = &r.template { dt { (tr.t("column-template")) } dd { (t) } }
            @if let Some(a) = r.attempt { dt { (tr.t("column-attempts")) } dd { (a) } }
            @if let Some(dl) = &r.delivery_id { dt { (tr.t("column-delivery-id")) } dd { code { (dl) } } }
            dt { (tr.t("column-message")) } dd.message { (r.message) }
        }
        @if r.request.is_some() {
            section aria-labelledby="req-title" {
                h2 id="req-title" { (tr.t("result-request")) }
                p.request-line { code { (json_block(r.request.as_ref(), "method")) " " (json_block(r.request.as_ref(), "url")) } }
                table.headers {
                    caption { (tr.t("result-request-headers")) }
                    tbody { @for (k, v) in json_headers(r.request.as_ref()) { tr { th scope="row" { (k) } td { code { (v) } } } } }
                }
                pre.body { (json_block(r.request.as_ref(), "body")) }
            }
        }
        @if r.response.is_some() {
            section aria-labelledby="resp-title" {
                h2 id="resp-title" { (tr.t("result-response")) }
                p.status { (tr.t("result-status")) " " output { (json_block(r.response.as_ref(), "status")) } }
                table.headers {
                    caption { (tr.t("result-response-headers")) }
                    tbody { @for (k, v) in json_headers(r.response.as_ref()) { tr { th scope="row" { (k) } td { code { (v) } } } } }
                }
                pre.body { (json_block(r.response.as_ref(), "body")) }
            }
        }
    };
    Ok(page::document(tr, Some(&signed), &title, "activity", body).into_response())
}

/// What the live stream carries from one read to the next.
struct Tail {
    d: Dashboard,
    lang: crate::Lang,
    filters: Filters,
    after_id: i64,
    deliveries: String,
    /// Events read but not yet sent.
    pending: std::collections::VecDeque<Event>,
    first: bool,
}

impl Tail {
    /// Reads what is new: entries after the last one sent, and the deliveries when they changed.
    async fn read(&mut self) -> Result<(), DashboardError> {
        let service = self.d.webhooks()?.clone();
        let tr = self.d.tr(self.lang);
        let names = owner_names(&self.d).await?;
        let mut query = self
            .filters
            .query(PAGE_SIZE)
            .map_err(|id| DashboardError::BadRequest(id.to_owned()))?;
        query.after_id = Some(self.after_id);
        for e in service.activity(query).await? {
            self.after_id = self.after_id.max(e.id);
            self.pending.push_back(
                Event::default()
                    .event("entry")
                    .data(entry_row(tr, &names, &e).into_string()),
            );
        }
        let jobs = service
            .jobs(non_empty(&self.filters.campaign_id), RECENT_DELIVERIES)
            .await?;
        let templates = template_names(&self.d).await?;
        let rows = delivery_rows(tr, &names, &templates, &jobs).into_string();
        if rows != self.deliveries {
            // The first read only learns what the page already shows.
            if !self.first {
                self.pending
                    .push_back(Event::default().event("deliveries").data(rows.clone()));
            }
            self.deliveries = rows;
        }
        self.first = false;
        Ok(())
    }
}

/// How often the live stream re-reads the log.
const TAIL_EVERY: Duration = Duration::from_secs(1);

async fn stream(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(filters): Query<Filters>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::ActivityRead)?;
    if let Err(id) = filters.query(1) {
        return Err(DashboardError::BadRequest(d.tr(signed.lang()).t(id)));
    }
    let tail = Tail {
        d,
        lang: signed.lang(),
        after_id: filters.after_id.unwrap_or(0),
        filters,
        deliveries: String::new(),
        pending: std::collections::VecDeque::new(),
        first: true,
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(event) = tail.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), tail));
            }
            if !tail.first {
                tokio::time::sleep(TAIL_EVERY).await;
            }
            if let Err(e) = tail.read().await {
                tracing::warn!(error = %e, "the activity stream stopped");
                return None;
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_stores_query() {
        let f = Filters {
            kind: Some("render_error".into()),
            campaign_id: Some(" ".into()),
            user_id: Some("u1".into()),
            since: Some("2026-01-31T12:00".into()),
            until: None,
            after_id: None,
        };
        let q = f.query(10).expect("parses");
        assert_eq!(q.kind, Some(ActivityType::RenderError));
        assert_eq!(q.campaign_id, None, "blank is any");
        assert_eq!(q.user_id.as_deref(), Some("u1"));
        let since = chrono::DateTime::<chrono::Utc>::from(q.since.expect("since"));
        assert_eq!(since.to_rfc3339(), "2026-01-31T12:00:00+00:00");
        assert_eq!(
            f.query_string(),
            "type=render_error&user_id=u1&since=2026-01-31T12%3A00"
        );
        let bad = Filters {
            kind: Some("nope".into()),
            ..Filters::default()
        };
        assert_eq!(bad.query(1).err(), Some("activity-bad-type"));
        let bad = Filters {
            until: Some("yesterday".into()),
            ..Filters::default()
        };
        assert_eq!(bad.query(1).err(), Some("activity-bad-time"));
    }
}
