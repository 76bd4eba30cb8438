//! Where the figures go: `target/bench/results.json` (every section from its latest run, with the
//! command and machine), the SVG charts in `docs/bench/`, and `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chaos::{ChaosReport, REFUSED};
use crate::e2e::E2eResult;
use crate::ingest::IngestResult;
use crate::liquid_render::RenderRow;
use crate::machine::Machine;
use crate::salesforce::SalesforceResult;
use crate::size::SizeResult;

/// One section's figures with how they were made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section<T> {
    /// The command line that made them.
    pub command: String,
    /// When (RFC 3339).
    pub at: String,
    /// `--cores`, if the run was pinned.
    pub cores: Option<usize>,
    pub quick: bool,
    pub figures: T,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    pub liquid: Option<Section<Vec<RenderRow>>>,
    pub ingest: Option<Section<IngestResult>>,
    pub e2e: Option<Section<E2eResult>>,
    pub salesforce: Option<Section<SalesforceResult>>,
    pub size: Option<Section<SizeResult>>,
    pub chaos: Option<Section<ChaosReport>>,
}

pub fn results_path() -> PathBuf {
    crate::target_dir().join("bench/results.json")
}

impl Results {
    /// The previous results, so a run of one section keeps the others.
    pub fn load(path: &Path) -> Results {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// These results with every section `newer` measured replaced by its figures.
    pub fn merge(self, newer: Results) -> Results {
        Results {
            machine: newer.machine,
            liquid: newer.liquid.or(self.liquid),
            ingest: newer.ingest.or(self.ingest),
            e2e: newer.e2e.or(self.e2e),
            salesforce: newer.salesforce.or(self.salesforce),
            size: newer.size.or(self.size),
            chaos: newer.chaos.or(self.chaos),
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the charts into `docs_dir` and BENCHMARKS.md at `markdown`.
    pub fn publish(&self, docs_dir: &Path, markdown: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(docs_dir)?;
        if let Some(e2e) = &self.e2e {
            throughput_chart(&e2e.figures, &docs_dir.join("throughput.svg"))?;
            latency_chart(&e2e.figures, &docs_dir.join("latency.svg"))?;
        }
        std::fs::write(markdown, self.markdown())
            .with_context(|| format!("writing {}", markdown.display()))
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `leadwire-bench` (`crates/bench`) from `target/bench/results.json`; do not edit by hand. \
             Every figure is printed next to its ceiling, measured in the same run on the same machine. \
             Nothing here is asserted by a test.\n"
        );
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| cores (`nproc`) | {} |", m.nproc);
        let _ = writeln!(md, "| CPU | {} |", m.cpu_model);
        let _ = writeln!(md, "| memory | {:.1} GiB |", m.memory_gib);
        let _ = writeln!(md, "| OS | {} |\n", m.os);
        let _ = writeln!(md, "## Commands\n");
        let _ = writeln!(
            md,
            "`cargo run --release -p leadwire-bench -- all` runs every figure below but the chaos run; \
             `-- chaos` runs the reliability harness; `--quick` is a smoke run at small scale; \
             `--cores N` pins the run (and the `leadwire` processes it starts) to N cores with `taskset`. \
             The sections, with the exact command and time of the run that made them:\n"
        );
        let sections: [(&str, Option<Meta<'_>>); 6] = [
            ("Liquid render rate", self.liquid.as_ref().map(meta)),
            ("Ingest", self.ingest.as_ref().map(meta)),
            ("End to end and latency", self.e2e.as_ref().map(meta)),
            (
                "Salesforce calls per 1,000 leads",
                self.salesforce.as_ref().map(meta),
            ),
            ("A million profiles", self.size.as_ref().map(meta)),
            ("Chaos", self.chaos.as_ref().map(meta)),
        ];
        let _ = writeln!(md, "| section | command | at | cores |\n|---|---|---|---|");
        for (name, meta) in sections {
            if let Some((command, at, cores, quick)) = meta {
                let cores = cores.map_or_else(|| format!("all ({})", m.nproc), |c| c.to_string());
                let quick = if quick { " (quick)" } else { "" };
                let _ = writeln!(md, "| {name} | `{command}`{quick} | {at} | {cores} |");
            }
        }
        md.push('\n');
        if let Some(s) = &self.liquid {
            liquid_md(&mut md, &s.figures);
        }
        if let Some(s) = &self.ingest {
            ingest_md(&mut md, &s.figures);
        }
        if let Some(s) = &self.e2e {
            e2e_md(&mut md, &s.figures);
        }
        if let Some(s) = &self.salesforce {
            salesforce_md(&mut md, &s.figures);
        }
        if let Some(s) = &self.size {
            size_md(&mut md, &s.figures);
        }
        if let Some(s) = &self.chaos {
            chaos_md(&mut md, &s.figures);
        }
        md
    }
}

/// A section's command, time, cores and whether it was a quick run.
type Meta<'a> = (&'a str, &'a str, Option<usize>, bool);

fn meta<T>(s: &Section<T>) -> Meta<'_> {
    (&s.command, &s.at, s.cores, s.quick)
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

fn liquid_md(md: &mut String, rows: &[RenderRow]) {
    let _ = writeln!(md, "## Liquid render rate\n");
    let _ = writeln!(
        md,
        "Renders per second of one parsed template, leadwire's engine against the `liquid` crate 0.26 (the ceiling: \
         the general-purpose Rust Liquid engine), same template and data, one thread. `–`: the `liquid` crate cannot \
         parse or render it.\n"
    );
    let _ = writeln!(
        md,
        "| case | leadwire/s | liquid 0.26/s | ratio | note |\n|---|---:|---:|---:|---|"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.case,
            opt(r.leadwire_per_s),
            opt(r.liquid_crate_per_s),
            r.ratio(),
            r.note
        );
    }
    md.push('\n');
}

fn ingest_md(md: &mut String, r: &IngestResult) {
    let _ = writeln!(md, "## Ingest\n");
    let _ = writeln!(
        md,
        "Attribute updates per second on a store of {} profiles, 75 per batch, {} connections or tasks, {} s each. \
         The ceiling is the store's own `track` with pre-parsed batches.\n",
        r.users, r.connections, r.seconds
    );
    let _ = writeln!(md, "| path | updates/s |\n|---|---:|");
    let _ = writeln!(
        md,
        "| `Store::track` (the ceiling) | {:.0} |",
        r.store_updates_per_s
    );
    let _ = writeln!(
        md,
        "| `POST /users/track` over HTTP | {:.0} |",
        r.http_updates_per_s
    );
    let _ = writeln!(
        md,
        "| HTTP as a share of the store | {:.0}% |\n",
        100.0 * r.http_updates_per_s / r.store_updates_per_s.max(1e-9)
    );
}

fn e2e_md(md: &mut String, r: &E2eResult) {
    let _ = writeln!(md, "## End to end and latency\n");
    let _ = writeln!(
        md,
        "leadwire started through `App::start` as `leadwire serve` starts it, with `examples/salesforce-sales-cloud` \
         applied (the seed's Create Lead template with its token from connected_content, the New lead campaign, both \
         Canvases), the bundled Salesforce emulator as the org. A lead counts when the emulator has it; latency is from \
         the `/users/track` request to the lead's `CreatedDate`. The ceiling: the same creates straight at the same \
         emulator from a pooled client with one token. Offered loads are open-loop, one user per request.\n"
    );
    let _ = writeln!(
        md,
        "| case | sent | delivered | leads/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| raw creates → emulator (the ceiling) | {} | – | {:.0} | – | – |",
        r.saturation_users, r.raw_creates_per_s
    );
    let _ = writeln!(
        md,
        "| leadwire at saturation (75 users per request, 16 at once) | {} | {} | {:.0} | {:.1} | {:.1} |",
        r.saturation_users,
        r.saturation_delivered,
        r.saturation_leads_per_s,
        r.saturation_p50_ms,
        r.saturation_p99_ms
    );
    for p in &r.loads {
        let _ = writeln!(
            md,
            "| offered {:.0} users/s for {:.0} s | {} | {} | {:.0} | {:.1} | {:.1} |",
            p.offered_per_s, p.seconds, p.sent, p.delivered, p.achieved_per_s, p.p50_ms, p.p99_ms
        );
    }
    let _ = writeln!(
        md,
        "\n![throughput against offered load](docs/bench/throughput.svg)\n\n![p50 and p99 latency against offered load](docs/bench/latency.svg)\n"
    );
    let _ = writeln!(
        md,
        "Charts: [throughput](docs/bench/throughput.svg), [latency](docs/bench/latency.svg).\n"
    );
}

fn salesforce_md(md: &mut String, r: &SalesforceResult) {
    let _ = writeln!(md, "## Salesforce calls per 1,000 leads\n");
    let _ = writeln!(
        md,
        "{} creates of the seed's Create Lead template against the emulator with faults on (10% 500, 5% 429, 3% slow, \
         2% of connections dropped before and 2% after the write, token endpoint included) and every token revoked \
         halfway; 256 at once; retry delays are Braze's schedule compressed (100 ms base). The ceiling: one token, no \
         faults.\n",
        r.leads
    );
    let _ = writeln!(
        md,
        "| way | token requests | API calls | API calls / 1,000 leads | tokens / 1,000 leads | leads | duplicates | lost | leads/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for t in &r.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.0} |",
            t.name,
            t.token_requests,
            t.api_calls,
            t.per_thousand(t.api_calls, r.leads),
            t.per_thousand(t.token_requests, r.leads),
            t.leads,
            t.duplicates,
            t.lost,
            r.leads as f64 / t.seconds.max(1e-9)
        );
    }
    md.push('\n');
    for t in &r.rows {
        for (reason, count) in &t.failures {
            let _ = writeln!(md, "- {}: failed ×{count}: {reason}", t.name);
        }
    }
    md.push('\n');
}

fn size_md(md: &mut String, r: &SizeResult) {
    let _ = writeln!(md, "## A million profiles\n");
    let _ = writeln!(
        md,
        "The real `leadwire serve` binary on a fresh data directory; {} profiles with seven attributes arrive through \
         `POST /users/track` (75 per request, 16 at once). Peak RSS is the process's `VmHWM`; start-up is from \
         spawning `leadwire serve` on the full directory to `/readyz` answering 200.\n",
        r.profiles
    );
    let _ = writeln!(md, "| figure | value | goal |\n|---|---:|---|");
    let _ = writeln!(
        md,
        "| arrival | {:.1} s ({:.0} users/s) | |",
        r.arrival_seconds, r.arrival_users_per_s
    );
    let _ = writeln!(
        md,
        "| peak RSS while they arrived | {:.0} MB | ≤ 200 MB |",
        r.peak_rss_mb
    );
    let _ = writeln!(md, "| data directory | {:.0} MB | |", r.disk_mb);
    let _ = writeln!(
        md,
        "| start-up to `/readyz` | {:.3} s ({:.3} s to listening) | |",
        r.startup_seconds, r.listening_seconds
    );
    let _ = writeln!(
        md,
        "| peak RSS after start-up | {:.0} MB | |\n",
        r.startup_peak_rss_mb
    );
}

fn chaos_md(md: &mut String, r: &ChaosReport) {
    let _ = writeln!(md, "## Chaos\n");
    let _ = writeln!(
        md,
        "The seed's two flows (the New lead campaign, the lead-scoring Canvases) through the real `leadwire serve`, \
         killed with SIGKILL {} time(s) and restarted on the same data directory, against the emulator with faults on \
         ({}) and every token revoked {} time(s). {} users; {:.0} s{}.\n",
        r.kills.len(),
        r.fault_line(),
        r.revocations,
        r.users,
        r.seconds,
        if r.settled {
            ""
        } else {
            ", NOT SETTLED (time limit)"
        }
    );
    let _ = writeln!(
        md,
        "| | expected | made | duplicated / doubled | lost / missing |\n|---|---:|---:|---:|---:|"
    );
    for (what, expected, made, dup, lost) in r.rows() {
        let _ = writeln!(md, "| {what} | {expected} | {made} | {dup} | {lost} |");
    }
    let _ = writeln!(
        md,
        "\nMQL updates not expected: {}. Doubled MQL updates sent again after an answer the emulator dropped \
         (at-least-once): {}. Failures without an activity-log entry to explain them: **{}**.\n",
        r.mql_unexpected, r.mql_doubled_after_dropped_answer, r.unexplained
    );
    for (i, k) in r.kills.iter().enumerate() {
        let _ = writeln!(md, "- {}", k.describe(i));
    }
    let _ = writeln!(
        md,
        "- emulator: {} requests, {} token requests, faults injected: {:?}\n",
        r.emulator_requests, r.token_requests, r.faults_injected
    );
    let _ = writeln!(
        md,
        "Every failure with the activity-log entry that explains it (at most 20 of each kind):\n"
    );
    let mut shown: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in &r.failures {
        let n = shown.entry(f.what.as_str()).or_default();
        *n += 1;
        if *n > 20 {
            continue;
        }
        let explanation = f.explanation.as_deref().unwrap_or("NOTHING IN THE LOG");
        let _ = writeln!(
            md,
            "- `{}` {}: {}. Activity: {}",
            f.user,
            f.what,
            f.detail,
            explanation.replace('|', "\\|").replace('\n', " ")
        );
    }
    for (what, n) in shown {
        if n > 20 {
            let _ = writeln!(md, "- … and {} more `{what}`", n - 20);
        }
    }
    if !r.failures.iter().any(|f| f.what != REFUSED) {
        let _ = writeln!(
            md,
            "- no lead lost or duplicated, no MQL update missing or doubled"
        );
    }
    md.push('\n');
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white chart with its caption and axes, offered load along x.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    (x_max, y_max): (f64, f64),
    y_desc: &str,
) -> anyhow::Result<Chart<'a, 'b>> {
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("offered users/s (open loop)")
        .y_desc(y_desc)
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// A labelled line, with a dot on each point when `dots`.
fn line(
    chart: &mut Chart<'_, '_>,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    label: &str,
    dots: bool,
) -> anyhow::Result<()> {
    if dots {
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(plot_err)?;
    }
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(plot_err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    Ok(())
}

fn finish<'a, 'b>(
    mut chart: Chart<'a, 'b>,
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn x_max(r: &E2eResult) -> f64 {
    r.loads
        .iter()
        .map(|p| p.offered_per_s)
        .fold(100.0, f64::max)
        * 1.1
}

fn throughput_chart(r: &E2eResult, path: &Path) -> anyhow::Result<()> {
    let x_max = x_max(r);
    let y_max = r
        .loads
        .iter()
        .map(|p| p.achieved_per_s)
        .chain([r.raw_creates_per_s, r.saturation_leads_per_s, x_max])
        .fold(0.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    let mut chart = frame(
        &root,
        "leads/s against offered load",
        (x_max, y_max),
        "leads/s delivered",
    )?;
    let achieved = r.loads.iter().map(|p| (p.offered_per_s, p.achieved_per_s));
    line(
        &mut chart,
        achieved.collect(),
        BLUE.to_rgba(),
        "leadwire, delivered",
        true,
    )?;
    line(
        &mut chart,
        vec![(0.0, 0.0), (x_max, x_max)],
        BLACK.mix(0.3),
        "offered",
        false,
    )?;
    let flat = |y: f64| vec![(0.0, y), (x_max, y)];
    line(
        &mut chart,
        flat(r.saturation_leads_per_s),
        GREEN.to_rgba(),
        "leadwire at saturation",
        false,
    )?;
    line(
        &mut chart,
        flat(r.raw_creates_per_s),
        RED.to_rgba(),
        "ceiling: raw creates at the emulator",
        false,
    )?;
    finish(chart, &root)
}

fn latency_chart(r: &E2eResult, path: &Path) -> anyhow::Result<()> {
    let y_max = r.loads.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    let mut chart = frame(
        &root,
        "trigger-to-delivery latency against offered load",
        (x_max(r), y_max),
        "milliseconds",
    )?;
    let p50 = r.loads.iter().map(|p| (p.offered_per_s, p.p50_ms));
    line(&mut chart, p50.collect(), BLUE.to_rgba(), "p50", true)?;
    let p99 = r.loads.iter().map(|p| (p.offered_per_s, p.p99_ms));
    line(&mut chart, p99.collect(), RED.to_rgba(), "p99", true)?;
    finish(chart, &root)
}
