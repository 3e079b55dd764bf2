//! Sigil's threshold engine: what the signers compute.
//!
//! Network key generation, signing at a BIP-32 path, resharing to a new signer set (same key),
//! aux-data generation and refresh, run as sessions over an abstract [`Channel`]. The protocols
//! are synedrion's CGGMP'24 over secp256k1 with production (112-bit) parameters; no synedrion
//! type leaves this crate. Party ids are validator account ids, and every protocol message part
//! is signed with the validator's ed25519 account key, so a failed session can name the faulty
//! party and, where the protocol allows, prove it.

mod channel;
mod driver;
mod engine;
mod error;
mod evidence;
#[cfg(feature = "fault-injection")]
mod fault;
mod keys;
mod party;
#[cfg(test)]
mod tests;

pub use channel::{Channel, ChannelError, ChannelSender, MemoryChannel, MemorySender};
pub use driver::{SessionConfig, SessionStats};
pub use error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind, SessionFailure};
pub use evidence::{EvidenceCheck, EvidenceRecord, verify_evidence};
#[cfg(feature = "fault-injection")]
pub use fault::InjectedFault;
pub use keys::{AuxData, Engine, KeyShare, ResharePlan, SECURITY_PARAMETERS, SignRequest, Signed};
