//! `sigil`: the one binary of the Sigil network.
//!
//! Errors end the process with a non-zero status and one readable line on stderr.

mod account;
mod ledger;
mod program;

use clap::{Parser, Subcommand};

/// Sigil: a programmable threshold-signing network.
#[derive(Parser)]
#[command(name = "sigil", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or inspect a user account (an ed25519 key from a BIP-39 recovery phrase).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Run a solo ledger node (the chain every validator reads).
    Ledger(ledger::LedgerArgs),
    /// Check a program or print its id.
    #[command(subcommand)]
    Program(program::ProgramCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Account(cmd) => account::run(cmd),
        Command::Ledger(args) => ledger::run(args),
        Command::Program(cmd) => program::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes, outermost first.
            let line = err
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs the Prometheus recorder with its HTTP listener on `addr` (call inside a runtime).
fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))
}
