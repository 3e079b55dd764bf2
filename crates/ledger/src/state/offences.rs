//! Offences: `report_offence`, and what a recorded offence does to the offender.

use std::collections::BTreeSet;

use sha2::Digest as _;
use sigil_primitives::{AccountId, BlockNumber};

use super::{ApplyContext, EvidenceVerifier, State, TxError};
use crate::types::{Event, Exclusion, FaultKind, OffenceRecord, SessionTicket};

impl State {
    /// `report_offence`: checks the report against the relayer's ticket and the evidence, and
    /// records the offence once it is proven or every other committee member reported it.
    pub(super) fn report_offence(
        &mut self,
        sender: AccountId,
        ticket: &SessionTicket,
        offender: AccountId,
        kind: FaultKind,
        evidence: &[u8],
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        let committee = self.check_ticket(sender, ticket, offender, ctx.height)?;
        let proven = proves(ticket, offender, kind, evidence, ctx.verify_evidence)?;
        let session = ticket.session;
        // An offender's unproven claims about its own session do not count.
        if !proven
            && self
                .offences
                .iter()
                .any(|(_, o)| o.session == session && o.offender == sender && o.recorded.is_some())
        {
            return Err(TxError::WrongState(
                "the reporter is a recorded offender in that session".into(),
            ));
        }
        let existing = self
            .offences
            .iter()
            .find(|(_, o)| o.session == session && o.offender == offender)
            .map(|(index, o)| (*index, o.clone()));
        if existing
            .as_ref()
            .is_some_and(|(_, record)| record.reporters.contains(&sender))
        {
            return Err(TxError::AlreadyExists("this report".into()));
        }
        let (index, mut record) = match existing {
            Some(found) => found,
            None => {
                let index = self.globals.next_offence;
                self.globals.next_offence += 1;
                let record = OffenceRecord {
                    session,
                    reporters: vec![],
                    offender,
                    kind,
                    proven,
                    committee_size: u16::try_from(committee.len()).unwrap_or(u16::MAX),
                    evidence_hash: sha2::Sha256::digest(evidence).to_vec(),
                    reported: ctx.height,
                    recorded: None,
                    slashed: 0,
                };
                (index, record)
            }
        };
        record.reporters.push(sender);
        if proven && !record.proven {
            record.kind = kind;
            record.proven = true;
            record.evidence_hash = sha2::Sha256::digest(evidence).to_vec();
        }
        let mut events = vec![Event::OffenceReportReceived {
            reporter: sender,
            offender,
            kind,
        }];
        let agreed = record.reporters.len() + 1 >= usize::from(record.committee_size);
        let record_now = record.recorded.is_none() && (record.proven || agreed);
        self.offences.insert(index, record);
        if record_now {
            events.extend(self.record_offence(index, ctx.height));
        }
        Ok(events)
    }

    /// Checks that both `sender` and `offender` are signers in the committee of a session that a
    /// relayer's `ticket` vouches for, within the report window; returns that committee.
    fn check_ticket(
        &self,
        sender: AccountId,
        ticket: &SessionTicket,
        offender: AccountId,
        height: BlockNumber,
    ) -> Result<BTreeSet<AccountId>, TxError> {
        let signers = &self.globals.signer_set.signers;
        if !signers.contains(&sender) {
            return Err(TxError::Unauthorised(
                "only a signer may report an offence".into(),
            ));
        }
        if !signers.contains(&offender) {
            return Err(TxError::Invalid(format!("{offender} is not a signer")));
        }
        if offender == sender {
            return Err(TxError::Invalid("a signer cannot report itself".into()));
        }
        if !crate::tx::verify_ticket(&self.globals.chain_id, ticket) {
            return Err(TxError::Invalid(
                "the session ticket's signature does not verify".into(),
            ));
        }
        if !self.validators.contains(&ticket.relayer) || signers.contains(&ticket.relayer) {
            return Err(TxError::Invalid(
                "the session ticket must come from a relayer (a validator outside the signer set)"
                    .into(),
            ));
        }
        let committee: BTreeSet<AccountId> = ticket.committee.iter().copied().collect();
        if committee.len() != ticket.committee.len()
            || committee.len() < 2
            || !committee.iter().all(|m| signers.contains(m))
        {
            return Err(TxError::Invalid(
                "the ticket's committee is not a set of current signers".into(),
            ));
        }
        if !committee.contains(&sender) {
            return Err(TxError::Unauthorised(
                "the reporter was not in that session's committee".into(),
            ));
        }
        if !committee.contains(&offender) {
            return Err(TxError::Invalid(
                "the accused was not in that session's committee".into(),
            ));
        }
        let report_window = self.globals.parameters.report_window;
        if ticket.block > height || height.0.saturating_sub(ticket.block.0) > report_window {
            return Err(TxError::Invalid(format!(
                "session of block {} is outside the report window",
                ticket.block
            )));
        }
        Ok(committee)
    }

    /// Applies a recorded offence: exclusion for the offence window, a slash, and removal from
    /// the signer set after repeated offences or when the stake falls below the minimum.
    fn record_offence(&mut self, index: u64, height: BlockNumber) -> Vec<Event> {
        let params = self.globals.parameters.clone();
        let Some(record) = self.offences.get_mut(&index) else {
            return vec![];
        };
        record.recorded = Some(height);
        let permille = if record.proven {
            params.slash_misbehaviour_permille
        } else {
            params.slash_unresponsive_permille
        };
        let offender = record.offender;
        let mut events = Vec::new();
        if let Some(info) = self.validators.get_mut(&offender) {
            let amount =
                u64::try_from(u128::from(info.stake) * u128::from(permille) / 1000).unwrap_or(0);
            info.stake -= amount;
            let stake = info.stake;
            if let Some(record) = self.offences.get_mut(&index) {
                record.slashed = amount;
            }
            if amount > 0 {
                events.push(Event::Slashed {
                    account: offender,
                    amount,
                    stake,
                });
            }
        }
        let until = BlockNumber(height.0.saturating_add(params.offence_window));
        let excluded = &mut self.globals.signer_set.excluded;
        excluded.retain(|e| e.until > height && e.account != offender);
        excluded.push(Exclusion {
            account: offender,
            until,
        });
        if let Some(record) = self.offences.get(&index) {
            events.insert(
                0,
                Event::OffenceReported {
                    offence: record.clone(),
                },
            );
        }
        events.extend(self.rotate(height));
        events
    }
}

/// Whether the report proves the offence: unresponsiveness and an invalid message without
/// evidence are claims that need the committee's agreement; any other evidence must hold, and
/// without a verifier none does.
fn proves(
    ticket: &SessionTicket,
    offender: AccountId,
    kind: FaultKind,
    evidence: &[u8],
    verifier: Option<&EvidenceVerifier>,
) -> Result<bool, TxError> {
    match kind {
        FaultKind::Unresponsive if !evidence.is_empty() => Err(TxError::Invalid(
            "unresponsiveness carries no evidence".into(),
        )),
        FaultKind::Unresponsive => Ok(false),
        FaultKind::InvalidMessage if evidence.is_empty() => Ok(false),
        _ => {
            let Some(verifier) = verifier else {
                return Err(TxError::Invalid(
                    "the evidence does not hold: this ledger has no evidence verifier".into(),
                ));
            };
            verifier(ticket.session.as_bytes(), &offender, kind, evidence)
                .map(|()| true)
                .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))
        }
    }
}
