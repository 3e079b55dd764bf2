//! Block header and body hashes (`docs/PROTOCOL.md` §4.2).

use sha2::Digest as _;

use crate::tx::encode;
use crate::types::{BlockHeader, Event, SignedTransaction};

/// Hash of a block header.
pub fn header_hash(header: &BlockHeader) -> [u8; 32] {
    sha2::Sha256::new()
        .chain_update(b"sigil/v1/header")
        .chain_update(encode(header))
        .finalize()
        .into()
}

/// Hash of a block body: its transactions and the events they emitted, in order.
pub fn body_hash(transactions: &[SignedTransaction], events: &[Event]) -> [u8; 32] {
    sha2::Sha256::new()
        .chain_update(b"sigil/v1/body")
        .chain_update(encode(&(transactions, events)))
        .finalize()
        .into()
}
