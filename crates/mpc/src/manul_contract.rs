//! What this crate relies on in manul 0.2.1 beyond its typed API, checked against manul itself:
//! the wire layout of its messages and signatures, which [`crate::evidence`] mirrors, and the
//! descriptions of provable errors, which [`crate::driver`]'s blame reads. A tiny protocol runs
//! real manul sessions, with a fixed session id and keys, so the bytes are reproducible. If a
//! manul upgrade changes any of it, these tests fail: update the mirror or the classifier, then
//! the golden bytes. The probe protocol also drives the round machine's own tests.

use std::collections::{BTreeMap, BTreeSet};

use manul::protocol::{
    Artifact, BoxedFormat, BoxedRound, CommunicationInfo, DirectMessage, EchoBroadcast, EntryPoint,
    FinalizeOutcome, LocalError, MessageValidationError, NormalBroadcast, Payload, Protocol,
    ProtocolError, ProtocolMessage, ProtocolMessagePart, ProtocolValidationError, ReceiveError,
    RequiredMessageParts, RequiredMessages, Round, RoundId, TransitionInfo,
};
use manul::session::{
    CanFinalize, Message, PreprocessOutcome, RoundAccumulator, RoundOutcome, Session,
    SessionReport, VerifiedMessage,
};
use rand_core::{CryptoRngCore, OsRng};
use serde::{Deserialize, Serialize};
use sigil_crypto::NodeSeed;
use sigil_primitives::AccountId;

use crate::{
    driver::blame::{self, MISMATCHED_BROADCASTS, PROTOCOL_ERROR_PREFIX},
    engine::phase_session_id,
    error::{FaultKind, ProtocolKind},
    evidence::{self, MessageMirror, Wire},
    party::{Party, PartySigner, SigilSession},
    verify_evidence,
};

/// An echo-broadcast value the probe protocol refuses with a provable protocol error.
const FORBIDDEN: u8 = 0xF0;
/// A direct-message value the probe protocol refuses as unreadable.
const UNREADABLE: u8 = 0xEE;
/// The operation session id the probe sessions run under (as signing).
const SESSION: [u8; 32] = [7; 32];

/// One round with an echo broadcast (so manul adds an echo round) and a direct message.
#[derive(Debug)]
pub(crate) struct Probe;

/// The probe's provable error: the forbidden value was broadcast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Forbidden;

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the forbidden value was broadcast")
    }
}

impl ProtocolError<Party> for Forbidden {
    type AssociatedData = ();

    fn required_messages(&self) -> RequiredMessages {
        RequiredMessages::new(RequiredMessageParts::echo_broadcast(), None, None)
    }

    fn verify_messages_constitute_error(
        &self,
        format: &BoxedFormat,
        _guilty_party: &Party,
        _shared_randomness: &[u8],
        _associated_data: &(),
        message: ProtocolMessage,
        _previous_messages: BTreeMap<RoundId, ProtocolMessage>,
        _combined_echos: BTreeMap<RoundId, BTreeMap<Party, EchoBroadcast>>,
    ) -> Result<(), ProtocolValidationError> {
        match message.echo_broadcast.deserialize::<u8>(format) {
            Ok(FORBIDDEN) => Ok(()),
            _ => Err(ProtocolValidationError::InvalidEvidence(
                "an allowed value".into(),
            )),
        }
    }
}

/// Evidence of an invalid message part is never checked here.
fn unchecked() -> Result<(), MessageValidationError> {
    Err(MessageValidationError::InvalidEvidence(
        "the probe does not check invalid-message evidence".into(),
    ))
}

impl Protocol<Party> for Probe {
    type Result = u8;
    type ProtocolError = Forbidden;

    fn verify_direct_message_is_invalid(
        _: &BoxedFormat,
        _: &RoundId,
        _: &DirectMessage,
    ) -> Result<(), MessageValidationError> {
        unchecked()
    }

    fn verify_echo_broadcast_is_invalid(
        _: &BoxedFormat,
        _: &RoundId,
        _: &EchoBroadcast,
    ) -> Result<(), MessageValidationError> {
        unchecked()
    }

    fn verify_normal_broadcast_is_invalid(
        _: &BoxedFormat,
        _: &RoundId,
        _: &NormalBroadcast,
    ) -> Result<(), MessageValidationError> {
        unchecked()
    }
}

/// One party's inputs: what it broadcasts and what it sends each peer directly.
#[derive(Debug, Clone)]
struct ProbeRound {
    broadcast: u8,
    direct: u8,
    others: BTreeSet<Party>,
}

impl EntryPoint<Party> for ProbeRound {
    type Protocol = Probe;

    fn entry_round_id() -> RoundId {
        1.into()
    }

    fn make_round(
        self,
        _rng: &mut dyn CryptoRngCore,
        _shared_randomness: &[u8],
        _id: &Party,
    ) -> Result<BoxedRound<Party, Probe>, LocalError> {
        Ok(BoxedRound::new_dynamic(self))
    }
}

impl Round<Party> for ProbeRound {
    type Protocol = Probe;

    fn transition_info(&self) -> TransitionInfo {
        TransitionInfo::new_linear_terminating(1)
    }

    fn communication_info(&self) -> CommunicationInfo<Party> {
        CommunicationInfo::regular(&self.others)
    }

    fn make_echo_broadcast(
        &self,
        _rng: &mut dyn CryptoRngCore,
        format: &BoxedFormat,
    ) -> Result<EchoBroadcast, LocalError> {
        EchoBroadcast::new(format, self.broadcast)
    }

    fn make_direct_message(
        &self,
        _rng: &mut dyn CryptoRngCore,
        format: &BoxedFormat,
        _destination: &Party,
    ) -> Result<(DirectMessage, Option<Artifact>), LocalError> {
        Ok((DirectMessage::new(format, self.direct)?, None))
    }

    fn receive_message(
        &self,
        format: &BoxedFormat,
        _from: &Party,
        message: ProtocolMessage,
    ) -> Result<Payload, ReceiveError<Party, Probe>> {
        message.normal_broadcast.assert_is_none()?;
        let broadcast: u8 = message.echo_broadcast.deserialize(format)?;
        let direct: u8 = message.direct_message.deserialize(format)?;
        if direct == UNREADABLE {
            return Err(manul::protocol::DirectMessageError::from("unreadable".to_string()).into());
        }
        if broadcast == FORBIDDEN {
            return Err(ReceiveError::protocol(Forbidden));
        }
        Ok(Payload::new(broadcast))
    }

    fn finalize(
        self: Box<Self>,
        _rng: &mut dyn CryptoRngCore,
        _payloads: BTreeMap<Party, Payload>,
        _artifacts: BTreeMap<Party, Artifact>,
    ) -> Result<FinalizeOutcome<Party, Probe>, LocalError> {
        Ok(FinalizeOutcome::Result(self.broadcast))
    }
}

pub(crate) type ProbeSession = Session<Probe, SigilSession>;
type Report = SessionReport<Probe, SigilSession>;
/// Every message sent in a run, with its sender.
type Sent = Vec<(Party, Message<Party>)>;

pub(crate) fn signer(name: &str) -> PartySigner {
    PartySigner(NodeSeed::dev(name).account_keypair())
}

/// Three parties (a, b, c) and their probe sessions; `broadcast` and `direct` are a's values
/// (the others send 1 and 2).
pub(crate) fn sessions(broadcast: u8, direct: u8) -> BTreeMap<Party, ProbeSession> {
    let signers = ["a", "b", "c"].map(signer);
    let ids = ids();
    signers
        .into_iter()
        .map(|signer| {
            let id = Party(signer.0.account_id());
            let mine = if id == a() {
                (broadcast, direct)
            } else {
                (1, 2)
            };
            (id, probe_session(signer, mine, &ids))
        })
        .collect()
}

fn ids() -> BTreeSet<Party> {
    ["a", "b", "c"].map(party).into()
}

fn probe_session(
    signer: PartySigner,
    (broadcast, direct): (u8, u8),
    ids: &BTreeSet<Party>,
) -> ProbeSession {
    let me = Party(signer.0.account_id());
    let others = ids.iter().filter(|id| **id != me).copied().collect();
    let round = ProbeRound {
        broadcast,
        direct,
        others,
    };
    let session_id = phase_session_id(&SESSION, ProtocolKind::Signing);
    Session::new(&mut OsRng, session_id, signer, round).expect("a probe session")
}

pub(crate) fn party(name: &str) -> Party {
    Party(signer(name).0.account_id())
}

fn a() -> Party {
    party("a")
}

/// Runs `sessions` in lock step to their reports. `swap(to, message)` may replace what a sends
/// in the first round; every message sent is also recorded.
fn run(
    mut sessions: BTreeMap<Party, ProbeSession>,
    mut swap: impl FnMut(&Party, Message<Party>) -> Message<Party>,
) -> (BTreeMap<Party, Report>, Sent) {
    let mut reports = BTreeMap::new();
    let mut cached: BTreeMap<Party, Vec<VerifiedMessage<Party>>> = BTreeMap::new();
    let mut sent = Vec::new();
    for round in 0.. {
        if sessions.is_empty() {
            break;
        }
        let mut accumulators = BTreeMap::new();
        let mut mail = Vec::new();
        for (id, session) in &sessions {
            let mut accumulator = session.make_accumulator();
            for destination in session.message_destinations() {
                let (message, artifact) = session.make_message(&mut OsRng, destination).unwrap();
                session.add_artifact(&mut accumulator, artifact).unwrap();
                let message = if *id == a() && round == 0 {
                    swap(destination, message)
                } else {
                    message
                };
                mail.push((*id, message));
            }
            for message in cached.remove(id).unwrap_or_default() {
                let processed = session.process_message(message);
                session
                    .add_processed_message(&mut accumulator, processed)
                    .unwrap();
            }
            accumulators.insert(*id, accumulator);
        }
        for (from, message) in mail {
            let to = *message.destination();
            sent.push((from, message.clone()));
            let (Some(session), Some(accumulator)) = (sessions.get(&to), accumulators.get_mut(&to))
            else {
                continue;
            };
            if let PreprocessOutcome::ToProcess(verified) = session
                .preprocess_message(accumulator, &from, message)
                .unwrap()
            {
                let processed = session.process_message(*verified);
                session
                    .add_processed_message(accumulator, processed)
                    .unwrap();
            }
        }
        for (id, session) in std::mem::take(&mut sessions) {
            match end_round(session, accumulators.remove(&id).unwrap()) {
                RoundOutcome::Finished(report) => {
                    reports.insert(id, report);
                }
                RoundOutcome::AnotherRound {
                    session,
                    cached_messages,
                } => {
                    cached.insert(id, cached_messages);
                    sessions.insert(id, session);
                }
            }
        }
    }
    (reports, sent)
}

/// Ends `session`'s round: finalized, or terminated (a report) when it cannot be.
fn end_round(
    session: ProbeSession,
    accumulator: RoundAccumulator<Probe, SigilSession>,
) -> RoundOutcome<Probe, SigilSession> {
    if session.can_finalize(&accumulator) != CanFinalize::Yes {
        return RoundOutcome::Finished(session.terminate(accumulator).unwrap());
    }
    session.finalize_round(&mut OsRng, accumulator).unwrap()
}

/// The descriptions of the provable errors in `report`, by accused.
fn accusations(report: &Report) -> Vec<(AccountId, String)> {
    let observed = blame::Observed::of(report, &BTreeMap::new());
    observed.provable
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// a's first message to b in an honest run, as it goes on the wire (phase 0).
const GOLDEN_MESSAGE: &str = "\
    00002088a2063ec9842ec00df464ec0d30ec2117b70c20c83afa7a719083384564c58241409381d9bc2e131de74d\
    7cc31c3e7ab71923ed7d43df932aee13faaa387711e26519a56f8c0d89b9e2a326d233b98b0af053c43644918bf4\
    5fdeaef9deafb57a0620775634c83eaa9311d5ccbe5b6113b0e552d9a56dccf3e96b05fdc88cafac43ea01010001\
    0102414077dbd9b2e4c7cae92ae4b75674f535520b6e5a012aedf5e854966d9058c100fd60fc01c96dfea99ef69c\
    eccf620f4e4ce9708c1be986d3ef9a2a4eb27b6ba00820775634c83eaa9311d5ccbe5b6113b0e552d9a56dccf3e9\
    6b05fdc88cafac43ea01010001010141406bb94a1a1573b36baee2a345f61ceb1fa3762c21e01b2bf0da22eee251\
    a8bc59e743f7ed11c239d1b8b8eda67cf431ce4ddb0d6b6cf0f4b87e5073a2aebc640520775634c83eaa9311d5cc\
    be5b6113b0e552d9a56dccf3e96b05fdc88cafac43ea01010000";

/// The messages `to` received in a run, as they came off the wire.
fn received_by(to: Party, sent: &Sent) -> BTreeMap<AccountId, Vec<Vec<u8>>> {
    let mut received: BTreeMap<AccountId, Vec<Vec<u8>>> = BTreeMap::new();
    for (from, message) in sent
        .iter()
        .filter(|(_, message)| *message.destination() == to)
    {
        let wire = Wire::Protocol {
            phase: 0,
            message: message.clone(),
        };
        received
            .entry(from.0)
            .or_default()
            .push(postcard::to_allocvec(&wire).unwrap());
    }
    received
}

/// The proof that a equivocated, from a's messages in `messages`, if they hold one.
fn equivocation_of_a<'a>(messages: impl IntoIterator<Item = &'a Vec<u8>>) -> Option<Vec<u8>> {
    let engine_session = phase_session_id(&SESSION, ProtocolKind::Signing);
    evidence::equivocation(
        ProtocolKind::Signing,
        engine_session.as_ref(),
        &a().0,
        messages.into_iter().map(Vec::as_slice),
    )
}

#[test]
fn an_honest_probe_run_succeeds_without_accusations() {
    let (reports, _) = run(sessions(1, 2), |_, message| message);
    assert_eq!(reports.len(), 3);
    for report in reports.into_values() {
        assert!(accusations(&report).is_empty());
        assert_eq!(report.result(), Some(1));
    }
}

#[test]
fn manul_messages_keep_the_layout_the_evidence_codec_mirrors() {
    let (_, sent) = run(sessions(1, 2), |_, message| message);
    let received = received_by(party("b"), &sent);
    let wire = &received[&a().0][0];
    assert_eq!(hex(wire), GOLDEN_MESSAGE);
    // The mirror reads every byte of manul's message and writes them back the same.
    let mirror: Wire<MessageMirror> = evidence::strict_decode(wire).unwrap();
    assert_eq!(&postcard::to_allocvec(&mirror).unwrap(), wire);
    // A message alone proves nothing.
    assert!(equivocation_of_a(&received[&a().0]).is_none());
}

#[test]
fn a_failed_check_is_a_protocol_error_classified_as_a_failed_proof() {
    let (reports, _) = run(sessions(FORBIDDEN, 2), |_, message| message);
    for peer in ["b", "c"].map(party) {
        let expected = format!("{PROTOCOL_ERROR_PREFIX}{Forbidden}");
        assert_eq!(
            accusations(&reports[&peer]),
            vec![(a().0, expected.clone())]
        );
        assert_eq!(blame::classify(&expected), FaultKind::FailedProof);
    }
}

#[test]
fn an_unreadable_part_is_an_invalid_message() {
    let (reports, _) = run(sessions(1, UNREADABLE), |_, message| message);
    for peer in ["b", "c"].map(party) {
        let expected = "Direct message error: unreadable".to_string();
        assert_eq!(
            accusations(&reports[&peer]),
            vec![(a().0, expected.clone())]
        );
        assert_eq!(blame::classify(&expected), FaultKind::InvalidMessage);
    }
}

#[test]
fn two_different_broadcasts_are_a_mismatch_classified_as_equivocation_and_prove_it_whole() {
    // a sends c the broadcast of a second run of its session.
    let shadow = probe_session(signer("a"), (3, 2), &ids());
    let c = party("c");
    let swap = |to: &Party, message| match *to == c {
        true => shadow.make_message(&mut OsRng, to).unwrap().0,
        false => message,
    };
    let (reports, sent) = run(sessions(1, 2), swap);
    let b = party("b");
    assert_eq!(
        accusations(&reports[&b]),
        vec![(a().0, MISMATCHED_BROADCASTS.to_string())]
    );
    assert_eq!(
        blame::classify(MISMATCHED_BROADCASTS),
        FaultKind::Equivocation
    );
    let (by_b, by_c) = (received_by(b, &sent), received_by(c, &sent));
    let (to_b, to_c) = (&by_b[&a().0], &by_c[&a().0]);
    // What b holds alone (a's message, c's echo of a hash) proves nothing.
    assert!(equivocation_of_a(by_b.values().flatten()).is_none());
    // With the message c exhibits, the two whole broadcasts prove it; the digests checked are
    // manul's own, or these signatures would not verify.
    let record = equivocation_of_a(to_b.iter().chain(to_c)).expect("evidence");
    verify_evidence(&SESSION, &a().0, FaultKind::Equivocation, &record).unwrap();
    // Either order of the same messages gives the same bytes.
    assert_eq!(
        equivocation_of_a(to_c.iter().chain(to_b)),
        Some(record.clone())
    );
    for (session, offender) in [([8; 32], a().0), (SESSION, b.0)] {
        assert!(verify_evidence(&session, &offender, FaultKind::Equivocation, &record).is_err());
    }
    // a's direct message of the same round passed off as a second broadcast is no proof.
    let mirror: Wire<MessageMirror> = evidence::strict_decode(&to_b[0]).unwrap();
    let Wire::Protocol { message, .. } = mirror else {
        panic!("a protocol message")
    };
    let record: crate::EquivocationEvidence = postcard::from_bytes(&record).unwrap();
    let direct = postcard::to_allocvec(&message.parts.direct).unwrap();
    let echo = postcard::to_allocvec(&message.parts.echo).unwrap();
    assert!(record.broadcasts.contains(&echo));
    let mut pair = [echo, direct];
    pair.sort();
    let forged = crate::EquivocationEvidence {
        protocol: ProtocolKind::Signing,
        broadcasts: pair,
    };
    let forged = postcard::to_allocvec(&forged).unwrap();
    let refused = verify_evidence(&SESSION, &a().0, FaultKind::Equivocation, &forged);
    assert!(refused.is_err(), "{refused:?}");
}
