//! Every example program in `programs/dist`, allowed and denied, through the host runtime.

mod common;

use common::{
    FUEL, ONE_ETH, eip1559_payload, host, legacy_payload, program, rlp_bytes, rlp_list, rlp_uint,
};
use sigil_programs::{ProgramError, Request};

fn request<'a>(message: &'a [u8], aux_data: &'a [u8]) -> Request<'a> {
    Request { message, aux_data }
}

#[test]
fn message_size_allows_short_and_denies_long_messages() {
    let host = host();
    let p = program("message-size");
    let info = host.validate(&p.bytecode).expect("valid");
    assert!(!info.exports_custom_hash);
    let config = br#"{"max_length":8}"#;
    for len in [0, 8] {
        let message = vec![b'x'; len];
        host.evaluate(
            p.id,
            &p.bytecode,
            &request(&message, b""),
            config,
            &[],
            FUEL,
        )
        .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
    }
    let err = host
        .evaluate(p.id, &p.bytecode, &request(&[0; 9], b""), config, &[], FUEL)
        .expect_err("too long");
    assert_eq!(
        err,
        ProgramError::Denied("message is 9 bytes; at most 8 are allowed".into())
    );
    let err = host
        .evaluate(p.id, &p.bytecode, &request(b"", b""), b"{}", &[], FUEL)
        .expect_err("bad config");
    assert!(matches!(err, ProgramError::InvalidConfig(_)), "{err}");
}

const ALLOWED: [u8; 20] = [0x35; 20];
const OTHER: [u8; 20] = [0x11; 20];
const ETH_CONFIG: &[u8] =
    br#"{"allow":["0x3535353535353535353535353535353535353535"],"max_value":"1000000000000000000"}"#;

/// The signing payload of EIP-155's example transaction.
const EIP155_EXAMPLE: &str =
    "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080";

#[test]
fn rlp_helper_matches_eip155_example() {
    let expected = hex::decode(EIP155_EXAMPLE).expect("hex");
    assert_eq!(legacy_payload(Some(1), &ALLOWED, ONE_ETH), expected);
}

#[test]
fn eth_allowlist_allows_listed_recipients_within_value() {
    let host = host();
    let p = program("eth-allowlist");
    let eip155 = hex::decode(EIP155_EXAMPLE).expect("hex");
    for message in [
        eip155,
        legacy_payload(None, &ALLOWED, 1),
        eip1559_payload(1, &ALLOWED, ONE_ETH),
        eip1559_payload(10, &ALLOWED, 0),
    ] {
        host.evaluate(
            p.id,
            &p.bytecode,
            &request(&message, b""),
            ETH_CONFIG,
            &[],
            FUEL,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", hex::encode(&message)));
    }
}

#[test]
fn eth_allowlist_denies_other_recipients_large_values_and_garbage() {
    let host = host();
    let p = program("eth-allowlist");
    let contract_creation = rlp_list(&[
        rlp_uint(0),
        rlp_uint(1),
        rlp_uint(21_000),
        rlp_bytes(&[]),
        rlp_uint(0),
        rlp_bytes(&[0x60, 0x00]),
    ]);
    let cases: [(&str, Vec<u8>); 6] = [
        ("other recipient", eip1559_payload(1, &OTHER, 1)),
        ("too much value", eip1559_payload(1, &ALLOWED, ONE_ETH + 1)),
        (
            "legacy too much",
            legacy_payload(Some(1), &ALLOWED, 2 * ONE_ETH),
        ),
        ("contract creation", contract_creation),
        ("not a transaction", b"hello".to_vec()),
        ("EIP-2930 type", vec![0x01, 0xc0]),
    ];
    for (what, message) in cases {
        let err = host
            .evaluate(
                p.id,
                &p.bytecode,
                &request(&message, b""),
                ETH_CONFIG,
                &[],
                FUEL,
            )
            .expect_err(what);
        assert!(matches!(err, ProgramError::Denied(_)), "{what}: {err}");
    }
    let err = host
        .evaluate(
            p.id,
            &p.bytecode,
            &request(&eip1559_payload(1, &ALLOWED, 1), b""),
            br#"{"allow":["nope"],"max_value":"1"}"#,
            &[],
            FUEL,
        )
        .expect_err("bad config");
    assert!(matches!(err, ProgramError::InvalidConfig(_)), "{err}");
}

#[test]
fn eth_allowlist_checks_chain_id_when_configured() {
    let host = host();
    let p = program("eth-allowlist");
    let config = br#"{"allow":["0x3535353535353535353535353535353535353535"],"max_value":"0x0de0b6b3a7640000","chain_id":1}"#;
    let run = |message: Vec<u8>| {
        host.evaluate(
            p.id,
            &p.bytecode,
            &request(&message, b""),
            config,
            &[],
            FUEL,
        )
    };
    run(eip1559_payload(1, &ALLOWED, 5)).expect("chain 1");
    assert!(matches!(
        run(eip1559_payload(5, &ALLOWED, 5)),
        Err(ProgramError::Denied(_))
    ));
    assert!(matches!(
        run(legacy_payload(None, &ALLOWED, 5)),
        Err(ProgramError::Denied(_))
    ));
}

mod device_key {
    use super::*;
    use ed25519_dalek::Signer as _;
    use k256::ecdsa::signature::Signer as _;

    fn ed() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
    }

    fn k() -> k256::ecdsa::SigningKey {
        k256::ecdsa::SigningKey::from_slice(&[5; 32]).expect("scalar")
    }

    fn config() -> Vec<u8> {
        serde_json::json!({ "devices": [
            { "scheme": "ed25519", "key": format!("0x{}", hex::encode(ed().verifying_key().as_bytes())) },
            { "scheme": "secp256k1", "key": format!("0x{}", hex::encode(k().verifying_key().to_encoded_point(true).as_bytes())) },
        ]})
        .to_string()
        .into_bytes()
    }

    fn aux(signature: &[u8]) -> Vec<u8> {
        serde_json::json!({ "signature": format!("0x{}", hex::encode(signature)) })
            .to_string()
            .into_bytes()
    }

    fn run(message: &[u8], signature: &[u8]) -> Result<(), ProgramError> {
        let p = program("device-key");
        let aux = aux(signature);
        host()
            .evaluate(
                p.id,
                &p.bytecode,
                &request(message, &aux),
                &config(),
                &[],
                FUEL,
            )
            .map(|_| ())
    }

    #[test]
    fn ed25519_device_signature_allows() {
        let message = b"transfer 1 ETH to bob";
        let signature = ed().sign(message).to_bytes();
        run(message, &signature).expect("signed by the ed25519 device");
        let err = run(b"transfer 9 ETH to eve", &signature).expect_err("other message");
        assert!(matches!(err, ProgramError::Denied(_)), "{err}");
    }

    #[test]
    fn secp256k1_device_signature_allows() {
        let message = b"transfer 1 ETH to bob";
        let signature: k256::ecdsa::Signature = k().sign(message);
        run(message, &signature.to_bytes()).expect("signed by the secp256k1 device");
        let err = run(b"transfer 9 ETH to eve", &signature.to_bytes()).expect_err("other");
        assert!(matches!(err, ProgramError::Denied(_)), "{err}");
    }

    #[test]
    fn unknown_device_and_missing_signature_are_refused() {
        let message = b"transfer";
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let err = run(message, &stranger.sign(message).to_bytes()).expect_err("stranger");
        assert!(matches!(err, ProgramError::Denied(_)), "{err}");

        let p = program("device-key");
        let err = host()
            .evaluate(
                p.id,
                &p.bytecode,
                &request(message, b""),
                &config(),
                &[],
                FUEL,
            )
            .expect_err("no aux data");
        assert!(matches!(err, ProgramError::InvalidAuxData(_)), "{err}");
    }
}

#[test]
fn custom_hash_program_hashes_with_blake3() {
    let host = host();
    let p = program("custom-hash");
    assert!(
        host.validate(&p.bytecode)
            .expect("valid")
            .exports_custom_hash
    );
    host.evaluate(
        p.id,
        &p.bytecode,
        &request(b"anything", b""),
        b"",
        &[],
        FUEL,
    )
    .expect("allows everything");
    let digest = host
        .custom_hash(p.id, &p.bytecode, b"", FUEL)
        .expect("hash");
    // BLAKE3 of the empty input (reference test vectors).
    assert_eq!(
        hex::encode(digest),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    let other = host
        .custom_hash(p.id, &p.bytecode, b"hello", FUEL)
        .expect("hash");
    assert_ne!(digest, other);
}

#[test]
fn custom_hash_of_a_program_without_one_is_a_missing_export() {
    let p = program("message-size");
    let err = host()
        .custom_hash(p.id, &p.bytecode, b"data", FUEL)
        .expect_err("no custom-hash");
    assert_eq!(err, ProgramError::MissingExport("custom-hash".into()));
}

#[test]
fn custom_hash_must_return_exactly_32_bytes() {
    let host = host();
    let p = program("echo-hash");
    assert!(
        host.validate(&p.bytecode)
            .expect("valid")
            .exports_custom_hash
    );
    assert_eq!(
        host.custom_hash(p.id, &p.bytecode, &[7; 32], FUEL),
        Ok([7; 32])
    );
    for len in [31, 33, 0] {
        assert_eq!(
            host.custom_hash(p.id, &p.bytecode, &vec![7; len], FUEL),
            Err(ProgramError::BadCustomHashOutput { len }),
            "{len} bytes"
        );
    }
}

#[test]
fn trap_program_traps_with_a_message() {
    let p = program("trap");
    let err = host()
        .evaluate(p.id, &p.bytecode, &request(b"m", b""), b"", &[], FUEL)
        .expect_err("traps");
    let ProgramError::Trap(message) = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.contains("a Rust panic in"), "{message}");
}

mod solana_allowlist {
    use super::*;
    use sigil_programs::{OracleEntry, oracle};
    use solana_message::{Address, Hash, Instruction, Message, VersionedMessage, v0};
    use solana_system_interface::instruction as system;

    const FROM: Address = Address::new_from_array([1; 32]);
    const ALLOWED: Address = Address::new_from_array([7; 32]);
    const OTHER: Address = Address::new_from_array([9; 32]);
    const MAX: u64 = 1_000_000_000;

    /// The legacy message of a 5000-lamport transfer from [1; 32] to [7; 32] with blockhash
    /// [5; 32], written out from the wire layout: header, keys, blockhash, one instruction
    /// (program index 2, accounts [0, 1], data u32 LE 2 ‖ u64 LE 5000).
    const TRANSFER_5000: &str = concat!(
        "01000103",
        "0101010101010101010101010101010101010101010101010101010101010101",
        "0707070707070707070707070707070707070707070707070707070707070707",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0505050505050505050505050505050505050505050505050505050505050505",
        "01020200010c020000008813000000000000",
    );

    fn config() -> Vec<u8> {
        format!(r#"{{"allow":["{ALLOWED}"],"max_lamports":{MAX}}}"#).into_bytes()
    }

    fn blockhash() -> Hash {
        Hash::new_from_array([5; 32])
    }

    fn legacy(instructions: &[Instruction]) -> Vec<u8> {
        let message = Message::new_with_blockhash(instructions, Some(&FROM), &blockhash());
        bincode::serialize(&message).expect("serializes")
    }

    fn v0(instructions: &[Instruction]) -> Vec<u8> {
        let message =
            v0::Message::try_compile(&FROM, instructions, &[], blockhash()).expect("compiles");
        bincode::serialize(&VersionedMessage::V0(message)).expect("serializes")
    }

    fn run(message: &[u8], config: &[u8], oracle: &[OracleEntry]) -> Result<(), ProgramError> {
        let p = program("solana-allowlist");
        host()
            .evaluate(
                p.id,
                &p.bytecode,
                &request(message, b""),
                config,
                oracle,
                FUEL,
            )
            .map(|_| ())
    }

    fn denial(message: &[u8], oracle: &[OracleEntry]) -> String {
        match run(message, &config(), oracle) {
            Err(ProgramError::Denied(text)) => text,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    fn scheme(name: &str) -> Vec<OracleEntry> {
        vec![(oracle::KEY_SCHEME.into(), name.as_bytes().to_vec())]
    }

    #[test]
    fn test_messages_have_the_wire_layout() {
        let expected = hex::decode(TRANSFER_5000).expect("hex");
        assert_eq!(legacy(&[system::transfer(&FROM, &ALLOWED, 5000)]), expected);
    }

    #[test]
    fn allows_listed_transfers_within_the_maximum() {
        for message in [
            hex::decode(TRANSFER_5000).expect("hex"),
            legacy(&[system::transfer(&FROM, &ALLOWED, MAX)]),
            legacy(&[
                system::transfer(&FROM, &ALLOWED, 1),
                system::transfer(&FROM, &ALLOWED, MAX),
            ]),
            v0(&[system::transfer(&FROM, &ALLOWED, 42)]),
        ] {
            for oracle in [vec![], scheme("ed25519")] {
                run(&message, &config(), &oracle)
                    .unwrap_or_else(|e| panic!("{}: {e}", hex::encode(&message)));
            }
        }
    }

    #[test]
    fn denies_other_destinations() {
        let text = denial(&legacy(&[system::transfer(&FROM, &OTHER, 1)]), &[]);
        assert_eq!(
            text,
            format!("instruction 0 transfers to {OTHER}, which is not on the allow-list")
        );
        let text = denial(
            &v0(&[
                system::transfer(&FROM, &ALLOWED, 1),
                system::transfer(&FROM, &OTHER, 1),
            ]),
            &[],
        );
        assert!(text.starts_with("instruction 1 transfers to"), "{text}");
    }

    #[test]
    fn denies_too_many_lamports() {
        let text = denial(&legacy(&[system::transfer(&FROM, &ALLOWED, MAX + 1)]), &[]);
        assert_eq!(
            text,
            format!(
                "instruction 0 transfers {} lamports, more than the maximum {MAX}",
                MAX + 1
            )
        );
    }

    #[test]
    fn denies_other_instructions() {
        // A memo-like instruction of another program, then a transfer.
        let memo = Instruction::new_with_bytes(OTHER, b"hello", vec![]);
        let text = denial(&legacy(&[memo, system::transfer(&FROM, &ALLOWED, 1)]), &[]);
        assert!(text.contains("not the System Program"), "{text}");
        // A System Program instruction that is not a transfer.
        let text = denial(&legacy(&[system::assign(&FROM, &OTHER)]), &[]);
        assert!(text.contains("Assign"), "{text}");
    }

    #[test]
    fn denies_garbage() {
        let mut trailing = hex::decode(TRANSFER_5000).expect("hex");
        trailing.push(0);
        for message in [
            b"".to_vec(),
            b"not a solana message".to_vec(),
            vec![0xff; 64],
            trailing,
        ] {
            let text = denial(&message, &[]);
            assert!(
                text.starts_with("not a Solana transaction message"),
                "{text}"
            );
        }
    }

    #[test]
    fn denies_keys_of_other_schemes() {
        let message = hex::decode(TRANSFER_5000).expect("hex");
        for name in ["ecdsa-secp256k1", "bip340"] {
            let text = denial(&message, &scheme(name));
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn bad_config_is_reported() {
        let message = hex::decode(TRANSFER_5000).expect("hex");
        let err =
            run(&message, br#"{"allow":["0x12"],"max_lamports":1}"#, &[]).expect_err("bad address");
        assert!(matches!(err, ProgramError::InvalidConfig(_)), "{err}");
    }
}
