//! `sigil`: the one binary of the Sigil network.
//!
//! Errors end the process with a non-zero status and one readable line on stderr.

mod account;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Account(cmd) => account::run(cmd),
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
