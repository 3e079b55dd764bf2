//! `sigil account new|show|balance|transfer`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event};
use sigil_crypto::Mnemonic;
use sigil_primitives::AccountId;

use crate::common::{AccountOpt, LedgerOpt};

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
    /// Show an account's balance, the deposits it holds and the nonce of its next transaction.
    Balance {
        /// The account (0x-hex); by default the one of --phrase-file or --dev-account.
        #[arg(long)]
        of: Option<AccountId>,
        #[command(flatten)]
        account: AccountOpt,
        #[command(flatten)]
        ledger: LedgerOpt,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move some of your balance to another account.
    Transfer {
        /// The recipient (0x-hex).
        #[arg(long)]
        to: AccountId,
        /// How much, in the ledger's smallest unit.
        #[arg(long)]
        amount: u64,
        #[command(flatten)]
        account: AccountOpt,
        #[command(flatten)]
        ledger: LedgerOpt,
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
        AccountCommand::Balance {
            of,
            account,
            ledger,
            json,
        } => {
            let who = match of {
                Some(who) => who,
                None => account.keypair()?.account_id(),
            };
            crate::block_on(balance(&ledger, who, json))?;
        }
        AccountCommand::Transfer {
            to,
            amount,
            account,
            ledger,
            json,
        } => {
            let from = account.keypair()?;
            crate::block_on(transfer(&ledger, &from, to, amount, json))?;
        }
    }
    Ok(())
}

/// `sigil account balance`.
async fn balance(ledger: &LedgerOpt, who: AccountId, json: bool) -> anyhow::Result<()> {
    let client = ledger.connect().await?;
    let account = client
        .rpc()
        .account(who)
        .await
        .map_err(sigil_client::ClientError::from)
        .context("reading the account")?;
    if json {
        let out = serde_json::json!({
            "account": who.to_string(),
            "balance": account.balance,
            "reserved": account.reserved,
            "nonce": account.nonce,
        });
        println!("{out}");
    } else {
        println!("account: {who}");
        println!("balance:  {}", account.balance);
        println!(
            "reserved: {} (deposits, returned on removal)",
            account.reserved
        );
        println!("nonce:    {}", account.nonce);
    }
    Ok(())
}

/// `sigil account transfer`.
async fn transfer(
    ledger: &LedgerOpt,
    from: &sigil_crypto::AccountKeypair,
    to: AccountId,
    amount: u64,
    json: bool,
) -> anyhow::Result<()> {
    if amount == 0 {
        bail!("--amount must be positive");
    }
    let client = ledger.connect().await?;
    let result = client
        .submit(from, Call::Transfer { to, amount }, true)
        .await
        .context("the transfer was refused")?;
    let moved = result
        .events
        .iter()
        .any(|e| matches!(e, Event::Transferred { .. }));
    anyhow::ensure!(
        moved,
        "the ledger included the transfer but emitted no transfer event"
    );
    if json {
        let out = serde_json::json!({
            "from": from.account_id().to_string(),
            "to": to.to_string(),
            "amount": amount,
            "block": result.included,
        });
        println!("{out}");
    } else {
        println!(
            "moved {amount} from {} to {to} in block #{}",
            from.account_id(),
            result.included.unwrap_or_default()
        );
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
