//! `sigil register`: register a new signing key with its programs.

use std::path::PathBuf;
use std::str::FromStr as _;

use anyhow::{Context as _, anyhow};
use clap::Args;
use sigil_client::LedgerClient;
use sigil_client::types::{Call, Event};
use sigil_crypto::AccountKeypair;
use sigil_primitives::{
    DerivationPath, KeyScheme, ProgramId, ProgramInstance, ProgramList, VerifyingKey,
};

use crate::common::{AccountOpt, LedgerOpt};
use sigil::progress::Step;

/// Options of `sigil register`.
#[derive(Args)]
pub struct RegisterArgs {
    /// A program the key's requests must pass: `ID`, or `ID=CONFIG_FILE` whose bytes (usually
    /// JSON) become the program's configuration. Repeat for up to 5 programs, evaluated in order.
    #[arg(
        long = "program",
        value_name = "ID[=CONFIG_JSON_FILE]",
        required = true
    )]
    programs: Vec<String>,
    /// Let anyone request signatures, the programs being the only gate. Without it only the
    /// owner and the accounts it authorises (`sigil access authorise`) may.
    #[arg(long)]
    public: bool,
    /// The key's signature scheme: `ecdsa-secp256k1` (Ethereum), `ed25519` (Solana) or
    /// `bip340` (Bitcoin Taproot).
    #[arg(long, default_value = "ecdsa-secp256k1", value_name = "SCHEME")]
    scheme: KeyScheme,
    #[command(flatten)]
    ledger: LedgerOpt,
    #[command(flatten)]
    account: AccountOpt,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A registered key, from the ledger's `registered` event.
pub struct Registered {
    /// The new key.
    pub verifying_key: VerifyingKey,
    /// Its path below the network key.
    pub derivation_path: DerivationPath,
    /// The block that included the registration.
    pub block: Option<u64>,
}

/// Runs `sigil register`.
pub fn run(args: RegisterArgs) -> anyhow::Result<()> {
    let account = args.account.keypair()?;
    let programs = args
        .programs
        .iter()
        .map(|p| parse_program(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let programs = ProgramList::new(programs).context("--program")?;
    crate::block_on(async {
        let client = args.ledger.connect().await?;
        let registered = register(&client, &account, programs, args.public, args.scheme).await?;
        let address = sigil::addresses::address(&registered.verifying_key)?;
        if args.json {
            let mut out = serde_json::json!({
                "verifying_key": registered.verifying_key.to_string(),
                "scheme": args.scheme.name(),
                "address": address.text,
                "owner": account.account_id().to_string(),
                "derivation_path": registered.derivation_path.to_string(),
                "public": args.public,
                "block": registered.block,
            });
            if args.scheme == KeyScheme::EcdsaSecp256k1 {
                out["eth_address"] = address.text.clone().into();
            }
            println!("{out}");
        } else {
            println!("verifying key:    {}", registered.verifying_key);
            println!("scheme:           {}", args.scheme);
            println!(
                "{:<18}{}",
                format!("{} address:", address.chain),
                address.text
            );
            println!("owner:            {}", account.account_id());
            println!("derivation path:  {}", registered.derivation_path);
            let access = if args.public {
                "public: anyone may request signatures (programs decide)"
            } else {
                "the owner only (authorise more with `sigil access authorise`)"
            };
            println!("access:           {access}");
        }
        Ok(())
    })
}

/// `ID` or `ID=CONFIG_FILE`.
fn parse_program(text: &str) -> anyhow::Result<ProgramInstance> {
    let (id, file) = match text.split_once('=') {
        Some((id, file)) => (id, Some(PathBuf::from(file))),
        None => (text, None),
    };
    let program = ProgramId::from_str(id.trim())
        .map_err(|e| anyhow!("--program {text:?}: {e} (expected a 0x-hex program id)"))?;
    let config = match file {
        Some(path) => std::fs::read(&path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?,
        None => Vec::new(),
    };
    Ok(ProgramInstance { program, config })
}

/// Submits `register` and waits for the `registered` event.
pub async fn register(
    client: &LedgerClient,
    account: &AccountKeypair,
    programs: ProgramList,
    public: bool,
    scheme: KeyScheme,
) -> anyhow::Result<Registered> {
    let step = Step::start(format!("registering an {scheme} key"));
    let call = Call::Register {
        programs,
        public,
        scheme,
    };
    let result = client
        .submit(account, call, true)
        .await
        .context("register was refused")?;
    let (verifying_key, derivation_path) = result
        .events
        .into_iter()
        .find_map(|e| match e {
            Event::Registered {
                verifying_key,
                derivation_path,
                ..
            } => Some((verifying_key, derivation_path)),
            _ => None,
        })
        .ok_or_else(|| anyhow!("the ledger included the registration but emitted no key"))?;
    step.finish(&format!(
        "key {verifying_key} in block #{}",
        result.included.unwrap_or_default()
    ));
    Ok(Registered {
        verifying_key,
        derivation_path,
        block: result.included,
    })
}

/// Options of `sigil unregister`.
#[derive(Args)]
pub struct UnregisterArgs {
    /// The registered key to delete (its 0x-hex identifier); it can never sign again.
    #[arg(long = "key", value_name = "VERIFYING_KEY")]
    key: VerifyingKey,
    #[command(flatten)]
    ledger: LedgerOpt,
    #[command(flatten)]
    owner: AccountOpt,
}

/// Runs `sigil unregister`: deletes the registration and prints the deposit returned.
pub fn unregister(args: UnregisterArgs) -> anyhow::Result<()> {
    crate::block_on(async {
        let owner = args.owner.keypair()?;
        let client = args.ledger.connect().await?;
        let call = Call::Unregister {
            verifying_key: args.key,
        };
        let result = client
            .submit(&owner, call, true)
            .await
            .context("unregister was refused")?;
        let refund = result
            .events
            .iter()
            .find_map(|e| match e {
                Event::Unregistered { refund, .. } => Some(*refund),
                _ => None,
            })
            .ok_or_else(|| anyhow!("the ledger included unregister but emitted no event"))?;
        println!("unregistered {}; deposit returned: {refund}", args.key);
        Ok(())
    })
}
