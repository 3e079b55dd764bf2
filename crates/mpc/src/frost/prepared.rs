//! FROST signing in one round, with round-1 nonce commitments made ahead (RFC 9591's
//! preprocessing). A signer makes nonces in advance and hands out their commitments; for a
//! request, the coordinator (the relayer) names one commitment per committee member, and the
//! members exchange only their signature shares.
//!
//! A nonce must sign at most once: the caller deletes it from durable storage before calling
//! [`sign_prepared`]. Every member checks that the commitment named for it is its own, and its
//! signed share statement names the SHA-256 of the signing package it built: a coordinator that
//! named different commitments to different members is caught there, before any share is
//! judged, so it cannot get an honest member blamed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use frost_core::{self as frost, Ciphersuite};
use rand_core::OsRng;
use sigil_crypto::{AccountKeypair, SecretBytes};
use sigil_primitives::AccountId;

use super::{
    Bip340, Derive, Ed25519, FrostShare, Scheme, Session, SignTarget, by_identifier, local, shares,
};
use crate::channel::Channel;
use crate::error::{MpcError, ProtocolKind};

/// A nonce pair made ahead: the secret nonces (which never leave the signer) and their public
/// commitments (which the coordinator names in a signing request).
pub struct PreparedNonce {
    /// frost's serialized `SigningNonces`.
    pub secret: SecretBytes,
    /// frost's serialized `SigningCommitments`.
    pub commitments: Vec<u8>,
}

/// What one-round signing needs besides the share: every member's commitments and this
/// member's own secret nonces.
pub struct PreparedSigning<'a> {
    /// The commitments the coordinator named, one per committee member.
    pub commitments: &'a BTreeMap<AccountId, Vec<u8>>,
    /// This member's secret nonces for the commitments named for it.
    pub own_nonce: &'a [u8],
}

/// Makes `count` nonce pairs for `share`'s scheme.
pub fn prepare_nonces(share: &FrostShare, count: usize) -> Result<Vec<PreparedNonce>, MpcError> {
    match share.scheme {
        Scheme::Ed25519 => prepare_with::<Ed25519>(share, count),
        Scheme::Bip340 => prepare_with::<Bip340>(share, count),
    }
}

fn prepare_with<C: Ciphersuite>(
    share: &FrostShare,
    count: usize,
) -> Result<Vec<PreparedNonce>, MpcError> {
    let key = frost::keys::KeyPackage::<C>::deserialize(&share.key_package).map_err(local)?;
    (0..count)
        .map(|_| {
            let (nonces, commitments) = frost::round1::commit(key.signing_share(), &mut OsRng);
            Ok(PreparedNonce {
                secret: SecretBytes::new(nonces.serialize().map_err(local)?),
                commitments: commitments.serialize().map_err(local)?,
            })
        })
        .collect()
}

/// Signs `target` in one round with the commitments in `prepared`: every member returns the
/// same signature (as [`super::sign`]). A member whose share does not verify is named
/// (`failed_proof`, with evidence); members that built different signing packages stop without
/// blame.
pub async fn sign_prepared<Ch: Channel>(
    share: &FrostShare,
    signer: &AccountKeypair,
    committee: &BTreeSet<AccountId>,
    target: SignTarget<'_>,
    prepared: PreparedSigning<'_>,
    channel: &mut Ch,
    round_timeout: Duration,
) -> Result<Vec<u8>, MpcError> {
    let named: BTreeSet<AccountId> = prepared.commitments.keys().copied().collect();
    if named != *committee || !committee.iter().all(|m| share.parties.contains(m)) {
        return Err(MpcError::Local(
            "the commitments do not name exactly the committee, or it holds non-holders".into(),
        ));
    }
    let members: Vec<AccountId> = committee.iter().copied().collect();
    let mut session = Session::new(
        signer.account_id(),
        &members,
        channel,
        round_timeout,
        ProtocolKind::FrostSigning,
    )?;
    let signing = (share, target, prepared);
    match share.scheme {
        Scheme::Ed25519 => sign_with::<Ed25519, _>(&mut session, signer, signing).await,
        Scheme::Bip340 => sign_with::<Bip340, _>(&mut session, signer, signing).await,
    }
}

async fn sign_with<C: Derive, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    signer: &AccountKeypair,
    (share, target, prepared): (&FrostShare, SignTarget<'_>, PreparedSigning<'_>),
) -> Result<Vec<u8>, MpcError> {
    let ids = session.identifiers::<C>()?;
    let (key, public) = C::derived(share, target.tweak)?;
    let nonces =
        frost::round1::SigningNonces::<C>::deserialize(prepared.own_nonce).map_err(local)?;
    let mut commitments = BTreeMap::new();
    for (member, bytes) in prepared.commitments {
        let decoded = frost::round1::SigningCommitments::<C>::deserialize(bytes)
            .map_err(|e| MpcError::Local(format!("the commitments named for {member}: {e}")))?;
        commitments.insert(*member, decoded);
    }
    if commitments.get(&session.me) != Some(nonces.commitments()) {
        return Err(MpcError::Local(
            "the commitments named for this member are not its own".into(),
        ));
    }
    let package = frost::SigningPackage::new(by_identifier(&ids, commitments), target.message);
    let own = frost::round2::sign(&package, &nonces, &key).map_err(local)?;
    let own = shares::OwnShare::new(
        share.scheme,
        &target,
        (&share.public_package, &public),
        &package,
        own,
    )?;
    shares::exchange(session, signer, own).await
}
