//! `trap` (test program): panics on every request, which in wasm is a trap.

use sigil_program::{OracleData, Request, Result};

/// Always panics.
pub fn evaluate(request: &Request, _config: &[u8], _oracle: &OracleData) -> Result {
    // Depend on the input so the panic is not folded into an unconditional trap at build time.
    if std::hint::black_box(request.message.len()) < usize::MAX {
        panic!("the trap program always traps");
    }
    Ok(())
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "always traps")]
    fn panics() {
        let _ = evaluate(&Request::default(), b"", &OracleData::default());
    }
}
