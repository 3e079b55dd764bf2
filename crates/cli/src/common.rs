//! Options shared by the commands that talk to a ledger or sign transactions.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use sigil_client::LedgerClient;
use sigil_crypto::{AccountKeypair, Mnemonic};

/// Where the ledger is.
#[derive(Args, Clone)]
pub struct LedgerOpt {
    /// The ledger's websocket JSON-RPC URL.
    #[arg(
        long = "ledger",
        value_name = "URL",
        default_value = "ws://127.0.0.1:9944"
    )]
    pub url: String,
}

impl LedgerOpt {
    /// Connects to the ledger.
    pub async fn connect(&self) -> anyhow::Result<LedgerClient> {
        LedgerClient::connect(&self.url).await.map_err(|e| {
            anyhow::anyhow!(
                "{e} (is a ledger running there? `sigil devnet` starts a local network)"
            )
        })
    }
}

/// Which account signs: a recovery phrase from a file, or a development identity.
#[derive(Args, Clone)]
pub struct AccountOpt {
    /// File holding the account's BIP-39 recovery phrase (see `sigil account new`).
    #[arg(long, value_name = "FILE", conflicts_with = "dev_account")]
    pub phrase_file: Option<PathBuf>,
    /// Use a development identity (alice, bob, …), for a devnet only: its key is public.
    #[arg(long = "dev-account", value_name = "NAME")]
    pub dev_account: Option<String>,
}

impl AccountOpt {
    /// Loads the account key.
    pub fn keypair(&self) -> anyhow::Result<AccountKeypair> {
        match (&self.phrase_file, &self.dev_account) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read phrase file {}", path.display()))?;
                let mnemonic = Mnemonic::parse(&text)
                    .with_context(|| format!("phrase file {}", path.display()))?;
                Ok(mnemonic.account_keypair())
            }
            (None, Some(name)) => Ok(sigil::devnet::dev_keypair(name)),
            (None, None) => bail!(
                "say which account signs: --phrase-file FILE (see `sigil account new`) or, on a \
                 devnet, --dev-account NAME"
            ),
        }
    }
}
