//! The guest-side SDK a Sigil program author depends on (compiled to wasm32).
//!
//! Filled by the programs issue; this crate is a placeholder in the workspace layout.
