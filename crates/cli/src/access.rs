//! `sigil access`: who may request signatures with a key. By default only its owner; the owner
//! may authorise more accounts, or make the key public so that its programs are the only gate.

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event};
use sigil_primitives::{AccountId, VerifyingKey};

use crate::common::{AccountOpt, LedgerOpt};

/// `sigil access` subcommands.
#[derive(Subcommand)]
pub enum AccessCommand {
    /// Let an account request signatures with a key you own.
    Authorise(ChangeArgs),
    /// Withdraw an account's authorisation.
    Deauthorise(ChangeArgs),
    /// Let anyone request signatures with a key you own (its programs the only gate), or with
    /// `--off` only you and the accounts you authorised again.
    Public(PublicArgs),
    /// Show who may request signatures with a key.
    Show(ShowArgs),
}

/// The key and the account of `authorise` and `deauthorise`.
#[derive(Args)]
pub struct ChangeArgs {
    /// The registered key (0x-hex compressed secp256k1).
    #[arg(long = "key", value_name = "VERIFYING_KEY")]
    key: VerifyingKey,
    /// The account to authorise or deauthorise (0x-hex).
    #[arg(long = "for", value_name = "ACCOUNT")]
    account: AccountId,
    #[command(flatten)]
    ledger: LedgerOpt,
    #[command(flatten)]
    owner: AccountOpt,
}

/// Options of `sigil access public`.
#[derive(Args)]
pub struct PublicArgs {
    /// The registered key (0x-hex compressed secp256k1).
    #[arg(long = "key", value_name = "VERIFYING_KEY")]
    key: VerifyingKey,
    /// Close the key again to its owner and authorised accounts.
    #[arg(long)]
    off: bool,
    #[command(flatten)]
    ledger: LedgerOpt,
    #[command(flatten)]
    owner: AccountOpt,
}

/// Options of `sigil access show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The registered key (0x-hex compressed secp256k1).
    #[arg(long = "key", value_name = "VERIFYING_KEY")]
    key: VerifyingKey,
    #[command(flatten)]
    ledger: LedgerOpt,
}

/// Runs `sigil access`.
pub fn run(command: AccessCommand) -> anyhow::Result<()> {
    crate::block_on(async {
        match command {
            AccessCommand::Authorise(args) => {
                let call = Call::Authorise {
                    verifying_key: args.key,
                    account: args.account,
                };
                change(&args.ledger, &args.owner, call).await
            }
            AccessCommand::Deauthorise(args) => {
                let call = Call::Deauthorise {
                    verifying_key: args.key,
                    account: args.account,
                };
                change(&args.ledger, &args.owner, call).await
            }
            AccessCommand::Public(args) => {
                let call = Call::SetPublic {
                    verifying_key: args.key,
                    public: !args.off,
                };
                change(&args.ledger, &args.owner, call).await
            }
            AccessCommand::Show(args) => show(&args).await,
        }
    })
}

/// Submits an access change as the owner and prints who may use the key now.
async fn change(ledger: &LedgerOpt, owner: &AccountOpt, call: Call) -> anyhow::Result<()> {
    let owner = owner.keypair()?;
    let client = ledger.connect().await?;
    let result = client
        .submit(&owner, call, true)
        .await
        .context("the access change was refused")?;
    let (public, authorised) = result
        .events
        .into_iter()
        .find_map(|e| match e {
            Event::AccessChanged {
                public, authorised, ..
            } => Some((public, authorised)),
            _ => None,
        })
        .ok_or_else(|| anyhow!("the ledger included the change but emitted no access event"))?;
    print_access(&owner.account_id(), public, &authorised);
    Ok(())
}

async fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let client = args.ledger.connect().await?;
    let registration = client
        .rpc()
        .registration(args.key)
        .await
        .context("reading the registration")?
        .ok_or_else(|| anyhow!("{} is not a registered key", args.key))?;
    print_access(
        &registration.owner,
        registration.public,
        &registration.authorised,
    );
    Ok(())
}

fn print_access(owner: &AccountId, public: bool, authorised: &[AccountId]) {
    println!("owner:      {owner}");
    if public {
        println!("public:     yes: anyone may request signatures; the programs decide");
    } else {
        println!("public:     no: only the owner and the accounts below");
    }
    if authorised.is_empty() {
        println!("authorised: none");
    }
    for (i, account) in authorised.iter().enumerate() {
        let label = if i == 0 { "authorised:" } else { "" };
        println!("{label:<11} {account}");
    }
}
