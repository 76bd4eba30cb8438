//! `leadwire`: the one user-facing binary. Thin: it parses arguments and calls the library crates.

mod demo_cmd;
mod liquid_cmd;
mod server_cmd;
mod webhooks_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "leadwire",
    version,
    about = "Turn what users do in your product into Salesforce leads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render and check webhook templates (Braze Liquid).
    #[command(subcommand)]
    Templates(liquid_cmd::TemplatesCommand),
    /// Liquid engine tools (conformance runner).
    #[command(subcommand)]
    Liquid(liquid_cmd::LiquidCommand),
    /// Run the worked example: leadwire with the bundled Salesforce emulator and the seed's
    /// "new lead" campaign; sends a few users and prints what reached Salesforce.
    Demo(demo_cmd::DemoArgs),
    /// Load webhook templates, credentials and campaigns from a directory of YAML files.
    Apply(demo_cmd::ApplyArgs),
    /// Serve the Braze-compatible REST API on the embedded store.
    Serve(Box<server_cmd::ServeArgs>),
    /// Manage REST API keys.
    #[command(subcommand)]
    ApiKeys(server_cmd::ApiKeysCommand),
    /// Manage the web dashboard's users (`/dashboard`).
    #[command(subcommand)]
    DashboardUsers(server_cmd::DashboardUsersCommand),
    /// Import and manage users.
    #[command(subcommand)]
    Users(server_cmd::UsersCommand),
    /// The message activity log (webhook aborts, errors, retries, failures, test sends).
    #[command(subcommand)]
    Activity(webhooks_cmd::ActivityCommand),
    /// Run the local Salesforce Sales Cloud emulator.
    SalesforceEmulator(Box<leadwire_salesforce_emulator::cli::EmulatorArgs>),
}

/// Prints an error as `error: what: why` and exits 1. anyhow's own `Debug` report would add a
/// Rust backtrace whenever `RUST_BACKTRACE` is set, which tells a user nothing about their input.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Templates(cmd) => liquid_cmd::run_templates(cmd),
        Command::Liquid(cmd) => liquid_cmd::run_liquid(cmd),
        Command::Demo(args) => demo_cmd::demo(args),
        Command::Apply(args) => demo_cmd::apply(args),
        Command::Serve(args) => server_cmd::serve(*args),
        Command::ApiKeys(cmd) => server_cmd::api_keys(cmd),
        Command::DashboardUsers(cmd) => server_cmd::dashboard_users(cmd),
        Command::Users(cmd) => server_cmd::users(cmd),
        Command::Activity(cmd) => webhooks_cmd::activity(cmd),
        Command::SalesforceEmulator(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(leadwire_salesforce_emulator::cli::run(*args))
        }
    }
}
