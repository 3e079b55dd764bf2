//! `eth-allowlist`: allows an Ethereum transaction only if it goes to an allow-listed address
//! and moves at most a configured amount of ether.
//!
//! The message must be the transaction's signing payload, the bytes whose keccak-256 the key
//! signs: a legacy transaction (`rlp([nonce, gas_price, gas, to, value, data])`, or with
//! EIP-155's `chain_id, 0, 0`) or an EIP-1559 one (`0x02 ‖ rlp([chain_id, nonce, …])`).
//! Decoding is strict (exact lengths, EIP-155 zeros), because a payload the program reads one
//! way must not hash to a transaction that means another. Other types are denied.
//!
//! Configuration:
//! `{"allow": ["0x<address>", …], "max_value": "1000000000000000000", "chain_id": 1}`;
//! `max_value` is in wei, decimal or `0x`-hex; `chain_id` is optional and, when given, must match
//! (so a legacy transaction without EIP-155 is denied).
//!
//! Only `to`, `value` and the chain are checked; calldata is not interpreted, so allow-listing a
//! contract allows any call to it.

use std::str::FromStr as _;

use alloy_consensus::transaction::RlpEcdsaDecodableTx as _;
use alloy_consensus::{Transaction as _, TxEip1559, TxLegacy};
use alloy_primitives::{Address, TxKind, U256};
use alloy_rlp::{Decodable as _, Header};
use sigil_program::{Error, OracleData, Request, Result, deny, ensure, parse_config};

/// The program's configuration, as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    allow: Vec<String>,
    max_value: String,
    #[serde(default)]
    chain_id: Option<u64>,
}

/// The program's configuration, decoded.
struct Config {
    allow: Vec<Address>,
    max_value: U256,
    chain_id: Option<u64>,
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
        let max_value = U256::from_str(&raw.max_value)
            .map_err(|e| Error::InvalidConfig(format!("max_value {:?}: {e}", raw.max_value)))?;
        Ok(Self {
            allow,
            max_value,
            chain_id: raw.chain_id,
        })
    }
}

/// What the program checks of a transaction.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    to: TxKind,
    value: U256,
    chain_id: Option<u64>,
}

/// EIP-2718 type byte of EIP-1559 transactions.
const EIP1559_TYPE: u8 = 0x02;

/// Decodes a signing payload, strictly.
fn decode(message: &[u8]) -> std::result::Result<Summary, String> {
    let mut buf = message;
    let summary = match message.first() {
        Some(&EIP1559_TYPE) => {
            buf = &buf[1..];
            let tx = TxEip1559::rlp_decode(&mut buf).map_err(|e| format!("EIP-1559: {e}"))?;
            Summary {
                to: tx.to,
                value: tx.value,
                chain_id: Some(tx.chain_id),
            }
        }
        Some(&first) if first >= 0xc0 => decode_legacy(&mut buf)?,
        Some(&first) if first < 0x80 => {
            return Err(format!("transaction type 0x{first:02x} is not supported"));
        }
        _ => return Err("not an RLP-encoded transaction".into()),
    };
    if !buf.is_empty() {
        return Err(format!("{} bytes after the transaction", buf.len()));
    }
    Ok(summary)
}

/// A legacy payload: six fields, or nine with EIP-155's `chain_id, 0, 0`.
fn decode_legacy(buf: &mut &[u8]) -> std::result::Result<Summary, String> {
    let header = Header::decode(buf).map_err(|e| format!("legacy: {e}"))?;
    if !header.list || header.payload_length > buf.len() {
        return Err("legacy: not a complete RLP list".into());
    }
    let (mut fields, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    let tx = TxLegacy::rlp_decode_fields(&mut fields).map_err(|e| format!("legacy: {e}"))?;
    let chain_id = if fields.is_empty() {
        None
    } else {
        let chain_id = u64::decode(&mut fields).map_err(|e| format!("legacy chain id: {e}"))?;
        let r = u8::decode(&mut fields).map_err(|e| format!("legacy EIP-155 field: {e}"))?;
        let s = u8::decode(&mut fields).map_err(|e| format!("legacy EIP-155 field: {e}"))?;
        if r != 0 || s != 0 || !fields.is_empty() {
            return Err("legacy: an EIP-155 payload ends with chain_id, 0, 0".into());
        }
        Some(chain_id)
    };
    Ok(Summary {
        to: tx.to,
        value: tx.value(),
        chain_id,
    })
}

/// Allows the transaction if its recipient is allow-listed and its value at most `max_value`.
pub fn evaluate(request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
    let config = Config::parse(config)?;
    let tx = decode(&request.message)
        .map_err(|e| Error::denied(format!("not a supported Ethereum transaction: {e}")))?;
    let TxKind::Call(to) = tx.to else {
        deny!("contract creation is not allowed");
    };
    ensure!(
        config.allow.contains(&to),
        "recipient {to} is not on the allow-list"
    );
    ensure!(
        tx.value <= config.max_value,
        "value {} wei is more than the maximum {} wei",
        tx.value,
        config.max_value
    );
    if let Some(expected) = config.chain_id {
        ensure!(
            tx.chain_id == Some(expected),
            "transaction is for chain {}, not {expected}",
            tx.chain_id
                .map_or_else(|| "unspecified (no EIP-155)".to_string(), |c| c.to_string())
        );
    }
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::SignableTransaction as _;
    use alloy_primitives::{Bytes, address};

    const ALLOWED: Address = address!("0x3535353535353535353535353535353535353535");
    const OTHER: Address = address!("0x1111111111111111111111111111111111111111");
    const CONFIG: &str = r#"{"allow":["0x3535353535353535353535353535353535353535"],"max_value":"1000000000000000000"}"#;

    fn eth(n: u64) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(18))
    }

    fn eip1559(to: Address, value: U256) -> Vec<u8> {
        let tx = TxEip1559 {
            chain_id: 1,
            nonce: 7,
            gas_limit: 21_000,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let mut out = Vec::new();
        tx.encode_for_signing(&mut out);
        out
    }

    fn legacy(to: TxKind, value: U256, chain_id: Option<u64>) -> Vec<u8> {
        let tx = TxLegacy {
            chain_id,
            nonce: 9,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to,
            value,
            input: Bytes::new(),
        };
        let mut out = Vec::new();
        tx.encode_for_signing(&mut out);
        out
    }

    fn run(message: Vec<u8>, config: &str) -> Result {
        let request = Request {
            message,
            aux_data: vec![],
        };
        evaluate(&request, config.as_bytes(), &OracleData::default())
    }

    #[test]
    fn eip155_vector_decodes() {
        // The signing payload from EIP-155's example.
        let payload = [
            0xec, 0x09, 0x85, 0x04, 0xa8, 0x17, 0xc8, 0x00, 0x82, 0x52, 0x08, 0x94, 0x35, 0x35,
            0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35, 0x35,
            0x35, 0x35, 0x35, 0x35, 0x88, 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00, 0x80,
            0x01, 0x80, 0x80,
        ];
        assert_eq!(
            payload.to_vec(),
            legacy(TxKind::Call(ALLOWED), eth(1), Some(1))
        );
        assert_eq!(
            decode(&payload),
            Ok(Summary {
                to: TxKind::Call(ALLOWED),
                value: eth(1),
                chain_id: Some(1)
            })
        );
    }

    #[test]
    fn allows_listed_recipient_within_value() {
        assert_eq!(run(eip1559(ALLOWED, eth(1)), CONFIG), Ok(()));
        assert_eq!(
            run(legacy(TxKind::Call(ALLOWED), eth(1), Some(1)), CONFIG),
            Ok(())
        );
        assert_eq!(
            run(legacy(TxKind::Call(ALLOWED), eth(1), None), CONFIG),
            Ok(())
        );
    }

    #[test]
    fn denies_other_recipients_and_large_values() {
        assert!(matches!(
            run(eip1559(OTHER, eth(1)), CONFIG),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            run(eip1559(ALLOWED, eth(2)), CONFIG),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            run(legacy(TxKind::Create, U256::ZERO, Some(1)), CONFIG),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn chain_id_is_enforced_when_configured() {
        let config = r#"{"allow":["0x3535353535353535353535353535353535353535"],"max_value":"0x0de0b6b3a7640000","chain_id":5}"#;
        assert!(matches!(
            run(eip1559(ALLOWED, eth(1)), config),
            Err(Error::Denied(_))
        ));
        assert_eq!(
            run(legacy(TxKind::Call(ALLOWED), eth(1), Some(5)), config),
            Ok(())
        );
        assert!(matches!(
            run(legacy(TxKind::Call(ALLOWED), eth(1), None), config),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn malformed_payloads_are_denied() {
        let mut trailing = eip1559(ALLOWED, eth(1));
        trailing.push(0);
        let mut bad_sentinel = legacy(TxKind::Call(ALLOWED), eth(1), Some(1));
        let last = bad_sentinel.len() - 1;
        bad_sentinel[last] = 0x01;
        for message in [
            vec![],
            b"hello".to_vec(),
            vec![0x01, 0xc0],
            trailing,
            bad_sentinel,
        ] {
            assert!(
                matches!(run(message.clone(), CONFIG), Err(Error::Denied(_))),
                "{message:02x?}"
            );
        }
    }

    #[test]
    fn bad_config_is_reported() {
        let message = eip1559(ALLOWED, eth(1));
        for config in [
            r#"{"allow":["0x12"],"max_value":"1"}"#,
            r#"{"allow":[],"max_value":"ten"}"#,
            r#"{"allow":[]}"#,
        ] {
            assert!(matches!(
                run(message.clone(), config),
                Err(Error::InvalidConfig(_))
            ));
        }
    }
}
