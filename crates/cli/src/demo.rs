//! `sigil demo`: a whole network signs an Ethereum transaction, on one machine, with no setup.
//!
//! It starts a devnet (5 validators, 3 signers, threshold 2, production parameters, a real DKG)
//! in a temporary directory on free ports, deploys `eth-allowlist`, registers a key for a fresh
//! user that may only pay one address, has the network sign an EIP-1559 transaction to that
//! address, shows that one to another address is refused by the program, verifies the signature
//! independently (k256, and the sender `alloy` recovers from the signed transaction), and stops
//! the devnet.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, U256, address};
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use sigil::devnet::{Devnet, DevnetConfig};
use sigil::eth;
use sigil::progress::Step;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event};
use sigil_client::{ClientError, LedgerClient, SignRequest, SignResponse};
use sigil_crypto::{AccountKeypair, ProgramContents};
use sigil_primitives::{
    AccountId, ErrorCode, HashingAlgorithm, KeyScheme, ProgramInstance, ProgramList, VerifyingKey,
};
use sigil_programs::INTERFACE_VERSION;

/// The `eth-allowlist` program, embedded so the demo runs from any directory.
pub(crate) const ETH_ALLOWLIST: &[u8] = include_bytes!("../../../programs/dist/eth-allowlist.wasm");
/// The chain the demo's transactions are for (Sepolia).
pub(crate) const CHAIN_ID: u64 = 11_155_111;
/// The one address the user's key may pay.
pub(crate) const ALLOWED: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// An address that is not on the allow-list.
const FORBIDDEN: Address = address!("0x000000000000000000000000000000000000dEaD");
/// The most the key may send in one transaction: 1 ether.
const MAX_VALUE_WEI: u128 = 1_000_000_000_000_000_000;
/// What the allowed transaction sends: 0.01 ether.
pub(crate) const VALUE_WEI: u128 = 10_000_000_000_000_000;

/// Options of `sigil demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Print exactly one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Keep the devnet's data and logs in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Everything the demo shows.
struct Outcome {
    network_key: String,
    program_id: String,
    user: AccountKeypair,
    verifying_key: sigil_primitives::VerifyingKey,
    eth_address: Address,
    tx_unsigned: Vec<u8>,
    message_hash: [u8; 32],
    signature: sigil_primitives::Signature,
    signed: eth::SignedTx,
    committee: Vec<String>,
    relayer: String,
    security_parameters: String,
    refused_code: String,
    refused_message: String,
    access: Access,
    ed25519: crate::demo_schemes::Ed25519Outcome,
    bip340: crate::demo_schemes::Bip340Outcome,
    devnet_seconds: f64,
    dkg_seconds: f64,
    sign_seconds: f64,
    topology: serde_json::Value,
}

/// Runs `sigil demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("cannot find the sigil executable")?;
    let (temp, dir) = sigil::devnet::work_dir(args.dir.as_deref(), "sigil-demo-")?;
    let started = Instant::now();
    let config = DevnetConfig {
        jump_start: false,
        ..DevnetConfig::new(binary, dir.clone())
    };
    let result = crate::block_on(async move {
        let step_start = Instant::now();
        let mut devnet = Devnet::start(config).await?;
        let devnet_seconds = step_start.elapsed().as_secs_f64();
        let outcome = demo(&mut devnet, devnet_seconds).await;
        let stop = Step::start("stopping the devnet");
        devnet.stop().await?;
        stop.finish("");
        outcome
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            // Keep the logs of a failed run: they are what explains it.
            if let Some(temp) = temp {
                let kept = temp.keep();
                eprintln!("the devnet's logs are kept in {}", kept.display());
            }
            return Err(e);
        }
    };
    drop(temp);
    print(&outcome, started.elapsed(), args.json);
    Ok(())
}

/// The allowed transaction, and how the network signed it.
struct Allowed {
    tx: TxEip1559,
    /// What was signed: the transaction's signing payload.
    tx_unsigned: Vec<u8>,
    response: SignResponse,
    /// The committee's devnet names.
    committee: Vec<String>,
    /// The relayer's devnet name.
    relayer: String,
    sign_time: Duration,
}

/// Everything the demo does once the devnet runs: DKG, deploy, register, sign, check, refuse.
async fn demo(devnet: &mut Devnet, devnet_seconds: f64) -> anyhow::Result<Outcome> {
    let dkg = devnet.jump_start().await?;
    let devnet = &*devnet;
    let network_key = devnet
        .network_key()
        .ok_or_else(|| anyhow!("the jump start finished without a network key"))?;
    let client = devnet.client();
    let mut topology = topology(devnet).await?;

    // A fresh user, funded by the faucet for fees and deposits, deploys the program and
    // registers a key that may only pay ALLOWED.
    let user = AccountKeypair::generate();
    let step = Step::start("funding a new user from the dev faucet");
    devnet
        .fund(user.account_id(), sigil::devnet::USER_FUNDING)
        .await?;
    step.finish("");
    let program_id = deploy_allowlist(client, &user).await?;
    let programs = allowlist_programs(program_id)?;
    let registered =
        crate::register::register(client, &user, programs, false, KeyScheme::EcdsaSecp256k1)
            .await?;
    let verifying_key = registered.verifying_key;
    let eth_address = eth::address(&verifying_key);

    let allowed = sign_allowed(devnet, &user, verifying_key).await?;
    let security_parameters = security_parameters(devnet, &allowed.response.relayer).await?;
    let (message_hash, signed) = check_allowed(&allowed, verifying_key, eth_address)?;
    let (refused_code, refused_message) = sign_forbidden(client, &user, verifying_key).await?;
    let access = show_access(client, &user, verifying_key).await?;
    let (ed25519, bip340) = crate::demo_schemes::run(client, &user).await?;

    topology["committee"] = allowed.committee.clone().into();
    topology["relayer"] = allowed.relayer.clone().into();
    Ok(Outcome {
        network_key: network_key.to_string(),
        program_id: program_id.to_string(),
        user,
        verifying_key,
        eth_address,
        tx_unsigned: allowed.tx_unsigned,
        message_hash,
        signature: allowed.response.signature,
        signed,
        committee: allowed.committee,
        relayer: allowed.relayer,
        security_parameters,
        refused_code,
        refused_message,
        access,
        ed25519,
        bip340,
        devnet_seconds,
        dkg_seconds: dkg.as_secs_f64(),
        sign_seconds: allowed.sign_time.as_secs_f64(),
        topology,
    })
}

/// The network for the JSON output's `topology`; the committee and relayer are added once
/// they signed.
async fn topology(devnet: &Devnet) -> anyhow::Result<serde_json::Value> {
    let signers = devnet.signers().await?;
    let relayers = devnet.relayers().await?;
    let set = devnet.client().rpc().signer_set().await?;
    Ok(serde_json::json!({
        "ledger": devnet.ledger_url(),
        "validators": devnet.nodes().len(),
        "threshold": set.threshold,
        "signers": describe(devnet, &signers),
        "relayers": describe(devnet, &relayers),
    }))
}

/// The nodes with these accounts, in start order (alice first), with name and endpoint.
fn describe(devnet: &Devnet, accounts: &[AccountId]) -> Vec<serde_json::Value> {
    devnet
        .nodes()
        .iter()
        .filter(|n| accounts.contains(&n.account))
        .map(|n| {
            serde_json::json!({
                "name": n.name,
                "account": n.account.to_string(),
                "endpoint": n.endpoint,
            })
        })
        .collect()
}

/// The devnet name of `account`, or the account itself.
fn node_name(devnet: &Devnet, account: &AccountId) -> String {
    devnet
        .name_of(account)
        .map_or_else(|| account.to_string(), str::to_owned)
}

/// A request to sign the keccak256 of `message` with `verifying_key`.
fn keccak_request(verifying_key: VerifyingKey, message: Vec<u8>) -> SignRequest {
    SignRequest {
        verifying_key,
        message,
        hashing: HashingAlgorithm::Keccak256,
        aux_data: vec![Vec::new()],
    }
}

/// Has the network sign an EIP-1559 transaction to [`ALLOWED`], which the key's program allows.
async fn sign_allowed(
    devnet: &Devnet,
    user: &AccountKeypair,
    verifying_key: VerifyingKey,
) -> anyhow::Result<Allowed> {
    let tx = eth::transfer(CHAIN_ID, 0, ALLOWED, U256::from(VALUE_WEI));
    let tx_unsigned = eth::signing_payload(&tx);
    let step = Step::start(format!(
        "signing an EIP-1559 transaction to {ALLOWED} (allowed)"
    ));
    let response = devnet
        .client()
        .sign(user, keccak_request(verifying_key, tx_unsigned.clone()))
        .await
        .context("the network did not sign the allowed transaction")?;
    let committee: Vec<String> = response
        .committee
        .iter()
        .map(|a| node_name(devnet, a))
        .collect();
    let relayer = node_name(devnet, &response.relayer);
    let sign_time = step.finish(&format!(
        "signed by {} via relayer {relayer}",
        committee.join(", ")
    ));
    Ok(Allowed {
        tx,
        tx_unsigned,
        response,
        committee,
        relayer,
        sign_time,
    })
}

/// The parameter set the engine signs with, as the relayer reports it.
async fn security_parameters(devnet: &Devnet, relayer: &AccountId) -> anyhow::Result<String> {
    let relayer_endpoint = devnet
        .nodes()
        .iter()
        .find(|n| n.account == *relayer)
        .map(|n| n.endpoint.clone())
        .ok_or_else(|| anyhow!("the relayer is not a devnet node"))?;
    Ok(sigil_client::NodeClient::new(&relayer_endpoint)
        .info()
        .await
        .context("reading the relayer's /v1/info")?
        .security_parameters)
}

/// Checks the allowed transaction's signature independently of the client; returns the hash
/// that was signed and the signed transaction.
fn check_allowed(
    allowed: &Allowed,
    verifying_key: VerifyingKey,
    eth_address: Address,
) -> anyhow::Result<([u8; 32], eth::SignedTx)> {
    let response = &allowed.response;
    let message_hash = sigil_crypto::keccak256(&allowed.tx_unsigned);
    if response.message_hash != message_hash {
        bail!("the network signed a different hash than keccak256 of the transaction");
    }
    if response.verifying_key != verifying_key {
        bail!("the network answered for another key");
    }
    verify_k256(&verifying_key, &message_hash, &response.signature)?;
    let signed = eth::complete(allowed.tx.clone(), &response.signature, eth_address)?;
    Ok((message_hash, signed))
}

/// Asks the network to sign a transaction to [`FORBIDDEN`]; returns the code and message of
/// the program's refusal.
async fn sign_forbidden(
    client: &LedgerClient,
    user: &AccountKeypair,
    verifying_key: VerifyingKey,
) -> anyhow::Result<(String, String)> {
    let step = Step::start(format!(
        "signing an EIP-1559 transaction to {FORBIDDEN} (not allowed)"
    ));
    let forbidden = eth::transfer(CHAIN_ID, 1, FORBIDDEN, U256::from(VALUE_WEI));
    let refused = client
        .sign(
            user,
            keccak_request(verifying_key, eth::signing_payload(&forbidden)),
        )
        .await;
    let (refused_code, refused_message) = match refused {
        Err(ClientError::Node { code, message, .. }) => (code, message),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context("the forbidden transaction failed, but not by the program's refusal"));
        }
        Ok(_) => bail!("the network signed a transaction the program should have refused"),
    };
    step.finish(&format!("refused: {refused_code}"));
    Ok((refused_code.to_string(), refused_message))
}

/// Who may use the key, as the demo showed it.
struct Access {
    /// The account that is not the owner.
    stranger: AccountId,
    /// The code its request got while the key was the owner's alone.
    refused_code: String,
    /// The signature it got once the owner made the key public.
    public_signature: sigil_primitives::Signature,
}

/// Shows who may use the key: a stranger's allowed transaction is refused while only the
/// owner may sign; once the owner makes the key public (Entropy's model: the programs are the
/// only gate), the same request is signed.
async fn show_access(
    client: &LedgerClient,
    user: &AccountKeypair,
    verifying_key: VerifyingKey,
) -> anyhow::Result<Access> {
    let stranger = AccountKeypair::generate();
    let tx = eth::transfer(CHAIN_ID, 2, ALLOWED, U256::from(VALUE_WEI));
    let request = || keccak_request(verifying_key, eth::signing_payload(&tx));
    let step = Step::start("a stranger asks for the same kind of transaction");
    let refused_code = match client.sign(&stranger, request()).await {
        Err(ClientError::Node { code, .. }) if code == ErrorCode::NotAuthorised => code,
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context("the stranger was refused, but not as unauthorised")
            );
        }
        Ok(_) => bail!("the network signed for a stranger with an owner-only key"),
    };
    step.finish(&format!("refused: {refused_code}"));
    let step = Step::start("the owner makes the key public; the stranger asks again");
    let open = Call::SetPublic {
        verifying_key,
        public: true,
    };
    client
        .submit(user, open, true)
        .await
        .context("set_public was refused")?;
    let response = client
        .sign(&stranger, request())
        .await
        .context("the network did not sign for the stranger once the key was public")?;
    verify_k256(&verifying_key, &response.message_hash, &response.signature)?;
    step.finish("signed: the program is the only gate of a public key");
    Ok(Access {
        stranger: stranger.account_id(),
        refused_code: refused_code.to_string(),
        public_signature: response.signature,
    })
}

/// Stores `eth-allowlist` on the ledger as `user` unless it is there already; returns its id.
pub(crate) async fn deploy_allowlist(
    client: &sigil_client::LedgerClient,
    user: &AccountKeypair,
) -> anyhow::Result<sigil_primitives::ProgramId> {
    deploy_program(client, user, "eth-allowlist", ETH_ALLOWLIST).await
}

/// Stores the program `name` (its component `bytecode`) as `user` unless it is there already;
/// returns its id.
pub(crate) async fn deploy_program(
    client: &sigil_client::LedgerClient,
    user: &AccountKeypair,
    name: &str,
    bytecode: &[u8],
) -> anyhow::Result<sigil_primitives::ProgramId> {
    let program_id = ProgramContents {
        bytecode,
        config_schema: &[],
        aux_schema: &[],
        oracle_keys: &[],
        version: INTERFACE_VERSION,
    }
    .id();
    if client.rpc().program(program_id).await?.is_some() {
        return Ok(program_id);
    }
    let step = Step::start(format!("deploying {name}"));
    let call = Call::StoreProgram {
        bytecode: bytecode.to_vec(),
        config_schema: Vec::new(),
        aux_schema: Vec::new(),
        oracle_keys: Vec::new(),
        version: INTERFACE_VERSION,
    };
    let result = client
        .submit(user, call, true)
        .await
        .with_context(|| format!("cannot store {name}"))?;
    if !result
        .events
        .iter()
        .any(|e| matches!(e, Event::ProgramStored { program, .. } if *program == program_id))
    {
        bail!("the ledger did not store {name} as {program_id}");
    }
    step.finish(&format!("program {program_id}"));
    Ok(program_id)
}

/// The program list of a key that may pay only [`ALLOWED`], at most 1 ETH, on [`CHAIN_ID`].
pub(crate) fn allowlist_programs(
    program_id: sigil_primitives::ProgramId,
) -> anyhow::Result<ProgramList> {
    let config = serde_json::json!({
        "allow": [ALLOWED.to_checksum(None)],
        "max_value": MAX_VALUE_WEI.to_string(),
        "chain_id": CHAIN_ID,
    });
    Ok(ProgramList::new(vec![ProgramInstance {
        program: program_id,
        config: serde_json::to_vec(&config)?,
    }])?)
}

/// Verifies `r ‖ s` over the prehash with k256 alone.
fn verify_k256(
    key: &sigil_primitives::VerifyingKey,
    prehash: &[u8; 32],
    signature: &sigil_primitives::Signature,
) -> anyhow::Result<()> {
    let signature = signature
        .ecdsa()
        .ok_or_else(|| anyhow!("expected an ECDSA signature"))?;
    use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes())
        .map_err(|e| anyhow!("the verifying key is not a secp256k1 point: {e}"))?;
    let sig = k256::ecdsa::Signature::from_slice(&signature.as_bytes()[..64])
        .map_err(|e| anyhow!("malformed signature: {e}"))?;
    key.verify_prehash(prehash, &sig)
        .map_err(|_| anyhow!("the signature does not verify under the registered key"))
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Prints the outcome: one JSON object with `json`, else a summary for people.
fn print(o: &Outcome, total: Duration, json: bool) {
    if json {
        println!("{}", json_outcome(o, total));
    } else {
        print_summary(o, total);
    }
}

/// The outcome as the one JSON object of `--json`.
fn json_outcome(o: &Outcome, total: Duration) -> serde_json::Value {
    serde_json::json!({
        "verifying_key": o.verifying_key.to_string(),
        "eth_address": o.eth_address.to_checksum(None),
        "chain_id": CHAIN_ID,
        "tx_unsigned": hex0x(&o.tx_unsigned),
        "tx_signed": hex0x(&o.signed.raw),
        "tx_hash": o.signed.hash.to_string(),
        "message_hash": hex0x(&o.message_hash),
        "signature": o.signature.to_string(),
        "refused_error": o.refused_code,
        "refused_message": o.refused_message,
        "stranger_account": o.access.stranger.to_string(),
        "stranger_refused_error": o.access.refused_code,
        "public_signature": o.access.public_signature.to_string(),
        "security_parameters": o.security_parameters,
        "network_key": o.network_key,
        "program_id": o.program_id,
        "user_account": o.user.account_id().to_string(),
        "allowed_to": ALLOWED.to_checksum(None),
        "forbidden_to": FORBIDDEN.to_checksum(None),
        "value_wei": VALUE_WEI.to_string(),
        "devnet_seconds": round(o.devnet_seconds),
        "dkg_seconds": round(o.dkg_seconds),
        "sign_seconds": round(o.sign_seconds),
        "total_seconds": round(total.as_secs_f64()),
        "topology": o.topology,
        "ed25519": {
            "verifying_key": hex0x(o.ed25519.verifying_key.key_bytes()),
            "key_id": o.ed25519.verifying_key.to_string(),
            "solana_address": o.ed25519.address,
            "message": hex0x(&o.ed25519.message),
            "signature": hex0x(&o.ed25519.signature),
            "tx_signed": hex0x(&o.ed25519.signed_tx),
            "sign_seconds": round(o.ed25519.seconds),
        },
        "bip340": {
            "verifying_key": hex0x(o.bip340.verifying_key.key_bytes()),
            "key_id": o.bip340.verifying_key.to_string(),
            "taproot_address": o.bip340.address,
            "message_hash": hex0x(&o.bip340.message_hash),
            "signature": hex0x(&o.bip340.signature),
            "sign_seconds": round(o.bip340.seconds),
        },
    })
}

/// The outcome for people: the network, the timings, the key, both transactions.
fn print_summary(o: &Outcome, total: Duration) {
    let topo = &o.topology;
    let names = |key: &str| -> String {
        topo[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v["name"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!();
    println!(
        "Sigil demo: a threshold network signed an Ethereum transaction, a Solana transfer and \
         a BIP-340 message."
    );
    println!();
    println!(
        "  network       {} validators: signers {} (threshold {}), relayers {}",
        topo["validators"],
        names("signers"),
        topo["threshold"],
        names("relayers")
    );
    println!("  network key   {}", o.network_key);
    println!(
        "  timings       devnet {:.1}s, DKG {:.1}s (production parameters), signing {:.1}s, total {:.1}s",
        o.devnet_seconds,
        o.dkg_seconds,
        o.sign_seconds,
        total.as_secs_f64()
    );
    println!(
        "  program       eth-allowlist {} (allow {}, at most 1 ETH, chain {CHAIN_ID})",
        o.program_id,
        ALLOWED.to_checksum(None)
    );
    println!("  user          {}", o.user.account_id());
    println!("  user key      {}", o.verifying_key);
    println!("  its address   {}", o.eth_address.to_checksum(None));
    println!(
        "  allowed tx    0.01 ETH to {}: signed by {} via relayer {}",
        ALLOWED.to_checksum(None),
        o.committee.join(", "),
        o.relayer
    );
    println!("  message hash  {}", hex0x(&o.message_hash));
    println!("  signature     {}", o.signature);
    println!("  signed tx     {}", hex0x(&o.signed.raw));
    println!("  tx hash       {}", o.signed.hash);
    println!(
        "  verified      k256 accepts the signature; the signed tx's sender is the key's address"
    );
    println!(
        "  forbidden tx  0.01 ETH to {}: refused ({}: {})",
        FORBIDDEN.to_checksum(None),
        o.refused_code,
        o.refused_message
    );
    println!(
        "  access        stranger {}: refused ({}) while the key was the owner's alone; \
         signed once the owner made it public",
        o.access.stranger, o.access.refused_code
    );
    println!(
        "  ed25519 key   {} (Solana {})",
        o.ed25519.verifying_key, o.ed25519.address
    );
    println!(
        "  solana tx     0.01 SOL transfer signed in {:.0} ms; ed25519-dalek and the \
         transaction's own check accept it",
        o.ed25519.seconds * 1000.0
    );
    println!("  signature     {}", hex0x(&o.ed25519.signature));
    println!(
        "  bip340 key    {} (Taproot {})",
        o.bip340.verifying_key, o.bip340.address
    );
    println!(
        "  bip340 sig    over {} in {:.0} ms; k256's BIP-340 verifier accepts it",
        hex0x(&o.bip340.message_hash),
        o.bip340.seconds * 1000.0
    );
    println!("  signature     {}", hex0x(&o.bip340.signature));
}

fn round(seconds: f64) -> f64 {
    (seconds * 100.0).round() / 100.0
}
