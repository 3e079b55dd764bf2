//! Sigil's cryptography glue, built on audited libraries:
//!
//! - [`keys`]: ed25519 account keys and x25519 static keys derived from one node seed with
//!   HKDF-SHA256, and BIP-39 phrases for user accounts;
//! - [`envelope`]: the sign-then-encrypt request envelope (ed25519 + HPKE RFC 9180);
//! - [`hashing`]: the message-hash functions of every built-in hashing algorithm;
//! - [`derivation`]: BIP-32 public derivation of users' keys from the network key, ECDSA
//!   recovery and Ethereum addresses;
//! - [`schnorr`]: derivation and verification of users' Ed25519 and BIP-340 keys;
//! - [`committee`]: the deterministic choice of a request's signing committee;
//! - [`secret`]: byte strings that are zeroized on drop and never printed.

pub mod committee;
pub mod derivation;
pub mod envelope;
pub mod hashing;
pub mod keys;
pub mod program_id;
pub mod request;
pub mod schnorr;
pub mod secret;

pub use committee::{CommitteeError, CommitteeSeed, select_committee};
pub use derivation::{DerivationError, derive_user_key, eth_address, recover_signer, verify_ecdsa};
pub use envelope::{
    Envelope, EnvelopeError, OpenPolicy, Opened, SealParams, open, seal, seal_signed,
    verify_signed_plaintext,
};
pub use hashing::{HashError, keccak256, message_hash};
pub use keys::{AccountKeypair, KeyError, Mnemonic, NodeSeed, X25519StaticKey, verify_signature};
pub use program_id::ProgramContents;
pub use schnorr::{
    SchnorrChild, derive_schnorr_child, frost_keygen_session, signed_bytes, taproot_output_key,
    verify_user_signature,
};
pub use secret::SecretBytes;
