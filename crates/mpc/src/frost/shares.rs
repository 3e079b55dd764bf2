//! Signed signature shares. Every member signs its share, with its account key, together with
//! everything the share's check needs (the session, the scheme, the derivation tweak, and the
//! digests of the public key package and the signing package it used). A share that does not
//! verify is then proof against its sender that anyone can re-check ([`verify_share_evidence`],
//! `docs/PROTOCOL.md` §8.3), while an honest member cannot be framed: its own signed inputs
//! always make its share verify.

use std::collections::BTreeMap;

use frost_core::keys::PublicKeyPackage;
use frost_core::round2::SignatureShare;
use frost_core::{self as frost, Ciphersuite, Identifier, SigningPackage};
use serde::{Deserialize, Serialize};
use sha2_v010::{Digest as _, Sha256};
use sigil_crypto::{AccountKeypair, verify_signature};
use sigil_primitives::{AccountId, Ed25519Signature};

use super::{
    Bip340, Derive, Ed25519, Scheme, Session, Wire, account_of, by_identifier, fault, local,
};
use crate::channel::Channel;
use crate::error::{FailureReason, Fault, FaultKind, MpcError};
use crate::evidence::strict_decode;

/// Domain separation of a share statement's signature.
const SHARE_DOMAIN: &[u8] = b"sigil/v1/frost-share";

/// What a member signs with its signature share: the share and, by SHA-256, what it was
/// computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareStatement {
    /// The signing session id.
    pub session: [u8; 32],
    /// The key's scheme.
    pub scheme: Scheme,
    /// The user key's derivation tweak below the network key.
    pub tweak: [u8; 32],
    /// SHA-256 of the network key's public key package (frost's serialization, underived).
    pub public_package: [u8; 32],
    /// SHA-256 of the signing package (frost's serialization: commitments and message).
    pub signing_package: [u8; 32],
    /// The signature share (frost's serialization).
    pub share: Vec<u8>,
}

impl ShareStatement {
    /// The bytes the sender's account key signs: the domain, then the statement's postcard.
    fn signed_bytes(&self) -> Result<Vec<u8>, MpcError> {
        let mut bytes = SHARE_DOMAIN.to_vec();
        bytes.extend(postcard::to_allocvec(self).map_err(local)?);
        Ok(bytes)
    }
}

/// A share statement with its sender's signature, as it travels in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SignedShare {
    pub(super) statement: ShareStatement,
    pub(super) signature: Ed25519Signature,
}

impl SignedShare {
    pub(super) fn new(
        statement: ShareStatement,
        signer: &AccountKeypair,
    ) -> Result<Self, MpcError> {
        let signature = signer.sign(&statement.signed_bytes()?);
        Ok(Self {
            statement,
            signature,
        })
    }

    fn verify(&self, from: &AccountId) -> Result<(), String> {
        let bytes = self.statement.signed_bytes().map_err(|e| e.to_string())?;
        verify_signature(from, &bytes, &self.signature)
            .map_err(|_| "the share statement is not signed by its sender".into())
    }
}

/// Proof (postcard-encoded in a `failed_proof` report) that the signer of `statement` sent a
/// signature share that does not verify: its signed statement and the two packages the
/// statement names by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareEvidence {
    /// The offender's statement.
    pub statement: ShareStatement,
    /// The offender's signature over it.
    pub signature: Ed25519Signature,
    /// The public key package the statement names.
    pub public_package: Vec<u8>,
    /// The signing package the statement names.
    pub signing_package: Vec<u8>,
}

/// Checks that `evidence` proves that `offender` sent, in signing session `session`, a signature
/// share that does not verify against the inputs it signed.
pub fn verify_share_evidence(
    session: &[u8; 32],
    offender: &AccountId,
    evidence: &[u8],
) -> Result<(), String> {
    let record: ShareEvidence = strict_decode(evidence)?;
    let statement = &record.statement;
    if &statement.session != session {
        return Err("the share statement is of another session".into());
    }
    SignedShare {
        statement: statement.clone(),
        signature: record.signature,
    }
    .verify(offender)?;
    if sha256(&record.public_package) != statement.public_package
        || sha256(&record.signing_package) != statement.signing_package
    {
        return Err("the packages are not the ones the statement names".into());
    }
    match statement.scheme {
        Scheme::Ed25519 => share_fails::<Ed25519>(offender, &record),
        Scheme::Bip340 => share_fails::<Bip340>(offender, &record),
    }
}

/// Whether the offender's share fails frost's own check against the packages it signed.
fn share_fails<C: Derive>(offender: &AccountId, record: &ShareEvidence) -> Result<(), String> {
    let undecodable = |what: &str, e: frost::Error<C>| format!("the {what} does not decode: {e}");
    let public = PublicKeyPackage::<C>::deserialize(&record.public_package)
        .map_err(|e| undecodable("public key package", e))?;
    let public = C::derive_public(public, &record.statement.tweak).map_err(|e| e.to_string())?;
    let package = SigningPackage::<C>::deserialize(&record.signing_package)
        .map_err(|e| undecodable("signing package", e))?;
    let share = SignatureShare::<C>::deserialize(&record.statement.share)
        .map_err(|e| undecodable("share", e))?;
    let id = Identifier::<C>::derive(offender.as_bytes()).map_err(|e| e.to_string())?;
    let verifying_share = public
        .verifying_shares()
        .get(&id)
        .ok_or("the offender holds no share in that public key package")?;
    if package.signing_commitment(&id).is_none() {
        return Err("the offender has no commitments in that signing package".into());
    }
    let verdict = frost::verify_signature_share(
        id,
        verifying_share,
        &share,
        &package,
        public.verifying_key(),
    );
    match verdict {
        Err(frost::Error::InvalidSignatureShare { .. }) => Ok(()),
        Ok(()) => Err("the share verifies".into()),
        Err(e) => Err(format!("the share cannot be checked: {e}")),
    }
}

/// What a member's own share was computed over.
pub(super) struct OwnShare<'a, C: Ciphersuite> {
    /// The statement this member signs (its share included).
    pub(super) statement: ShareStatement,
    /// The network key's public key package as held (what the statement's digest names).
    pub(super) public_bytes: &'a [u8],
    /// The derived public key package the shares are checked against.
    pub(super) public: &'a PublicKeyPackage<C>,
    /// The signing package.
    pub(super) package: &'a SigningPackage<C>,
    /// This member's share.
    pub(super) share: SignatureShare<C>,
}

impl<'a, C: Ciphersuite> OwnShare<'a, C> {
    /// This member's `share` of signing `target` with the network key's `public_bytes` (derived:
    /// `public`) over `package`.
    pub(super) fn new(
        scheme: Scheme,
        target: &super::SignTarget<'_>,
        (public_bytes, public): (&'a [u8], &'a PublicKeyPackage<C>),
        package: &'a SigningPackage<C>,
        share: SignatureShare<C>,
    ) -> Result<Self, MpcError> {
        let statement = ShareStatement {
            session: *target.session,
            scheme,
            tweak: *target.tweak,
            public_package: sha256(public_bytes),
            signing_package: sha256(&package.serialize().map_err(local)?),
            share: share.serialize(),
        };
        Ok(Self {
            statement,
            public_bytes,
            public,
            package,
            share,
        })
    }
}

/// Sends this member's signed share to all, checks every other member's signed statement and
/// aggregates with frost's cheater detection: a member whose share does not verify is named
/// `failed_proof` with evidence; one whose statement is not signed, or names other inputs than
/// this member's, `invalid_message`; members that built different signing packages stop the
/// session without blame (someone gave them different commitments).
pub(super) async fn exchange<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    signer: &AccountKeypair,
    own: OwnShare<'_, C>,
) -> Result<Vec<u8>, MpcError> {
    let ids = session.identifiers::<C>()?;
    let signed = SignedShare::new(own.statement.clone(), signer)?;
    session
        .broadcast(|| Wire::SignedShare(signed.clone()))
        .await?;
    let received = session
        .collect("signature shares", |w| matches!(w, Wire::SignedShare(_)))
        .await?;
    let received: BTreeMap<AccountId, SignedShare> = received
        .into_iter()
        .filter_map(|(from, wire)| match wire {
            Wire::SignedShare(signed) => Some((from, signed)),
            _ => None,
        })
        .collect();
    check_statements(session, &own.statement, &received)?;
    let mut shares = BTreeMap::new();
    for (from, signed) in &received {
        let share = SignatureShare::<C>::deserialize(&signed.statement.share).map_err(|e| {
            let fault = fault(*from, FaultKind::InvalidMessage, format!("its share: {e}"));
            session.failure("signature shares", FailureReason::Misbehaviour, vec![fault])
        })?;
        shares.insert(*from, share);
    }
    shares.insert(session.me, own.share);
    match frost::aggregate(own.package, &by_identifier(&ids, shares), own.public) {
        Ok(signature) => signature.serialize().map_err(local),
        Err(error) => Err(blame_shares(session, &ids, &error, &received, &own)),
    }
}

/// Names the members whose statements are unsigned or name other inputs; stops without blame
/// when only the signing packages differ.
fn check_statements<Ch: Channel>(
    session: &Session<'_, Ch>,
    own: &ShareStatement,
    received: &BTreeMap<AccountId, SignedShare>,
) -> Result<(), MpcError> {
    let mut faults = Vec::new();
    let mut other_package = false;
    for (from, signed) in received {
        let theirs = &signed.statement;
        let why = if let Err(why) = signed.verify(from) {
            why
        } else if (
            theirs.session,
            theirs.scheme,
            theirs.tweak,
            theirs.public_package,
        ) != (own.session, own.scheme, own.tweak, own.public_package)
        {
            "its share statement names another session, key or public key package".into()
        } else {
            other_package |= theirs.signing_package != own.signing_package;
            continue;
        };
        faults.push(fault(*from, FaultKind::InvalidMessage, why));
    }
    if !faults.is_empty() {
        return Err(session.failure("signature shares", FailureReason::Misbehaviour, faults));
    }
    if other_package {
        return Err(MpcError::Local(
            "members built different signing packages: someone gave them different commitments"
                .into(),
        ));
    }
    Ok(())
}

/// frost's aggregation error, naming each member whose share does not verify with the evidence
/// that proves it.
fn blame_shares<C: Ciphersuite, Ch: Channel>(
    session: &Session<'_, Ch>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    error: &frost::Error<C>,
    received: &BTreeMap<AccountId, SignedShare>,
    own: &OwnShare<'_, C>,
) -> MpcError {
    let culprits = error.culprits();
    if culprits.is_empty() {
        return MpcError::Local(error.to_string());
    }
    let signing_package = own.package.serialize().unwrap_or_default();
    let faults = culprits
        .iter()
        .filter_map(|id| account_of(ids, id).ok())
        .filter_map(|party| Some((party, received.get(&party)?)))
        .map(|(party, signed)| {
            let evidence = ShareEvidence {
                statement: signed.statement.clone(),
                signature: signed.signature,
                public_package: own.public_bytes.to_vec(),
                signing_package: signing_package.clone(),
            };
            Fault {
                evidence: postcard::to_allocvec(&evidence).ok(),
                ..fault(party, FaultKind::FailedProof, error.to_string())
            }
        })
        .collect();
    session.failure("verification", FailureReason::Misbehaviour, faults)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
