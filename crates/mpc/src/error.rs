//! What can go wrong, and who is to blame when a session fails.

use std::fmt;

use serde::{Deserialize, Serialize};
use sigil_primitives::AccountId;

/// The protocol a session ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolKind {
    /// Key generation (first phase of the network DKG).
    KeyInit,
    /// Moving a key to a new holder set and threshold (also the second DKG phase and refresh).
    KeyResharing,
    /// Auxiliary data (Paillier keys, ring-Pedersen parameters) for signing.
    AuxGen,
    /// Interactive ECDSA signing.
    Signing,
    /// FROST key generation (Ed25519, BIP-340).
    FrostKeyGen,
    /// FROST signing (Ed25519, BIP-340).
    FrostSigning,
    /// FROST key rotation: repair for joining parties, then refresh (Ed25519, BIP-340).
    FrostRotation,
}

impl ProtocolKind {
    /// Stable snake_case name, as used in metrics and offence reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyInit => "key_init",
            Self::KeyResharing => "key_resharing",
            Self::AuxGen => "aux_gen",
            Self::Signing => "signing",
            Self::FrostKeyGen => "frost_key_gen",
            Self::FrostSigning => "frost_signing",
            Self::FrostRotation => "frost_rotation",
        }
    }
}

impl fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use sigil_primitives::FaultKind;

/// One party at fault.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The faulty party.
    pub party: AccountId,
    /// What it did.
    pub kind: FaultKind,
    /// The engine's description of the fault.
    pub description: String,
    /// Evidence for a proven fault: a postcard-encoded [`crate::EvidenceRecord`] holding the
    /// party's own signed messages, checked by [`crate::verify_evidence`]. `None` for silence,
    /// unsigned garbage and faults reported by another party.
    pub evidence: Option<Vec<u8>>,
    /// `Some(reporter)` when this party did not see the fault itself but was told of it by
    /// `reporter`, a party that stopped the session because the accused sent it nothing (only
    /// for unresponsiveness, which nobody can prove); `None` for this party's own findings.
    pub reported_by: Option<AccountId>,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("party", &self.party)
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("evidence_bytes", &self.evidence.as_ref().map(Vec::len))
            .field("reported_by", &self.reported_by)
            .finish()
    }
}

/// Why a session stopped without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// A round did not complete within its timeout.
    TimedOut,
    /// Invalid messages made the round impossible to finish.
    Misbehaviour,
    /// The channel closed under the session.
    ChannelClosed,
    /// Another party stopped the session (naming a fault it found), so it could not finish.
    Aborted,
}

/// A failed session: which protocol, why, and every party at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFailure {
    /// The protocol that failed.
    pub protocol: ProtocolKind,
    /// Why it stopped.
    pub reason: FailureReason,
    /// The round it stopped in.
    pub round: String,
    /// Every party at fault, at most one entry per party (the most serious kind).
    pub faults: Vec<Fault>,
}

impl SessionFailure {
    /// The accused parties.
    pub fn accused(&self) -> Vec<AccountId> {
        self.faults.iter().map(|fault| fault.party).collect()
    }

    /// The fault recorded against `party`, if any.
    pub fn fault_of(&self, party: &AccountId) -> Option<&Fault> {
        self.faults.iter().find(|fault| fault.party == *party)
    }
}

impl fmt::Display for SessionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} session failed in round {} ({:?})",
            self.protocol, self.round, self.reason
        )?;
        for fault in &self.faults {
            write!(f, "; {} {}", fault.party, fault.kind)?;
        }
        Ok(())
    }
}

/// Errors of the threshold engine.
#[derive(Debug, thiserror::Error)]
pub enum MpcError {
    /// The session failed; the failure names the parties at fault.
    #[error("{0}")]
    Failed(Box<SessionFailure>),
    /// The caller asked for something impossible (bad threshold, not a holder, …).
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// Key material or evidence bytes do not decode.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Offence evidence does not prove what it claims.
    #[error("the evidence does not hold: {0}")]
    InvalidEvidence(String),
    /// The produced signature did not verify against the derived key (never returned to users).
    #[error("the produced signature does not verify: {0}")]
    BadSignature(String),
    /// An internal error of the engine.
    #[error("engine error: {0}")]
    Local(String),
}

impl From<manul::protocol::LocalError> for MpcError {
    fn from(error: manul::protocol::LocalError) -> Self {
        Self::Local(error.to_string())
    }
}
