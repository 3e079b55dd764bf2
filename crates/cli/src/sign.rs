//! `sigil sign`: ask the network for a signature with a registered key.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use sigil_client::{SignRequest, SignResponse};
use sigil_primitives::{HashingAlgorithm, KeyScheme, VerifyingKey};

use crate::common::{AccountOpt, LedgerOpt};
use sigil::progress::Step;

/// Options of `sigil sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The registered key that should sign (its 33-byte identifier, 0x-hex: `0x02`/`0x03` ECDSA,
    /// `0xed` Ed25519, `0x54` BIP-340).
    #[arg(long = "key", value_name = "VK")]
    key: VerifyingKey,
    #[command(flatten)]
    message: MessageOpt,
    /// How the message becomes what is signed: keccak256, sha256, sha3-256, blake2b-256,
    /// identity (the message is the 32-byte hash), none (Ed25519 only: the message itself) or
    /// custom:N (program N's custom hash). Default: keccak256 for ECDSA keys, none for Ed25519,
    /// sha256 for BIP-340.
    #[arg(long = "hash", value_name = "ALG")]
    hash: Option<HashingAlgorithm>,
    /// Auxiliary data for one program, 0x-hex; repeat once per program of the key, in order.
    /// Without any, every program gets empty auxiliary data.
    #[arg(long = "aux", value_name = "HEX")]
    aux: Vec<String>,
    #[command(flatten)]
    ledger: LedgerOpt,
    #[command(flatten)]
    account: AccountOpt,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What to sign: exactly one of these.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct MessageOpt {
    /// A UTF-8 text message.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// A binary message, 0x-hex.
    #[arg(long, value_name = "HEX")]
    hex: Option<String>,
    /// An EIP-1559 Ethereum transaction as JSON (chain_id, nonce, max_priority_fee_per_gas,
    /// max_fee_per_gas, gas_limit, to, value, input); prints the signed raw transaction.
    #[arg(long, value_name = "JSON_FILE")]
    eth_tx: Option<PathBuf>,
    /// A Solana transfer as JSON (to, lamports, recent_blockhash; base58) from the key's own
    /// address, for an ed25519 key; prints the signed wire transaction.
    #[arg(long, value_name = "JSON_FILE")]
    solana_tx: Option<PathBuf>,
}

/// A transaction the signature completes.
enum Tx {
    Ethereum(alloy_consensus::TxEip1559),
    Solana,
}

/// Decodes hex with or without a `0x` prefix.
pub fn decode_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    hex::decode(digits).map_err(|e| anyhow!("{what} is not hex: {e}"))
}

/// The message to sign and the transaction it belongs to, from the options.
fn message_of(args: &SignArgs) -> anyhow::Result<(Vec<u8>, Option<Tx>)> {
    let m = &args.message;
    Ok(match (&m.message, &m.hex, &m.eth_tx, &m.solana_tx) {
        (Some(text), ..) => (text.as_bytes().to_vec(), None),
        (_, Some(hex), ..) => (decode_hex("--hex", hex)?, None),
        (_, _, Some(path), _) => {
            if args.key.scheme() != KeyScheme::EcdsaSecp256k1 {
                bail!(
                    "--eth-tx needs an ecdsa-secp256k1 key; {} is {}",
                    args.key,
                    args.key.scheme()
                );
            }
            let tx = sigil::eth::read_eip1559_json(path)?;
            (sigil::eth::signing_payload(&tx), Some(Tx::Ethereum(tx)))
        }
        (_, _, _, Some(path)) => {
            let from: [u8; 32] = match args.key.scheme() {
                KeyScheme::Ed25519 => args.key.key_bytes().try_into()?,
                other => bail!("--solana-tx needs an ed25519 key; {} is {other}", args.key),
            };
            let transfer = sigil::solana::read_transfer_json(path)?;
            (
                sigil::solana::transfer_message(&from, &transfer),
                Some(Tx::Solana),
            )
        }
        _ => bail!("give --message, --hex, --eth-tx or --solana-tx"),
    })
}

/// Runs `sigil sign`.
pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let account = args.account.keypair()?;
    let aux_data = args
        .aux
        .iter()
        .map(|a| decode_hex("--aux", a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (message, tx) = message_of(&args)?;
    let hashing = hashing_for(&args, tx.as_ref())?;
    let signed_message = message.clone();
    crate::block_on(async {
        let client = args.ledger.connect().await?;
        let mut aux_data = aux_data;
        if aux_data.is_empty() {
            // One empty entry per program, for keys whose programs take no auxiliary data.
            use sigil_client::rpc::LedgerApiClient as _;
            if let Some(registration) = client.rpc().registration(args.key).await? {
                aux_data = vec![Vec::new(); registration.programs.as_slice().len()];
            }
        }
        let step = Step::start(format!(
            "signing {} bytes with {} ({hashing})",
            message.len(),
            args.key
        ));
        let response: SignResponse = client
            .sign(
                &account,
                SignRequest {
                    verifying_key: args.key,
                    message,
                    hashing,
                    aux_data,
                },
            )
            .await
            .context("the network did not sign")?;
        step.finish(&format!(
            "signed by {} signers (attempt {})",
            response.committee.len(),
            response.attempt
        ));
        let ethereum = match tx {
            Some(Tx::Ethereum(tx)) => Some(sigil::eth::complete(
                tx,
                &response.signature,
                sigil::eth::address(&args.key),
            )?),
            _ => None,
        };
        let solana = match (&args.message.solana_tx, response.signature) {
            (Some(_), sigil_primitives::Signature::Schnorr(signature)) => {
                let raw = sigil::solana::signed_transaction(&signed_message, &signature)?;
                sigil::solana::verify_transaction(&raw)?;
                Some(raw)
            }
            _ => None,
        };
        let outcome = Outcome {
            response,
            hashing,
            ethereum,
            solana,
        };
        if args.json {
            println!("{}", outcome.json());
        } else {
            outcome.print();
        }
        Ok(())
    })
}

/// The hashing asked for, or the key's scheme's default; a transaction fixes it.
fn hashing_for(args: &SignArgs, tx: Option<&Tx>) -> anyhow::Result<HashingAlgorithm> {
    let hashing = args.hash.unwrap_or(match args.key.scheme() {
        KeyScheme::EcdsaSecp256k1 => HashingAlgorithm::Keccak256,
        KeyScheme::Ed25519 => HashingAlgorithm::None,
        KeyScheme::Bip340 => HashingAlgorithm::Sha256,
    });
    match (tx, hashing) {
        (Some(Tx::Ethereum(_)), HashingAlgorithm::Keccak256)
        | (Some(Tx::Solana), HashingAlgorithm::None)
        | (None, _) => Ok(hashing),
        (Some(Tx::Ethereum(_)), _) => {
            bail!("an Ethereum transaction is signed over keccak256; drop --hash {hashing}")
        }
        (Some(Tx::Solana), _) => {
            bail!("a Solana transaction is signed as it is; drop --hash {hashing}")
        }
    }
}

/// What `sign` prints: the network's answer and the transaction it completed, if any.
struct Outcome {
    response: SignResponse,
    hashing: HashingAlgorithm,
    ethereum: Option<sigil::eth::SignedTx>,
    solana: Option<Vec<u8>>,
}

impl Outcome {
    /// The `--json` form.
    fn json(&self) -> serde_json::Value {
        let response = &self.response;
        let mut out = serde_json::json!({
            "request_id": response.request_id.to_string(),
            "verifying_key": response.verifying_key.to_string(),
            "hashing": self.hashing.to_string(),
            "message_hash": format!("0x{}", hex::encode(response.message_hash)),
            "signature": response.signature.to_string(),
            "relayer": response.relayer.to_string(),
            "committee": response.committee.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "attempt": response.attempt,
            "block": response.block,
        });
        if let Some(raw) = &self.solana {
            out["tx_signed"] = format!("0x{}", hex::encode(raw)).into();
        }
        if let Some(signed) = &self.ethereum {
            out["tx_signed"] = format!("0x{}", hex::encode(&signed.raw)).into();
            out["tx_hash"] = signed.hash.to_string().into();
            out["sender"] = signed.sender.to_checksum(None).into();
        }
        out
    }

    /// The human form.
    fn print(&self) {
        let response = &self.response;
        println!("signature:    {}", response.signature);
        println!("message hash: 0x{}", hex::encode(response.message_hash));
        println!("request id:   {}", response.request_id);
        println!("relayer:      {}", response.relayer);
        for (i, member) in response.committee.iter().enumerate() {
            let label = if i == 0 { "committee:" } else { "" };
            println!("{label:<13} {member}");
        }
        if let Some(raw) = &self.solana {
            println!("signed tx:    0x{} (Solana wire format)", hex::encode(raw));
        }
        if let Some(signed) = &self.ethereum {
            println!("signed tx:    0x{}", hex::encode(&signed.raw));
            println!("tx hash:      {}", signed.hash);
            println!(
                "sender:       {} (the key's address)",
                signed.sender.to_checksum(None)
            );
        }
    }
}
