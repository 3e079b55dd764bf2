//! BIP-32 derivation paths for users' keys.

use serde::{Deserialize, Serialize};

use crate::PrimitiveError;

/// The first hardened child index; Sigil paths use only indices below it.
pub const HARDENED_OFFSET: u32 = 1 << 31;
/// The deepest path BIP-32 can express (its depth field is one byte).
pub const MAX_DEPTH: usize = 255;

/// A non-hardened BIP-32 derivation path such as `m/44/60/0/0/7`.
///
/// Users' keys are public (non-hardened) children of the network key, so every step is below
/// 2^31: a hardened step would need the network's private key, which never exists in one place.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DerivationPath(Vec<u32>);

impl DerivationPath {
    /// Builds a path from child indices, rejecting hardened ones and paths deeper than 255.
    pub fn new(indices: Vec<u32>) -> Result<Self, PrimitiveError> {
        if indices.len() > MAX_DEPTH {
            return Err(PrimitiveError::InvalidDerivationPath(format!(
                "depth {} exceeds {MAX_DEPTH}",
                indices.len()
            )));
        }
        if let Some(i) = indices.iter().find(|i| **i >= HARDENED_OFFSET) {
            return Err(PrimitiveError::InvalidDerivationPath(format!(
                "index {i} is hardened; only indices below 2^31 are allowed"
            )));
        }
        Ok(Self(indices))
    }

    /// The child indices, root first.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// Whether the path is the root (`m`), i.e. the network key itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("m")?;
        for i in &self.0 {
            write!(f, "/{i}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DerivationPath({self})")
    }
}

impl std::str::FromStr for DerivationPath {
    type Err = PrimitiveError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| PrimitiveError::InvalidDerivationPath(format!("{why} in {text:?}"));
        let mut parts = text.split('/');
        if parts.next() != Some("m") {
            return Err(bad("must start with \"m\""));
        }
        let mut indices = Vec::new();
        for part in parts {
            if part.ends_with(['\'', 'h', 'H']) {
                return Err(bad("hardened steps are not allowed"));
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 10 {
                return Err(bad("each step must be a decimal number"));
            }
            indices.push(part.parse::<u32>().map_err(|_| bad("step out of range"))?);
            if indices.len() > MAX_DEPTH {
                return Err(bad("too deep"));
            }
        }
        Self::new(indices)
    }
}

impl TryFrom<String> for DerivationPath {
    type Error = PrimitiveError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DerivationPath> for String {
    fn from(p: DerivationPath) -> String {
        p.to_string()
    }
}
