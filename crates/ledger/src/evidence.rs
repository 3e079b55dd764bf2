//! Offence evidence, checked by the threshold engine's own rules.

use sigil_mpc::FaultKind;
use sigil_primitives::AccountId;

use crate::types::OffenceKind;

/// Checks that `evidence` proves `kind` against `offender` in session `session`.
pub(crate) fn verify(
    session: &[u8; 32],
    offender: &AccountId,
    kind: OffenceKind,
    evidence: &[u8],
) -> Result<(), String> {
    let kind = match kind {
        OffenceKind::Unresponsive => FaultKind::Unresponsive,
        OffenceKind::InvalidMessage => FaultKind::InvalidMessage,
        OffenceKind::FailedProof => FaultKind::FailedProof,
        OffenceKind::Equivocation => FaultKind::Equivocation,
    };
    sigil_mpc::verify_evidence(session, offender, kind, evidence)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
