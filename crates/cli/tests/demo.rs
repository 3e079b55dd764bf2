//! `sigil demo --json`, the README's main command, as a user runs it: a real devnet with a real
//! DKG (production parameters; a minute or two). Every field of its one JSON object is checked
//! independently of Sigil's code: the raw transaction is decoded with `alloy` and its sender
//! recovered, the message hash recomputed from the unsigned transaction, and the signature
//! verified with `k256` against the verifying key.

use std::process::Command;

use alloy_consensus::{SignableTransaction as _, TxEnvelope};
use alloy_eips::eip2718::Decodable2718 as _;
use alloy_primitives::{Address, keccak256};
use k256::ecdsa::signature::hazmat::PrehashVerifier as _;

fn hex_field(json: &serde_json::Value, key: &str) -> Vec<u8> {
    let text = json[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {json}"));
    let digits = text
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("{key} is not 0x-hex: {text}"));
    hex::decode(digits).unwrap_or_else(|e| panic!("{key} is not hex ({e}): {text}"))
}

#[test]
fn demo_json_is_one_object_whose_every_field_checks_out() {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["demo", "--json"])
        // From another directory: the demo must not depend on the working directory.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runs sigil demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sigil demo failed:\n{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "stdout must be one JSON object: {stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(json.is_object());
    eprintln!("{}", serde_json::to_string_pretty(&json).expect("json"));

    assert_eq!(json["security_parameters"], "production");
    let chain_id = json["chain_id"].as_u64().expect("chain_id");

    // The verifying key and its Ethereum address.
    let vk_bytes = hex_field(&json, "verifying_key");
    assert_eq!(vk_bytes.len(), 33);
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&vk_bytes).expect("a secp256k1 point");
    let uncompressed = vk.to_encoded_point(false);
    let address = Address::from_slice(&keccak256(&uncompressed.as_bytes()[1..])[12..]);
    let eth_address: Address = json["eth_address"]
        .as_str()
        .expect("eth_address")
        .parse()
        .expect("an address");
    assert_eq!(eth_address, address);

    // The unsigned transaction is an EIP-1559 signing payload; message_hash is its keccak256.
    let unsigned = hex_field(&json, "tx_unsigned");
    assert_eq!(unsigned[0], 0x02, "an EIP-1559 payload");
    let message_hash = hex_field(&json, "message_hash");
    assert_eq!(message_hash, keccak256(&unsigned).as_slice());

    // The signature: 65 bytes, verifies with k256 over the message hash.
    let signature = hex_field(&json, "signature");
    assert_eq!(signature.len(), 65);
    assert!(signature[64] <= 1, "v is the y-parity");
    let sig = k256::ecdsa::Signature::from_slice(&signature[..64]).expect("r, s");
    assert!(sig.normalize_s().is_none(), "low s");
    vk.verify_prehash(&message_hash, &sig)
        .expect("the signature verifies under the verifying key");

    // The signed transaction: decodes, is the same transaction, recovers to the address.
    let raw = hex_field(&json, "tx_signed");
    let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("a raw transaction");
    let TxEnvelope::Eip1559(signed) = envelope else {
        panic!("not an EIP-1559 transaction: {envelope:?}")
    };
    assert_eq!(signed.tx().chain_id, chain_id);
    assert_eq!(signed.tx().encoded_for_signing(), unsigned);
    assert_eq!(signed.signature_hash().as_slice(), message_hash.as_slice());
    assert_eq!(signed.signature().r().to_be_bytes::<32>(), signature[..32]);
    assert_eq!(
        signed.signature().s().to_be_bytes::<32>(),
        signature[32..64]
    );
    assert_eq!(signed.signature().v(), signature[64] == 1);
    assert_eq!(signed.recover_signer().expect("recovers"), eth_address);

    // The forbidden transaction was refused by the program.
    assert_eq!(json["refused_error"], "program_denied", "{json}");
    // A stranger was refused while the key was the owner's alone, and signed for once public.
    assert_eq!(json["stranger_refused_error"], "not_authorised", "{json}");
    assert_ne!(json["stranger_account"], json["user_account"]);
    let public_signature = json["public_signature"].as_str().expect("public_signature");
    assert_eq!(public_signature.len(), 2 + 130, "{json}");

    // Timings and topology.
    for key in ["dkg_seconds", "sign_seconds"] {
        assert!(json[key].as_f64().is_some_and(|s| s > 0.0), "{key}: {json}");
    }
    let topology = &json["topology"];
    assert_eq!(topology["validators"], 5);
    assert_eq!(topology["threshold"], 2);
    assert_eq!(topology["signers"].as_array().expect("signers").len(), 3);
    assert_eq!(topology["relayers"].as_array().expect("relayers").len(), 2);
    assert_eq!(
        topology["committee"].as_array().expect("committee").len(),
        2
    );

    // Ed25519: a Solana transfer message, signed as it is, verified with ed25519-dalek.
    let ed = &json["ed25519"];
    let key: [u8; 32] = hex_field(ed, "verifying_key")
        .try_into()
        .expect("a 32-byte key");
    let signature: [u8; 64] = hex_field(ed, "signature").try_into().expect("64 bytes");
    let message = hex_field(ed, "message");
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .expect("an ed25519 key")
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .expect("ed25519-dalek accepts the demo's signature");
    let tx = hex_field(ed, "tx_signed");
    assert_eq!(
        &tx[1..65],
        &signature[..],
        "the wire transaction carries the signature"
    );
    assert_eq!(&tx[65..], &message[..], "and then the signed message");

    // BIP-340: a 32-byte message under the x-only Taproot output key, verified with k256.
    let bip = &json["bip340"];
    let key = hex_field(bip, "verifying_key");
    assert_eq!(key.len(), 32);
    let message_hash = hex_field(bip, "message_hash");
    assert_eq!(message_hash.len(), 32);
    let signature = hex_field(bip, "signature");
    k256::schnorr::VerifyingKey::from_bytes(&key)
        .expect("an x-only key")
        .verify_raw(
            &message_hash,
            &k256::schnorr::Signature::try_from(signature.as_slice()).expect("64 bytes"),
        )
        .expect("k256 accepts the demo's BIP-340 signature");
    assert!(
        bip["taproot_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("bc1p")),
        "{json}"
    );
}
