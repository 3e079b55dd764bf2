//! The demo's other two schemes: a fresh Ed25519 key signs a Solana transfer that the
//! `solana-allowlist` program allows, and a fresh BIP-340 key signs a 32-byte message (a
//! Taproot sighash's shape); both signatures are checked with independent libraries.

use anyhow::{Context as _, anyhow};
use sha2::Digest as _;
use sigil_client::{LedgerClient, SignRequest, SignResponse};
use sigil_crypto::AccountKeypair;
use sigil_primitives::{
    HashingAlgorithm, KeyScheme, ProgramInstance, ProgramList, Signature, VerifyingKey,
};

use sigil::progress::Step;

/// The Solana allow-list program.
const SOLANA_ALLOWLIST: &[u8] = include_bytes!("../../../programs/dist/solana-allowlist.wasm");
/// The message-size program, the BIP-340 key's policy.
const MESSAGE_SIZE: &[u8] = include_bytes!("../../../programs/dist/message-size.wasm");
/// The one Solana account the Ed25519 key may pay (a well-known devnet faucet address).
const SOLANA_ALLOWED: &str = "9B5XszUGdMaxCZ7uSQhPzdks5ZQSmWxrmzCSvtJ6Ns6g";
/// What the transfer sends: 0.01 SOL.
const LAMPORTS: u64 = 10_000_000;

/// The Ed25519 part of the demo.
pub struct Ed25519Outcome {
    /// The user key.
    pub verifying_key: VerifyingKey,
    /// The key's Solana address.
    pub address: String,
    /// The signed transfer message.
    pub message: Vec<u8>,
    /// The 64-byte signature.
    pub signature: [u8; 64],
    /// The wire transaction.
    pub signed_tx: Vec<u8>,
    /// How long signing took.
    pub seconds: f64,
}

/// The BIP-340 part of the demo.
pub struct Bip340Outcome {
    /// The user key (its x-only Taproot output key is the last 32 bytes).
    pub verifying_key: VerifyingKey,
    /// The key's P2TR address.
    pub address: String,
    /// The 32-byte message signed.
    pub message_hash: [u8; 32],
    /// The 64-byte signature.
    pub signature: [u8; 64],
    /// How long signing took.
    pub seconds: f64,
}

/// Registers an Ed25519 and a BIP-340 key for `user` and has each sign.
pub async fn run(
    client: &LedgerClient,
    user: &AccountKeypair,
) -> anyhow::Result<(Ed25519Outcome, Bip340Outcome)> {
    Ok((ed25519(client, user).await?, bip340(client, user).await?))
}

async fn ed25519(client: &LedgerClient, user: &AccountKeypair) -> anyhow::Result<Ed25519Outcome> {
    let program =
        crate::demo::deploy_program(client, user, "solana-allowlist", SOLANA_ALLOWLIST).await?;
    let config = serde_json::json!({"allow": [SOLANA_ALLOWED], "max_lamports": 1_000_000_000u64});
    let programs = ProgramList::new(vec![ProgramInstance {
        program,
        config: serde_json::to_vec(&config)?,
    }])?;
    let key = crate::register::register(client, user, programs, false, KeyScheme::Ed25519)
        .await?
        .verifying_key;
    let from: [u8; 32] = key
        .key_bytes()
        .try_into()
        .map_err(|_| anyhow!("an Ed25519 key has 32 bytes"))?;
    let transfer = sigil::solana::SolanaTransfer {
        to: SOLANA_ALLOWED.parse()?,
        lamports: LAMPORTS,
        recent_blockhash: solana_hash::Hash::new_from_array(
            sha2::Sha256::digest(b"sigil demo: a recent blockhash").into(),
        ),
    };
    let message = sigil::solana::transfer_message(&from, &transfer);
    let step = Step::start(format!(
        "signing a Solana transfer of 0.01 SOL to {SOLANA_ALLOWED} (ed25519)"
    ));
    let response = sign(client, user, key, HashingAlgorithm::None, message.clone()).await?;
    let signature = schnorr(&response)?;
    let seconds = step.finish("signed").as_secs_f64();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&from)?;
    vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| anyhow!("ed25519-dalek refuses the signature"))?;
    let signed_tx = sigil::solana::signed_transaction(&message, &signature)?;
    sigil::solana::verify_transaction(&signed_tx)?;
    Ok(Ed25519Outcome {
        verifying_key: key,
        address: sigil::addresses::address(&key)?.text,
        message,
        signature,
        signed_tx,
        seconds,
    })
}

async fn bip340(client: &LedgerClient, user: &AccountKeypair) -> anyhow::Result<Bip340Outcome> {
    let program = crate::demo::deploy_program(client, user, "message-size", MESSAGE_SIZE).await?;
    let programs = ProgramList::new(vec![ProgramInstance {
        program,
        config: br#"{"max_length": 32}"#.to_vec(),
    }])?;
    let key = crate::register::register(client, user, programs, false, KeyScheme::Bip340)
        .await?
        .verifying_key;
    let message_hash: [u8; 32] =
        sha2::Sha256::digest(b"sigil demo: a taproot key-path sighash").into();
    let step = Step::start("signing a 32-byte message (bip340)");
    let response = sign(
        client,
        user,
        key,
        HashingAlgorithm::Identity,
        message_hash.to_vec(),
    )
    .await?;
    let signature = schnorr(&response)?;
    let seconds = step.finish("signed").as_secs_f64();
    let vk = k256::schnorr::VerifyingKey::from_bytes(key.key_bytes())
        .map_err(|e| anyhow!("not an x-only key: {e}"))?;
    let sig = k256::schnorr::Signature::try_from(&signature[..])
        .map_err(|e| anyhow!("not a BIP-340 signature: {e}"))?;
    vk.verify_raw(&message_hash, &sig)
        .map_err(|_| anyhow!("k256 refuses the BIP-340 signature"))?;
    Ok(Bip340Outcome {
        verifying_key: key,
        address: sigil::addresses::address(&key)?.text,
        message_hash,
        signature,
        seconds,
    })
}

async fn sign(
    client: &LedgerClient,
    user: &AccountKeypair,
    key: VerifyingKey,
    hashing: HashingAlgorithm,
    message: Vec<u8>,
) -> anyhow::Result<SignResponse> {
    client
        .sign(
            user,
            SignRequest {
                verifying_key: key,
                message,
                hashing,
                aux_data: vec![Vec::new()],
            },
        )
        .await
        .with_context(|| format!("the network did not sign with the {} key", key.scheme()))
}

fn schnorr(response: &SignResponse) -> anyhow::Result<[u8; 64]> {
    match response.signature {
        Signature::Schnorr(bytes) => Ok(bytes),
        Signature::Ecdsa(_) => Err(anyhow!("expected a 64-byte signature")),
    }
}
