//! Threshold protocols (DKG, signing, resharing) as sessions over an abstract message channel.
//!
//! Filled by the threshold-engine issue; this crate is a placeholder in the workspace layout.
