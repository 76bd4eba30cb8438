//! Delivery at a glance: sends, successes, failures, retries and latency over time as
//! server-rendered SVG charts, and the same figures per campaign or Canvas step and per
//! destination host. Counted by the store from the delivery queue's jobs
//! (`Tx::delivery_buckets`); requires `activity.read`, as the activity log does.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leadwire_delivery::budget::{OrgBudget, Pace};
use leadwire_store::{DeliveryBucket, JobState};
use maud::{Markup, html};
use serde::Deserialize;

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, Permission, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new().route("/dashboard/deliveries", get(deliveries))
}

/// The windows offered: `(hours, bucket width, message id)`.
const WINDOWS: [(u64, Duration, &str); 3] = [
    (1, Duration::from_secs(120), "charts-last-hour"),
    (24, Duration::from_secs(3600), "charts-last-day"),
    (168, Duration::from_secs(6 * 3600), "charts-last-week"),
];

#[derive(Deserialize)]
struct ChartsQuery {
    hours: Option<u64>,
}

/// Figures summed over any set of buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub sends: u64,
    pub delivered: u64,
    pub failed: u64,
    pub aborted: u64,
    pub pending: u64,
    /// Attempts beyond each job's first.
    pub retries: u64,
    pub finished: u64,
    pub latency_ms_total: u64,
}

impl Totals {
    pub fn add(&mut self, b: &DeliveryBucket) {
        self.sends += b.jobs;
        match b.state {
            JobState::Delivered => self.delivered += b.jobs,
            JobState::Failed => self.failed += b.jobs,
            JobState::Aborted => self.aborted += b.jobs,
            JobState::Queued | JobState::InFlight => self.pending += b.jobs,
        }
        self.retries += b.attempts.saturating_sub(b.jobs.min(b.attempts));
        self.finished += b.finished;
        self.latency_ms_total += b.latency_ms_total;
    }

    /// Mean time from enqueued to finished, in ms (`None` before anything finished).
    pub fn latency_ms(&self) -> Option<u64> {
        self.latency_ms_total.checked_div(self.finished)
    }
}

/// The host a template sends to, from the literal start of its URL (`(Liquid)` when the host
/// itself is rendered).
pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('{') {
        "(Liquid)".to_owned()
    } else {
        host.to_owned()
    }
}

const W: u64 = 720;
const H: u64 = 180;
const PAD_L: u64 = 48;
const PAD_B: u64 = 24;

/// A bar chart: one bar per bucket, stacked by series `(message id, colour, value per bucket)`.
fn bars(
    tr: Tr<'_>,
    id: &str,
    title: &str,
    starts: &[SystemTime],
    series: &[(&str, &str, Vec<u64>)],
) -> Markup {
    let n = starts.len().max(1) as u64;
    let peak = (0..starts.len())
        .map(|i| series.iter().map(|(_, _, v)| v[i]).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - PAD_L) / n;
    let bar = (slot * 7 / 10).max(1);
    let plot_h = H - PAD_B - 8;
    // Each bar's segments, stacked from the axis up: `(x, y, height, colour)`.
    let mut rects: Vec<(u64, u64, u64, &str)> = Vec::new();
    for i in 0..starts.len() {
        let x = PAD_L + i as u64 * slot + (slot - bar) / 2;
        let mut base = H - PAD_B;
        for (_, colour, values) in series {
            let h = values[i] * plot_h / peak;
            if h > 0 {
                rects.push((x, base - h, h, colour));
                base -= h;
            }
        }
    }
    let totals: Vec<String> = series
        .iter()
        .map(|(label, _, v)| format!("{}: {}", tr.t(label), v.iter().sum::<u64>()))
        .collect();
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby={ (id) "-title " (id) "-desc" }
                viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) {
                title id={ (id) "-title" } { (title) }
                desc id={ (id) "-desc" } { (totals.join("; ")) }
                line x1=(PAD_L) y1=(H - PAD_B) x2=(W) y2=(H - PAD_B) stroke="#4a5461" {}
                text x=(PAD_L - 6) y="14" font-size="11" text-anchor="end" fill="#1b1f24" { (peak) }
                text x=(PAD_L - 6) y=(H - PAD_B) font-size="11" text-anchor="end" fill="#1b1f24" { "0" }
                @for (x, y, h, colour) in &rects {
                    rect x=(x) y=(y) width=(bar) height=(h) fill=(colour) {}
                }
                @if let (Some(first), Some(last)) = (starts.first(), starts.last()) {
                    text x=(PAD_L) y=(H - 6) font-size="11" fill="#1b1f24" { (page::time(*first)) }
                    text x=(W) y=(H - 6) font-size="11" text-anchor="end" fill="#1b1f24" { (page::time(*last)) }
                }
            }
            figcaption {
                (title) ": "
                @for (k, (label, colour, _)) in series.iter().enumerate() {
                    @if k > 0 { ", " }
                    span.swatch style={ "background:" (colour) } {} " " (tr.t(label))
                }
            }
        }
    }
}

fn breakdown_table(tr: Tr<'_>, id: &str, caption: &str, rows: &BTreeMap<String, Totals>) -> Markup {
    html! {
        table.list id=(id) {
            caption { (caption) }
            thead { tr {
                th scope="col" { (tr.t("column-name")) }
                th scope="col" { (tr.t("charts-sends")) }
                th scope="col" { (tr.t("charts-delivered")) }
                th scope="col" { (tr.t("charts-failed")) }
                th scope="col" { (tr.t("charts-aborted")) }
                th scope="col" { (tr.t("charts-retries")) }
                th scope="col" { (tr.t("charts-latency")) }
            } }
            tbody {
                @for (name, t) in rows {
                    tr data-row=(name) data-sends=(t.sends) data-delivered=(t.delivered) data-failed=(t.failed) {
                        th scope="row" { (name) }
                        td { (t.sends) } td { (t.delivered) } td { (t.failed) } td { (t.aborted) } td { (t.retries) }
                        td { (t.latency_ms().map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))) }
                    }
                }
            }
        }
    }
}

/// Each Salesforce org's daily API allowance, as its last answer reported it.
fn budget_table(tr: Tr<'_>, orgs: &[OrgBudget]) -> Markup {
    html! {
        @if orgs.is_empty() {
            p id="api-budget-unknown" { (tr.t("charts-budget-unknown")) }
        } @else {
            table.list id="api-budget" {
                caption { (tr.t("charts-budget")) }
                thead { tr {
                    th scope="col" { (tr.t("charts-budget-org")) }
                    th scope="col" { (tr.t("charts-budget-used")) }
                    th scope="col" { (tr.t("charts-budget-allowed")) }
                    th scope="col" { (tr.t("charts-budget-reserve")) }
                    th scope="col" { (tr.t("charts-budget-state")) }
                } }
                tbody {
                    @for o in orgs {
                        tr data-org=(o.origin) data-used=(o.usage.used) data-allowed=(o.usage.max) {
                            th scope="row" { (o.origin) }
                            td { (o.usage.used) } td { (o.usage.max) } td { (o.reserve) }
                            td { (match o.pace {
                                Pace::Go => tr.t("charts-budget-go"),
                                Pace::Spaced(_) => tr.t("charts-budget-spaced"),
                                Pace::Paused => tr.t("charts-budget-paused"),
                            }) }
                        }
                    }
                }
            }
        }
    }
}

async fn deliveries(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(q): Query<ChartsQuery>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::ActivityRead)?;
    let tr = d.tr(signed.lang());
    let (hours, width, _) = WINDOWS
        .into_iter()
        .find(|(h, _, _)| Some(*h) == q.hours)
        .unwrap_or(WINDOWS[1]);
    let now = SystemTime::now();
    let since = now - Duration::from_secs(hours * 3600);
    let buckets = d
        .store
        .read(move |tx| tx.delivery_buckets(since, width))
        .await?;
    let budgets = d
        .webhooks
        .as_ref()
        .map(|w| w.api_budgets())
        .unwrap_or_default();
    // Names people read: campaigns and Canvases (with their steps), templates and their hosts.
    let mut owners: HashMap<String, String> = HashMap::new();
    if let Some(c) = &d.campaigns {
        owners.extend(
            c.campaigns()
                .await?
                .into_iter()
                .map(|r| (r.id, r.spec.name)),
        );
    }
    let mut steps: HashMap<(String, String), String> = HashMap::new();
    if let Some(c) = &d.canvases {
        for r in c.canvases().await? {
            for s in &r.spec.steps {
                steps.insert((r.id.clone(), s.id.clone()), s.display_name().to_owned());
            }
            owners.insert(r.id, r.spec.name);
        }
    }
    let hosts: HashMap<String, String> = d
        .webhooks()?
        .list_templates(true, 10_000, 0)
        .await?
        .into_iter()
        .map(|r| (r.id, host_of(&r.definition.template.url)))
        .collect();

    // The time axis: every bucket in the window, empty ones included.
    let width_ms = width.as_millis().max(1);
    let since_ms = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let first = since_ms / width_ms * width_ms;
    let count = usize::try_from((hours * 3600 * 1000) as u128 / width_ms + 1).unwrap_or(1);
    let starts: Vec<SystemTime> = (0..count)
        .map(|i| {
            SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(first + i as u128 * width_ms).unwrap_or(0))
        })
        .collect();
    let mut per_bucket = vec![Totals::default(); count];
    let mut all = Totals::default();
    let mut by_owner: BTreeMap<String, Totals> = BTreeMap::new();
    let mut by_host: BTreeMap<String, Totals> = BTreeMap::new();
    for b in &buckets {
        let start_ms = b
            .start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let i = usize::try_from(start_ms.saturating_sub(first) / width_ms).unwrap_or(0);
        if let Some(t) = per_bucket.get_mut(i) {
            t.add(b);
        }
        all.add(b);
        let owner = match (&b.campaign_id, &b.step_id) {
            (Some(c), Some(s)) => format!(
                "{} › {}",
                owners.get(c).map_or(c.as_str(), String::as_str),
                steps
                    .get(&(c.clone(), s.clone()))
                    .map_or(s.as_str(), String::as_str)
            ),
            (Some(c), None) => owners.get(c).cloned().unwrap_or_else(|| c.clone()),
            (None, _) => tr.t("charts-no-campaign"),
        };
        by_owner.entry(owner).or_default().add(b);
        let host = hosts
            .get(&b.template_id)
            .cloned()
            .unwrap_or_else(|| b.template_id.clone());
        by_host.entry(host).or_default().add(b);
    }
    let series = |f: fn(&Totals) -> u64| per_bucket.iter().map(f).collect::<Vec<u64>>();
    let outcomes = bars(
        tr,
        "chart-outcomes",
        &tr.t("charts-outcomes"),
        &starts,
        &[
            ("charts-delivered", "#1d6b32", series(|t| t.delivered)),
            ("charts-failed", "#a4161a", series(|t| t.failed)),
            ("charts-aborted", "#7a4a00", series(|t| t.aborted)),
            ("charts-pending", "#0b5cad", series(|t| t.pending)),
        ],
    );
    let retries = bars(
        tr,
        "chart-retries",
        &tr.t("charts-retries"),
        &starts,
        &[("charts-retries", "#7a4a00", series(|t| t.retries))],
    );
    let latency = bars(
        tr,
        "chart-latency",
        &tr.t("charts-latency"),
        &starts,
        &[(
            "charts-latency",
            "#0b5cad",
            series(|t| t.latency_ms().unwrap_or(0)),
        )],
    );
    let body = html! {
        h1 { (tr.t("charts-title")) }
        nav.windows aria-label=(tr.t("charts-window")) {
            ul.inline {
                @for (h, _, id) in WINDOWS {
                    li {
                        @if h == hours {
                            a href={ "/dashboard/deliveries?hours=" (h) } aria-current="true" { (tr.t(id)) }
                        } @else {
                            a href={ "/dashboard/deliveries?hours=" (h) } { (tr.t(id)) }
                        }
                    }
                }
            }
        }
        dl.facts id="totals" data-sends=(all.sends) data-delivered=(all.delivered) data-failed=(all.failed) {
            dt { (tr.t("charts-sends")) } dd { (all.sends) }
            dt { (tr.t("charts-delivered")) } dd { (all.delivered) }
            dt { (tr.t("charts-failed")) } dd { (all.failed) }
            dt { (tr.t("charts-aborted")) } dd { (all.aborted) }
            dt { (tr.t("charts-retries")) } dd { (all.retries) }
            dt { (tr.t("charts-latency")) } dd { (all.latency_ms().map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))) }
        }
        (outcomes)
        (retries)
        (latency)
        (breakdown_table(tr, "by-owner", &tr.t("charts-by-owner"), &by_owner))
        (breakdown_table(tr, "by-host", &tr.t("charts-by-host"), &by_host))
        (budget_table(tr, &budgets))
    };
    let title = tr.t("charts-title");
    Ok(page::document(tr, Some(&signed), &title, "deliveries", body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_literal_start_of_the_url() {
        assert_eq!(
            host_of("https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/"),
            "acme.my.salesforce.com"
        );
        assert_eq!(host_of("https://127.0.0.1:8443/x?y"), "127.0.0.1:8443");
        assert_eq!(
            host_of("https://{{custom_attribute.${org}}}.example.com/"),
            "(Liquid)"
        );
    }

    #[test]
    fn totals_count_outcomes_retries_and_mean_latency() {
        let bucket = |state, jobs, attempts, finished, latency| DeliveryBucket {
            start: SystemTime::UNIX_EPOCH,
            campaign_id: None,
            step_id: None,
            template_id: "wt".into(),
            state,
            jobs,
            attempts,
            finished,
            latency_ms_total: latency,
        };
        let mut t = Totals::default();
        t.add(&bucket(JobState::Delivered, 3, 5, 3, 300));
        t.add(&bucket(JobState::Failed, 1, 4, 1, 900));
        t.add(&bucket(JobState::Queued, 2, 0, 0, 0));
        assert_eq!((t.sends, t.delivered, t.failed, t.pending), (6, 3, 1, 2));
        assert_eq!(t.retries, 2 + 3, "attempts beyond each job's first");
        assert_eq!(t.latency_ms(), Some(300));
        assert_eq!(Totals::default().latency_ms(), None);
    }
}
