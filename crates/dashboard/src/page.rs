//! The page shell every screen shares (skip link, navigation, language switcher, sign-out) and
//! small pieces several screens show.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::response::Html;
use leadwire_store::JobState;
use maud::{DOCTYPE, Markup, html};

use crate::i18n::{Lang, Tr};
use crate::{Permission, Signed};

/// The navigation: `(key, path, message id, permission needed to see it)`.
const NAV: &[(&str, &str, &str, Permission)] = &[
    (
        "templates",
        "/dashboard/templates",
        "nav-templates",
        Permission::TemplatesRead,
    ),
    (
        "campaigns",
        "/dashboard/campaigns",
        "nav-campaigns",
        Permission::CampaignsRead,
    ),
    (
        "canvases",
        "/dashboard/canvases",
        "nav-canvases",
        Permission::CanvasRead,
    ),
    (
        "deliveries",
        "/dashboard/deliveries",
        "nav-deliveries",
        Permission::ActivityRead,
    ),
    (
        "users",
        "/dashboard/users",
        "nav-users",
        Permission::UsersExportIds,
    ),
    (
        "credentials",
        "/dashboard/credentials",
        "nav-credentials",
        Permission::CredentialsRead,
    ),
    (
        "activity",
        "/dashboard/activity",
        "nav-activity",
        Permission::ActivityRead,
    ),
];

/// A whole page. `active` is the navigation key of the screen (`""` for none); `signed` is
/// `None` on the sign-in and error pages (no navigation then).
pub(crate) fn document(
    tr: Tr<'_>,
    signed: Option<&Signed>,
    title: &str,
    active: &str,
    body: Markup,
) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang=(tr.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · leadwire" }
                link rel="stylesheet" href="/dashboard/assets/app.css";
                script src="/dashboard/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { (tr.t("skip-to-content")) }
                header.top {
                    a.brand href="/dashboard" { "leadwire" }
                    @if let Some(signed) = signed {
                        nav aria-label=(tr.t("nav-label")) {
                            ul {
                                @for (key, path, id, permission) in NAV {
                                    @if signed.can(*permission) {
                                        li {
                                            @if *key == active {
                                                a href=(path) aria-current="page" { (tr.t(id)) }
                                            } @else {
                                                a href=(path) { (tr.t(id)) }
                                            }
                                        }
                                    }
                                }
                                li { a href="/docs" { (tr.t("nav-api-docs")) } }
                            }
                        }
                    }
                    nav.languages aria-label=(tr.t("language-switcher")) {
                        ul {
                            @for lang in Lang::ALL {
                                li {
                                    @let name = tr.i18n.text(lang, "language-name", None);
                                    @if lang == tr.lang {
                                        a href={ "/dashboard/lang?to=" (lang.code()) } lang=(lang.code()) hreflang=(lang.code()) aria-current="true" { (name) }
                                    } @else {
                                        a href={ "/dashboard/lang?to=" (lang.code()) } lang=(lang.code()) hreflang=(lang.code()) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(signed) = signed {
                        form.signout method="post" action="/dashboard/logout" {
                            input type="hidden" name="csrf" value=(signed.session.csrf);
                            span.who { (signed.session.user.email) }
                            button type="submit" { (tr.t("sign-out")) }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    };
    Html(page.into_string())
}

/// The hidden CSRF field every form post carries.
pub(crate) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

/// `2026-11-30 10:41:43 UTC`.
pub(crate) fn time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A job state's message id.
pub(crate) fn job_state_id(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "job-queued",
        JobState::InFlight => "job-in-flight",
        JobState::Delivered => "job-delivered",
        JobState::Aborted => "job-aborted",
        JobState::Failed => "job-failed",
    }
}

pub(crate) const JOB_STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::InFlight,
    JobState::Delivered,
    JobState::Aborted,
    JobState::Failed,
];

/// Jobs by state, as a small table.
pub(crate) fn job_counts_table(tr: Tr<'_>, counts: &HashMap<JobState, u64>) -> Markup {
    html! {
        table.counts {
            caption { (tr.t("deliveries-by-state")) }
            thead { tr { th scope="col" { (tr.t("column-state")) } th scope="col" { (tr.t("column-count")) } } }
            tbody {
                @for state in JOB_STATES {
                    tr data-state=(state.as_str()) {
                        th scope="row" { (tr.t(job_state_id(state))) }
                        td { (counts.get(&state).copied().unwrap_or(0)) }
                    }
                }
            }
        }
    }
}

/// A problem's text: a message id, or `id|detail` for one with a detail (`{ $detail }`).
pub(crate) fn problem_text(tr: Tr<'_>, problem: &str) -> String {
    match problem.split_once('|') {
        Some((id, detail)) => tr.ta(id, &[("detail", detail.to_owned().into())]),
        None => tr.t(problem),
    }
}

/// The active templates' names (what campaigns and Webhook steps pick from).
pub(crate) async fn template_names(
    d: &crate::Dashboard,
) -> Result<Vec<String>, crate::DashboardError> {
    Ok(d.webhooks()?
        .list_templates(false, 10_000, 0)
        .await?
        .into_iter()
        .map(|r| r.definition.template.name)
        .collect())
}

/// "The REST API does the same: `…`", with a link to the API docs.
pub(crate) fn api_help(tr: Tr<'_>, endpoints: &str) -> Markup {
    html! {
        p.help.api-help {
            (tr.t("help-api")) " " code { (endpoints) } " — " a href="/docs" { (tr.t("nav-api-docs")) }
        }
    }
}
