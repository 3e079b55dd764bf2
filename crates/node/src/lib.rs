//! The Sigil TSS node: HTTP API, relayer and signer flows, ledger watcher.
//!
//! Filled by the node issue; this crate is a placeholder in the workspace layout.
