//! FROST key generation with signed packages. Every party signs its round-1 package (its
//! commitment and proof of knowledge) and each round-2 package (its secret share for one
//! recipient) with its account key, bound to the session. A party whose commitment has the wrong
//! degree, whose proof of knowledge fails, or whose share for a recipient does not match its
//! commitment is then named with evidence anyone can re-check ([`verify_dkg_evidence`],
//! `docs/PROTOCOL.md` §8.3): the recipient reveals that share, which costs nothing as the key
//! generation is abandoned. An honest party cannot be framed: what it signed always verifies.

use std::collections::BTreeMap;

use frost_core::keys::dkg::{self, round1, round2};
use frost_core::keys::{SecretShare, VerifiableSecretSharingCommitment};
use frost_core::{self as frost, Ciphersuite, Identifier};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sigil_crypto::{AccountKeypair, frost_keygen_session, verify_signature};
use sigil_primitives::{AccountId, Ed25519Signature};
use zeroize::Zeroizing;

use super::{Bip340, Ed25519, KeyParts, Scheme, Session, Wire, account_of, by_identifier, local};
use crate::channel::Channel;
use crate::error::{FailureReason, Fault, FaultKind, MpcError};
use crate::evidence::strict_decode;

/// Domain separation of a key generation statement's signature.
const DKG_DOMAIN: &[u8] = b"sigil/v1/frost-dkg";

/// What a party signs with each package it sends in a key generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgStatement {
    /// The key generation's session id ([`sigil_crypto::frost_keygen_session`]).
    pub session: [u8; 32],
    /// The scheme of the key being made.
    pub scheme: Scheme,
    /// `None` for the round-1 package (to all); the recipient of a round-2 package.
    pub recipient: Option<AccountId>,
    /// frost's serialization of the package.
    pub package: Vec<u8>,
}

/// A key generation statement with its sender's signature over `"sigil/v1/frost-dkg" ‖
/// postcard(statement)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDkg {
    /// The statement.
    pub statement: DkgStatement,
    /// The sender's account key's signature.
    pub signature: Ed25519Signature,
}

impl SignedDkg {
    pub(super) fn new(statement: DkgStatement, signer: &AccountKeypair) -> Result<Self, MpcError> {
        let signature = signer.sign(&signed_bytes(&statement).map_err(local)?);
        Ok(Self {
            statement,
            signature,
        })
    }

    /// Checks the signature and that the statement belongs to `session` and `scheme` and goes
    /// to `recipient`.
    fn check(
        &self,
        from: &AccountId,
        (session, scheme): (&[u8; 32], Scheme),
        recipient: Option<&AccountId>,
    ) -> Result<(), String> {
        let bytes = signed_bytes(&self.statement)?;
        verify_signature(from, &bytes, &self.signature)
            .map_err(|_| "the package is not signed by its sender".to_string())?;
        let s = &self.statement;
        if &s.session != session || s.scheme != scheme {
            return Err("the package names another session or scheme".into());
        }
        if s.recipient.as_ref() != recipient {
            return Err("the package names another recipient".into());
        }
        Ok(())
    }
}

fn signed_bytes(statement: &DkgStatement) -> Result<Vec<u8>, String> {
    let mut bytes = DKG_DOMAIN.to_vec();
    bytes.extend(postcard::to_allocvec(statement).map_err(|e| e.to_string())?);
    Ok(bytes)
}

/// Proof (postcard-encoded in a `report_keygen_fault`) that the offender sent a bad package in
/// a key generation: what the session id is made of, its signed round-1 package and, when its
/// share is at fault, the signed round-2 package it sent the reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgEvidence {
    /// The ledger's chain id.
    pub chain_id: String,
    /// The key's threshold.
    pub threshold: u16,
    /// The parties, ascending.
    pub parties: Vec<AccountId>,
    /// The offender's round-1 package.
    pub commitment: SignedDkg,
    /// The offender's round-2 package for one recipient, if its share is at fault.
    pub share: Option<SignedDkg>,
}

/// Checks that `evidence` proves that `offender` sent a bad package in the key generation with
/// id `session`: a commitment of the wrong degree, a proof of knowledge that fails, or a secret
/// share that does not match its commitment.
pub fn verify_dkg_evidence(
    session: &[u8; 32],
    offender: &AccountId,
    evidence: &[u8],
) -> Result<(), String> {
    let record: DkgEvidence = strict_decode(evidence)?;
    let scheme = record.commitment.statement.scheme;
    let parties_sorted = record.parties.windows(2).all(|w| w[0] < w[1]);
    let made = frost_keygen_session(
        &record.chain_id,
        scheme.key_scheme(),
        record.threshold,
        &record.parties,
    );
    if !parties_sorted || &made != session {
        return Err("the evidence is of another key generation".into());
    }
    if !record.parties.contains(offender) {
        return Err("the offender is not a party of that key generation".into());
    }
    record.commitment.check(offender, (session, scheme), None)?;
    if let Some(share) = &record.share {
        let recipient = share
            .statement
            .recipient
            .ok_or("the share names no recipient")?;
        if recipient == *offender || !record.parties.contains(&recipient) {
            return Err("the share's recipient is not another party".into());
        }
        share.check(offender, (session, scheme), Some(&recipient))?;
    }
    match scheme {
        Scheme::Ed25519 => packages_fail::<Ed25519>(offender, &record),
        Scheme::Bip340 => packages_fail::<Bip340>(offender, &record),
    }
}

/// Whether the offender's signed packages fail frost's own checks.
fn packages_fail<C: Ciphersuite>(offender: &AccountId, record: &DkgEvidence) -> Result<(), String> {
    let id = |account: &AccountId| Identifier::<C>::derive(account.as_bytes());
    // A signed package that does not decode is a fault in itself.
    let Ok(package) = round1::Package::<C>::deserialize(&record.commitment.statement.package)
    else {
        return Ok(());
    };
    if round1_fault(
        id(offender).map_err(|e| e.to_string())?,
        &package,
        record.threshold,
    )
    .is_some()
    {
        return Ok(());
    }
    let Some(share) = &record.share else {
        return Err("the round-1 package verifies".into());
    };
    let recipient = share
        .statement
        .recipient
        .ok_or("the share names no recipient")?;
    let Ok(secret) = round2::Package::<C>::deserialize(&share.statement.package) else {
        return Ok(());
    };
    match share_check(
        id(&recipient).map_err(|e| e.to_string())?,
        &secret,
        package.commitment(),
    ) {
        Err(frost::Error::InvalidSecretShare { .. }) => Ok(()),
        Ok(()) => Err("the share verifies".into()),
        Err(e) => Err(format!("the share cannot be checked: {e}")),
    }
}

/// What is wrong with a round-1 package from the party with `id`, if anything.
fn round1_fault<C: Ciphersuite>(
    id: Identifier<C>,
    package: &round1::Package<C>,
    threshold: u16,
) -> Option<String> {
    let degree = package.commitment().coefficients().len();
    if degree != usize::from(threshold) {
        return Some(format!(
            "its commitment has {degree} coefficients, not {threshold}"
        ));
    }
    dkg::verify_proof_of_knowledge(id, package.commitment(), package.proof_of_knowledge())
        .err()
        .map(|e| e.to_string())
}

/// frost's check of a secret share for the party with `recipient` against its sender's
/// commitment.
fn share_check<C: Ciphersuite>(
    recipient: Identifier<C>,
    secret: &round2::Package<C>,
    commitment: &VerifiableSecretSharingCommitment<C>,
) -> Result<(), frost::Error<C>> {
    SecretShare::new(recipient, *secret.signing_share(), commitment.clone())
        .verify()
        .map(|_| ())
}

/// Who runs one key generation: the chain, the scheme, the threshold and this party's key.
pub(super) struct Dkg<'a> {
    pub(super) chain_id: &'a str,
    pub(super) scheme: Scheme,
    pub(super) threshold: u16,
    pub(super) signer: &'a AccountKeypair,
}

impl Dkg<'_> {
    fn session(&self, parties: &[AccountId]) -> [u8; 32] {
        frost_keygen_session(
            self.chain_id,
            self.scheme.key_scheme(),
            self.threshold,
            parties,
        )
    }

    fn sign(
        &self,
        session: &[u8; 32],
        to: Option<AccountId>,
        package: Vec<u8>,
    ) -> Result<SignedDkg, MpcError> {
        let statement = DkgStatement {
            session: *session,
            scheme: self.scheme,
            recipient: to,
            package,
        };
        SignedDkg::new(statement, self.signer)
    }

    /// Evidence against `offender` from its round-1 package and, if given, its share for us.
    fn evidence(
        &self,
        parties: &[AccountId],
        commitment: &SignedDkg,
        share: Option<&SignedDkg>,
    ) -> Option<Vec<u8>> {
        let record = DkgEvidence {
            chain_id: self.chain_id.to_string(),
            threshold: self.threshold,
            parties: parties.to_vec(),
            commitment: commitment.clone(),
            share: share.cloned(),
        };
        postcard::to_allocvec(&record).ok()
    }
}

/// Every other party's round-1 package: decoded, and checked as frost checks it.
type Round1<C> = (
    BTreeMap<AccountId, round1::Package<C>>,
    BTreeMap<AccountId, SignedDkg>,
);

/// Runs the key generation in `session` with this party's part `dkg`.
pub(super) async fn run<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    dkg: &Dkg<'_>,
) -> Result<KeyParts, MpcError> {
    let ids = session.identifiers::<C>()?;
    let session_id = dkg.session(&session.parties);
    let max = u16::try_from(session.parties.len()).map_err(|_| local("too many parties"))?;
    let (secret1, package1) =
        dkg::part1::<C, _>(ids[&session.me], max, dkg.threshold, OsRng).map_err(local)?;
    let own1 = dkg.sign(&session_id, None, package1.serialize().map_err(local)?)?;
    let (packages1, received1) = round_one(session, dkg, &ids, &session_id, own1).await?;
    let (secret2, packages2) = dkg::part2(secret1, &by_identifier(&ids, packages1.clone()))
        .map_err(|e| session.blamed(&ids, &e))?;
    for (to, package) in &packages2 {
        let account = account_of(&ids, to)?;
        let bytes = Zeroizing::new(package.serialize().map_err(local)?);
        let signed = dkg.sign(&session_id, Some(account), bytes.to_vec())?;
        session.send(account, Wire::Package2(signed)).await?;
    }
    let me = session.me;
    let received2 = signed(session, "dkg round 2", (&session_id, dkg.scheme), Some(me)).await?;
    let packages2 = decode_signed(session, dkg, &received2, &received1, |b| {
        round2::Package::<C>::deserialize(b)
    })?;
    let (key_package, public_package) = dkg::part3(
        &secret2,
        &by_identifier(&ids, packages1),
        &by_identifier(&ids, packages2),
    )
    .map_err(|e| share_faults(session, dkg, &ids, &e, (&received1, &received2)))?;
    Ok(KeyParts {
        key_package: Zeroizing::new(key_package.serialize().map_err(local)?),
        verifying_key: public_package.verifying_key().serialize().map_err(local)?,
        public_package: public_package.serialize().map_err(local)?,
    })
}

/// Sends this party's signed round-1 package to all, collects the others', checks that everyone
/// holds the same ones (the echo), then decodes and checks them.
async fn round_one<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    dkg: &Dkg<'_>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    session_id: &[u8; 32],
    own: SignedDkg,
) -> Result<Round1<C>, MpcError> {
    session.broadcast(|| Wire::Package1(own.clone())).await?;
    let received = signed(session, "dkg round 1", (session_id, dkg.scheme), None).await?;
    let as_sent = received
        .iter()
        .map(|(from, signed)| (*from, Wire::Package1(signed.clone())))
        .collect();
    session.check_echo(&own.statement.package, &as_sent).await?;
    let packages = decode_signed(session, dkg, &received, &received, |b| {
        round1::Package::<C>::deserialize(b)
    })?;
    round1_faults(session, dkg, ids, &packages, &received)?;
    Ok((packages, received))
}

/// Every other party's signed package of `round`; one whose signature or statement is wrong
/// names its sender (`invalid_message`).
async fn signed<Ch: Channel>(
    session: &mut Session<'_, Ch>,
    round: &'static str,
    run: (&[u8; 32], Scheme),
    recipient: Option<AccountId>,
) -> Result<BTreeMap<AccountId, SignedDkg>, MpcError> {
    let second = recipient.is_some();
    let received = session
        .collect(round, |w| match w {
            Wire::Package1(_) => !second,
            Wire::Package2(_) => second,
            _ => false,
        })
        .await?;
    let mut out = BTreeMap::new();
    let mut faults = Vec::new();
    for (from, wire) in received {
        let (Wire::Package1(signed) | Wire::Package2(signed)) = wire else {
            continue;
        };
        match signed.check(&from, run, recipient.as_ref()) {
            Ok(()) => {
                out.insert(from, signed);
            }
            Err(why) => faults.push(super::fault(from, FaultKind::InvalidMessage, why)),
        }
    }
    if faults.is_empty() {
        Ok(out)
    } else {
        Err(session.failure(round, FailureReason::Misbehaviour, faults))
    }
}

/// Decodes every party's signed package (`received`); one that does not decode names its sender
/// `failed_proof` with evidence: the package itself, or its round-1 package (in `round1`) and
/// the share.
fn decode_signed<C: Ciphersuite, T, Ch: Channel>(
    session: &Session<'_, Ch>,
    dkg: &Dkg<'_>,
    received: &BTreeMap<AccountId, SignedDkg>,
    round1: &BTreeMap<AccountId, SignedDkg>,
    decode: impl Fn(&[u8]) -> Result<T, frost::Error<C>>,
) -> Result<BTreeMap<AccountId, T>, MpcError> {
    let mut out = BTreeMap::new();
    let mut faults = Vec::new();
    for (from, signed) in received {
        match decode(&signed.statement.package) {
            Ok(value) => {
                out.insert(*from, value);
            }
            Err(e) => {
                let share = signed.statement.recipient.is_some().then_some(signed);
                faults.push(Fault {
                    evidence: dkg.evidence(&session.parties, &round1[from], share),
                    ..super::fault(*from, FaultKind::FailedProof, format!("its package: {e}"))
                });
            }
        }
    }
    if faults.is_empty() {
        return Ok(out);
    }
    Err(session.failure("decoding", FailureReason::Misbehaviour, faults))
}

/// Names, with evidence, every party whose commitment has the wrong degree or whose proof of
/// knowledge fails.
fn round1_faults<C: Ciphersuite, Ch: Channel>(
    session: &Session<'_, Ch>,
    dkg: &Dkg<'_>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    packages: &BTreeMap<AccountId, round1::Package<C>>,
    received: &BTreeMap<AccountId, SignedDkg>,
) -> Result<(), MpcError> {
    let faults: Vec<Fault> = packages
        .iter()
        .filter_map(|(from, package)| {
            let why = round1_fault(ids[from], package, dkg.threshold)?;
            Some(Fault {
                evidence: dkg.evidence(&session.parties, &received[from], None),
                ..super::fault(*from, FaultKind::FailedProof, why)
            })
        })
        .collect();
    if faults.is_empty() {
        return Ok(());
    }
    Err(session.failure("dkg round 1", FailureReason::Misbehaviour, faults))
}

/// frost's error in the last step; a share that does not match its sender's commitment names
/// that sender with evidence (its round-1 package and the share it sent us).
fn share_faults<C: Ciphersuite, Ch: Channel>(
    session: &Session<'_, Ch>,
    dkg: &Dkg<'_>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    error: &frost::Error<C>,
    (round1, round2): (
        &BTreeMap<AccountId, SignedDkg>,
        &BTreeMap<AccountId, SignedDkg>,
    ),
) -> MpcError {
    let frost::Error::InvalidSecretShare {
        culprit: Some(culprit),
    } = error
    else {
        return session.blamed(ids, error);
    };
    let Ok(party) = account_of(ids, culprit) else {
        return local(error);
    };
    let evidence = match (round1.get(&party), round2.get(&party)) {
        (Some(commitment), Some(share)) => dkg.evidence(&session.parties, commitment, Some(share)),
        _ => None,
    };
    let fault = Fault {
        evidence,
        ..super::fault(party, FaultKind::FailedProof, error.to_string())
    };
    session.failure("dkg round 2", FailureReason::Misbehaviour, vec![fault])
}

#[cfg(test)]
mod tests {
    use sigil_crypto::NodeSeed;
    use sigil_primitives::KeyScheme;

    use super::*;

    /// A round-1 package signed by the first of three parties, as evidence against it.
    struct Offender {
        key: AccountKeypair,
        parties: Vec<AccountId>,
        session: [u8; 32],
    }

    impl Offender {
        fn new() -> Self {
            let keys: Vec<AccountKeypair> = (0..3)
                .map(|i| NodeSeed::dev(&format!("dkg-{i}")).account_keypair())
                .collect();
            let mut parties: Vec<AccountId> = keys.iter().map(|k| k.account_id()).collect();
            parties.sort();
            let session = frost_keygen_session("sigil-test", KeyScheme::Ed25519, 2, &parties);
            let key = keys.into_iter().next().expect("a party");
            Self {
                key,
                parties,
                session,
            }
        }

        fn package(&self, threshold: u16) -> round1::Package<Ed25519> {
            let id = Identifier::derive(self.key.account_id().as_bytes()).expect("an id");
            dkg::part1::<Ed25519, _>(id, 3, threshold, OsRng)
                .expect("part 1")
                .1
        }

        fn dkg(&self) -> Dkg<'_> {
            Dkg {
                chain_id: "sigil-test",
                scheme: Scheme::Ed25519,
                threshold: 2,
                signer: &self.key,
            }
        }

        fn evidence(&self, package: &round1::Package<Ed25519>) -> Vec<u8> {
            let dkg = self.dkg();
            let signed = dkg
                .sign(&self.session, None, package.serialize().expect("bytes"))
                .expect("signed");
            dkg.evidence(&self.parties, &signed, None)
                .expect("evidence")
        }

        fn verify(&self, evidence: &[u8]) -> Result<(), String> {
            verify_dkg_evidence(&self.session, &self.key.account_id(), evidence)
        }
    }

    #[test]
    fn a_commitment_of_the_wrong_degree_is_proven_by_the_signed_package_alone() {
        let offender = Offender::new();
        offender
            .verify(&offender.evidence(&offender.package(3)))
            .expect("three coefficients where the threshold is two");
        let honest = offender.verify(&offender.evidence(&offender.package(2)));
        assert!(
            honest
                .as_ref()
                .is_err_and(|e| e.contains("round-1 package verifies")),
            "{honest:?}"
        );
    }

    #[test]
    fn a_signed_package_that_does_not_decode_is_proof_in_itself() {
        let offender = Offender::new();
        let dkg = offender.dkg();
        let garbage = dkg
            .sign(&offender.session, None, vec![0xff; 40])
            .expect("signed");
        let evidence = dkg
            .evidence(&offender.parties, &garbage, None)
            .expect("evidence");
        offender.verify(&evidence).expect("an undecodable package");
    }

    #[test]
    fn a_failed_proof_of_knowledge_is_proven_by_the_signed_package_alone() {
        let offender = Offender::new();
        let (mine, other) = (offender.package(2), offender.package(2));
        let forged = round1::Package::new(mine.commitment().clone(), *other.proof_of_knowledge());
        offender
            .verify(&offender.evidence(&forged))
            .expect("another commitment's proof");
    }
}
