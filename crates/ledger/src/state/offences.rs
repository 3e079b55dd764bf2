//! Offences: `report_offence`, what a proven offence does to the offender and what an
//! accusation does (PROTOCOL.md §8.3).

use std::collections::BTreeSet;

use sha2::Digest as _;
use sigil_primitives::{AccountId, BlockNumber, KeyScheme, SessionId};

use super::{ApplyContext, EvidenceVerifier, ReportedSession, State, TxError};
use crate::types::{
    Dispute, Event, Exclusion, FaultKind, JumpStartStatus, OffenceRecord, SessionTicket,
};

impl State {
    /// `report_offence`: checks the report against the relayer's ticket; a report whose
    /// evidence the ledger verifies proves the offence (slash, exclusion), any other is an
    /// accusation: a dispute that keeps the two apart, and rotation once `threshold` distinct
    /// signers accuse the same one.
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
        self.check_evidence_size(evidence)?;
        let proven = proves(ticket, offender, kind, evidence, ctx.verify_evidence)?;
        let session = ticket.session;
        if !proven && self.proven_offender(&sender, session) {
            return Err(TxError::WrongState(
                "the reporter is a proven offender in that session".into(),
            ));
        }
        let (index, mut record) = self.offence_of(session, offender, || OffenceRecord {
            session,
            reporters: vec![],
            offender,
            kind,
            proven: false,
            committee_size: u16::try_from(committee.len()).unwrap_or(u16::MAX),
            evidence_hash: sha2::Sha256::digest(evidence).to_vec(),
            reported: ctx.height,
            recorded: None,
            slashed: 0,
        });
        if record.reporters.contains(&sender) {
            return Err(TxError::AlreadyExists("this report".into()));
        }
        record.reporters.push(sender);
        let mut events = vec![Event::OffenceReportReceived {
            reporter: sender,
            offender,
            kind,
        }];
        let newly_proven = proven && !record.proven;
        if newly_proven {
            record.kind = kind;
            record.proven = true;
            record.evidence_hash = sha2::Sha256::digest(evidence).to_vec();
        }
        let first = record.recorded.is_none();
        record.recorded.get_or_insert(ctx.height);
        self.offences.insert(index, record);
        if newly_proven {
            events.extend(self.punish(index, ctx.height));
            events.extend(self.withdraw_accusations(offender, session));
        } else if !proven {
            self.dispute(sender, offender, ctx.height);
        }
        if (first || newly_proven)
            && let Some(record) = self.offences.get(&index)
        {
            let offence = record.clone();
            events.insert(1, Event::OffenceReported { offence });
        }
        events.extend(self.rotate(ctx.height));
        Ok(events)
    }

    /// `report_keygen_fault`: evidence that `offender` sent a bad package in the key generation
    /// of `scheme`'s network key among the current signers proves the offence at once (slash,
    /// exclusion) and the offender leaves the signer set, so that the next set can make the key;
    /// each (key generation, offender) is recorded once, with the first reporter.
    pub(super) fn report_keygen_fault(
        &mut self,
        sender: AccountId,
        scheme: KeyScheme,
        offender: AccountId,
        evidence: &[u8],
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        let session = self.check_keygen_report(sender, scheme, offender)?;
        self.check_evidence_size(evidence)?;
        let verifier = ctx.verify_evidence.ok_or_else(|| {
            TxError::Invalid(
                "the evidence does not hold: this ledger has no evidence verifier".into(),
            )
        })?;
        let kind = FaultKind::FailedProof;
        verifier(
            ReportedSession::KeyGeneration,
            session.as_bytes(),
            &offender,
            kind,
            evidence,
        )
        .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))?;
        let signers = self.globals.signer_set.signers.len();
        let fault = ProvenFault {
            session,
            offender,
            kind,
            committee_size: u16::try_from(signers).unwrap_or(u16::MAX),
            what: "this key generation fault",
        };
        let mut events = self.record_proven(sender, fault, evidence, ctx.height)?;
        events.extend(self.rotate(ctx.height));
        Ok(events)
    }

    /// Records a fault proven by `sender`'s evidence, once (a second report is
    /// `already_exists`), and punishes its offender; returns the events.
    fn record_proven(
        &mut self,
        sender: AccountId,
        fault: ProvenFault,
        evidence: &[u8],
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        let ProvenFault {
            session,
            offender,
            kind,
            committee_size,
            what,
        } = fault;
        let (index, mut record) = self.offence_of(session, offender, || OffenceRecord {
            session,
            reporters: vec![],
            offender,
            kind,
            proven: true,
            committee_size,
            evidence_hash: sha2::Sha256::digest(evidence).to_vec(),
            reported: height,
            recorded: Some(height),
            slashed: 0,
        });
        if !record.reporters.is_empty() {
            return Err(TxError::AlreadyExists(what.into()));
        }
        record.reporters.push(sender);
        self.offences.insert(index, record);
        let mut events = vec![Event::OffenceReportReceived {
            reporter: sender,
            offender,
            kind,
        }];
        events.extend(self.punish(index, height));
        if let Some(offence) = self.offences.get(&index).cloned() {
            events.insert(1, Event::OffenceReported { offence });
        }
        Ok(events)
    }

    /// Checks who reports a key generation fault, and when: both current signers, the scheme a
    /// FROST one whose key the current signers are making; returns that key generation's id.
    fn check_keygen_report(
        &self,
        sender: AccountId,
        scheme: KeyScheme,
        offender: AccountId,
    ) -> Result<SessionId, TxError> {
        let set = &self.globals.signer_set;
        if !set.signers.contains(&sender) {
            return Err(TxError::Unauthorised(
                "only a signer may report a key generation fault".into(),
            ));
        }
        if !set.signers.contains(&offender) {
            return Err(TxError::Invalid(format!("{offender} is not a signer")));
        }
        if offender == sender {
            return Err(TxError::Invalid("a signer cannot report itself".into()));
        }
        if scheme == KeyScheme::EcdsaSecp256k1 {
            return Err(TxError::Invalid(
                "only FROST key generations (ed25519, bip340) are reported this way".into(),
            ));
        }
        if set.jump_start == JumpStartStatus::Ready {
            return Err(TxError::WrongState(
                "no key generation runs before the jump start".into(),
            ));
        }
        if let Some(key) = set.network_key_of(scheme) {
            return Err(TxError::WrongState(format!(
                "the {scheme} network key, {key}, is made: its key generation is over"
            )));
        }
        if set.pending_reshare.is_some() {
            return Err(TxError::WrongState(
                "a reshare is running; the new signer set makes this key after it".into(),
            ));
        }
        Ok(self.keygen_session(scheme))
    }

    /// The id of the key generation of `scheme`'s network key among the current signers.
    pub(super) fn keygen_session(&self, scheme: KeyScheme) -> SessionId {
        let set = &self.globals.signer_set;
        SessionId::new(sigil_crypto::frost_keygen_session(
            &self.globals.chain_id,
            scheme,
            set.threshold,
            &set.signers,
        ))
    }

    /// Signers proven to have sent a bad package in a key generation the current signers still
    /// have to finish: they must leave the set before it can.
    pub(super) fn keygen_offenders(&self) -> BTreeSet<AccountId> {
        let set = &self.globals.signer_set;
        let sessions: Vec<SessionId> = [KeyScheme::Ed25519, KeyScheme::Bip340]
            .into_iter()
            .filter(|scheme| set.network_key_of(*scheme).is_none())
            .map(|scheme| self.keygen_session(scheme))
            .collect();
        self.offences
            .iter()
            .filter(|(_, o)| o.proven && sessions.contains(&o.session))
            .map(|(_, o)| o.offender)
            .collect()
    }

    fn check_evidence_size(&self, evidence: &[u8]) -> Result<(), TxError> {
        let max = self.globals.parameters.max_evidence_size;
        if evidence.len() > max as usize {
            return Err(TxError::Invalid(format!(
                "evidence of {} bytes exceeds max_evidence_size ({max})",
                evidence.len()
            )));
        }
        Ok(())
    }

    /// `report_consensus_fault`: evidence that a replica signed two conflicting votes proves
    /// the offence at once (slash, exclusion); each fault (replica, epoch, view) is recorded
    /// once, with the first reporter.
    pub(super) fn report_consensus_fault(
        &mut self,
        sender: AccountId,
        evidence: &[u8],
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        self.check_evidence_size(evidence)?;
        let verifier = ctx.verify_consensus.ok_or_else(|| {
            TxError::Invalid("this ledger is solo: it has no consensus to fault".into())
        })?;
        let set_of = |epoch| self.consensus_set(epoch).map(<[_]>::to_vec);
        let fault = verifier(evidence, &set_of)
            .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))?;
        let proven = ProvenFault {
            session: consensus_fault_session(fault.epoch, fault.view),
            offender: fault.offender,
            kind: FaultKind::ConflictingVotes,
            committee_size: 0,
            what: "this consensus fault",
        };
        let mut events = self.record_proven(sender, proven, evidence, ctx.height)?;
        events.extend(self.drop_replica(fault.offender));
        events.extend(self.rotate(ctx.height));
        Ok(events)
    }

    /// Voids what `offender`, now proven in `session`, accused others of there, whichever
    /// landed first: its reports leave the records (a record left without reporters goes)
    /// and its disputes with those it accused end.
    fn withdraw_accusations(&mut self, offender: AccountId, session: SessionId) -> Vec<Event> {
        let accused: Vec<(u64, OffenceRecord)> = self
            .offences
            .iter()
            .filter(|(_, o)| o.session == session && !o.proven && o.reporters.contains(&offender))
            .map(|(index, o)| (*index, o.clone()))
            .collect();
        let mut events = Vec::new();
        for (index, mut record) in accused {
            record.reporters.retain(|r| *r != offender);
            self.globals
                .signer_set
                .disputes
                .retain(|d| (d.accuser, d.accused) != (offender, record.offender));
            events.push(Event::AccusationWithdrawn {
                session,
                reporter: offender,
                offender: record.offender,
            });
            if record.reporters.is_empty() {
                self.offences.remove(&index);
            } else {
                self.offences.insert(index, record);
            }
        }
        events
    }

    /// Whether `account` is a proven offender in `session` (its accusations there are void).
    fn proven_offender(&self, account: &AccountId, session: SessionId) -> bool {
        self.offences
            .iter()
            .any(|(_, o)| o.session == session && o.offender == *account && o.proven)
    }

    /// The record of `offender` in `session`, or a new one (with a fresh index) from `new`.
    fn offence_of(
        &mut self,
        session: SessionId,
        offender: AccountId,
        new: impl FnOnce() -> OffenceRecord,
    ) -> (u64, OffenceRecord) {
        let existing = self
            .offences
            .iter()
            .find(|(_, o)| o.session == session && o.offender == offender)
            .map(|(index, o)| (*index, o.clone()));
        existing.unwrap_or_else(|| {
            let index = self.globals.next_offence;
            self.globals.next_offence += 1;
            (index, new())
        })
    }

    /// Records that `accuser` accused `accused`: committees keep them apart for the offence
    /// window (one dispute per pair and direction, the latest deciding when it ends).
    fn dispute(&mut self, accuser: AccountId, accused: AccountId, height: BlockNumber) {
        let until = BlockNumber(
            height
                .0
                .saturating_add(self.globals.parameters.offence_window),
        );
        let disputes = &mut self.globals.signer_set.disputes;
        disputes.retain(|d| d.until > height && (d.accuser, d.accused) != (accuser, accused));
        disputes.push(Dispute {
            accuser,
            accused,
            until,
        });
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

    /// Applies a proven offence: exclusion for the offence window and a slash; the rotation
    /// that follows removes the offender after repeated offences or below the minimum stake.
    fn punish(&mut self, index: u64, height: BlockNumber) -> Vec<Event> {
        let params = self.globals.parameters.clone();
        let Some(offender) = self.offences.get(&index).map(|r| r.offender) else {
            return vec![];
        };
        let mut events = Vec::new();
        if let Some(info) = self.validators.get_mut(&offender) {
            let permille = u128::from(params.slash_misbehaviour_permille);
            let amount = u64::try_from(u128::from(info.stake) * permille / 1000).unwrap_or(0);
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
        events
    }
}

/// A fault its evidence proves at once, as [`State::record_proven`] records it.
struct ProvenFault {
    session: SessionId,
    offender: AccountId,
    kind: FaultKind,
    committee_size: u16,
    /// What a second report of it is, for `already_exists`.
    what: &'static str,
}

/// The session id a consensus fault is recorded under: one per epoch and view, so each fault of
/// a replica is recorded once.
pub fn consensus_fault_session(epoch: u64, view: u64) -> SessionId {
    let digest = sha2::Sha256::new()
        .chain_update(b"sigil/v1/consensus-fault")
        .chain_update(epoch.to_be_bytes())
        .chain_update(view.to_be_bytes())
        .finalize();
    SessionId::new(digest.into())
}

/// Whether the report proves the offence: a report without evidence is an accusation; evidence
/// must hold (only the ledger's verifier says so), and unresponsiveness has none.
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
        FaultKind::ConflictingVotes => Err(TxError::Invalid(
            "conflicting consensus votes are reported with report_consensus_fault".into(),
        )),
        _ if evidence.is_empty() => Ok(false),
        _ => {
            let Some(verifier) = verifier else {
                return Err(TxError::Invalid(
                    "the evidence does not hold: this ledger has no evidence verifier".into(),
                ));
            };
            verifier(
                ReportedSession::Signing,
                ticket.session.as_bytes(),
                &offender,
                kind,
                evidence,
            )
            .map(|()| true)
            .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))
        }
    }
}
