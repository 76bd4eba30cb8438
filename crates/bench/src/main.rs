//! `leadwire-bench`: every benchmark figure next to its ceiling from the same run, and the chaos
//! harness. `cargo run --release -p leadwire-bench -- all` (or one figure's subcommand);
//! `-- chaos --users 10000 --kills 2`. Results go to `target/bench/results.json`, charts to
//! `docs/bench/` and the tables to `BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use leadwire_bench::report::{Results, Section, results_path};
use leadwire_bench::{chaos, e2e, ingest, liquid_render, machine, salesforce, size};

#[derive(Parser)]
#[command(
    name = "leadwire-bench",
    about = "leadwire's benchmarks and chaos harness"
)]
struct Cli {
    /// A smoke run: every figure at a small scale (minutes, not an hour).
    #[arg(long, global = true)]
    quick: bool,
    /// Run on this many cores (the process and the leadwire processes it starts are pinned
    /// with `taskset`; the async runtime gets as many workers). Default: all of them.
    #[arg(long, global = true)]
    cores: Option<usize>,
    /// Print only: leave results.json, the charts and BENCHMARKS.md as they are.
    #[arg(long, global = true)]
    no_write: bool,
    #[command(subcommand)]
    command: Figure,
}

#[derive(Subcommand, Clone)]
enum Figure {
    /// Every figure but chaos: liquid, ingest, e2e, salesforce, size.
    All,
    /// Liquid renders/s against the `liquid` crate.
    Liquid {
        /// Only the cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
    },
    /// /users/track updates/s against the store's own rate.
    Ingest,
    /// Leads/s end to end against raw creates at the emulator; p50/p99 at offered loads.
    E2e {
        /// Offered loads, users per second (open loop).
        #[arg(long, value_delimiter = ',', default_values_t = [100.0, 500.0, 1000.0, 2000.0])]
        loads: Vec<f64>,
    },
    /// Salesforce API calls and token requests per 1,000 leads against a faulty emulator.
    Salesforce {
        #[arg(long)]
        leads: Option<usize>,
    },
    /// Peak RSS and start-up time of the real `leadwire serve` with a million profiles.
    Size {
        #[arg(long)]
        profiles: Option<usize>,
    },
    /// The reliability harness: the seed's flows against a faulty emulator while `leadwire
    /// serve` is killed with SIGKILL and restarted.
    Chaos {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// SIGKILL + restart this many times during the run.
        #[arg(long, default_value_t = 2)]
        kills: usize,
        /// The emulator's fault seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// No token revocations.
        #[arg(long)]
        no_revoke: bool,
        /// Keep the data directory and the server's log here.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Give up after this many minutes (a guard against hanging).
        #[arg(long, default_value_t = 180)]
        limit_minutes: u64,
    },
}

const PINNED: &str = "LEADWIRE_BENCH_PINNED";

/// Re-runs this process under `taskset -c 0-(N-1)` once; returns its exit code when it did.
fn pin(cores: usize) -> anyhow::Result<Option<i32>> {
    if std::env::var_os(PINNED).is_some() {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new("taskset")
        .arg("-c")
        .arg(format!("0-{}", cores.max(1) - 1))
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(PINNED, cores.to_string())
        .status()
        .context("running taskset (util-linux)")?;
    Ok(Some(status.code().unwrap_or(1)))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(cores) = cli.cores
        && let Some(code) = pin(cores)?
    {
        std::process::exit(code);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(cores) = cli.cores {
        runtime.worker_threads(cores.max(1));
    }
    runtime.build()?.block_on(run(cli))
}

/// How a run was made, stamped on each section it measured.
struct Meta {
    command: String,
    cores: Option<usize>,
    quick: bool,
}

impl Meta {
    fn section<T>(&self, figures: T) -> Section<T> {
        Section {
            command: self.command.clone(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cores: self.cores,
            quick: self.quick,
            figures,
        }
    }
}

struct Scale {
    render_seconds: f64,
    ingest_users: u64,
    ingest_seconds: f64,
    e2e_users: usize,
    load_seconds: f64,
    leads: usize,
    profiles: usize,
}

impl Scale {
    fn new(quick: bool) -> Scale {
        if quick {
            Scale {
                render_seconds: 0.1,
                ingest_users: 5_000,
                ingest_seconds: 1.0,
                e2e_users: 1_000,
                load_seconds: 1.0,
                leads: 500,
                profiles: 20_000,
            }
        } else {
            Scale {
                render_seconds: 1.0,
                ingest_users: 100_000,
                ingest_seconds: 5.0,
                e2e_users: 20_000,
                load_seconds: 10.0,
                leads: 10_000,
                profiles: 1_000_000,
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let scale = Scale::new(cli.quick);
    let command = format!(
        "cargo run --release -p leadwire-bench -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let path = results_path();
    // What this run measures; merged into results.json when it ends (another run may have
    // written other sections meanwhile).
    let mut results = Results {
        machine: machine::Machine::current(),
        ..Results::default()
    };
    let m = &results.machine;
    println!(
        "leadwire-bench on {} cores ({}), {:.1} GiB{}",
        m.nproc,
        m.cpu_model,
        m.memory_gib,
        cli.cores
            .map(|c| format!(", pinned to {c} cores"))
            .unwrap_or_default()
    );
    let meta = Meta {
        command,
        cores: cli.cores,
        quick: cli.quick,
    };
    let all = matches!(cli.command, Figure::All);
    let mut failed = Vec::new();
    if all || matches!(cli.command, Figure::Liquid { .. }) {
        println!("\n== Liquid render rate (leadwire vs the liquid crate)");
        liquid_render::print_header();
        let filter = match &cli.command {
            Figure::Liquid { filter } => filter.clone(),
            _ => None,
        };
        match liquid_render::run(scale.render_seconds, filter.as_deref()) {
            Ok(rows) => results.liquid = Some(meta.section(rows)),
            Err(e) => failed.push(format!("liquid: {e:#}")),
        }
    }
    if all || matches!(cli.command, Figure::Ingest) {
        println!("\n== Ingest (/users/track vs the store)");
        match ingest::run(scale.ingest_users, scale.ingest_seconds, 64).await {
            Ok(r) => {
                r.print();
                results.ingest = Some(meta.section(r));
            }
            Err(e) => failed.push(format!("ingest: {e:#}")),
        }
    }
    if all || matches!(cli.command, Figure::E2e { .. }) {
        println!("\n== End to end (leadwire -> emulator vs raw creates) and latency");
        let loads = match &cli.command {
            Figure::E2e { loads } => loads.clone(),
            _ => vec![100.0, 500.0, 1000.0, 2000.0],
        };
        match e2e::run(scale.e2e_users, &loads, scale.load_seconds).await {
            Ok(r) => {
                r.print();
                results.e2e = Some(meta.section(r));
            }
            Err(e) => failed.push(format!("e2e: {e:#}")),
        }
    }
    if all || matches!(cli.command, Figure::Salesforce { .. }) {
        println!("\n== Salesforce API calls and token requests per 1,000 leads");
        let leads = match &cli.command {
            Figure::Salesforce { leads: Some(n) } => *n,
            _ => scale.leads,
        };
        match salesforce::run(leads).await {
            Ok(r) => {
                r.print();
                results.salesforce = Some(meta.section(r));
            }
            Err(e) => failed.push(format!("salesforce: {e:#}")),
        }
    }
    if all || matches!(cli.command, Figure::Size { .. }) {
        println!("\n== Size: the real leadwire serve with many profiles");
        let profiles = match &cli.command {
            Figure::Size { profiles: Some(n) } => *n,
            _ => scale.profiles,
        };
        match size::run(profiles).await {
            Ok(r) => {
                r.print();
                results.size = Some(meta.section(r));
            }
            Err(e) => failed.push(format!("size: {e:#}")),
        }
    }
    if let Figure::Chaos {
        users,
        kills,
        seed,
        no_revoke,
        keep,
        limit_minutes,
    } = &cli.command
    {
        let mut opts = chaos::ChaosOptions::new(*users, *kills)?;
        opts.faults = chaos::default_faults(*seed)?;
        opts.revoke_tokens = !no_revoke;
        opts.keep = keep.clone();
        opts.limit = Duration::from_secs(limit_minutes * 60);
        println!("\n== Chaos: {users} users, {kills} kill -9 restarts");
        let report = chaos::run(&opts).await?;
        report.print();
        results.chaos = Some(meta.section(report));
    }
    if !cli.no_write {
        let results = Results::load(&path).merge(results);
        results.save(&path)?;
        let root = leadwire_bench::workspace_root();
        results.publish(&root.join("docs/bench"), &root.join("BENCHMARKS.md"))?;
        println!(
            "\nwrote {}, {} and docs/bench/",
            path.display(),
            root.join("BENCHMARKS.md").display()
        );
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "some figures could not be measured:\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(())
}
