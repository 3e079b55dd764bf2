//! Solana transfers signed by Sigil: the message an Ed25519 key signs, and the wire
//! transaction around its signature.
//!
//! A transfer is read from JSON ([`read_transfer_json`]), turned into the legacy message of one
//! System Program transfer ([`transfer_message`]); those bytes are what Sigil signs. The
//! signature then goes into the wire transaction ([`signed_transaction`]), which
//! [`verify_transaction`] decodes and checks.
//!
//! The layout comes from the Solana SDK's own crates (`solana-message`, `solana-transaction`,
//! `solana-system-interface`, `solana-pubkey`, `solana-hash`), whose serde form encoded with
//! `bincode` 1 is the wire format. Their cost was measured before adopting them, because CI's
//! cold build is near its budget: with `serde` and without `solana-transaction`'s `verify`
//! feature they add 4–9 s to a cold build of this workspace on 2 cores (measured on top of the
//! crates the workspace already builds, such as `serde_derive` and `syn`). `verify` would add
//! about 35 s more (it brings `wincode`'s derive macros and a second Ed25519 implementation),
//! so signatures are checked with `ed25519-dalek`, already a dependency, exactly as Solana
//! checks them: strictly, over the serialized message, one per required signer.

use std::path::Path;
use std::str::FromStr as _;

use anyhow::{Context as _, anyhow, bail, ensure};
use bincode::Options as _;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_system_interface::instruction as system_instruction;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::{Message, Signature, VersionedMessage};

/// A transfer of lamports to `to`, valid while `recent_blockhash` is recent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolanaTransfer {
    /// The account credited.
    pub to: Pubkey,
    /// The amount, in lamports (10⁻⁹ SOL).
    pub lamports: u64,
    /// A recent blockhash of the cluster; a transaction expires about 150 blocks after it.
    pub recent_blockhash: Hash,
}

/// A transfer as written in its JSON file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferJson {
    to: String,
    lamports: u64,
    recent_blockhash: String,
}

/// Reads a transfer from a JSON file:
/// `{"to": "<base58 address>", "lamports": 5000, "recent_blockhash": "<base58 32 bytes>"}`.
pub fn read_transfer_json(path: &Path) -> anyhow::Result<SolanaTransfer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the transfer file {}", path.display()))?;
    let json: TransferJson = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Solana transfer: expected \
             {{\"to\": \"<base58 address>\", \"lamports\": <u64>, \"recent_blockhash\": \"<base58>\"}}",
            path.display()
        )
    })?;
    let to = Pubkey::from_str(&json.to)
        .map_err(|e| anyhow!("`to` {:?} is not a Solana address: {e}", json.to))?;
    let recent_blockhash = Hash::from_str(&json.recent_blockhash).map_err(|e| {
        anyhow!(
            "`recent_blockhash` {:?} is not a base58 32-byte hash: {e}",
            json.recent_blockhash
        )
    })?;
    Ok(SolanaTransfer {
        to,
        lamports: json.lamports,
        recent_blockhash,
    })
}

/// bincode as Solana encodes (fixed-width integers), refusing trailing bytes and never reading
/// more than the input holds.
fn bincode_options(input: &[u8]) -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(input.len() as u64)
}

/// The serialized legacy message of one System Program transfer from `from` (also the fee
/// payer and only signer): the bytes its key signs.
pub fn transfer_message(from: &[u8; 32], transfer: &SolanaTransfer) -> Vec<u8> {
    let from = Pubkey::new_from_array(*from);
    let instruction = system_instruction::transfer(&from, &transfer.to, transfer.lamports);
    let message =
        Message::new_with_blockhash(&[instruction], Some(&from), &transfer.recent_blockhash);
    // Serializing into a Vec cannot fail: no I/O, no size limit, no unsupported type.
    bincode::serialize(&message).expect("a message serializes")
}

/// Decodes a legacy or v0 message, strictly: it must re-encode to exactly `bytes`, so the
/// transaction carries the bytes that were signed.
fn decode_message(bytes: &[u8]) -> anyhow::Result<VersionedMessage> {
    let message: VersionedMessage = bincode_options(bytes)
        .deserialize(bytes)
        .context("not a Solana transaction message")?;
    // The SDK's serde form of v1 is not v1's wire format (SIMD-0385).
    ensure!(
        !matches!(message, VersionedMessage::V1(_)),
        "v1 messages are not supported"
    );
    message
        .sanitize()
        .map_err(|e| anyhow!("malformed Solana message: {e}"))?;
    ensure!(
        bincode::serialize(&message)? == bytes,
        "the message is not in canonical form"
    );
    Ok(message)
}

/// The wire transaction of a message with one signer: `compact-u16 1 ‖ signature ‖ message`.
pub fn signed_transaction(message: &[u8], signature: &[u8; 64]) -> anyhow::Result<Vec<u8>> {
    let message = decode_message(message)?;
    let signers = message.header().num_required_signatures;
    ensure!(
        signers == 1,
        "the message needs {signers} signatures; only single-signer messages are supported"
    );
    let transaction = VersionedTransaction {
        signatures: vec![Signature::from(*signature)],
        message,
    };
    Ok(bincode::serialize(&transaction)?)
}

/// Decodes a wire transaction and verifies every signature against its signer's key, as a
/// validator would (strict Ed25519 over the serialized message).
pub fn verify_transaction(tx_bytes: &[u8]) -> anyhow::Result<()> {
    let transaction: VersionedTransaction = bincode_options(tx_bytes)
        .deserialize(tx_bytes)
        .context("not a Solana transaction")?;
    ensure!(
        !matches!(transaction.message, VersionedMessage::V1(_)),
        "v1 transactions are not supported"
    );
    // Checks the message and that there is exactly one signature per required signer.
    transaction
        .sanitize()
        .map_err(|e| anyhow!("malformed Solana transaction: {e}"))?;
    let message = bincode::serialize(&transaction.message)?;
    let signers = transaction.message.static_account_keys();
    for (index, (signature, signer)) in transaction.signatures.iter().zip(signers).enumerate() {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&signer.to_bytes())
            .map_err(|_| anyhow!("signer {index} ({signer}) is not an Ed25519 public key"))?;
        let signature = ed25519_dalek::Signature::from_bytes(
            signature
                .as_ref()
                .try_into()
                .context("a 64-byte signature")?,
        );
        if key.verify_strict(&message, &signature).is_err() {
            bail!("signature {index} is not a valid signature of the message by {signer}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    /// A 42-lamport transfer between two known addresses with the all-zero blockhash, and its
    /// legacy message as published in Trust Wallet's wallet-core Solana tests
    /// (`TransactionTests.cpp`, `TransferMessageData`): an implementation independent of the
    /// Solana SDK.
    const PUBLISHED_FROM: &str = "6eoo7i1khGhVm8tLBMAdq4ax2FxkKP4G7mCcfHyr3STN";
    const PUBLISHED_TO: &str = "56B334QvCDMSirsmtEJGfanZm8GqeQarrSjdAb2MbeNM";
    const PUBLISHED_MESSAGE: &str = concat!(
        "0100010353f9d600fe925083bb399907ea648d23a6a081fc7e9059202fd725f7edd281dd3cc1ff9ba3c7a876c8",
        "082df2f8a36ea9342ce3819dd4b6fa72d4a18e04a5363a00000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000010202",
        "00010c020000002a00000000000000",
    );

    /// A signed transfer from the same tests (`TransferSerializeTransaction`): sender, recipient,
    /// signature and the whole wire transaction, base58.
    const SIGNED_FROM: &str = "41a5jYky56M6EWDsFfLaZRxoRtgAJSRWxJnxaJNJELn5";
    const SIGNED_TO: &str = "4iSnyfDKaejniaPc2pBBckwQqV3mDS93go15NdxWJq2y";
    const SIGNED_SIGNATURE: &str =
        "46SRiQGvtPb1iivDfnuC3dW1GzXkfQPTjdUyvFqF2sdPvFrsfx94fys2xpNKR6UiAj7RgKWdJG6mEfe85up6i1JT";
    const SIGNED_TRANSACTION: &str = concat!(
        "5SiHeYyuDgjHxWHbYXSSPfmYc8s7EYZ8bdZ7j15z9Bj1yyZA3Bia9uWkRdXVkuqifXiiQj6fVKy",
        "7UkCL5kvv6iKrfjWTZ3szMVssTFxgJ7p8UJ7Mgg2uhHejVJvbzbiHHLbNVuJFs6kBxddnJ2yjWU",
        "Cp2dYJgjmphfA8hRHHdPH4Rv6znxEhD8q9XY4nByRPL7oMCo32oxeJn5rGbUZdCkapRUXG7zU9w",
        "hv6KjBktcUQZRCahhowGJT4UM5yCNCsUcqY9yan7UxqPyJgaFPuq4duqWJtQ39bTQ36X",
    );

    fn address(text: &str) -> [u8; 32] {
        Pubkey::from_str(text).expect("address").to_bytes()
    }

    fn transfer_to(to: &str, lamports: u64) -> SolanaTransfer {
        SolanaTransfer {
            to: Pubkey::from_str(to).expect("address"),
            lamports,
            recent_blockhash: Hash::default(),
        }
    }

    #[test]
    fn message_matches_a_published_transfer() {
        let message = transfer_message(&address(PUBLISHED_FROM), &transfer_to(PUBLISHED_TO, 42));
        assert_eq!(hex::encode(message), PUBLISHED_MESSAGE);
    }

    #[test]
    fn message_has_the_documented_layout() {
        let from = [1; 32];
        let transfer = SolanaTransfer {
            to: Pubkey::new_from_array([7; 32]),
            lamports: 5000,
            recent_blockhash: Hash::new_from_array([5; 32]),
        };
        // Header (1 signer, 0 read-only signed, 1 read-only unsigned), 3 keys (from, to, the
        // System Program's 32 zero bytes), blockhash, 1 instruction: program index 2, accounts
        // [0, 1], 12 bytes of data: u32 LE 2 (Transfer) ‖ u64 LE 5000.
        let mut expected = vec![1, 0, 1, 3];
        expected.extend([1; 32]);
        expected.extend([7; 32]);
        expected.extend([0; 32]);
        expected.extend([5; 32]);
        expected.extend([1, 2, 2, 0, 1, 12, 2, 0, 0, 0]);
        expected.extend(5000u64.to_le_bytes());
        assert_eq!(transfer_message(&from, &transfer), expected);
    }

    #[test]
    fn published_signed_transfer_is_rebuilt_and_verifies() {
        let message = transfer_message(&address(SIGNED_FROM), &transfer_to(SIGNED_TO, 42));
        let signature: [u8; 64] = bs58::decode(SIGNED_SIGNATURE)
            .into_vec()
            .expect("base58")
            .try_into()
            .expect("64 bytes");
        let transaction = signed_transaction(&message, &signature).expect("one signer");
        assert_eq!(bs58::encode(&transaction).into_string(), SIGNED_TRANSACTION);
        verify_transaction(&transaction).expect("the published signature verifies");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let from = key.verifying_key().to_bytes();
        let transfer = SolanaTransfer {
            to: Pubkey::new_from_array([7; 32]),
            lamports: 1_000_000,
            recent_blockhash: Hash::new_from_array([3; 32]),
        };
        let message = transfer_message(&from, &transfer);
        let signature = key.sign(&message).to_bytes();
        let transaction = signed_transaction(&message, &signature).expect("signed");
        // compact-u16 1 ‖ signature ‖ message.
        assert_eq!(transaction[0], 1);
        assert_eq!(transaction[1..65], signature);
        assert_eq!(transaction[65..], message);
        verify_transaction(&transaction).expect("verifies");

        // A signature by another key, or over another message, does not.
        let other = ed25519_dalek::SigningKey::from_bytes(&[43; 32]);
        let forged = signed_transaction(&message, &other.sign(&message).to_bytes()).expect("tx");
        let err = verify_transaction(&forged).expect_err("wrong key");
        assert!(err.to_string().contains("not a valid signature"), "{err}");
        let mut tampered = transaction.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        verify_transaction(&tampered).expect_err("tampered amount");
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let message = transfer_message(&[1; 32], &transfer_to(PUBLISHED_TO, 1));
        let mut trailing = message.clone();
        trailing.push(0);
        signed_transaction(&trailing, &[0; 64]).expect_err("trailing bytes");
        signed_transaction(b"garbage", &[0; 64]).expect_err("garbage");
        let transaction = signed_transaction(&message, &[0; 64]).expect("tx");
        let mut trailing = transaction.clone();
        trailing.push(0);
        verify_transaction(&trailing).expect_err("trailing bytes");
        // No signature at all for a message that needs one.
        let mut unsigned = vec![0];
        unsigned.extend(&message);
        let err = verify_transaction(&unsigned).expect_err("unsigned");
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn transfer_json_is_read_with_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("transfer.json");
        let blockhash = bs58::encode([9; 32]).into_string();
        std::fs::write(
            &path,
            format!(
                r#"{{"to": "{PUBLISHED_TO}", "lamports": 5000, "recent_blockhash": "{blockhash}"}}"#
            ),
        )
        .expect("write");
        let transfer = read_transfer_json(&path).expect("reads");
        assert_eq!(
            transfer,
            SolanaTransfer {
                to: Pubkey::from_str(PUBLISHED_TO).expect("address"),
                lamports: 5000,
                recent_blockhash: Hash::new_from_array([9; 32]),
            }
        );

        let cases = [
            (
                r#"{"to": "0xabc", "lamports": 1, "recent_blockhash": "11111111111111111111111111111111"}"#,
                "`to`",
            ),
            (
                &format!(r#"{{"to": "{PUBLISHED_TO}", "lamports": 1, "recent_blockhash": "abc"}}"#),
                "`recent_blockhash`",
            ),
            (
                &format!(
                    r#"{{"to": "{PUBLISHED_TO}", "lamports": -1, "recent_blockhash": "{blockhash}"}}"#
                ),
                "not a Solana transfer",
            ),
            (r#"{"to": "x"}"#, "not a Solana transfer"),
        ];
        for (json, expected) in cases {
            std::fs::write(&path, json).expect("write");
            let err = read_transfer_json(&path).expect_err(json);
            assert!(format!("{err:#}").contains(expected), "{json}: {err:#}");
        }
        let err = read_transfer_json(&dir.path().join("missing.json")).expect_err("missing");
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
