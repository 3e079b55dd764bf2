//! `custom-hash`: allows every request and defines the key's prehash as BLAKE3-256.
//!
//! A key that attaches this program can ask for signatures with the hashing algorithm
//! `custom:N` (N its position in the key's program list): the message is hashed with BLAKE3.

use sigil_program::{OracleData, Request, Result};

/// Allows everything; this program exists for its hash.
pub fn evaluate(_request: &Request, _config: &[u8], _oracle: &OracleData) -> Result {
    Ok(())
}

/// BLAKE3 with a 32-byte output.
pub fn custom_hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

sigil_program::export_program!(evaluate, custom_hash = custom_hash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_blake3() {
        // BLAKE3 of the empty input, from the reference test vectors.
        let empty = custom_hash(b"");
        assert_eq!(
            empty[..4],
            [0xaf, 0x13, 0x49, 0xb9],
            "blake3(\"\") starts af1349b9"
        );
        assert_ne!(custom_hash(b"a"), empty);
    }
}
