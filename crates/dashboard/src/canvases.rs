//! Canvases: the list with each one's status, start and pause, and each Canvas drawn as a graph
//! of its steps (server-rendered SVG) with how many users entered each step, wait in it now and
//! have moved on, beside the same figures as a table. Read through the [`CanvasEngine`], as
//! `/canvas/list` and `/canvas/details` do; started and paused as `/canvas/resume` and
//! `/canvas/pause` do.
//!
//! [`CanvasEngine`]: leadwire_canvas::CanvasEngine

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leadwire_canvas::{CanvasEngine, CanvasRecord, CanvasStatus, StepKind, StepSpec};
use leadwire_store::JourneyStatus;
use maud::{Markup, html};

use crate::campaigns::status_id;
use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, Permission, Posted, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/canvases", get(list))
        .route("/dashboard/canvases/{id}", get(detail))
        .route("/dashboard/canvases/{id}/status", post(set_status))
}

fn engine(d: &Dashboard) -> Result<&Arc<CanvasEngine>, DashboardError> {
    d.canvases
        .as_ref()
        .ok_or(DashboardError::Unavailable("Canvases"))
}

/// A step type's message id.
pub(crate) fn kind_id(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::AudiencePaths { .. } => "step-audience-paths",
        StepKind::DecisionSplit { .. } => "step-decision-split",
        StepKind::UserUpdate { .. } => "step-user-update",
        StepKind::Webhook { .. } => "step-webhook",
        StepKind::Delay { .. } => "step-delay",
        StepKind::ActionPaths { .. } => "step-action-paths",
        StepKind::Context { .. } => "step-context",
    }
}

/// Where a step leads: `(label, next step id)` (the label names a path, empty for `next`).
fn edges(step: &StepSpec) -> Vec<(String, String)> {
    let one = |n: &Option<String>| n.iter().map(|n| (String::new(), n.clone())).collect();
    match &step.kind {
        StepKind::AudiencePaths {
            groups,
            everyone_else,
        } => groups
            .iter()
            .filter_map(|g| g.next.clone().map(|n| (g.name.clone(), n)))
            .chain(everyone_else.iter().map(|n| ("*".to_owned(), n.clone())))
            .collect(),
        StepKind::ActionPaths {
            groups,
            everyone_else,
            ..
        } => groups
            .iter()
            .filter_map(|g| g.next.clone().map(|n| (g.name.clone(), n)))
            .chain(everyone_else.iter().map(|n| ("*".to_owned(), n.clone())))
            .collect(),
        StepKind::DecisionSplit { yes, no, .. } => yes
            .iter()
            .map(|n| ("yes".to_owned(), n.clone()))
            .chain(no.iter().map(|n| ("no".to_owned(), n.clone())))
            .collect(),
        StepKind::UserUpdate { next, .. }
        | StepKind::Webhook { next, .. }
        | StepKind::Delay { next, .. }
        | StepKind::Context { next, .. } => one(next),
    }
}

/// A step's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StepFigures {
    pub entered: i64,
    pub waiting: i64,
    pub webhooks: i64,
    pub updates: i64,
}

impl StepFigures {
    /// Users who arrived and are no longer there (moved on or left the Canvas).
    pub fn passed(&self) -> i64 {
        (self.entered - self.waiting).max(0)
    }
}

/// Every step's figures, from the store's step counts and the journeys waiting now.
async fn figures(
    engine: &CanvasEngine,
    canvas: &CanvasRecord,
) -> Result<HashMap<String, StepFigures>, DashboardError> {
    let counts = engine.step_counts(&canvas.id).await?;
    let journeys = engine.journeys(&canvas.id).await?;
    let mut out: HashMap<String, StepFigures> = HashMap::new();
    for ((step, kind), n) in counts {
        let f = out.entry(step).or_default();
        match kind.as_str() {
            "entered" => f.entered += n,
            "webhook" => f.webhooks += n,
            "user_update" => f.updates += n,
            _ => {}
        }
    }
    for j in journeys {
        if j.status == JourneyStatus::Active {
            out.entry(j.journey.step).or_default().waiting += 1;
        }
    }
    Ok(out)
}

/// Steps laid out in layers: the first step on top, each step one layer below the deepest step
/// that leads to it on a shortest path (breadth first); steps no path reaches go last.
fn layers(record: &CanvasRecord) -> Vec<Vec<usize>> {
    let steps = &record.spec.steps;
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let first = record
        .spec
        .first_step
        .as_deref()
        .and_then(|f| index.get(f).copied())
        .unwrap_or(0);
    let mut depth: Vec<Option<usize>> = vec![None; steps.len()];
    let mut queue = std::collections::VecDeque::new();
    if !steps.is_empty() {
        depth[first] = Some(0);
        queue.push_back(first);
    }
    while let Some(i) = queue.pop_front() {
        let d = depth[i].unwrap_or(0);
        for (_, next) in edges(&steps[i]) {
            if let Some(&j) = index.get(next.as_str())
                && depth[j].is_none()
            {
                depth[j] = Some(d + 1);
                queue.push_back(j);
            }
        }
    }
    let deepest = depth.iter().flatten().max().copied().unwrap_or(0);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); deepest + 1];
    for (i, d) in depth.iter().enumerate() {
        match d {
            Some(d) => out[*d].push(i),
            None => {
                if out.last().is_none_or(|l| !l.is_empty()) {
                    out.push(Vec::new());
                }
                if let Some(last) = out.last_mut() {
                    last.push(i);
                }
            }
        }
    }
    out
}

const NODE_W: usize = 230;
const NODE_H: usize = 74;
const GAP_X: usize = 30;
const GAP_Y: usize = 56;
const MARGIN: usize = 16;

/// The Canvas as an SVG graph: a box per step (name, type, figures), an arrow per path.
fn graph(tr: Tr<'_>, record: &CanvasRecord, figures: &HashMap<String, StepFigures>) -> Markup {
    let steps = &record.spec.steps;
    let layers = layers(record);
    let widest = layers.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X;
    let height = MARGIN * 2 + layers.len() * NODE_H + layers.len().saturating_sub(1) * GAP_Y;
    // Each step's box: its top-left corner.
    let mut at: HashMap<&str, (usize, usize)> = HashMap::new();
    for (row, layer) in layers.iter().enumerate() {
        let used = layer.len() * NODE_W + layer.len().saturating_sub(1) * GAP_X;
        let left = (width - used) / 2;
        for (col, &i) in layer.iter().enumerate() {
            at.insert(
                steps[i].id.as_str(),
                (
                    left + col * (NODE_W + GAP_X),
                    MARGIN + row * (NODE_H + GAP_Y),
                ),
            );
        }
    }
    let title = tr.ta(
        "canvas-graph-title",
        &[("name", record.spec.name.clone().into())],
    );
    html! {
        svg.canvas-graph xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="graph-title graph-desc"
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            title id="graph-title" { (title) }
            desc id="graph-desc" { (tr.t("canvas-graph-desc")) }
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#4a5461" {}
                }
            }
            @for step in steps {
                @if let Some(&(x, y)) = at.get(step.id.as_str()) {
                    @for (label, next) in edges(step) {
                        @if let Some(&(nx, ny)) = at.get(next.as_str()) {
                            @let (x1, y1) = (x + NODE_W / 2, y + NODE_H);
                            @let (x2, y2) = (nx + NODE_W / 2, ny);
                            @if ny > y {
                                path.edge d={ "M " (x1) " " (y1) " C " (x1) " " (y1 + GAP_Y / 2) ", " (x2) " " (y2 - GAP_Y / 2) ", " (x2) " " (y2) } fill="none" stroke="#4a5461" stroke-width="1.5" marker-end="url(#arrow)" {}
                            } @else {
                                // A path back up (a loop through a Delay or Action Paths).
                                path.edge d={ "M " (x + NODE_W) " " (y + NODE_H / 2) " C " (x + NODE_W + 40) " " (y + NODE_H / 2) ", " (nx + NODE_W + 40) " " (ny + NODE_H / 2) ", " (nx + NODE_W) " " (ny + NODE_H / 2) } fill="none" stroke="#4a5461" stroke-width="1.5" stroke-dasharray="4 3" marker-end="url(#arrow)" {}
                            }
                            @if !label.is_empty() {
                                text.edge-label x=((x1 + x2) / 2 + 4) y=((y1 + y2) / 2) font-size="11" fill="#1b1f24" { (label) }
                            }
                        }
                    }
                }
            }
            @for step in steps {
                @if let Some(&(x, y)) = at.get(step.id.as_str()) {
                    @let f = figures.get(&step.id).copied().unwrap_or_default();
                    g.step data-step=(step.id) data-entered=(f.entered) data-waiting=(f.waiting) data-passed=(f.passed()) {
                        rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" fill="#ffffff" stroke="#0b5cad" stroke-width="2" {}
                        text x=(x + 10) y=(y + 20) font-size="13" font-weight="700" fill="#1b1f24" { (step.display_name()) }
                        text x=(x + 10) y=(y + 38) font-size="11" fill="#4a5461" { (tr.t(kind_id(&step.kind))) }
                        text x=(x + 10) y=(y + 60) font-size="12" fill="#1b1f24" {
                            (tr.ta("canvas-step-figures", &[("entered", f.entered.into()), ("waiting", f.waiting.into()), ("passed", f.passed().into())]))
                        }
                    }
                }
            }
        }
    }
}

fn status_button(tr: Tr<'_>, signed: &Signed, c: &CanvasRecord) -> Markup {
    let name = c.spec.name.clone();
    let (to, id, label) = if c.spec.status == CanvasStatus::Active {
        ("paused", "campaign-pause", "campaign-pause-named")
    } else {
        ("active", "campaign-start", "campaign-start-named")
    };
    html! {
        form.inline method="post" action={ "/dashboard/canvases/" (c.id) "/status" } {
            (page::csrf(signed))
            input type="hidden" name="to" value=(to);
            button type="submit" data-to=(to) aria-label=(tr.ta(label, &[("name", name.into())])) { (tr.t(id)) }
        }
    }
}

async fn list(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    signed.require(Permission::CanvasRead)?;
    let tr = d.tr(signed.lang());
    let canvases = engine(&d)?.canvases().await?;
    let can_write = signed.can(Permission::CanvasWrite);
    let body = html! {
        h1 { (tr.t("canvases-title")) }
        (page::api_help(tr, "/canvas/{create,update,details,list,pause,resume}"))
        p.help { (tr.t("canvases-help")) }
        @if can_write { p.actions { a.button href="/dashboard/canvases/new" { (tr.t("canvases-new")) } } }
        @if canvases.is_empty() {
            p { (tr.t("canvases-none")) }
        } @else {
            table.list {
                caption.visually-hidden { (tr.t("canvases-title")) }
                thead { tr {
                    th scope="col" { (tr.t("column-name")) }
                    th scope="col" { (tr.t("column-state")) }
                    th scope="col" { (tr.t("canvas-steps")) }
                    th scope="col" { (tr.t("column-updated")) }
                    th scope="col" { (tr.t("column-actions")) }
                } }
                tbody {
                    @for c in &canvases {
                        tr data-status=(serde_json::to_value(c.spec.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) {
                            th scope="row" { a href={ "/dashboard/canvases/" (c.id) } { (c.spec.name) } }
                            td { span.badge { (tr.t(status_id(c.spec.status))) } }
                            td { (c.spec.steps.len()) }
                            td { (c.last_edited.format("%Y-%m-%d %H:%M:%S UTC")) }
                            td.row-actions { @if can_write { (status_button(tr, &signed, c)) } }
                        }
                    }
                }
            }
        }
    };
    let title = tr.t("canvases-title");
    Ok(page::document(tr, Some(&signed), &title, "canvases", body).into_response())
}

async fn detail(
    State(d): State<Dashboard>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::CanvasRead)?;
    let tr = d.tr(signed.lang());
    let engine = engine(&d)?;
    let record = engine.canvas(&id).await?;
    let figures = figures(engine, &record).await?;
    let title = tr.ta("canvas-title", &[("name", record.spec.name.clone().into())]);
    let body = html! {
        h1 { (title) }
        p {
            (tr.t("column-state")) ": " span.badge id="canvas-status" { (tr.t(status_id(record.spec.status))) }
            @if signed.can(Permission::CanvasWrite) {
                " " (status_button(tr, &signed, &record))
                " " a href={ "/dashboard/canvases/" (record.id) "/edit" } { (tr.t("canvas-edit")) }
            }
        }
        @if !record.spec.description.is_empty() { p { (record.spec.description) } }
        div.graph-scroll { (graph(tr, &record, &figures)) }
        table.list id="step-figures" {
            caption { (tr.t("canvas-figures")) }
            thead { tr {
                th scope="col" { (tr.t("canvas-step")) }
                th scope="col" { (tr.t("column-type")) }
                th scope="col" { (tr.t("canvas-entered")) }
                th scope="col" { (tr.t("canvas-waiting")) }
                th scope="col" { (tr.t("canvas-passed")) }
                th scope="col" { (tr.t("canvas-webhooks")) }
                th scope="col" { (tr.t("canvas-updates")) }
            } }
            tbody {
                @for step in &record.spec.steps {
                    @let f = figures.get(&step.id).copied().unwrap_or_default();
                    tr data-step=(step.id) {
                        th scope="row" { (step.display_name()) }
                        td { (tr.t(kind_id(&step.kind))) }
                        td.entered { (f.entered) }
                        td.waiting { (f.waiting) }
                        td.passed { (f.passed()) }
                        td { (f.webhooks) }
                        td { (f.updates) }
                    }
                }
            }
        }
        h2 { (tr.t("canvas-definition")) }
        details {
            summary { (tr.t("canvas-definition-show")) }
            pre.body { (serde_json::to_string_pretty(&record.to_json()).unwrap_or_default()) }
        }
    };
    Ok(page::document(tr, Some(&signed), &title, "canvases", body).into_response())
}

async fn set_status(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::CanvasWrite)?;
    let status = match posted.form.text("to") {
        "active" => CanvasStatus::Active,
        "paused" => CanvasStatus::Paused,
        other => return Err(DashboardError::BadRequest(other.to_owned())),
    };
    let record = engine(&d)?.set_status(&id, status).await?;
    Ok(Redirect::to(&format!("/dashboard/canvases/{}", record.id)).into_response())
}
