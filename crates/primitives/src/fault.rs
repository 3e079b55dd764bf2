//! What a faulty party of a threshold session did: found by the engine, reported to the
//! ledger and recorded as an offence under the same name.

use serde::{Deserialize, Serialize};

/// How a party misbehaved (`docs/PROTOCOL.md` §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Sent nothing for a round before its timeout.
    Unresponsive,
    /// Sent a message that does not decode, is not signed by it, or is not for this session.
    InvalidMessage,
    /// Sent a well-formed, signed message whose proof or consistency check fails.
    FailedProof,
    /// Sent different broadcasts to different parties.
    Equivocation,
    /// A ledger replica signed two conflicting consensus votes for one view (PROTOCOL §9.6).
    ConflictingVotes,
}

impl FaultKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresponsive => "unresponsive",
            Self::InvalidMessage => "invalid_message",
            Self::FailedProof => "failed_proof",
            Self::Equivocation => "equivocation",
            Self::ConflictingVotes => "conflicting_votes",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
