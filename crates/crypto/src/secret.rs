//! Byte strings that hold secrets: wiped on drop, never shown by `Debug`.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (a key share, a seed, a password). Zeroized when dropped; `Debug` prints only the
/// length.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Borrows the secret. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

/// Fills a fresh array with bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS RNG failing is unrecoverable and rare; nothing secure can proceed without it.
    getrandom::fill(&mut out).unwrap_or_else(|e| panic!("operating system RNG failed: {e}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_contents() {
        let s = SecretBytes::new(b"hunter2-very-secret".to_vec());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert_eq!(shown, "SecretBytes([REDACTED; 19])");
    }

    #[test]
    fn random_arrays_differ() {
        assert_ne!(random_array::<32>(), random_array::<32>());
    }
}
