//! The operations a signer runs: network key generation, signing at a derivation path,
//! resharing, aux-data generation and refresh. Generic over synedrion's scheme parameters
//! inside the crate (unit tests use the toy curve); the public API is secp256k1 only.

use std::{collections::BTreeSet, str::FromStr};

use manul::session::SessionId;
use sigil_crypto::AccountKeypair;
use sigil_primitives::{AccountId, DerivationPath};
use synedrion::{
    AuxGen, AuxInfo, InteractiveSigning, KeyInit, KeyResharing, NewHolder, OldHolder,
    RecoverableSignature, SchemeParams, ThresholdKeyShare, bip32::DerivationPath as Bip32Path,
};

use crate::{
    channel::Channel,
    driver::{Link, SessionConfig, SessionStats, new_session, run},
    error::{MpcError, ProtocolKind},
    party::{Party, PartySigner},
};

/// A threshold key share with the set of its holders (the engine does not expose them).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "ThresholdKeyShare<P, Party>: serde::Serialize",
    deserialize = "ThresholdKeyShare<P, Party>: serde::de::DeserializeOwned"
))]
pub(crate) struct Held<P: SchemeParams> {
    pub(crate) share: ThresholdKeyShare<P, Party>,
    pub(crate) holders: BTreeSet<AccountId>,
}

/// Aux data with the set of parties it covers.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "AuxInfo<P, Party>: serde::Serialize",
    deserialize = "AuxInfo<P, Party>: serde::de::DeserializeOwned"
))]
pub(crate) struct HeldAux<P: SchemeParams> {
    pub(crate) aux: AuxInfo<P, Party>,
    pub(crate) parties: BTreeSet<AccountId>,
}

/// The identity and settings one validator runs sessions with.
pub(crate) struct Ctx<'a> {
    pub(crate) signer: &'a AccountKeypair,
    pub(crate) session_id: &'a [u8; 32],
    pub(crate) config: &'a SessionConfig,
}

impl Ctx<'_> {
    fn me(&self) -> AccountId {
        self.signer.account_id()
    }

    fn party_signer(&self) -> PartySigner {
        PartySigner(self.signer.clone())
    }

    /// The engine session id of one phase, bound to the caller's session id.
    fn phase_id(&self, protocol: ProtocolKind) -> SessionId {
        phase_session_id(self.session_id, protocol)
    }
}

/// The engine (manul) session id of one protocol run of an operation: bound to the caller's
/// session id and the protocol, so each phase signs under its own id and evidence names both.
pub(crate) fn phase_session_id(session_id: &[u8; 32], protocol: ProtocolKind) -> SessionId {
    let label = match protocol {
        ProtocolKind::KeyInit => "key-init",
        ProtocolKind::KeyResharing => "reshare",
        ProtocolKind::AuxGen => "aux-gen",
        ProtocolKind::Signing => "sign",
        ProtocolKind::FrostKeyGen => "frost-key-gen",
        ProtocolKind::FrostSigning => "frost-sign",
        ProtocolKind::FrostRotation => "frost-rotation",
    };
    let mut seed = b"sigil/v1/mpc/".to_vec();
    seed.extend_from_slice(label.as_bytes());
    seed.push(0);
    seed.extend_from_slice(session_id);
    SessionId::from_seed::<crate::party::SigilSession>(&seed)
}

pub(crate) fn parties(ids: &BTreeSet<AccountId>) -> BTreeSet<Party> {
    ids.iter().copied().map(Party).collect()
}

fn require_member(me: &AccountId, set: &BTreeSet<AccountId>, what: &str) -> Result<(), MpcError> {
    if set.contains(me) {
        Ok(())
    } else {
        Err(MpcError::InvalidInput(format!("{me} is not in the {what}")))
    }
}

fn check_threshold(threshold: usize, holders: usize) -> Result<(), MpcError> {
    if holders < 2 {
        return Err(MpcError::InvalidInput(format!(
            "a threshold key needs at least 2 holders, got {holders}"
        )));
    }
    if threshold < 2 || threshold > holders {
        return Err(MpcError::InvalidInput(format!(
            "threshold {threshold} is outside 2..={holders}"
        )));
    }
    Ok(())
}

pub(crate) fn bip32_path(path: &DerivationPath) -> Result<Bip32Path, MpcError> {
    Bip32Path::from_str(&path.to_string())
        .map_err(|error| MpcError::InvalidInput(format!("derivation path {path}: {error}")))
}

/// Network key generation: key init among all holders (n-of-n), resharing to `threshold`, and
/// aux data. The aux-data session (Paillier key generation, the slow part) is created in the
/// background while key init runs.
pub(crate) async fn generate_key<P, C>(
    ctx: &Ctx<'_>,
    holders: &BTreeSet<AccountId>,
    threshold: usize,
    channel: &mut C,
) -> Result<(Held<P>, HeldAux<P>, SessionStats), MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let me = ctx.me();
    require_member(&me, holders, "signer set")?;
    check_threshold(threshold, holders.len())?;
    let ids = parties(holders);
    let mut link = Link::new(channel, me, holders.clone());

    let aux_session = {
        let cpu = link.cpu_counter().clone();
        let config = ctx.config.clone();
        let id = ctx.phase_id(ProtocolKind::AuxGen);
        let signer = ctx.party_signer();
        let entry = AuxGen::<P, Party>::new(ids.clone())?;
        tokio::spawn(async move { new_session(&cpu, &config, id, signer, entry).await })
    };

    let entry = KeyInit::<P, Party>::new(ids.clone())?;
    let session = new_session(
        link.cpu_counter(),
        ctx.config,
        ctx.phase_id(ProtocolKind::KeyInit),
        ctx.party_signer(),
        entry,
    )
    .await?;
    let full = run(&mut link, ProtocolKind::KeyInit, session, ctx.config).await?;
    let mut share = Held {
        share: ThresholdKeyShare::from_key_share(&full),
        holders: holders.clone(),
    };

    link.next_phase();
    if threshold < holders.len() {
        let plan = Resharing {
            verifying_key: share.share.verifying_key()?,
            old_holders: holders,
            old_threshold: holders.len(),
            new_holders: holders,
            new_threshold: threshold,
        };
        share = reshare_on(&mut link, ctx, Some(&share), &plan)
            .await?
            .ok_or_else(|| MpcError::Local("a new holder got no share".into()))?;
    }

    link.next_phase();
    let session = aux_session
        .await
        .map_err(|error| MpcError::Local(format!("aux-data task failed: {error}")))??;
    let aux = run(&mut link, ProtocolKind::AuxGen, session, ctx.config).await?;
    let aux = HeldAux {
        aux,
        parties: holders.clone(),
    };
    Ok((share, aux, link.stats()))
}

/// Aux data for `parties` (after the signer set changed).
pub(crate) async fn generate_aux<P, C>(
    ctx: &Ctx<'_>,
    members: &BTreeSet<AccountId>,
    channel: &mut C,
) -> Result<(HeldAux<P>, SessionStats), MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let me = ctx.me();
    require_member(&me, members, "aux-data party set")?;
    if members.len() < 2 {
        return Err(MpcError::InvalidInput(
            "aux data needs at least 2 parties".into(),
        ));
    }
    let mut link = Link::new(channel, me, members.clone());
    let aux = aux_on(&mut link, ctx, members).await?;
    Ok((aux, link.stats()))
}

/// Aux-data generation as one phase of an operation on `link`.
async fn aux_on<P, C>(
    link: &mut Link<'_, C>,
    ctx: &Ctx<'_>,
    members: &BTreeSet<AccountId>,
) -> Result<HeldAux<P>, MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let entry = AuxGen::<P, Party>::new(parties(members))?;
    let session = new_session(
        link.cpu_counter(),
        ctx.config,
        ctx.phase_id(ProtocolKind::AuxGen),
        ctx.party_signer(),
        entry,
    )
    .await?;
    let aux = run(link, ProtocolKind::AuxGen, session, ctx.config).await?;
    Ok(HeldAux {
        aux,
        parties: members.clone(),
    })
}

/// Who gives and who receives shares in a resharing.
pub(crate) struct Resharing<'a, P: SchemeParams> {
    pub(crate) verifying_key: ecdsa::VerifyingKey<P::Curve>,
    pub(crate) old_holders: &'a BTreeSet<AccountId>,
    pub(crate) old_threshold: usize,
    pub(crate) new_holders: &'a BTreeSet<AccountId>,
    pub(crate) new_threshold: usize,
}

/// Resharing: old holders (at least `old_threshold` of them) hand the key to the new holders.
/// Returns this party's new share when it is a new holder.
pub(crate) async fn reshare<P, C>(
    ctx: &Ctx<'_>,
    old_share: Option<&Held<P>>,
    plan: &Resharing<'_, P>,
    channel: &mut C,
) -> Result<(Option<Held<P>>, SessionStats), MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let me = ctx.me();
    let everyone: BTreeSet<AccountId> = plan.old_holders.union(plan.new_holders).copied().collect();
    require_member(&me, &everyone, "resharing party set")?;
    let mut link = Link::new(channel, me, everyone);
    let share = reshare_on(&mut link, ctx, old_share, plan).await?;
    Ok((share, link.stats()))
}

/// Resharing as one phase of an operation on `link`, whose parties are the old and new holders.
async fn reshare_on<P, C>(
    link: &mut Link<'_, C>,
    ctx: &Ctx<'_>,
    old_share: Option<&Held<P>>,
    plan: &Resharing<'_, P>,
) -> Result<Option<Held<P>>, MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let me = ctx.me();
    if plan.old_holders.len() < plan.old_threshold {
        return Err(MpcError::InvalidInput(format!(
            "{} old holders cannot reconstruct a {}-threshold key",
            plan.old_holders.len(),
            plan.old_threshold
        )));
    }
    check_threshold(plan.new_threshold, plan.new_holders.len())?;
    let old_holder = match (plan.old_holders.contains(&me), old_share) {
        (true, Some(share)) => {
            if share.share.verifying_key()? != plan.verifying_key {
                return Err(MpcError::InvalidInput(
                    "the old share belongs to another key".into(),
                ));
            }
            Some(OldHolder {
                key_share: share.share.clone(),
            })
        }
        (true, None) => {
            return Err(MpcError::InvalidInput(format!(
                "old holder {me} has no share"
            )));
        }
        (false, _) => None,
    };
    let new_holder = plan.new_holders.contains(&me).then(|| NewHolder {
        verifying_key: plan.verifying_key,
        old_threshold: plan.old_threshold,
        old_holders: parties(plan.old_holders),
    });
    let entry = KeyResharing::new(
        old_holder,
        new_holder,
        parties(plan.new_holders),
        plan.new_threshold,
    );
    let session = new_session(
        link.cpu_counter(),
        ctx.config,
        ctx.phase_id(ProtocolKind::KeyResharing),
        ctx.party_signer(),
        entry,
    )
    .await?;
    let share = run(link, ProtocolKind::KeyResharing, session, ctx.config).await?;
    Ok(share.map(|share| Held {
        share,
        holders: plan.new_holders.clone(),
    }))
}

/// Proactive refresh as one operation: a resharing to the same holders and threshold (new
/// shares of the same key), then fresh aux data, as two phases over one link so messages of
/// the second phase that arrive early are held, not fed to the first.
pub(crate) async fn refresh<P, C>(
    ctx: &Ctx<'_>,
    share: &Held<P>,
    channel: &mut C,
) -> Result<(Held<P>, HeldAux<P>, SessionStats), MpcError>
where
    P: SchemeParams,
    C: Channel,
{
    let me = ctx.me();
    let holders = &share.holders;
    require_member(&me, holders, "holder set")?;
    let threshold = share.share.threshold();
    let plan = Resharing {
        verifying_key: share.share.verifying_key()?,
        old_holders: holders,
        old_threshold: threshold,
        new_holders: holders,
        new_threshold: threshold,
    };
    let mut link = Link::new(channel, me, holders.clone());
    let new_share = reshare_on(&mut link, ctx, Some(share), &plan)
        .await?
        .ok_or_else(|| MpcError::Local("a holder got no refreshed share".into()))?;
    link.next_phase();
    let aux = aux_on(&mut link, ctx, holders).await?;
    Ok((new_share, aux, link.stats()))
}

/// Interactive signing of a prehash by `committee` with the shares derived at `path`.
/// Returns the signature and the derived verifying key; checking it is the caller's job.
pub(crate) async fn sign<P, C>(
    ctx: &Ctx<'_>,
    share: &Held<P>,
    aux: &HeldAux<P>,
    committee: &BTreeSet<AccountId>,
    path: &DerivationPath,
    prehash: &synedrion::PrehashedMessage<P::Curve>,
    channel: &mut C,
) -> Result<
    (
        RecoverableSignature<P>,
        ecdsa::VerifyingKey<P::Curve>,
        SessionStats,
    ),
    MpcError,
>
where
    P: SchemeParams,
    C: Channel,
    ecdsa::VerifyingKey<P::Curve>: synedrion::PublicTweakable,
    ecdsa::SigningKey<P::Curve>: synedrion::SecretTweakable,
{
    let me = ctx.me();
    require_member(&me, committee, "signing committee")?;
    if committee.len() != share.share.threshold() {
        return Err(MpcError::InvalidInput(format!(
            "a committee of {} cannot sign with a {}-threshold key",
            committee.len(),
            share.share.threshold()
        )));
    }
    let ids = parties(committee);
    if let Some(outsider) = committee.iter().find(|id| !share.holders.contains(id)) {
        return Err(MpcError::InvalidInput(format!(
            "{outsider} holds no share of this key"
        )));
    }
    if let Some(missing) = committee.iter().find(|id| !aux.parties.contains(id)) {
        return Err(MpcError::InvalidInput(format!(
            "no aux data for committee member {missing}"
        )));
    }
    let path = bip32_path(path)?;
    let child = share
        .share
        .derive_bip32(&path)
        .map_err(|error| MpcError::InvalidInput(format!("cannot derive the share: {error}")))?;
    let key_share = child.to_key_share(&ids)?;
    // The committee's derived public shares add up to the derived key.
    let verifying_key = key_share.verifying_key();
    let aux = aux.aux.clone().subset(&ids)?;
    let entry = InteractiveSigning::new(prehash.clone(), key_share, aux)?;
    let mut link = Link::new(channel, me, committee.clone());
    let session = new_session(
        link.cpu_counter(),
        ctx.config,
        ctx.phase_id(ProtocolKind::Signing),
        ctx.party_signer(),
        entry,
    )
    .await?;
    let signature = run(&mut link, ProtocolKind::Signing, session, ctx.config).await?;
    Ok((signature, verifying_key, link.stats()))
}
