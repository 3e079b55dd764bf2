//! Offence evidence: what a fault report carries, and how anyone (the ledger) checks it without
//! running a session.
//!
//! manul keeps its signed message types private, so this module mirrors their serde layout
//! (manul 0.2.1, pinned exactly, over postcard; the fault tests check it on evidence from real
//! sessions, and `manul_contract` pins manul's bytes) and re-checks the ed25519 signatures on
//! message parts itself.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2_v010::{Digest as _, Sha256};
use sigil_crypto::verify_signature;
use sigil_primitives::{AccountId, Ed25519Signature};

use crate::{
    engine::phase_session_id,
    error::{FaultKind, MpcError, ProtocolKind},
    party::signed_bytes,
};

/// What a fault's evidence bytes hold (postcard-encoded). Every byte is checked by
/// [`verify_evidence`]: the messages carry the accused's signatures, the other fields must agree
/// with them.
///
/// synedrion 0.3's own evidence objects cannot be serialised (manul's `Evidence` derives serde
/// with a bound on the protocol marker type, which synedrion does not make serialisable), so the
/// record carries the signed messages the engine judged instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// What the accused did.
    pub kind: FaultKind,
    /// The protocol that failed (with the session id, it gives the engine's session id).
    pub protocol: ProtocolKind,
    /// The round of the accused's offending message, as the engine names it ("Round 1",
    /// "Round 1 (echo)").
    pub round: String,
    /// The accused's messages of that protocol run, as received: each the postcard encoding of
    /// its three signed parts (direct, echo broadcast, normal broadcast), every part signed by
    /// the accused for the session.
    pub messages: Vec<Vec<u8>>,
    /// Equivocation only: echo-round broadcasts of other parties, as received, each holding the
    /// accused's signed hash of a broadcast that differs from the one it sent us.
    pub echoes: Vec<(AccountId, Vec<u8>)>,
}

/// What [`verify_evidence`] established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceCheck {
    /// The messages are the offender's, signed by it for this session and protocol, including
    /// one of the round the fault was found in. The engine cannot re-run the failed proof
    /// outside the session (it needs the session's public key shares and aux data), so that
    /// the proof fails is the reporter's finding.
    SignedByOffender,
    /// Two statements signed by the offender for the same session and round with different
    /// contents: its broadcast to the reporter and its hash of another broadcast, as echoed by
    /// another party. Proof of equivocation on its own.
    Contradiction,
}

/// Checks offence evidence produced by this engine, as far as the engine allows, for
/// `offender` in session `session_id` (the 32-byte id the nodes ran the operation with).
///
/// Unresponsiveness has no evidence, so it is refused here; so is evidence of another kind,
/// session, protocol or party, and any altered byte.
pub fn verify_evidence(
    session_id: &[u8],
    offender: &AccountId,
    kind: FaultKind,
    evidence: &[u8],
) -> Result<EvidenceCheck, MpcError> {
    if kind == FaultKind::Unresponsive {
        return Err(MpcError::InvalidEvidence(
            "unresponsiveness carries no evidence".into(),
        ));
    }
    let session_id: &[u8; 32] = session_id.try_into().map_err(|_| {
        MpcError::InvalidInput(format!(
            "a session id has 32 bytes, got {}",
            session_id.len()
        ))
    })?;
    let record: EvidenceRecord = strict_decode(evidence).map_err(|reason| MpcError::Decode {
        what: "evidence",
        reason,
    })?;
    if record.kind != kind {
        return Err(MpcError::InvalidEvidence(format!(
            "the evidence is of {}, not of {kind}",
            record.kind
        )));
    }
    let engine_session = phase_session_id(session_id, record.protocol);
    check(engine_session.as_ref(), offender, &record).map_err(MpcError::InvalidEvidence)
}

/// Builds the evidence for `kind` against `accused` from the messages received in the failed
/// protocol run (`received`: wire bytes by sender). Returns `None`, with a warning, when the
/// received messages do not make evidence the ledger would accept.
pub(crate) fn record(
    kind: FaultKind,
    protocol: ProtocolKind,
    round: &str,
    engine_session: &[u8],
    accused: &AccountId,
    received: &BTreeMap<AccountId, Vec<&[u8]>>,
) -> Option<Vec<u8>> {
    let signed_by = |from: &AccountId| -> Vec<SignedMessage> {
        received
            .get(from)
            .into_iter()
            .flatten()
            .filter_map(|bytes| match strict_decode::<Wire<MessageMirror>>(bytes) {
                Ok(Wire::Protocol { message, .. }) => Some(message.parts),
                _ => None,
            })
            .filter(|message| message.verify(from, engine_session).is_ok())
            .collect()
    };
    let messages = signed_by(accused);
    let mut round = round.to_string();
    let mut echoes = Vec::new();
    if kind == FaultKind::Equivocation {
        // Another party's echo of a broadcast the accused sent us differently.
        for (echoer, _) in received.iter().filter(|(from, _)| *from != accused) {
            for message in signed_by(echoer) {
                let echo = &message.normal;
                let Some(contradicted) = contradiction(engine_session, accused, &messages, echo)
                else {
                    continue;
                };
                round = contradicted.to_string();
                echoes.push((*echoer, postcard::to_allocvec(echo).ok()?));
            }
        }
    }
    let record = EvidenceRecord {
        kind,
        protocol,
        round,
        messages: messages
            .iter()
            .map(postcard::to_allocvec)
            .collect::<Result<_, _>>()
            .ok()?,
        echoes,
    };
    match check(engine_session, accused, &record) {
        Ok(_) => postcard::to_allocvec(&record).ok(),
        Err(reason) => {
            tracing::warn!(%accused, %kind, %reason, "no evidence for a fault");
            None
        }
    }
}

/// The checks of [`verify_evidence`] against the engine's own session id.
fn check(
    engine_session: &[u8],
    offender: &AccountId,
    record: &EvidenceRecord,
) -> Result<EvidenceCheck, String> {
    if record.messages.is_empty() {
        return Err("no message of the offender".into());
    }
    let mut messages = Vec::with_capacity(record.messages.len());
    for bytes in &record.messages {
        let message: SignedMessage = strict_decode(bytes)?;
        message.verify(offender, engine_session)?;
        messages.push(message);
    }
    match record.kind {
        FaultKind::Unresponsive => Err("unresponsiveness carries no evidence".into()),
        FaultKind::InvalidMessage | FaultKind::FailedProof => {
            if !record.echoes.is_empty() {
                return Err("echoes only prove equivocation".into());
            }
            if !messages
                .iter()
                .any(|message| message.round().to_string() == record.round)
            {
                return Err(format!("no message of the offender in {}", record.round));
            }
            Ok(EvidenceCheck::SignedByOffender)
        }
        FaultKind::Equivocation => {
            if record.echoes.is_empty() {
                return Err("no echoed broadcast to compare with".into());
            }
            for (echoer, bytes) in &record.echoes {
                if echoer == offender {
                    return Err("the offender cannot witness against itself".into());
                }
                let echo: SignedPart = strict_decode(bytes)?;
                echo.verify(echoer, PartKind::Normal, engine_session)?;
                let round = contradiction(engine_session, offender, &messages, &echo)
                    .ok_or("the echo does not contradict the offender's broadcast")?;
                if round.to_string() != record.round {
                    return Err(format!("the contradiction is in {round}"));
                }
            }
            Ok(EvidenceCheck::Contradiction)
        }
    }
}

/// If `echo` (an echo-round broadcast, already checked as signed by its sender) holds a hash,
/// signed by `accused` for this session, of an echo broadcast that differs from the one
/// `accused` sent us in `messages`, the round of those broadcasts.
fn contradiction(
    engine_session: &[u8],
    accused: &AccountId,
    messages: &[SignedMessage],
    echo: &SignedPart,
) -> Option<RoundTag> {
    if !echo.metadata.round.is_echo {
        return None;
    }
    let hashes: Vec<(AccountId, SignedHash)> = strict_decode(echo.payload.as_deref()?).ok()?;
    let (_, hash) = hashes.iter().find(|(party, _)| party == accused)?;
    let round = RoundTag {
        nums: echo.metadata.round.nums.clone(),
        is_echo: false,
    };
    if hash.metadata.session_id != engine_session || hash.metadata.round != round {
        return None;
    }
    hash.verify(accused).ok()?;
    let ours = messages.iter().find(|message| message.round() == &round)?;
    ours.echo.payload.as_ref()?;
    // The signature on a hash does not say which part it hashes: one of the accused's other
    // parts of that round, passed off as an echo, contradicts nothing.
    let other_parts = [
        part_hash(PartKind::Echo, ours.echo.payload.as_deref()),
        part_hash(PartKind::Normal, ours.normal.payload.as_deref()),
        part_hash(PartKind::Direct, ours.direct.payload.as_deref()),
    ];
    (!other_parts.contains(&<[u8; 32]>::try_from(hash.part_hash.as_slice()).ok()?)).then_some(round)
}

/// Decodes postcard bytes that must hold exactly one `T`.
pub(crate) fn strict_decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|error| error.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes", rest.len()))
    }
}

/// What travels on the channel. Generic so the driver sends manul's `Message` and evidence
/// checks read the same bytes through [`MessageMirror`].
#[derive(Serialize, Deserialize)]
pub(crate) enum Wire<M> {
    /// A protocol message for one phase of an operation.
    Protocol {
        /// The phase (protocol run) of the operation.
        phase: u8,
        /// The engine's message.
        message: M,
    },
    /// The sender stopped the phase; the faults it found, so that others do not take its
    /// silence for its own fault.
    Abort {
        /// The phase it stopped.
        phase: u8,
        /// Whom it named, and for what.
        faults: Vec<(AccountId, FaultKind)>,
    },
}

/// manul's `RoundId`: round numbers (innermost first) and whether it is an echo round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoundTag {
    nums: Vec<u8>,
    is_echo: bool,
}

/// As manul displays round ids, so records name rounds as the engine's failures do.
impl fmt::Display for RoundTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round ")?;
        for (i, num) in self.nums.iter().enumerate().rev() {
            write!(f, "{num}")?;
            if i != 0 {
                f.write_str("-")?;
            }
        }
        if self.is_echo {
            f.write_str(" (echo)")?;
        }
        Ok(())
    }
}

/// manul's `MessageMetadata`: what every signature binds besides the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Metadata {
    session_id: Vec<u8>,
    round: RoundTag,
}

/// manul's kinds of message part, as hashed.
#[derive(Clone, Copy)]
enum PartKind {
    Echo = 0,
    Normal = 1,
    Direct = 2,
}

/// manul's `SignedMessagePart`: a signature, the metadata, an optional serialized payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedPart {
    signature: Vec<u8>,
    metadata: Metadata,
    payload: Option<Vec<u8>>,
}

/// manul's `SignedMessageHash`: a signed part with the payload replaced by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignedHash {
    signature: Vec<u8>,
    metadata: Metadata,
    part_hash: Vec<u8>,
}

/// The signed parts of manul's `Message`, in its field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedMessage {
    direct: SignedPart,
    echo: SignedPart,
    normal: SignedPart,
}

/// manul's `Message`: the (unsigned) destination, then the signed parts.
#[derive(Serialize, Deserialize)]
pub(crate) struct MessageMirror {
    /// Not signed, so never part of evidence.
    _destination: AccountId,
    parts: SignedMessage,
}

/// manul's hash of a message part (`ProtocolMessagePartHashable::hash`).
fn part_hash(kind: PartKind, payload: Option<&[u8]>) -> [u8; 32] {
    let mut digest = Sha256::new_with_prefix(b"ProtocolMessagePart");
    digest.update([kind as u8]);
    match payload {
        None => digest.update([0u8]),
        Some(payload) => {
            digest.update([1u8]);
            digest.update((payload.len() as u64).to_be_bytes());
            digest.update(payload);
        }
    }
    digest.finalize().into()
}

/// Checks manul's signature on (metadata, part hash) with the account key of `signer`.
fn verify_part_hash(
    signer: &AccountId,
    signature: &[u8],
    metadata: &Metadata,
    part_hash: &[u8],
) -> Result<(), String> {
    let signature: Ed25519Signature = strict_decode(signature)?;
    let metadata = postcard::to_allocvec(metadata).map_err(|error| error.to_string())?;
    let digest = Sha256::new_with_prefix(b"SignedMessagePartDigest")
        .chain_update(metadata)
        .chain_update((part_hash.len() as u64).to_be_bytes())
        .chain_update(part_hash);
    verify_signature(signer, &signed_bytes(digest), &signature)
        .map_err(|_| format!("a message part is not signed by {signer}"))
}

impl SignedPart {
    fn verify(&self, signer: &AccountId, kind: PartKind, session: &[u8]) -> Result<(), String> {
        if self.metadata.session_id != session {
            return Err("a message of another session".into());
        }
        let hash = part_hash(kind, self.payload.as_deref());
        verify_part_hash(signer, &self.signature, &self.metadata, &hash)
    }
}

impl SignedHash {
    fn verify(&self, signer: &AccountId) -> Result<(), String> {
        verify_part_hash(signer, &self.signature, &self.metadata, &self.part_hash)
    }
}

impl SignedMessage {
    fn round(&self) -> &RoundTag {
        &self.direct.metadata.round
    }

    /// Every part signed by `signer` for `session`, all for one round (as manul requires).
    fn verify(&self, signer: &AccountId, session: &[u8]) -> Result<(), String> {
        if self.echo.metadata != self.direct.metadata
            || self.normal.metadata != self.direct.metadata
        {
            return Err("message parts of different rounds".into());
        }
        self.direct.verify(signer, PartKind::Direct, session)?;
        self.echo.verify(signer, PartKind::Echo, session)?;
        self.normal.verify(signer, PartKind::Normal, session)
    }
}
