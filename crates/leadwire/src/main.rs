//! `leadwire`: the one user-facing binary. Thin: it parses arguments and calls the library crates.

mod liquid_cmd;

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
    /// Run the local Salesforce Sales Cloud emulator.
    SalesforceEmulator(Box<leadwire_salesforce_emulator::cli::EmulatorArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Templates(cmd) => liquid_cmd::run_templates(cmd),
        Command::Liquid(cmd) => liquid_cmd::run_liquid(cmd),
        Command::SalesforceEmulator(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(leadwire_salesforce_emulator::cli::run(*args))
        }
    }
}
