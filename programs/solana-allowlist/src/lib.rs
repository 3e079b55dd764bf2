//! `solana-allowlist`: allows a Solana transaction only if all it does is move lamports, with
//! the System Program, to allow-listed accounts, at most a configured amount per transfer.
//!
//! The message must be the transaction's *message*, the bytes an Ed25519 key signs: a legacy
//! message or a v0 (versioned) one, decoded with the Solana SDK's own types (`solana-message`,
//! whose serde form read with `bincode` 1 is the wire format) and checked with its `sanitize`.
//! Decoding is strict: trailing bytes are refused, so the bytes the program reads are exactly
//! the bytes signed. v1 messages, off-chain messages and anything else are denied.
//!
//! Every instruction must be a System Program `Transfer` (`TransferWithSeed` and every other
//! instruction, of any program, is denied, including Compute Budget ones). Each transfer's
//! destination must be on the allow-list and its amount at most `max_lamports`; the limit is per
//! transfer, not a total. A v0 destination loaded from an address lookup table cannot be checked
//! without the ledger, so it is denied.
//!
//! Configuration: `{"allow": ["<base58 address>", …], "max_lamports": 1000000000}`.
//!
//! When the host says which scheme the request's key uses (oracle key `key-scheme`), it must be
//! `ed25519`, the only scheme Solana transactions are signed with.

use std::str::FromStr as _;

use bincode::Options as _;
use sigil_program::{Error, OracleData, Request, Result, deny, ensure, parse_config};
use solana_address::Address;
use solana_message::VersionedMessage;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_system_interface::instruction::SystemInstruction;
use solana_system_interface::program::ID as SYSTEM_PROGRAM_ID;

/// The program's configuration, as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    allow: Vec<String>,
    max_lamports: u64,
}

/// The program's configuration, decoded.
struct Config {
    allow: Vec<Address>,
    max_lamports: u64,
}

impl Config {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let raw: RawConfig = parse_config(bytes)?;
        let allow = raw
            .allow
            .iter()
            .map(|a| {
                Address::from_str(a)
                    .map_err(|e| Error::InvalidConfig(format!("allow-list entry {a:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            allow,
            max_lamports: raw.max_lamports,
        })
    }
}

/// The only key scheme that signs Solana transactions.
const ED25519: &str = "ed25519";

/// bincode as Solana uses it (fixed-width integers), but refusing trailing bytes, and never
/// reading (so never allocating for) more than the input holds.
fn bincode_options(input: &[u8]) -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(input.len() as u64)
}

/// Decodes and sanitizes a legacy or v0 message.
fn decode_message(bytes: &[u8]) -> std::result::Result<VersionedMessage, String> {
    let message: VersionedMessage = bincode_options(bytes)
        .deserialize(bytes)
        .map_err(|e| e.to_string())?;
    // The SDK's serde form of v1 is not v1's wire format (SIMD-0385), so it is not read as one.
    if matches!(message, VersionedMessage::V1(_)) {
        return Err("v1 messages are not supported".into());
    }
    message.sanitize().map_err(|e| e.to_string())?;
    Ok(message)
}

/// The destination and amount of instruction `index`, if it is a System Program `Transfer`.
fn transfer(
    index: usize,
    instruction: &CompiledInstruction,
    keys: &[Address],
) -> Result<(Address, u64)> {
    // Program ids are always static keys; an index past them is malformed.
    let Some(program) = keys.get(usize::from(instruction.program_id_index)) else {
        deny!("instruction {index} calls a program that is not among the message's keys");
    };
    ensure!(
        *program == SYSTEM_PROGRAM_ID,
        "instruction {index} calls program {program}, not the System Program"
    );
    let data = &instruction.data;
    let decoded: SystemInstruction = bincode_options(data).deserialize(data).map_err(|e| {
        Error::denied(format!(
            "instruction {index} is not a valid System Program instruction: {e}"
        ))
    })?;
    let SystemInstruction::Transfer { lamports } = decoded else {
        deny!("instruction {index} is a System Program {decoded:?}, not a Transfer");
    };
    // Transfer's accounts are [from, to].
    let [_, to] = instruction.accounts[..] else {
        deny!(
            "instruction {index} is a transfer with {} accounts, not 2",
            instruction.accounts.len()
        );
    };
    let Some(to) = keys.get(usize::from(to)) else {
        deny!(
            "instruction {index} transfers to an account loaded from an address lookup table, \
             which cannot be checked"
        );
    };
    Ok((*to, lamports))
}

/// Allows the message if it only makes System Program transfers to allow-listed accounts of at
/// most `max_lamports` each.
pub fn evaluate(request: &Request, config: &[u8], oracle: &OracleData) -> Result {
    if oracle.get(OracleData::KEY_SCHEME).is_some() {
        let scheme = oracle.key_scheme().unwrap_or("(not text)");
        ensure!(
            scheme == ED25519,
            "the key's scheme is {scheme}; Solana transactions are signed with {ED25519}"
        );
    }
    let config = Config::parse(config)?;
    let message = decode_message(&request.message)
        .map_err(|e| Error::denied(format!("not a Solana transaction message: {e}")))?;
    let instructions = message.instructions();
    ensure!(!instructions.is_empty(), "the message has no instructions");
    let keys = message.static_account_keys();
    for (index, instruction) in instructions.iter().enumerate() {
        let (to, lamports) = transfer(index, instruction, keys)?;
        ensure!(
            config.allow.contains(&to),
            "instruction {index} transfers to {to}, which is not on the allow-list"
        );
        ensure!(
            lamports <= config.max_lamports,
            "instruction {index} transfers {lamports} lamports, more than the maximum {}",
            config.max_lamports
        );
    }
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;
    use solana_message::v0;
    use solana_message::{AddressLookupTableAccount, Hash, Message};
    use solana_system_interface::instruction as system;

    const FROM: Address = Address::new_from_array([1; 32]);
    const ALLOWED: Address = Address::new_from_array([7; 32]);
    const OTHER: Address = Address::new_from_array([9; 32]);
    const SOL: u64 = 1_000_000_000;

    fn config() -> String {
        format!(r#"{{"allow":["{ALLOWED}"],"max_lamports":{SOL}}}"#)
    }

    fn legacy(instructions: &[solana_message::Instruction]) -> Vec<u8> {
        let message =
            Message::new_with_blockhash(instructions, Some(&FROM), &Hash::new_from_array([5; 32]));
        bincode::serialize(&message).expect("serializes")
    }

    fn run_with(message: Vec<u8>, config: &str, oracle: &OracleData) -> Result {
        let request = Request {
            message,
            aux_data: vec![],
        };
        evaluate(&request, config.as_bytes(), oracle)
    }

    fn run(message: Vec<u8>) -> Result {
        run_with(message, &config(), &OracleData::default())
    }

    fn denied(result: Result) -> String {
        match result {
            Err(Error::Denied(text)) => text,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn legacy_transfer_layout() {
        let message = legacy(&[system::transfer(&FROM, &ALLOWED, 5000)]);
        // header, 3 keys (from, to, system program), blockhash, 1 instruction: program 2,
        // accounts [0, 1], data = u32 LE 2 (Transfer) ‖ u64 LE 5000.
        let mut expected = vec![1, 0, 1, 3];
        expected.extend([1; 32]);
        expected.extend([7; 32]);
        expected.extend([0; 32]);
        expected.extend([5; 32]);
        expected.extend([1, 2, 2, 0, 1, 12, 2, 0, 0, 0, 0x88, 0x13, 0, 0, 0, 0, 0, 0]);
        assert_eq!(message, expected);
    }

    #[test]
    fn allows_listed_transfers_within_the_limit() {
        assert_eq!(
            run(legacy(&[system::transfer(&FROM, &ALLOWED, SOL)])),
            Ok(())
        );
        assert_eq!(
            run(legacy(&[
                system::transfer(&FROM, &ALLOWED, 1),
                system::transfer(&FROM, &ALLOWED, 2),
            ])),
            Ok(())
        );
        let ed25519 = OracleData::new(vec![("key-scheme".into(), b"ed25519".to_vec())]);
        assert_eq!(
            run_with(
                legacy(&[system::transfer(&FROM, &ALLOWED, 1)]),
                &config(),
                &ed25519
            ),
            Ok(())
        );
    }

    #[test]
    fn v0_messages_are_read() {
        let blockhash = Hash::new_from_array([5; 32]);
        let ix = system::transfer(&FROM, &ALLOWED, 3);
        let message =
            v0::Message::try_compile(&FROM, &[ix], &[], blockhash.clone()).expect("compiles");
        let bytes = bincode::serialize(&VersionedMessage::V0(message)).expect("serializes");
        assert_eq!(bytes[0], 0x80);
        assert_eq!(run(bytes), Ok(()));

        // The destination comes from a lookup table: it cannot be checked.
        let table = AddressLookupTableAccount {
            key: Address::new_from_array([3; 32]),
            addresses: vec![ALLOWED],
        };
        let ix = system::transfer(&FROM, &ALLOWED, 3);
        let message =
            v0::Message::try_compile(&FROM, &[ix], &[table], blockhash).expect("compiles");
        assert_eq!(message.address_table_lookups.len(), 1);
        let bytes = bincode::serialize(&VersionedMessage::V0(message)).expect("serializes");
        assert!(denied(run(bytes)).contains("lookup table"));
    }

    #[test]
    fn denies_other_destinations_amounts_and_instructions() {
        assert!(denied(run(legacy(&[system::transfer(&FROM, &OTHER, 1)]))).contains("allow-list"));
        assert!(
            denied(run(legacy(&[system::transfer(&FROM, &ALLOWED, SOL + 1)]))).contains("maximum")
        );
        // One bad transfer among good ones.
        assert!(
            denied(run(legacy(&[
                system::transfer(&FROM, &ALLOWED, 1),
                system::transfer(&FROM, &OTHER, 1),
            ])))
            .contains("instruction 1")
        );
        let assign = system::assign(&FROM, &OTHER);
        assert!(denied(run(legacy(&[assign]))).contains("Assign"));
        let with_seed =
            system::transfer_with_seed(&FROM, &OTHER, "seed".into(), &OTHER, &ALLOWED, 1);
        assert!(denied(run(legacy(&[with_seed]))).contains("TransferWithSeed"));
        let memo = solana_message::Instruction::new_with_bytes(OTHER, b"hi", vec![]);
        assert!(denied(run(legacy(&[memo]))).contains("not the System Program"));
        assert!(denied(run(legacy(&[]))).contains("no instructions"));
    }

    #[test]
    fn malformed_messages_are_denied() {
        let good = legacy(&[system::transfer(&FROM, &ALLOWED, 1)]);
        let mut trailing = good.clone();
        trailing.push(0);
        let mut truncated = good.clone();
        truncated.pop();
        let mut bad_program_index = good.clone();
        // The instruction's program id index (the byte after the instruction count).
        let at = 4 + 3 * 32 + 32 + 1;
        bad_program_index[at] = 9;
        // Transfer data with a trailing byte: u32 tag 2, u64 amount, then one more.
        let mut long_data = good[..at + 4].to_vec();
        long_data.extend([13, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        for (message, expected) in [
            (vec![], "end of file"),
            (b"hello, world".to_vec(), "end of file"),
            (trailing, "bytes remaining"),
            (truncated, "end of file"),
            (bad_program_index, "index out of bounds"),
            (long_data, "not a valid System Program instruction"),
            (vec![0xff; 40], "off-chain"),
        ] {
            let text = denied(run(message));
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn other_key_schemes_are_denied() {
        let message = legacy(&[system::transfer(&FROM, &ALLOWED, 1)]);
        for scheme in [&b"ecdsa-secp256k1"[..], b"bip340", b"\xff"] {
            let oracle = OracleData::new(vec![("key-scheme".into(), scheme.to_vec())]);
            assert!(denied(run_with(message.clone(), &config(), &oracle)).contains("scheme"));
        }
    }

    #[test]
    fn bad_config_is_reported() {
        let message = legacy(&[system::transfer(&FROM, &ALLOWED, 1)]);
        for config in [
            r#"{"allow":["0x12"],"max_lamports":1}"#,
            r#"{"allow":["1111"],"max_lamports":1}"#,
            r#"{"allow":[],"max_lamports":-1}"#,
            r#"{"allow":[]}"#,
        ] {
            assert!(matches!(
                run_with(message.clone(), config, &OracleData::default()),
                Err(Error::InvalidConfig(_))
            ));
        }
    }
}
