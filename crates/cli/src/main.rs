//! `sigil`: the one binary of the Sigil network.
//!
//! Errors end the process with a non-zero status and one readable line on stderr.

mod access;
mod account;
mod bench;
mod common;
mod demo;
mod demo_schemes;
mod devnet_cmd;
mod ledger;
mod program;
mod register;
mod sign;
mod status;

use std::io::IsTerminal as _;

use anyhow::Context as _;
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
    /// Run a validator's TSS node: joins the ledger, runs the DKG when chosen, relays and signs.
    Node(sigil_node::NodeArgs),
    /// Check a program, print its id, or store it on the ledger.
    #[command(subcommand)]
    Program(program::ProgramCommand),
    /// Register a new signing key with its programs; prints its verifying key and Ethereum
    /// address.
    Register(register::RegisterArgs),
    /// Delete a key's registration (owner only) and get its deposit back.
    Unregister(register::UnregisterArgs),
    /// Who may request signatures with a key: authorise accounts, make it public, show.
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Ask the network to sign a message or an Ethereum transaction with a registered key.
    Sign(sign::SignArgs),
    /// Show validators, signers, threshold, network key, programs, registrations and offences.
    Status(status::StatusArgs),
    /// Run a local network (a ledger and validators as child processes) until Ctrl-C.
    Devnet(devnet_cmd::DevnetArgs),
    /// Start a local network, sign an Ethereum transaction under a program's policy, show a
    /// refused one, verify the signature, and stop: Sigil in one command.
    Demo(demo::DemoArgs),
    /// Measure a network: signature latency and throughput, registration, programs, DKG and
    /// resharing, the engine alone, and with --baseline the Entropy-style path for comparison.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    exit_with_parent();
    let result = match cli.command {
        Command::Account(cmd) => account::run(cmd),
        Command::Ledger(args) => ledger::run(args),
        Command::Node(args) => sigil_node::run(args),
        Command::Program(cmd) => program::run(cmd),
        Command::Register(args) => register::run(args),
        Command::Unregister(args) => register::unregister(args),
        Command::Access(cmd) => access::run(cmd),
        Command::Sign(args) => sign::run(args),
        Command::Status(args) => status::run(args),
        Command::Devnet(args) => devnet_cmd::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
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

/// With [`sigil::EXIT_WITH_PARENT`] set to the parent's pid, asks the kernel to send SIGTERM (a
/// graceful stop) when the parent dies, and stops at once if it already has.
fn exit_with_parent() {
    #[cfg(target_os = "linux")]
    if let Some(parent) = std::env::var(sigil::EXIT_WITH_PARENT)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    {
        use nix::sys::signal::Signal;
        if let Err(error) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
            tracing::warn!(%error, "cannot ask to be stopped with the parent process");
        }
        // The parent may have died before the request took effect.
        if nix::unistd::getppid() != nix::unistd::Pid::from_raw(parent) {
            eprintln!("error: the parent process {parent} is gone");
            std::process::exit(1);
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level. Colours only on a terminal,
/// so log files (a devnet's) stay plain text.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs `future` to completion on a new multi-threaded runtime.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Installs the Prometheus recorder with its HTTP listener on `addr` (call inside a runtime).
fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))
}
