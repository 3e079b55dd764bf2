//! Signature schemes a user key can have.

use serde::{Deserialize, Serialize};

use crate::PrimitiveError;

/// The signature scheme of a key: how it signs and how its 33-byte identifier is tagged
/// (`docs/PROTOCOL.md` §1 and §2, "User keys").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum KeyScheme {
    /// Threshold ECDSA over secp256k1 (Ethereum), `ecdsa-secp256k1`.
    #[default]
    EcdsaSecp256k1,
    /// Ed25519 (RFC 8032; Solana), `ed25519`.
    Ed25519,
    /// BIP-340 Schnorr over secp256k1 with the BIP-341 key-path tweak (Bitcoin Taproot),
    /// `bip340`.
    Bip340,
}

impl KeyScheme {
    /// Every scheme, in the order the ledger lists network keys.
    pub const ALL: [KeyScheme; 3] = [Self::EcdsaSecp256k1, Self::Ed25519, Self::Bip340];

    /// The stable name used in JSON, on the CLI and in programs' oracle data.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Self::Ed25519 => "ed25519",
            Self::Bip340 => "bip340",
        }
    }
}

impl std::fmt::Display for KeyScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyScheme {
    type Err = PrimitiveError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| PrimitiveError::UnknownScheme(text.chars().take(32).collect()))
    }
}

impl TryFrom<String> for KeyScheme {
    type Error = PrimitiveError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyScheme> for String {
    fn from(s: KeyScheme) -> String {
        s.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for scheme in KeyScheme::ALL {
            assert_eq!(scheme.name().parse::<KeyScheme>().unwrap(), scheme);
        }
        assert!("schnorr".parse::<KeyScheme>().is_err());
        assert_eq!(KeyScheme::default(), KeyScheme::EcdsaSecp256k1);
    }
}
