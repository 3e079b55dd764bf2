//! The WebAssembly host that validates, caches, meters and evaluates Sigil programs.
//!
//! Filled by the programs issue; this crate is a placeholder in the workspace layout.
