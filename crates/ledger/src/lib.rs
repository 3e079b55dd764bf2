//! The Sigil ledger: state machine, transactions, blocks, storage, block producer and JSON-RPC server.
//!
//! Filled by the ledger issue; this crate is a placeholder in the workspace layout.
