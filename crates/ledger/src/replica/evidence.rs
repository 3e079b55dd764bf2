//! Consensus faults as ledger offences: a replica that signs two conflicting votes for one
//! view (two notarizes, two finalizes, or a nullify and a finalize) leaves signed evidence;
//! replicas report it with `report_consensus_fault`, and the ledger checks it against the
//! consensus set of the votes' epoch.

use std::sync::Arc;

use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::simplex::types::{Activity, Attributable as _};
use commonware_consensus::{Epochable as _, Viewable as _};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::ed25519;
use commonware_cryptography::sha256::Digest;
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use rand_core_10::SeedableRng as _;
use sigil_primitives::AccountId;

use super::Scheme;
use super::engine::EngineConfig;
use crate::state::{ConsensusFault, ConsensusVerifier, SetOf};
use crate::types::{Genesis, Replica};

/// A consensus set (by consensus key ascending, as the ledger stores it) as Commonware's
/// participants, with each member's account in the same order.
pub fn participants(
    replicas: &[Replica],
) -> Result<(Set<ed25519::PublicKey>, Vec<AccountId>), String> {
    let mut keyed = Vec::with_capacity(replicas.len());
    for replica in replicas {
        let key = super::network::public_key(&replica.consensus_key)
            .map_err(|e| format!("replica {}: {e}", replica.account))?;
        keyed.push((key, replica.account));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let accounts = keyed.iter().map(|(_, account)| *account).collect();
    let set = Set::from_iter_dedup(keyed.into_iter().map(|(key, _)| key));
    Ok((set, accounts))
}

/// The checker of consensus-fault evidence for the chain of `genesis`; none for a solo chain.
pub fn verifier(genesis: &Genesis) -> Option<Arc<ConsensusVerifier>> {
    if genesis.replicas.is_empty() {
        return None;
    }
    let namespace = EngineConfig::namespace_for(&genesis.chain_id);
    Some(Arc::new(move |evidence: &[u8], set_of: &SetOf<'_>| {
        check(&namespace, set_of, evidence)
    }))
}

/// Decodes `evidence`, and verifies it against the consensus set of its epoch; the fault it
/// proves.
fn check(namespace: &[u8], set_of: &SetOf<'_>, evidence: &[u8]) -> Result<ConsensusFault, String> {
    let activity = Activity::<Scheme, Digest>::decode_cfg(
        commonware_codec::Copying(evidence),
        &Scheme::certificate_codec_config_unbounded(),
    )
    .map_err(|e| format!("not consensus evidence: {e}"))?;
    let epoch = activity.epoch().get();
    let replicas =
        set_of(epoch).ok_or_else(|| format!("epoch {epoch} has no consensus set yet"))?;
    let (participants, accounts) = participants(&replicas)?;
    let scheme = Scheme::verifier(namespace, participants);
    // Verification is deterministic for valid evidence; the generator only randomizes batching.
    let mut rng = rand_chacha_10::ChaCha20Rng::seed_from_u64(0);
    let (valid, signer, view) = match &activity {
        Activity::ConflictingNotarize(e) => (
            e.verify(&mut rng, &scheme, &Sequential),
            e.signer(),
            e.view(),
        ),
        Activity::ConflictingFinalize(e) => (
            e.verify(&mut rng, &scheme, &Sequential),
            e.signer(),
            e.view(),
        ),
        Activity::NullifyFinalize(e) => (
            e.verify(&mut rng, &scheme, &Sequential),
            e.signer(),
            e.view(),
        ),
        _ => return Err("not a fault: only conflicting votes are evidence".into()),
    };
    if !valid {
        return Err("a vote's signature does not verify for its signer".into());
    }
    let offender = usize::try_from(signer.get())
        .ok()
        .and_then(|i| accounts.get(i))
        .ok_or("the signer is not in the consensus set")?;
    Ok(ConsensusFault {
        offender: *offender,
        epoch,
        view: view.get(),
    })
}

/// The evidence a consensus activity carries, encoded for `report_consensus_fault`, if it is
/// a fault.
pub fn encode(activity: &Activity<Scheme, Digest>) -> Option<Vec<u8>> {
    matches!(
        activity,
        Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_)
    )
    .then(|| activity.encode().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::simplex::types::{ConflictingNotarize, Notarize, Proposal};
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::{Hasher as _, sha256::Sha256};

    fn genesis_of(names: &[&str]) -> Genesis {
        crate::node::dev_genesis_with_replicas(names.iter().map(|n| (*n, "127.0.0.1:7000")))
    }

    fn signer_of(genesis: &Genesis, name: &str) -> Scheme {
        let (participants, _) = participants(&genesis.replicas).expect("set");
        let seed = sigil_crypto::NodeSeed::dev(name).consensus_seed();
        let key = super::super::network::consensus_key(&seed);
        let namespace = EngineConfig::namespace_for(&genesis.chain_id);
        Scheme::signer(&namespace, participants, key).expect("a participant")
    }

    fn conflicting(scheme: &Scheme, view: u64) -> Vec<u8> {
        let round = Round::new(Epoch::zero(), View::new(view));
        let vote = |payload: &[u8]| {
            let proposal = Proposal::new(round, View::new(view - 1), Sha256::hash(&[payload]));
            Notarize::<Scheme, Digest>::sign(scheme, proposal).expect("signs")
        };
        let fault = ConflictingNotarize::new(vote(b"one"), vote(b"two"));
        Activity::ConflictingNotarize(fault).encode().to_vec()
    }

    #[test]
    fn the_ledger_records_a_fault_once_free_and_a_solo_ledger_refuses_it() {
        let genesis = genesis_of(&["alice", "bob", "charlie", "dave"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let check = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
        let mut chain = crate::chain::Chain::open(dir.path(), Some(&genesis), check.clone(), None)
            .expect("chain");
        let evidence = conflicting(&signer_of(&genesis, "dave"), 4);
        // A reporter with no funds: the report is free.
        let reporter = sigil_crypto::AccountKeypair::consensus_reporter(&[9; 32]);
        let report = |nonce| {
            let call = crate::types::Call::ReportConsensusFault {
                evidence: evidence.clone(),
            };
            crate::tx::sign(&reporter, crate::node::DEV_CHAIN_ID, nonce, call)
        };
        let proposal = crate::chain::Proposal {
            timestamp_ms: 1,
            transactions: vec![report(0), report(1)],
        };
        let (block, outcomes) = chain.execute(proposal).expect("executes");
        assert_eq!(block.transactions.len(), 1, "the second report is left out");
        assert!(outcomes[0].included && outcomes[0].result.is_ok());
        assert!(matches!(
            outcomes[1].result,
            Err(crate::state::TxError::AlreadyExists(_))
        ));
        let dave = crate::node::dev_account("dave");
        let records: Vec<_> = chain
            .state()
            .offences
            .iter()
            .filter(|(_, o)| o.offender == dave)
            .map(|(_, o)| o.clone())
            .collect();
        assert_eq!(records.len(), 1);
        assert!(records[0].proven);
        assert_eq!(records[0].reporters, [reporter.account_id()]);

        let solo_dir = tempfile::tempdir().expect("tempdir");
        let solo = crate::node::dev_genesis();
        let mut solo =
            crate::chain::Chain::open(solo_dir.path(), Some(&solo), check, None).expect("chain");
        let proposal = crate::chain::Proposal {
            timestamp_ms: 1,
            transactions: vec![report(0)],
        };
        let (block, outcomes) = solo.execute(proposal).expect("executes");
        assert!(block.transactions.is_empty());
        assert!(matches!(
            outcomes[0].result,
            Err(crate::state::TxError::Invalid(_))
        ));
    }

    #[test]
    fn conflicting_votes_name_their_signers_account_and_nothing_else_counts() {
        let genesis = genesis_of(&["alice", "bob", "charlie", "dave"]);
        let verifier = verifier(&genesis).expect("replicated");
        let state = crate::state::State::genesis(&genesis).expect("genesis");
        let set = state.consensus_set(0).expect("epoch 0").to_vec();
        let verify =
            |evidence: &[u8]| verifier(evidence, &|epoch| (epoch == 0).then(|| set.clone()));
        let evidence = conflicting(&signer_of(&genesis, "charlie"), 7);
        let fault = verify(&evidence).expect("proves");
        assert_eq!(fault.offender, crate::node::dev_account("charlie"));
        assert_eq!((fault.epoch, fault.view), (0, 7));

        let mut forged = evidence.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(
            verify(&forged).is_err(),
            "a broken signature proves nothing"
        );
        assert!(
            verify(&evidence[..evidence.len() - 3]).is_err(),
            "truncated"
        );

        // A replica of another chain (another namespace) is not this one's.
        let mut other = genesis_of(&["alice", "bob", "charlie", "dave"]);
        other.chain_id = "other".into();
        assert!(verify(&conflicting(&signer_of(&other, "charlie"), 7)).is_err());

        // One honest vote is not a fault.
        let round = Round::new(Epoch::zero(), View::new(3));
        let proposal = Proposal::new(round, View::new(2), Sha256::hash(&[b"x"]));
        let vote = Notarize::<Scheme, Digest>::sign(&signer_of(&genesis, "bob"), proposal);
        let honest = Activity::Notarize(vote.expect("signs")).encode().to_vec();
        assert!(verify(&honest).is_err());
        assert!(
            super::verifier(&crate::node::dev_genesis()).is_none(),
            "solo"
        );
    }
}
