//! Rotation of a FROST key to a new set of parties at the same threshold, with frost's own
//! functions. First repair (frost's repairable threshold scheme): old parties, the helpers,
//! give each joining party a share of the unchanged key, which the joiner checks against the
//! verifying share interpolated from the group's public package. Then refresh (a DKG of a zero
//! sharing among the new set): every new share changes, so the shares of parties that left no
//! longer combine with them. The group key, and every user key derived from it, stay the same.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use frost_core::keys::repairable::{Delta, Sigma};
use frost_core::keys::{KeyPackage, PublicKeyPackage, VerifyingShare, dkg, refresh, repairable};
use frost_core::{self as frost, Ciphersuite, Group as _, Identifier};
use rand_core::OsRng;
use sigil_primitives::{AccountId, VerifyingKey};
use zeroize::Zeroizing;

use super::{
    Bip340, Ed25519, FrostShare, KeyParts, Packages, Scheme, Session, Wire, account_of,
    by_identifier, local, tagged_network_key,
};
use crate::channel::Channel;
use crate::error::{FailureReason, MpcError, ProtocolKind};

/// What a rotation moves: `scheme`'s network key from its holders to `new_parties`.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The key's scheme.
    pub scheme: Scheme,
    /// The key's tagged network key, which must not change.
    pub network_key: VerifyingKey,
    /// Old parties that enrol the joiners; at least `threshold`, all holding shares.
    pub helpers: &'a BTreeSet<AccountId>,
    /// The parties that hold the key afterwards: helpers that stay and joiners.
    pub new_parties: &'a BTreeSet<AccountId>,
    /// The key's threshold, which a rotation keeps.
    pub threshold: u16,
}

/// Runs this party's part of `plan`: a helper passes its old `share`; a joiner passes none.
/// Returns the new share of a party in the new set, `None` for a helper that leaves. A failed
/// check stops the rotation (a joiner's repaired share that does not match the group's public
/// package, a refresh share that does not verify); parties sending nothing are named.
pub async fn rotate<Ch: Channel>(
    share: Option<&FrostShare>,
    me: AccountId,
    plan: &Rotation<'_>,
    channel: &mut Ch,
    round_timeout: Duration,
) -> Result<Option<FrostShare>, MpcError> {
    check_plan(share, me, plan)?;
    let parties: Vec<AccountId> = plan.helpers.union(plan.new_parties).copied().collect();
    let mut session = Session::new(
        me,
        &parties,
        channel,
        round_timeout,
        ProtocolKind::FrostRotation,
    )?;
    let parts = match plan.scheme {
        Scheme::Ed25519 => rotate_with::<Ed25519, _>(&mut session, share, plan).await,
        Scheme::Bip340 => rotate_with::<Bip340, _>(&mut session, share, plan).await,
    }?;
    Ok(parts.map(|parts| FrostShare {
        scheme: plan.scheme,
        owner: me,
        threshold: plan.threshold,
        parties: plan.new_parties.iter().copied().collect(),
        key_package: parts.key_package.to_vec(),
        public_package: parts.public_package,
        verifying_key: parts.verifying_key,
    }))
}

fn check_plan(
    share: Option<&FrostShare>,
    me: AccountId,
    plan: &Rotation<'_>,
) -> Result<(), MpcError> {
    let t = usize::from(plan.threshold);
    if t == 0 || plan.helpers.len() < t || plan.new_parties.len() < t {
        return Err(MpcError::Local(format!(
            "a rotation at threshold {t} needs that many helpers and new parties"
        )));
    }
    if !plan.helpers.contains(&me) {
        return Ok(());
    }
    let share = share.ok_or_else(|| MpcError::Local("a helper without a share".into()))?;
    if share.scheme != plan.scheme
        || share.threshold != plan.threshold
        || !plan.helpers.iter().all(|h| share.parties.contains(h))
        || share.network_key()? != plan.network_key
    {
        return Err(MpcError::Local(
            "the share held is not of the key, threshold or helpers the rotation names".into(),
        ));
    }
    Ok(())
}

async fn rotate_with<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    share: Option<&FrostShare>,
    plan: &Rotation<'_>,
) -> Result<Option<KeyParts>, MpcError> {
    let ids = session.identifiers::<C>()?;
    let me = session.me;
    let old: Option<Packages<C>> = match share {
        Some(share) if plan.helpers.contains(&me) => Some(packages_of(share)?),
        _ => None,
    };
    let joiners: Vec<AccountId> = plan.new_parties.difference(plan.helpers).copied().collect();
    let mut repaired = None;
    for joiner in &joiners {
        if let Some((key, public)) = &old {
            help_repair(session, &ids, plan.helpers, (key, public), *joiner).await?;
        } else if *joiner == me {
            let result = receive_repair(session, &ids, plan).await;
            repaired = Some(telling_others(session, plan, result).await?);
        }
    }
    if !plan.new_parties.contains(&me) {
        return Ok(None);
    }
    let (key, public) = old
        .or(repaired)
        .ok_or_else(|| MpcError::Local("neither a helper nor a joiner".into()))?;
    let public = with_joiners(&public, &ids, &joiners)?;
    if public.verifying_shares().get(key.identifier()) != Some(key.verifying_share()) {
        let failure = session.failure("repair", FailureReason::Misbehaviour, vec![]);
        return telling_others(session, plan, Err(failure)).await;
    }
    let group_key = *public.verifying_key();
    let (key, public) = refresh_among(session, &ids, plan, key, public).await?;
    let holders: BTreeSet<Identifier<C>> = plan.new_parties.iter().map(|p| ids[p]).collect();
    if *public.verifying_key() != group_key
        || public
            .verifying_shares()
            .keys()
            .copied()
            .collect::<BTreeSet<_>>()
            != holders
    {
        return Err(MpcError::Local(
            "the refresh changed the group key or its holders".into(),
        ));
    }
    Ok(Some(KeyParts {
        key_package: Zeroizing::new(key.serialize().map_err(local)?),
        verifying_key: group_key.serialize().map_err(local)?,
        public_package: public.serialize().map_err(local)?,
    }))
}

/// `result`, after telling every other new party that this one stops if it failed: they end at
/// once, naming nobody, instead of waiting out the round for its refresh package.
async fn telling_others<T, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    plan: &Rotation<'_>,
    result: Result<T, MpcError>,
) -> Result<T, MpcError> {
    if result.is_err() {
        session.scope(plan.new_parties);
        // Best effort: a party the notice misses times out, as it would without one.
        let _ = session.broadcast(|| Wire::Refused).await;
    }
    result
}

fn packages_of<C: Ciphersuite>(share: &FrostShare) -> Result<Packages<C>, MpcError> {
    Ok((
        KeyPackage::<C>::deserialize(&share.key_package).map_err(local)?,
        PublicKeyPackage::<C>::deserialize(&share.public_package).map_err(local)?,
    ))
}

/// A helper's part in enrolling `joiner`: a delta to every other helper, then the sum of the
/// deltas received (sigma) and the public package to the joiner.
async fn help_repair<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    helpers: &BTreeSet<AccountId>,
    (key, public): (&KeyPackage<C>, &PublicKeyPackage<C>),
    joiner: AccountId,
) -> Result<(), MpcError> {
    session.scope(helpers);
    let helper_ids: Vec<Identifier<C>> = helpers.iter().map(|h| ids[h]).collect();
    let deltas = repairable::repair_share_part1(&helper_ids, key, &mut OsRng, ids[&joiner])
        .map_err(local)?;
    let mut own = None;
    for (to, delta) in deltas {
        let to = account_of(ids, &to)?;
        if to == session.me {
            own = Some(delta);
        } else {
            let delta = delta.serialize();
            session
                .send(to, Wire::RepairDelta { joiner, delta })
                .await?;
        }
    }
    let received = session
        .collect(
            "repair (delta)",
            |w| matches!(w, Wire::RepairDelta { joiner: j, .. } if *j == joiner),
        )
        .await?;
    let mut deltas: Vec<Delta<C>> = session
        .decode(&received, Delta::<C>::deserialize)?
        .into_values()
        .collect();
    deltas.extend(own);
    let sigma = repairable::repair_share_part2(&deltas).serialize();
    let public_package = public.serialize().map_err(local)?;
    session
        .send(
            joiner,
            Wire::RepairSigma {
                sigma,
                public_package,
            },
        )
        .await
}

/// A joiner's part: the helpers' sigmas make its share; every helper must send the same public
/// package, of the network key the rotation names.
async fn receive_repair<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    plan: &Rotation<'_>,
) -> Result<Packages<C>, MpcError> {
    let mut scope = plan.helpers.clone();
    scope.insert(session.me);
    session.scope(&scope);
    let received = session
        .collect("repair (sigma)", |w| matches!(w, Wire::RepairSigma { .. }))
        .await?;
    let packages: BTreeSet<&[u8]> = received
        .values()
        .filter_map(|w| match w {
            Wire::RepairSigma { public_package, .. } => Some(public_package.as_slice()),
            _ => None,
        })
        .collect();
    let public = match packages.into_iter().collect::<Vec<_>>()[..] {
        [one] => PublicKeyPackage::<C>::deserialize(one).ok(),
        _ => None,
    };
    let public = public
        .filter(|p| {
            p.verifying_key()
                .serialize()
                .ok()
                .and_then(|bytes| tagged_network_key(plan.scheme, &bytes).ok())
                == Some(plan.network_key)
        })
        // The helpers disagree, or all send another key: who lies is not known.
        .ok_or_else(|| session.failure("repair (sigma)", FailureReason::Misbehaviour, vec![]))?;
    let sigmas: Vec<Sigma<C>> = session
        .decode(&received, Sigma::<C>::deserialize)?
        .into_values()
        .collect();
    let key = repairable::repair_share_part3(&sigmas, ids[&session.me], &public).map_err(local)?;
    Ok((key, public))
}

/// `public` with a verifying share for every joiner, interpolated from the shares it holds.
fn with_joiners<C: Ciphersuite>(
    public: &PublicKeyPackage<C>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    joiners: &[AccountId],
) -> Result<PublicKeyPackage<C>, MpcError> {
    let known = public.verifying_shares();
    let xs: BTreeSet<Identifier<C>> = known.keys().copied().collect();
    let mut shares = known.clone();
    for joiner in joiners {
        let x = ids[joiner];
        let mut y = C::Group::identity();
        for (xi, share) in known {
            let lambda = frost::compute_lagrange_coefficient(&xs, Some(x), *xi).map_err(local)?;
            y = y + share.to_element() * lambda;
        }
        shares.insert(x, VerifyingShare::new(y));
    }
    Ok(PublicKeyPackage::new(
        shares,
        *public.verifying_key(),
        public.min_signers(),
    ))
}

/// frost's refresh DKG among the new parties, with the round-1 echo of key generation.
async fn refresh_among<C: Ciphersuite, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    ids: &BTreeMap<AccountId, Identifier<C>>,
    plan: &Rotation<'_>,
    key: KeyPackage<C>,
    public: PublicKeyPackage<C>,
) -> Result<Packages<C>, MpcError> {
    session.scope(plan.new_parties);
    let count = u16::try_from(plan.new_parties.len())
        .map_err(|_| MpcError::Local("too many parties".into()))?;
    let (secret1, package1) =
        refresh::refresh_dkg_part1(ids[&session.me], count, plan.threshold, OsRng)
            .map_err(local)?;
    let own1 = package1.serialize().map_err(local)?;
    session.broadcast(|| Wire::Refresh1(own1.clone())).await?;
    let received1 = session
        .collect("refresh round 1", |w| matches!(w, Wire::Refresh1(_)))
        .await?;
    session.check_echo(&own1, &received1).await?;
    let packages1 = session.decode(&received1, dkg::round1::Package::<C>::deserialize)?;
    let packages1 = by_identifier(ids, packages1);
    let (secret2, packages2) =
        refresh::refresh_dkg_part2(secret1, &packages1).map_err(|e| session.blamed(ids, &e))?;
    for (to, package) in &packages2 {
        let to = account_of(ids, to)?;
        let bytes = package.serialize().map_err(local)?;
        session.send(to, Wire::Refresh2(bytes)).await?;
    }
    let received2 = session
        .collect("refresh round 2", |w| matches!(w, Wire::Refresh2(_)))
        .await?;
    let packages2 = session.decode(&received2, dkg::round2::Package::<C>::deserialize)?;
    let packages2 = by_identifier(ids, packages2);
    refresh::refresh_dkg_shares(&secret2, &packages1, &packages2, public, key)
        .map_err(|e| session.blamed(ids, &e))
}
