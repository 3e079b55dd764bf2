//! Fault injection (feature `fault-injection`): a party told to misbehave in one of the ways
//! honest parties must catch and name. Every misbehaviour is real: the messages are what a
//! faulty party would send, signed with its account key, so evidence against it holds.

use std::{cell::Cell, fmt, str::FromStr};

use manul::protocol::{BoxedRound, EntryPoint, LocalError, RoundId};
use rand_core::CryptoRngCore;
use sigil_primitives::AccountId;

use crate::party::Party;

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
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent => f.write_str("silent"),
            Self::DropTo(peer) => write!(f, "drop-to:{peer}"),
            Self::Corrupt => f.write_str("corrupt"),
            Self::BadProof => f.write_str("bad-proof"),
            Self::Equivocate => f.write_str("equivocate"),
        }
    }
}

impl FromStr for InjectedFault {
    type Err = String;

    /// Parses `silent`, `drop-to:<account id>`, `corrupt`, `bad-proof` or `equivocate`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "silent" => Ok(Self::Silent),
            "corrupt" => Ok(Self::Corrupt),
            "bad-proof" => Ok(Self::BadProof),
            "equivocate" => Ok(Self::Equivocate),
            _ => match text.strip_prefix("drop-to:") {
                Some(peer) => peer
                    .parse()
                    .map(Self::DropTo)
                    .map_err(|error| format!("drop-to: bad account id {peer:?}: {error}")),
                None => Err(format!(
                    "unknown fault {text:?}: expected silent, drop-to:<account id>, corrupt, \
                     bad-proof or equivocate"
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
