//! `sigil account new|show`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use sigil_crypto::Mnemonic;

/// Account subcommands.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Generate a new account from a fresh 24-word recovery phrase.
    New {
        /// Write the phrase to this file (created with mode 0600, never overwritten) instead of
        /// printing it.
        #[arg(long)]
        phrase_file: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the account id of a recovery phrase stored in a file.
    Show {
        /// File holding the BIP-39 phrase.
        #[arg(long)]
        phrase_file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an account subcommand.
pub fn run(cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::New { phrase_file, json } => {
            let mnemonic = Mnemonic::generate();
            let account = mnemonic.account_keypair().account_id();
            match &phrase_file {
                Some(path) => write_secret_file(path, mnemonic.phrase().as_bytes())?,
                None => eprintln!(
                    "Keep this recovery phrase secret; it is the only way to use the account."
                ),
            }
            if json {
                let mut out = serde_json::json!({ "account": account.to_string() });
                match &phrase_file {
                    Some(path) => out["phrase_file"] = path.display().to_string().into(),
                    None => out["phrase"] = mnemonic.phrase().as_str().into(),
                }
                println!("{out}");
            } else {
                println!("account: {account}");
                match &phrase_file {
                    Some(path) => println!("phrase written to {}", path.display()),
                    None => println!("phrase:  {}", mnemonic.phrase().as_str()),
                }
            }
        }
        AccountCommand::Show { phrase_file, json } => {
            let text = std::fs::read_to_string(&phrase_file)
                .with_context(|| format!("cannot read phrase file {}", phrase_file.display()))?;
            let mnemonic = Mnemonic::parse(&text)
                .with_context(|| format!("phrase file {}", phrase_file.display()))?;
            let account = mnemonic.account_keypair().account_id();
            if json {
                println!("{}", serde_json::json!({ "account": account.to_string() }));
            } else {
                println!("account: {account}");
            }
        }
    }
    Ok(())
}

/// Creates `path` with owner-only permissions and writes `contents`; refuses to overwrite.
fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a secret",
            path.display()
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
