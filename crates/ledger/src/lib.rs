//! The Sigil ledger.
pub mod chain;
pub mod node;
pub mod producer;
pub mod rpc;
pub mod state;
pub mod tx;
pub mod types;
