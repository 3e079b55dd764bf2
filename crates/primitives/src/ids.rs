//! Identifiers and public keys.

use crate::{PrimitiveError, bytes::fixed_bytes};

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

fixed_bytes!(
    /// A 33-byte SEC1-compressed secp256k1 verifying key (the network key or a user's derived key).
    ///
    /// Decoding checks the prefix byte and that the point is on the curve.
    VerifyingKey,
    33,
    "verifying key",
    |bytes| {
        let bad = PrimitiveError::InvalidPoint { what: "verifying key", curve: "secp256k1" };
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(bad);
        }
        k256::PublicKey::from_sec1_bytes(bytes).map(|_| ()).map_err(|_| bad)
    }
);

impl VerifyingKey {
    /// The key as a `k256` public key.
    pub fn to_k256(&self) -> k256::PublicKey {
        // Validated on construction, so decoding cannot fail.
        k256::PublicKey::from_sec1_bytes(&self.0)
            .unwrap_or_else(|_| unreachable!("validated point"))
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
