//! Sigil's threshold engine: what the signers compute.
//!
//! Network key generation, signing at a BIP-32 path, resharing to a new signer set (same key),
//! aux-data generation and refresh, run as sessions over an abstract [`Channel`]. The protocols
//! are synedrion's CGGMP'24 over secp256k1 with production (112-bit) parameters; no synedrion
//! type leaves this crate. Party ids are validator account ids, and every protocol message part
//! is signed with the validator's ed25519 account key, so a failed session can name the faulty
//! party and, where the protocol allows, prove it.
//!
//! # Where a signature's time goes
//!
//! Every operation returns [`SessionStats`], whose [`rounds_profile`](SessionStats::rounds_profile)
//! has one [`RoundProfile`] per round: this party's CPU time in it, its wall time, how much of
//! that was spent waiting for peers, and the traffic. Rounds are named as manul names them:
//! manul follows every round that has an echo broadcast with an echo round, in which the
//! parties confirm they all got the same broadcast and whose finalization runs the synedrion
//! round's own. Without misbehaviour, synedrion 0.3's interactive signing
//! (`protocols/interactive_signing.rs`) runs seven rounds; with a committee of n, "per peer"
//! below means n − 1 times:
//!
//! | round | what this party computes |
//! |---|---|
//! | session creation (counted in `Round 1`) | samples k, γ; Paillier-encrypts K = enc(k), G = enc(γ) under its own key; ElGamal commitments to both |
//! | `Round 1` | per peer, two Π^enc-elg proofs (K and G are well formed) under that peer's ring-Pedersen parameters; verifies the two each peer made for it |
//! | `Round 1 (echo)` | echoes the round-1 broadcasts; finalization: a Π^elog proof for Γ = γ·G, and per peer the homomorphic D = γ·K_j − β and D̂ = x·K_j − β̂ (Paillier) with a Π^aff-g proof each: the costliest step |
//! | `Round 2` | verifies each peer's Π^elog and its 2(n − 1) Π^aff-g proofs (those for the other parties too); Paillier-decrypts α, α̂ from each peer |
//! | `Round 2 (echo)` | echoes; finalization: δ, χ, Δ = k·Γ, S = χ·Γ and a Π^elog proof for Δ |
//! | `Round 3` | verifies each peer's Π^elog for its Δ |
//! | `Round 3 (echo)` | echoes; finalization: checks Σδ·G = ΣΔ and ΣS = δ·X, then its signature share σ = k̃·m + χ̃·r |
//! | `Round 4` | checks each peer's σ against its Δ̃, S̃ (point arithmetic), adds the shares up and finds the recovery id |
//!
//! If a round-3 check fails, round 5 or 6 replaces round 4 to find the culprit (Π^dec and
//! Π^aff-g* proofs). Each round also signs this party's message parts with its ed25519 account
//! key and checks the peers' signatures.

mod channel;
mod driver;
mod engine;
mod error;
mod evidence;
#[cfg(feature = "fault-injection")]
mod fault;
pub mod frost;
mod keys;
#[cfg(test)]
mod manul_contract;
mod party;
#[cfg(test)]
mod tests;
#[cfg(feature = "transport")]
mod transport;

pub use channel::{Channel, ChannelError, ChannelSender, MemoryChannel, MemorySender};
pub use driver::{RoundProfile, SessionConfig, SessionStats};
pub use error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind, SessionFailure};
pub use evidence::{EquivocationEvidence, verify_evidence, verify_keygen_evidence};
#[cfg(feature = "fault-injection")]
pub use fault::{Forgery, InjectedFault, forgeries};
pub use keys::{AuxData, Engine, KeyShare, ResharePlan, SECURITY_PARAMETERS, SignRequest, Signed};
#[cfg(feature = "transport")]
pub use transport::{TransportChannel, TransportSender};
