//! Who is to blame for a failed phase, and for what: pure functions of what manul reported,
//! what this party saw itself and what the parties that stopped said.
//!
//! manul 0.2.1 keeps the kind of a provable error private (its evidence enum is not exported,
//! and `Evidence` only serialises for protocols whose marker type does, which synedrion's do
//! not), so the kind is read from the description manul writes for it: [`classify`] is the one
//! place that reads manul's text. Unprovable errors and missing messages come typed.

use std::collections::BTreeMap;

use manul::{
    protocol::Protocol,
    session::{Evidence, SessionReport},
};
use sigil_primitives::AccountId;

use crate::{
    error::{Fault, FaultKind, MpcError},
    party::{Party, SigilSession},
};

/// Parties that stopped a phase, with the faults they named.
pub(crate) type Aborted = BTreeMap<AccountId, Vec<(AccountId, FaultKind)>>;

/// How manul 0.2.1 begins the description of a protocol's own provable error (a failed proof
/// or consistency check): `Evidence::new_protocol_error` writes `Protocol error: {error}`.
pub(crate) const PROTOCOL_ERROR_PREFIX: &str = "Protocol error: ";

/// manul 0.2.1's description of a party whose echo broadcast differs between what it sent us
/// and what another party echoed (`Evidence::new_echo_round_error` on
/// `EchoRoundError::MismatchedBroadcasts`).
pub(crate) const MISMATCHED_BROADCASTS: &str =
    "Echo round error: The echoed message is different from the originally received one";

/// The kind of fault manul's description of a provable error names. Every other provable error
/// of manul 0.2.1 (an undecodable message part, an invalid message among the echoed ones) is an
/// invalid message.
pub(crate) fn classify(description: &str) -> FaultKind {
    if description.starts_with(MISMATCHED_BROADCASTS) {
        FaultKind::Equivocation
    } else if description.starts_with(PROTOCOL_ERROR_PREFIX) {
        FaultKind::FailedProof
    } else {
        FaultKind::InvalidMessage
    }
}

/// Which of two findings against one party is kept: the higher.
pub(crate) fn severity(kind: FaultKind) -> u8 {
    match kind {
        FaultKind::Unresponsive => 0,
        FaultKind::InvalidMessage => 1,
        FaultKind::FailedProof => 2,
        FaultKind::Equivocation | FaultKind::ConflictingVotes => 3,
    }
}

/// The faults this party found itself (not those it was told of), for its abort notice.
pub(crate) fn findings(error: &MpcError) -> Vec<(AccountId, FaultKind)> {
    match error {
        MpcError::Failed(failure) => failure
            .faults
            .iter()
            .filter(|fault| fault.reported_by.is_none())
            .map(|fault| (fault.party, fault.kind))
            .collect(),
        _ => Vec::new(),
    }
}

/// What this party observed of a failed phase, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// manul's provable errors: the guilty party and manul's description, in manul's order.
    pub(crate) provable: Vec<(AccountId, String)>,
    /// manul's unprovable errors, by sender.
    pub(crate) unprovable: Vec<(AccountId, String)>,
    /// Messages that did not decode, by sender.
    pub(crate) undecodable: BTreeMap<AccountId, String>,
    /// Parties that sent nothing, by the round they sent nothing in.
    pub(crate) missing: Vec<(String, Vec<AccountId>)>,
}

impl Observed {
    /// What `report` and the undecodable messages (`local_faults`) show.
    pub(crate) fn of<P: Protocol<Party>>(
        report: &SessionReport<P, SigilSession>,
        local_faults: &BTreeMap<AccountId, String>,
    ) -> Self {
        // Keyed by the sender of the message that showed the error; for a mismatched echo that
        // is the honest echoer, so the accused is the evidence's guilty party.
        let provable = report.provable_errors.values().map(accusation).collect();
        let unprovable = report
            .unprovable_errors
            .iter()
            .map(|(party, error)| (party.0, error.to_string()))
            .collect();
        let missing = report
            .missing_messages
            .iter()
            .map(|(round, parties)| (round.to_string(), parties.iter().map(|p| p.0).collect()))
            .collect();
        Self {
            provable,
            unprovable,
            undecodable: local_faults.clone(),
            missing,
        }
    }
}

/// The accused of a piece of manul evidence, and manul's description of the offence.
fn accusation<P: Protocol<Party>>(evidence: &Evidence<P, SigilSession>) -> (AccountId, String) {
    (
        evidence.guilty_party().0,
        evidence.description().to_string(),
    )
}

/// Names every party at fault, at most once each, most serious kind first: proven misbehaviour
/// (with the evidence `evidence` makes for it), then invalid messages, then silence (this
/// party's own observation, then what parties that stopped reported). `me` is this party.
pub(crate) fn faults(
    me: &AccountId,
    observed: &Observed,
    aborted: &Aborted,
    mut evidence: impl FnMut(FaultKind, &AccountId) -> Option<Vec<u8>>,
) -> Vec<Fault> {
    let mut faults: BTreeMap<AccountId, Fault> = BTreeMap::new();
    for (party, description) in &observed.provable {
        let kind = classify(description);
        if faults
            .get(party)
            .is_some_and(|known| severity(known.kind) >= severity(kind))
        {
            continue;
        }
        let evidence = evidence(kind, party);
        let fault = fault(*party, kind, description.clone(), evidence);
        faults.insert(*party, fault);
    }
    let unprovable = observed
        .unprovable
        .iter()
        .map(|(party, reason)| (party, reason));
    let invalid = unprovable.chain(&observed.undecodable);
    for (party, reason) in invalid {
        faults
            .entry(*party)
            .or_insert_with(|| fault(*party, FaultKind::InvalidMessage, reason.clone(), None));
    }
    silent(me, observed, aborted, &mut faults);
    faults.into_values().collect()
}

/// Adds the parties that sent nothing, unless they already stand accused of more.
fn silent(
    me: &AccountId,
    observed: &Observed,
    aborted: &Aborted,
    faults: &mut BTreeMap<AccountId, Fault>,
) {
    // A party that stopped because it named someone is not silent by its own fault.
    let stopped_for_cause =
        |party: &AccountId| aborted.get(party).is_some_and(|named| !named.is_empty());
    // Nor, to our own eyes, is one that stopped naming nobody once another had named someone:
    // an honest party that stops on another's notice may have nothing of its own to name. A
    // lone notice that names nobody leaves its sender silent.
    let cause_given = aborted.values().any(|named| !named.is_empty());
    let excused = |party: &AccountId| cause_given && aborted.contains_key(party);
    for (round, parties) in &observed.missing {
        for party in parties.iter().filter(|party| !excused(party)) {
            faults.entry(*party).or_insert_with(|| {
                let description = format!("sent nothing in round {round}");
                fault(*party, FaultKind::Unresponsive, description, None)
            });
        }
    }
    // Silence toward another party cannot be seen from here: take its word (unproven, and
    // marked as such).
    for (reporter, named) in aborted {
        for (party, kind) in named {
            if *kind == FaultKind::Unresponsive && party != me && !stopped_for_cause(party) {
                faults.entry(*party).or_insert_with(|| Fault {
                    reported_by: Some(*reporter),
                    ..fault(
                        *party,
                        FaultKind::Unresponsive,
                        format!("reported unresponsive by {reporter}"),
                        None,
                    )
                });
            }
        }
    }
}

/// A fault this party found itself.
fn fault(
    party: AccountId,
    kind: FaultKind,
    description: String,
    evidence: Option<Vec<u8>>,
) -> Fault {
    Fault {
        party,
        kind,
        description,
        evidence,
        reported_by: None,
    }
}

#[cfg(test)]
mod tests {
    use manul::protocol::{
        DirectMessageError, EchoBroadcastError, NormalBroadcastError, RemoteError,
    };

    use super::*;

    fn party(n: u8) -> AccountId {
        sigil_crypto::NodeSeed::dev(&format!("blame-{n}"))
            .account_keypair()
            .account_id()
    }

    /// Who is named for what, by whom, with what evidence; in the order of the parties.
    type Named = BTreeMap<AccountId, (FaultKind, Option<AccountId>, Option<Vec<u8>>)>;

    fn named(faults: &[Fault]) -> Named {
        faults
            .iter()
            .map(|f| (f.party, (f.kind, f.reported_by, f.evidence.clone())))
            .collect()
    }

    #[test]
    fn manuls_provable_error_texts_name_their_kinds() {
        // Written by manul 0.2.1's own types; the protocol-error and echo texts are checked
        // against real sessions in `manul_contract`.
        let invalid = [
            DirectMessageError::from("bad".to_string()).to_string(),
            EchoBroadcastError::from("bad".to_string()).to_string(),
            NormalBroadcastError::from("bad".to_string()).to_string(),
            "Echo round error: Invalid message received among the ones echoed".to_string(),
        ];
        for description in invalid {
            assert_eq!(
                classify(&description),
                FaultKind::InvalidMessage,
                "{description}"
            );
        }
        let proof = format!("{PROTOCOL_ERROR_PREFIX}Presigning proof failed");
        assert_eq!(classify(&proof), FaultKind::FailedProof);
        assert_eq!(classify(MISMATCHED_BROADCASTS), FaultKind::Equivocation);
        // An unprovable error's text never names a proof failure, whatever it says.
        let remote = RemoteError::new("Protocol error: made up").to_string();
        assert_eq!(classify(&remote), FaultKind::InvalidMessage);
    }

    #[test]
    fn the_most_serious_finding_against_a_party_is_kept_with_its_evidence() {
        let observed = Observed {
            provable: vec![
                (party(1), "Direct message error: bad".into()),
                (party(1), MISMATCHED_BROADCASTS.into()),
                (party(1), format!("{PROTOCOL_ERROR_PREFIX}proof")),
            ],
            unprovable: vec![
                (party(1), "Remote error: x".into()),
                (party(2), "Remote error: y".into()),
            ],
            missing: vec![("Round 1".into(), vec![party(1), party(3)])],
            ..Observed::default()
        };
        let faults = faults(&party(0), &observed, &Aborted::new(), |kind, accused| {
            assert_eq!(*accused, party(1));
            Some(vec![severity(kind)])
        });
        let expected = Named::from([
            (party(1), (FaultKind::Equivocation, None, Some(vec![3]))),
            (party(2), (FaultKind::InvalidMessage, None, None)),
            (party(3), (FaultKind::Unresponsive, None, None)),
        ]);
        assert_eq!(named(&faults), expected);
        let silent = faults
            .iter()
            .find(|f| f.party == party(3))
            .map(|f| &f.description);
        assert_eq!(
            silent.map(String::as_str),
            Some("sent nothing in round Round 1")
        );
        assert_eq!(findings(&failed(faults)).len(), 3);
    }

    #[test]
    fn silence_is_excused_by_a_stop_for_cause_and_reported_silence_is_marked() {
        let observed = Observed {
            missing: vec![("Round 2".into(), vec![party(1), party(2)])],
            undecodable: BTreeMap::from([(party(4), "garbage".into())]),
            ..Observed::default()
        };
        let aborted = Aborted::from([
            // Party 1 stopped because party 3 sent it nothing; it also names us, which we ignore.
            (
                party(1),
                vec![
                    (party(3), FaultKind::Unresponsive),
                    (party(0), FaultKind::Unresponsive),
                ],
            ),
            // Party 2 stopped naming nobody, after party 1 had named someone: excused too.
            (party(2), vec![]),
        ]);
        let faults = faults(&party(0), &observed, &aborted, |_, _| {
            panic!("nothing proven")
        });
        let expected = Named::from([
            (party(3), (FaultKind::Unresponsive, Some(party(1)), None)),
            (party(4), (FaultKind::InvalidMessage, None, None)),
        ]);
        assert_eq!(named(&faults), expected);
        // The abort notice carries only what this party saw itself.
        let own: BTreeMap<_, _> = findings(&failed(faults)).into_iter().collect();
        let expected = [(party(4), FaultKind::InvalidMessage)];
        assert_eq!(own, BTreeMap::from(expected));
        assert!(findings(&MpcError::Local("x".into())).is_empty());
    }

    #[test]
    fn a_party_that_stops_on_anothers_notice_naming_nobody_is_not_silent() {
        let observed = Observed {
            missing: vec![("Round 1 (echo)".into(), vec![party(1), party(2)])],
            ..Observed::default()
        };
        // Party 1 named itself (an equivocator's own notice); party 2, stopping on it, had
        // nothing to name.
        let cascade = Aborted::from([
            (party(1), vec![(party(1), FaultKind::Equivocation)]),
            (party(2), vec![]),
        ]);
        let excused = faults(&party(0), &observed, &cascade, |_, _| None);
        assert_eq!(named(&excused), Named::new());
        // Alone, a notice that names nobody excuses nothing.
        let alone = Aborted::from([(party(2), vec![])]);
        let silent = faults(&party(0), &observed, &alone, |_, _| None);
        let expected = Named::from([
            (party(1), (FaultKind::Unresponsive, None, None)),
            (party(2), (FaultKind::Unresponsive, None, None)),
        ]);
        assert_eq!(named(&silent), expected);
    }

    fn failed(faults: Vec<Fault>) -> MpcError {
        MpcError::Failed(Box::new(crate::error::SessionFailure {
            protocol: crate::error::ProtocolKind::Signing,
            reason: crate::error::FailureReason::Misbehaviour,
            round: "Round 1".into(),
            faults,
        }))
    }
}
