//! The Sigil ledger replica: the deterministic state machine, its redb storage, the block
//! sources that order transactions and the JSON-RPC server. The types, transactions and the
//! RPC trait that clients share live in `sigil-ledger-api` and are re-exported here.
pub mod chain;
pub mod node;
pub mod producer;
pub mod replica;
pub mod rpc;
pub mod state;
mod vet;

pub use sigil_ledger_api::{header, programs, tx, types};
