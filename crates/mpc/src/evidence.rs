//! Offence evidence: what a fault report carries, and how anyone (the ledger) checks it without
//! running a session.
//!
//! Two faults are provable from outside a session:
//! - equivocation in the ECDSA engine: two different echo broadcasts that the offender signed
//!   for the same round of the same protocol run, each carried whole. A signature on a whole
//!   part binds the part's kind, session and round, so neither another party's messages, nor
//!   the offender's other parts, nor its messages of another session can pass for one;
//! - a FROST signature share that does not verify (`failed_proof`): the offender's signed share
//!   statement and the packages it names ([`crate::frost::ShareEvidence`]);
//! - a bad package in a FROST key generation: the offender's signed round-1 package and, for a
//!   share, the signed share it sent ([`crate::frost::DkgEvidence`], [`verify_keygen_evidence`]).
//!
//! The ECDSA engine's other faults are not provable here. Re-checking a failed proof needs the
//! engine's own check against the session's public key shares and aux data, and synedrion 0.3
//! exposes neither that check outside a session (manul's `Evidence` does not serialise for its
//! protocols) nor the public data; that a signed message does not decode needs the round's
//! message types, which only a session has. A signed message alone proves only that its sender
//! took part, so reports of those faults carry no evidence and count as accusations
//! (PROTOCOL.md §8).
//!
//! manul keeps its signed message types private, so this module mirrors their serde layout
//! (manul 0.2.1, pinned exactly, over postcard; `manul_contract` pins manul's bytes) and checks
//! the ed25519 signatures on message parts itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2_v010::{Digest as _, Sha256};
use sigil_crypto::verify_signature;
use sigil_primitives::{AccountId, Ed25519Signature};

use crate::{
    engine::phase_session_id,
    error::{FaultKind, MpcError, ProtocolKind},
    party::signed_bytes,
};

/// Proof of equivocation (postcard-encoded in a report): two different echo broadcasts the
/// offender signed for one round of one protocol run. Every byte is checked by
/// [`verify_evidence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationEvidence {
    /// The protocol run (with the session id, it gives the engine's session id).
    pub protocol: ProtocolKind,
    /// The two broadcasts, each manul's signed echo-broadcast part as received, in ascending
    /// byte order.
    pub broadcasts: [Vec<u8>; 2],
}

/// Checks a report's evidence for `offender` in signing session `session_id` (the 32-byte id
/// the nodes ran it with). Equivocation in an ECDSA signing session and a FROST signature share
/// that does not verify (`failed_proof`) can be proven: reports are about signing sessions, the
/// only ones a node records and never runs twice (key generation and resharing may run one
/// session again after a restart). Evidence of any other kind, of another session, protocol or
/// party, or with any byte altered, is refused.
pub fn verify_evidence(
    session_id: &[u8],
    offender: &AccountId,
    kind: FaultKind,
    evidence: &[u8],
) -> Result<(), MpcError> {
    let session_id: &[u8; 32] = session_id.try_into().map_err(|_| {
        MpcError::InvalidInput(format!(
            "a session id has 32 bytes, got {}",
            session_id.len()
        ))
    })?;
    match kind {
        FaultKind::Equivocation => {}
        FaultKind::FailedProof => {
            return crate::frost::verify_share_evidence(session_id, offender, evidence)
                .map_err(MpcError::InvalidEvidence);
        }
        _ => {
            return Err(MpcError::InvalidEvidence(format!(
                "{kind} cannot be proven by evidence; report it without"
            )));
        }
    }
    let record: EquivocationEvidence =
        strict_decode(evidence).map_err(|reason| MpcError::Decode {
            what: "evidence",
            reason,
        })?;
    if record.protocol != ProtocolKind::Signing {
        return Err(MpcError::InvalidEvidence(format!(
            "reports concern signing sessions, not {}",
            record.protocol
        )));
    }
    let engine_session = phase_session_id(session_id, record.protocol);
    check(engine_session.as_ref(), offender, &record)
        .map(|_| ())
        .map_err(MpcError::InvalidEvidence)
}

/// Checks a `report_keygen_fault`'s evidence that `offender` sent a bad package in the FROST key
/// generation with id `session_id` ([`crate::frost::DkgEvidence`]): a commitment of the wrong
/// degree, a proof of knowledge that fails, or a secret share that does not match its
/// commitment. Anything else, or any byte altered, is refused.
pub fn verify_keygen_evidence(
    session_id: &[u8; 32],
    offender: &AccountId,
    evidence: &[u8],
) -> Result<(), MpcError> {
    crate::frost::verify_dkg_evidence(session_id, offender, evidence)
        .map_err(MpcError::InvalidEvidence)
}

/// Builds the proof that `accused` equivocated from its messages of the failed run (`messages`:
/// what it sent this party and what other parties' abort notices exhibited, as wire bytes).
/// `None` when no two of them hold different echo broadcasts for one round.
pub(crate) fn equivocation<'a>(
    protocol: ProtocolKind,
    engine_session: &[u8],
    accused: &AccountId,
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Vec<u8>> {
    let mut by_round: BTreeMap<RoundTag, Vec<Vec<u8>>> = BTreeMap::new();
    for bytes in messages {
        let Ok(Wire::Protocol { message, .. }) = strict_decode::<Wire<MessageMirror>>(bytes) else {
            continue;
        };
        let echo = message.parts.echo;
        if echo.verify_echo(accused, engine_session).is_err() {
            continue;
        }
        let encoded = postcard::to_allocvec(&echo).ok()?;
        let seen = by_round.entry(echo.metadata.round).or_default();
        if !seen.contains(&encoded) {
            seen.push(encoded);
        }
    }
    let mut pair = by_round.into_values().find(|seen| seen.len() >= 2)?;
    pair.truncate(2);
    pair.sort();
    let record = EquivocationEvidence {
        protocol,
        broadcasts: [pair[0].clone(), pair[1].clone()],
    };
    check(engine_session, accused, &record).ok()?;
    postcard::to_allocvec(&record).ok()
}

/// The signed echo-broadcast and direct-message parts (postcard) of each protocol message in
/// `messages` (wire bytes), in order; what fault injection forges evidence from.
#[cfg(feature = "fault-injection")]
pub(crate) fn signed_parts(messages: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    messages
        .iter()
        .filter_map(|bytes| match strict_decode::<Wire<MessageMirror>>(bytes) {
            Ok(Wire::Protocol { message, .. }) => Some((
                postcard::to_allocvec(&message.parts.echo).ok()?,
                postcard::to_allocvec(&message.parts.direct).ok()?,
            )),
            _ => None,
        })
        .collect()
}

/// The checks of [`verify_evidence`] against the engine's own session id; the round of the
/// contradicting broadcasts.
fn check(
    engine_session: &[u8],
    offender: &AccountId,
    record: &EquivocationEvidence,
) -> Result<RoundTag, String> {
    let [first, second] = &record.broadcasts;
    if first >= second {
        return Err("the broadcasts are not two, in ascending order".into());
    }
    let first: SignedPart = strict_decode(first)?;
    let second: SignedPart = strict_decode(second)?;
    for part in [&first, &second] {
        part.verify_echo(offender, engine_session)?;
    }
    if first.metadata != second.metadata {
        return Err("the broadcasts are for different rounds".into());
    }
    if first.metadata.round.is_echo {
        return Err("an echo round has no echo broadcast".into());
    }
    if first.payload == second.payload {
        return Err("the broadcasts do not differ".into());
    }
    Ok(first.metadata.round)
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
        /// For each party it named for equivocation, that party's messages as it received them
        /// (wire bytes): with the receiver's own, the two broadcasts that prove it.
        exhibits: Vec<Vec<u8>>,
    },
}

/// manul's `RoundId`: round numbers (innermost first) and whether it is an echo round.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct RoundTag {
    nums: Vec<u8>,
    is_echo: bool,
}

/// manul's `MessageMetadata`: what every signature binds besides the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Metadata {
    session_id: Vec<u8>,
    round: RoundTag,
}

/// manul's tag of an echo-broadcast part in the part hash (normal broadcasts are 1, direct
/// messages 2): what stops a signed part of another kind passing for a broadcast.
const ECHO_PART: u8 = 0;

/// manul's `SignedMessagePart`: a signature, the metadata, an optional serialized payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedPart {
    signature: Vec<u8>,
    metadata: Metadata,
    payload: Option<Vec<u8>>,
}

/// The signed parts of manul's `Message`, in its field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedMessage {
    pub(crate) direct: SignedPart,
    pub(crate) echo: SignedPart,
    pub(crate) normal: SignedPart,
}

/// manul's `Message`: the (unsigned) destination, then the signed parts.
#[derive(Serialize, Deserialize)]
pub(crate) struct MessageMirror {
    /// Not signed, so never part of evidence.
    _destination: AccountId,
    pub(crate) parts: SignedMessage,
}

/// manul's hash of a message part (`ProtocolMessagePartHashable::hash`).
fn part_hash(kind: u8, payload: Option<&[u8]>) -> [u8; 32] {
    let mut digest = Sha256::new_with_prefix(b"ProtocolMessagePart");
    digest.update([kind]);
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
    /// Signed by `signer` as an echo broadcast of `session`.
    fn verify_echo(&self, signer: &AccountId, session: &[u8]) -> Result<(), String> {
        if self.metadata.session_id != session {
            return Err("a message of another session".into());
        }
        let hash = part_hash(ECHO_PART, self.payload.as_deref());
        verify_part_hash(signer, &self.signature, &self.metadata, &hash)
    }
}
