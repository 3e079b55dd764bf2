//! Which function turns a message into the 32-byte prehash that gets signed.

use serde::{Deserialize, Serialize};

use crate::{MAX_PROGRAMS_PER_KEY, PrimitiveError};

/// A message-hashing algorithm. Every one yields 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HashingAlgorithm {
    /// Keccak-256 (Ethereum), `keccak256`.
    Keccak256,
    /// SHA-256, `sha256`.
    Sha256,
    /// SHA3-256 (FIPS 202), `sha3-256`.
    Sha3_256,
    /// BLAKE2b with a 256-bit output, `blake2b-256`.
    Blake2b256,
    /// The message already is the 32-byte prehash, `identity`.
    Identity,
    /// The message is signed as it is, `none`: only Ed25519 keys sign messages of any length.
    None,
    /// The `custom-hash` export of the key's program at this index, `custom:N`.
    Custom(u8),
}

impl HashingAlgorithm {
    /// The built-in algorithms, in the order `GET /v1/hashes` lists them.
    pub const BUILT_IN: [HashingAlgorithm; 6] = [
        Self::Keccak256,
        Self::Sha256,
        Self::Sha3_256,
        Self::Blake2b256,
        Self::Identity,
        Self::None,
    ];
}

impl std::fmt::Display for HashingAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keccak256 => f.write_str("keccak256"),
            Self::Sha256 => f.write_str("sha256"),
            Self::Sha3_256 => f.write_str("sha3-256"),
            Self::Blake2b256 => f.write_str("blake2b-256"),
            Self::Identity => f.write_str("identity"),
            Self::None => f.write_str("none"),
            Self::Custom(i) => write!(f, "custom:{i}"),
        }
    }
}

impl std::str::FromStr for HashingAlgorithm {
    type Err = PrimitiveError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "keccak256" => Self::Keccak256,
            "sha256" => Self::Sha256,
            "sha3-256" => Self::Sha3_256,
            "blake2b-256" => Self::Blake2b256,
            "identity" => Self::Identity,
            "none" => Self::None,
            other => {
                let index = other
                    .strip_prefix("custom:")
                    .filter(|n| {
                        !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|i| usize::from(*i) < MAX_PROGRAMS_PER_KEY)
                    .ok_or_else(|| {
                        PrimitiveError::UnknownHashingAlgorithm(other.chars().take(32).collect())
                    })?;
                Self::Custom(index)
            }
        })
    }
}

impl TryFrom<String> for HashingAlgorithm {
    type Error = PrimitiveError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<HashingAlgorithm> for String {
    fn from(h: HashingAlgorithm) -> String {
        h.to_string()
    }
}
