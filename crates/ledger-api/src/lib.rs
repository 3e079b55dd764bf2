//! What the Sigil ledger speaks, without the ledger itself: its records, transactions and
//! their signatures, session tickets, block hashing and the JSON-RPC API.
//!
//! Clients and nodes depend on this crate; only the ledger replica depends on the state
//! machine and storage (`sigil-ledger`). The RPC trait's client half is behind the `client`
//! feature and its server half behind `server`, as reth splits its `rpc-api` crates.

pub mod committees;
pub mod header;
pub mod programs;
pub mod rpc;
pub mod tx;
pub mod types;
