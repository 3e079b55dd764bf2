//! Sigil's shared vocabulary: account ids, keys, validator records, programs, derivation paths,
//! hashing algorithms, request and session ids, block numbers, fault kinds and the API's error
//! codes.
//!
//! Every type validates on construction and on decode: wrong lengths, bad hex and points that
//! are not on their curve are errors ([`PrimitiveError`]), never panics. In human-readable
//! formats (JSON) byte strings are `0x`-prefixed lowercase hex; in binary formats they are raw
//! bytes. This crate does no I/O.

pub mod bytes;
mod error;
mod error_code;
mod fault;
mod hashing;
mod ids;
mod path;
mod program;
pub mod request;
mod scheme;
pub mod throttle;
mod validator;

pub use error::PrimitiveError;
pub use error_code::ErrorCode;
pub use fault::FaultKind;
pub use hashing::HashingAlgorithm;
pub use ids::{
    AccountId, BlockNumber, EcdsaSignature, Ed25519Signature, EthAddress, ProgramId, RequestId,
    SessionId, Signature, VerifyingKey, X25519PublicKey,
};
pub use path::{DerivationPath, HARDENED_OFFSET, MAX_DEPTH};
pub use program::{ProgramInstance, ProgramList};
pub use scheme::KeyScheme;
pub use validator::{Endpoint, ValidatorInfo};

/// Most programs one key may have attached.
pub const MAX_PROGRAMS_PER_KEY: usize = 5;
/// Largest message a user may ask to sign: 1 MiB.
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;
