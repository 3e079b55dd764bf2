//! Helpers shared by the integration tests: the committed example programs and a tiny RLP
//! encoder (independent of the `alloy` code inside `eth-allowlist`).

#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use sigil_crypto::ProgramContents;
use sigil_primitives::ProgramId;
use sigil_programs::{HostConfig, INTERFACE_VERSION, ProgramHost};

/// A budget that every example program stays far below on small inputs.
pub const FUEL: u64 = 50_000_000;

/// `programs/dist` in the repository.
pub fn dist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programs/dist")
}

/// A committed example program and its id.
pub struct Program {
    pub id: ProgramId,
    pub bytecode: Vec<u8>,
}

pub fn program(name: &str) -> Program {
    let path = dist_dir().join(format!("{name}.wasm"));
    let bytecode = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run programs/build.sh)",
            path.display()
        )
    });
    let id = ProgramContents {
        bytecode: &bytecode,
        config_schema: b"",
        aux_schema: b"",
        oracle_keys: &[],
        version: INTERFACE_VERSION,
    }
    .id();
    Program { id, bytecode }
}

pub fn host() -> ProgramHost {
    ProgramHost::new(HostConfig::default()).expect("engine")
}

/// RLP of a byte string.
pub fn rlp_bytes(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() == 1 && bytes[0] < 0x80 {
        return bytes.to_vec();
    }
    let mut out = length_prefix(0x80, bytes.len());
    out.extend_from_slice(bytes);
    out
}

/// RLP of an unsigned integer: minimal big-endian bytes, zero as the empty string.
pub fn rlp_uint(value: u128) -> Vec<u8> {
    rlp_bytes(trim(&value.to_be_bytes()))
}

/// RLP of a list of already-encoded items.
pub fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = items.concat();
    let mut out = length_prefix(0xc0, payload.len());
    out.extend_from_slice(&payload);
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn length_prefix(offset: u8, len: usize) -> Vec<u8> {
    if len < 56 {
        return vec![offset + u8::try_from(len).expect("small")];
    }
    let len_bytes = trim(&len.to_be_bytes()).to_vec();
    let mut out = vec![offset + 55 + u8::try_from(len_bytes.len()).expect("small")];
    out.extend_from_slice(&len_bytes);
    out
}

pub const ONE_ETH: u128 = 1_000_000_000_000_000_000;

/// An EIP-1559 signing payload: `0x02 ‖ rlp([chain_id, nonce, tip, max_fee, gas, to, value,
/// data, access_list])`.
pub fn eip1559_payload(chain_id: u64, to: &[u8; 20], value: u128) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend(rlp_list(&[
        rlp_uint(chain_id.into()),
        rlp_uint(7),
        rlp_uint(1_000_000_000),
        rlp_uint(30_000_000_000),
        rlp_uint(21_000),
        rlp_bytes(to),
        rlp_uint(value),
        rlp_bytes(&[]),
        rlp_list(&[]),
    ]));
    out
}

/// A legacy signing payload, with EIP-155's `chain_id, 0, 0` when `chain_id` is given.
pub fn legacy_payload(chain_id: Option<u64>, to: &[u8; 20], value: u128) -> Vec<u8> {
    let mut fields = vec![
        rlp_uint(9),
        rlp_uint(20_000_000_000),
        rlp_uint(21_000),
        rlp_bytes(to),
        rlp_uint(value),
        rlp_bytes(&[]),
    ];
    if let Some(chain_id) = chain_id {
        fields.extend([rlp_uint(chain_id.into()), rlp_uint(0), rlp_uint(0)]);
    }
    rlp_list(&fields)
}
