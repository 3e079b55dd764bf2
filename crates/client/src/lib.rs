//! The Rust SDK for Sigil: ledger RPC, node requests and signature verification.
//!
//! Filled by the ledger and node issues; this crate is a placeholder in the workspace layout.
