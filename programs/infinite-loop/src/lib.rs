//! `infinite-loop` (test program): never returns, so the host must stop it by fuel.

use sigil_program::{OracleData, Request, Result};

/// Spins forever.
pub fn evaluate(_request: &Request, _config: &[u8], _oracle: &OracleData) -> Result {
    let mut counter = 0u64;
    loop {
        // `black_box` keeps the loop from being proven side-effect free.
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

sigil_program::export_program!(evaluate);
