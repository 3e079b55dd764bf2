//! Noise-over-websocket peer channels between Sigil validators.
//!
//! Filled by the transport issue; this crate is a placeholder in the workspace layout.
