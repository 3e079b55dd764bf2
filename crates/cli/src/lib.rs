//! The library half of the `sigil` command: what its integration tests and other tools reuse.
//!
//! - [`devnet`]: a local network of real `sigil ledger` and `sigil node` processes;
//! - [`eth`]: EIP-1559 transactions signed by Sigil (built with `alloy`);
//! - [`ports`]: loopback ports reserved for processes started later;
//! - [`progress`]: progress output on stderr;
//! - [`solana`]: Solana transfer messages and the transactions around their signatures.

pub mod addresses;
pub mod devnet;
pub mod eth;
pub mod ports;
pub mod progress;
pub mod solana;

/// Environment variable that makes a `sigil` process stop when its parent, whose pid it holds,
/// dies: the devnet sets it on its children so none outlives it, even when killed with SIGKILL.
pub const EXIT_WITH_PARENT: &str = "SIGIL_EXIT_WITH_PARENT";
