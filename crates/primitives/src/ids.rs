//! Identifiers and public keys.

use crate::{KeyScheme, PrimitiveError, bytes::fixed_bytes};

fixed_bytes!(
    /// An account: the 32-byte ed25519 public key that signs for it, shown as 0x-hex.
    ///
    /// Decoding checks that the bytes are a valid, non-weak (not small-order) Edwards point.
    AccountId,
    32,
    "account id",
    |bytes| {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| {
            PrimitiveError::InvalidPoint { what: "account id", curve: "ed25519" }
        })?;
        if key.is_weak() {
            return Err(PrimitiveError::InvalidPoint { what: "account id", curve: "ed25519" });
        }
        Ok(())
    }
);

fixed_bytes!(
    /// A validator's x25519 static public key, used for HPKE envelopes and Noise.
    ///
    /// Decoding rejects the all-zero key, whose Diffie-Hellman output is always zero.
    X25519PublicKey,
    32,
    "x25519 public key",
    |bytes| {
        if bytes.iter().all(|b| *b == 0) {
            return Err(PrimitiveError::InvalidPoint { what: "x25519 public key", curve: "x25519" });
        }
        Ok(())
    }
);

/// First byte of an Ed25519 key's identifier: `0xed ‖ the 32-byte RFC 8032 key`.
pub const ED25519_KEY_TAG: u8 = 0xed;
/// First byte of a BIP-340 key's identifier: `0x54 ‖ the 32-byte x-only key` ("T", Taproot).
pub const BIP340_KEY_TAG: u8 = 0x54;

fixed_bytes!(
    /// A key's 33-byte identifier (the network key of a scheme, or a user's derived key). Its
    /// first byte says the scheme (`docs/PROTOCOL.md` §1 and §2, "User keys"):
    /// - `0x02`/`0x03`: a SEC1-compressed secp256k1 key, signing ECDSA;
    /// - `0xed` ‖ 32 bytes: an Ed25519 key;
    /// - `0x54` ‖ 32 bytes: a BIP-340 x-only secp256k1 key (for a user key, the Taproot output
    ///   key its signatures verify under).
    ///
    /// Decoding checks the tag and that the point is on its curve.
    VerifyingKey,
    33,
    "verifying key",
    |bytes| {
        let secp = PrimitiveError::InvalidPoint { what: "verifying key", curve: "secp256k1" };
        match bytes[0] {
            0x02 | 0x03 => k256::PublicKey::from_sec1_bytes(bytes).map(|_| ()).map_err(|_| secp),
            BIP340_KEY_TAG => {
                let mut sec1 = *bytes;
                sec1[0] = 0x02;
                k256::PublicKey::from_sec1_bytes(&sec1).map(|_| ()).map_err(|_| secp)
            }
            ED25519_KEY_TAG => {
                let key: [u8; 32] = bytes[1..].try_into().unwrap_or_else(|_| unreachable!("32 bytes"));
                ed25519_dalek::VerifyingKey::from_bytes(&key).map(|_| ()).map_err(|_| {
                    PrimitiveError::InvalidPoint { what: "verifying key", curve: "ed25519" }
                })
            }
            _ => Err(PrimitiveError::UnknownScheme(format!("key tag 0x{:02x}", bytes[0]))),
        }
    }
);

impl VerifyingKey {
    /// The scheme this key signs with, from its tag.
    pub fn scheme(&self) -> KeyScheme {
        match self.0[0] {
            ED25519_KEY_TAG => KeyScheme::Ed25519,
            BIP340_KEY_TAG => KeyScheme::Bip340,
            _ => KeyScheme::EcdsaSecp256k1,
        }
    }

    /// The key in its scheme's own encoding: 33 compressed bytes for ECDSA, the 32-byte key for
    /// Ed25519, the 32-byte x-only key for BIP-340.
    pub fn key_bytes(&self) -> &[u8] {
        match self.scheme() {
            KeyScheme::EcdsaSecp256k1 => &self.0,
            KeyScheme::Ed25519 | KeyScheme::Bip340 => &self.0[1..],
        }
    }

    /// Builds the identifier of a 32-byte key of `scheme` (Ed25519 or BIP-340 x-only).
    pub fn tagged(scheme: KeyScheme, key: &[u8; 32]) -> Result<Self, PrimitiveError> {
        let tag = match scheme {
            KeyScheme::Ed25519 => ED25519_KEY_TAG,
            KeyScheme::Bip340 => BIP340_KEY_TAG,
            KeyScheme::EcdsaSecp256k1 => {
                return Err(PrimitiveError::InvalidLength {
                    what: "ecdsa verifying key",
                    expected: 33,
                    actual: 32,
                });
            }
        };
        let mut bytes = [0u8; 33];
        bytes[0] = tag;
        bytes[1..].copy_from_slice(key);
        Self::from_bytes(bytes)
    }

    /// The key as a `k256` point: the compressed key for ECDSA, the even-y point for BIP-340.
    /// `None` for Ed25519.
    pub fn secp256k1_point(&self) -> Option<k256::PublicKey> {
        let mut sec1 = self.0;
        match self.scheme() {
            KeyScheme::EcdsaSecp256k1 => {}
            KeyScheme::Bip340 => sec1[0] = 0x02,
            KeyScheme::Ed25519 => return None,
        }
        k256::PublicKey::from_sec1_bytes(&sec1).ok()
    }

    /// The key as a `k256` public key (an ECDSA key; for BIP-340 the even-y point).
    ///
    /// # Panics
    /// On an Ed25519 key: callers check [`VerifyingKey::scheme`] first.
    pub fn to_k256(&self) -> k256::PublicKey {
        self.secp256k1_point()
            .unwrap_or_else(|| panic!("{self} is an ed25519 key, not a secp256k1 key"))
    }

    /// Builds the compressed form of a `k256` public key.
    pub fn from_k256(key: &k256::PublicKey) -> Self {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let point = key.to_encoded_point(true);
        let mut bytes = [0u8; 33];
        bytes.copy_from_slice(point.as_bytes());
        Self(bytes)
    }
}

fixed_bytes!(
    /// A program's id: a 32-byte hash of its bytecode, schemas and settings.
    ProgramId,
    32,
    "program id",
    |_| Ok(())
);

fixed_bytes!(
    /// A signing request's id: 32 random bytes chosen by the client, unique per request.
    RequestId,
    32,
    "request id",
    |_| Ok(())
);

fixed_bytes!(
    /// One protocol session across the validators taking part (a signing attempt, a DKG, a
    /// reshare): 32 bytes every member derives the same way (`docs/PROTOCOL.md` §7.4). It
    /// names the transport session, the engine session and the ledger's offence records.
    SessionId,
    32,
    "session id",
    |_| Ok(())
);

impl SessionId {
    /// The session id `bytes`; every 32-byte value is one.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

fixed_bytes!(
    /// A 20-byte Ethereum address (the last 20 bytes of keccak256 of the uncompressed key).
    EthAddress,
    20,
    "ethereum address",
    |_| Ok(())
);

/// A block height on the ledger.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct BlockNumber(pub u64);

impl std::fmt::Display for BlockNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

fixed_bytes!(
    /// A 64-byte ed25519 signature by an account key.
    Ed25519Signature,
    64,
    "ed25519 signature",
    |_| Ok(())
);

fixed_bytes!(
    /// A 65-byte recoverable secp256k1 ECDSA signature `r ‖ s ‖ v`, with `v` the recovery id
    /// (0 or 1) and `s` in the lower half of the group order.
    EcdsaSignature,
    65,
    "ecdsa signature",
    |bytes| {
        if bytes[64] > 1 {
            return Err(PrimitiveError::InvalidPoint { what: "ecdsa signature recovery id", curve: "secp256k1" });
        }
        Ok(())
    }
);

/// A signature made by a user key: 65 bytes `r ‖ s ‖ v` for ECDSA, 64 bytes for Ed25519
/// (`R ‖ S`, RFC 8032) and BIP-340 (`r ‖ s`). Hex in JSON; which scheme follows from the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signature {
    /// A recoverable ECDSA signature.
    Ecdsa(EcdsaSignature),
    /// An Ed25519 or BIP-340 signature.
    Schnorr([u8; 64]),
}

impl Signature {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Ecdsa(sig) => sig.as_bytes(),
            Self::Schnorr(bytes) => bytes,
        }
    }

    /// Decodes 65 bytes as ECDSA and 64 as a Schnorr-family signature.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PrimitiveError> {
        match bytes.len() {
            65 => EcdsaSignature::from_slice(bytes).map(Self::Ecdsa),
            64 => Ok(Self::Schnorr(
                bytes
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("64 bytes")),
            )),
            actual => Err(PrimitiveError::InvalidLength {
                what: "signature",
                expected: 65,
                actual,
            }),
        }
    }

    /// The ECDSA signature, if this is one.
    pub fn ecdsa(&self) -> Option<&EcdsaSignature> {
        match self {
            Self::Ecdsa(sig) => Some(sig),
            Self::Schnorr(_) => None,
        }
    }
}

impl From<EcdsaSignature> for Signature {
    fn from(sig: EcdsaSignature) -> Self {
        Self::Ecdsa(sig)
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::bytes::encode_hex(self.as_bytes()))
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl std::str::FromStr for Signature {
    type Err = PrimitiveError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_slice(&crate::bytes::decode_hex("signature", text)?)
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::bytes::hex_vec::serialize(self.as_bytes(), serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = crate::bytes::hex_vec::deserialize(deserializer)?;
        Self::from_slice(&bytes).map_err(serde::de::Error::custom)
    }
}
