//! Fault injection (feature `fault-injection`): a party told to misbehave in one of the ways
//! honest parties must catch and name, or to frame an honest one. Every misbehaviour is real:
//! the messages are what a faulty party would send, signed with its account key, so evidence
//! against it holds; a framer's forgeries are made of the victim's real messages.

use std::{cell::Cell, fmt, str::FromStr};

use manul::protocol::{BoxedRound, EntryPoint, LocalError, RoundId};
use rand_core::CryptoRngCore;
use sigil_primitives::AccountId;

use crate::{
    error::{FaultKind, ProtocolKind},
    party::Party,
};

/// A misbehaviour a party can be told to commit (feature `fault-injection` only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectedFault {
    /// Sends no protocol message at all (still receives).
    Silent,
    /// Never sends anything to this one peer.
    DropTo(AccountId),
    /// Corrupts the payloads of its signed messages (the last byte of each serialized payload,
    /// before signing).
    Corrupt,
    /// Sends well-formed, correctly signed messages whose proofs do not verify: it computes
    /// every proof under a wrong session binding. Acts where synedrion binds proofs to the
    /// session (key init, aux data, signing); key resharing in synedrion 0.3 has no such proof,
    /// so there the party behaves honestly.
    BadProof,
    /// Sends different, each validly signed, first-round broadcasts to different peers (from a
    /// second, independent run of the protocol). Needs at least two peers to be seen.
    Equivocate,
    /// The attacker's side of blame: takes part honestly, keeps what this peer sends it, and
    /// after each session shared with it files false reports against it (see
    /// [`forgeries`]).
    Frame(AccountId),
    /// The node exits at once after it deleted a nonce made ahead for one-round FROST signing,
    /// before its signature share leaves (tests that a nonce never signs twice).
    CrashAfterNonce,
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent => f.write_str("silent"),
            Self::DropTo(peer) => write!(f, "drop-to:{peer}"),
            Self::Corrupt => f.write_str("corrupt"),
            Self::BadProof => f.write_str("bad-proof"),
            Self::Equivocate => f.write_str("equivocate"),
            Self::Frame(peer) => write!(f, "frame:{peer}"),
            Self::CrashAfterNonce => f.write_str("crash-after-nonce"),
        }
    }
}

impl FromStr for InjectedFault {
    type Err = String;

    /// Parses `silent`, `drop-to:<account id>`, `corrupt`, `bad-proof`, `equivocate`,
    /// `frame:<account id>` or `crash-after-nonce`.
    fn from_str(text: &str) -> Result<Self, String> {
        let peer = |name: &str, peer: &str| {
            peer.parse::<AccountId>()
                .map_err(|error| format!("{name}: bad account id {peer:?}: {error}"))
        };
        match text {
            "silent" => Ok(Self::Silent),
            "corrupt" => Ok(Self::Corrupt),
            "bad-proof" => Ok(Self::BadProof),
            "equivocate" => Ok(Self::Equivocate),
            "crash-after-nonce" => Ok(Self::CrashAfterNonce),
            _ => match text.split_once(':') {
                Some(("drop-to", id)) => peer("drop-to", id).map(Self::DropTo),
                Some(("frame", id)) => peer("frame", id).map(Self::Frame),
                _ => Err(format!(
                    "unknown fault {text:?}: expected silent, drop-to:<account id>, corrupt, \
                     bad-proof, equivocate, frame:<account id> or crash-after-nonce"
                )),
            },
        }
    }
}

thread_local! {
    static CORRUPTING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with payload corruption switched on for this thread when `corrupt` is set.
pub(crate) fn with_corruption<R>(corrupt: bool, f: impl FnOnce() -> R) -> R {
    CORRUPTING.with(|flag| flag.set(corrupt));
    let result = f();
    CORRUPTING.with(|flag| flag.set(false));
    result
}

/// Flips the last byte of a serialized message payload (never of a signature).
pub(crate) fn maybe_corrupt<T>(bytes: &mut [u8]) {
    // Payloads reach the wire format type-erased; signatures arrive as their own type.
    let is_payload = std::any::type_name::<T>().contains("erased_serde");
    if is_payload
        && CORRUPTING.with(Cell::get)
        && let Some(last) = bytes.last_mut()
    {
        *last ^= 0x55;
    }
}

/// An entry point whose rounds see other shared randomness than the session's. synedrion
/// binds its proofs (Fiat-Shamir challenges, commitments) to the shared randomness, so every
/// proof this party makes is well-formed and signed but fails the others' verification, as a
/// proof replayed from another session would.
pub(crate) struct Misbound<EP>(pub(crate) EP);

impl<EP: EntryPoint<Party>> EntryPoint<Party> for Misbound<EP> {
    type Protocol = EP::Protocol;

    fn entry_round_id() -> RoundId {
        EP::entry_round_id()
    }

    fn make_round(
        self,
        rng: &mut dyn CryptoRngCore,
        shared_randomness: &[u8],
        id: &Party,
    ) -> Result<BoxedRound<Party, Self::Protocol>, LocalError> {
        let mut wrong = b"sigil/fault-injection/bad-proof/".to_vec();
        wrong.extend_from_slice(shared_randomness);
        self.0.make_round(rng, &wrong, id)
    }
}

/// One false report a framing signer files: what it claims, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgery {
    /// Which attack, for logs and metrics.
    pub variant: &'static str,
    /// The offence claimed.
    pub kind: FaultKind,
    /// The evidence offered.
    pub evidence: Vec<u8>,
}

/// The false reports a framer makes against a victim from the victim's real messages of a
/// shared session (`heard`, wire bytes as received) and of an earlier one (`earlier`): its
/// signed messages as proof of a failed proof or an invalid message, and as equivocation its
/// broadcast paired with its direct message, with its broadcast of another round and with its
/// broadcast of another session; and a bare accusation of each kind.
pub fn forgeries(heard: &[Vec<u8>], earlier: &[Vec<u8>]) -> Vec<Forgery> {
    let ours = crate::evidence::signed_parts(heard);
    let theirs = crate::evidence::signed_parts(earlier);
    let mut forged = Vec::new();
    let mut forge = |variant, kind, evidence: Vec<u8>| {
        forged.push(Forgery {
            variant,
            kind,
            evidence,
        })
    };
    if let Some(first) = heard.first() {
        forge(
            "own-message-as-failed-proof",
            FaultKind::FailedProof,
            first.clone(),
        );
        forge(
            "own-message-as-invalid",
            FaultKind::InvalidMessage,
            first.clone(),
        );
    }
    let pair = |a: &Vec<u8>, b: &Vec<u8>| {
        let mut broadcasts = [a.clone(), b.clone()];
        broadcasts.sort();
        postcard::to_allocvec(&crate::EquivocationEvidence {
            protocol: ProtocolKind::Signing,
            broadcasts,
        })
        .unwrap_or_default()
    };
    if let Some((echo, direct)) = ours.first().map(|m| (&m.0, &m.1)) {
        forge(
            "direct-message-as-broadcast",
            FaultKind::Equivocation,
            pair(echo, direct),
        );
    }
    if let [first, second, ..] = ours.as_slice() {
        forge(
            "broadcasts-of-two-rounds",
            FaultKind::Equivocation,
            pair(&first.0, &second.0),
        );
    }
    if let (Some(now), Some(before)) = (ours.first(), theirs.first()) {
        forge(
            "broadcasts-of-two-sessions",
            FaultKind::Equivocation,
            pair(&now.0, &before.0),
        );
    }
    for kind in [
        FaultKind::Unresponsive,
        FaultKind::InvalidMessage,
        FaultKind::FailedProof,
        FaultKind::Equivocation,
    ] {
        forge("bare-accusation", kind, Vec::new());
    }
    forged
}
