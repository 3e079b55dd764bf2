//! The one error type of decoding and validating primitives.

/// Why a value could not be decoded or failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrimitiveError {
    /// The text is not valid hexadecimal.
    #[error("invalid hex for {what}: {reason}")]
    InvalidHex {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong with the text.
        reason: String,
    },
    /// The value has the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {actual}")]
    InvalidLength {
        /// What was being decoded.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The bytes have the right length but are not a valid key or point.
    #[error("{what} is not a valid {curve} point")]
    InvalidPoint {
        /// What was being decoded.
        what: &'static str,
        /// Which curve the point was checked against.
        curve: &'static str,
    },
    /// A derivation path could not be parsed or is not allowed.
    #[error("invalid derivation path: {0}")]
    InvalidDerivationPath(String),
    /// An endpoint is not a `host:port` pair.
    #[error("invalid endpoint {0:?}: expected host:port")]
    InvalidEndpoint(String),
    /// A signature scheme name is unknown.
    #[error("unknown signature scheme {0:?}: expected ecdsa-secp256k1, ed25519 or bip340")]
    UnknownScheme(String),
    /// A hashing algorithm name is unknown.
    #[error("unknown hashing algorithm {0:?}")]
    UnknownHashingAlgorithm(String),
    /// A binary payload does not follow its layout.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Where it went wrong.
        reason: String,
    },
    /// A list holds more or fewer items than allowed.
    #[error("{what} must hold between {min} and {max} items, got {actual}")]
    InvalidCount {
        /// What was being decoded.
        what: &'static str,
        /// The minimum allowed.
        min: usize,
        /// The maximum allowed.
        max: usize,
        /// The count received.
        actual: usize,
    },
}
