//! secp256k1 with production parameters, from the committed fixtures: signatures from
//! different committees verify against sigil-crypto's derivation, resharing keeps the key,
//! and the full DKG (slow; tagged) produces a working network key.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{Validator, accounts, engine, recorded_network_key, run_all, validators};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use sigil_crypto::{derive_user_key, keccak256, recover_signer};
use sigil_mpc::{MpcError, ProtocolKind, ResharePlan, SessionStats};
use sigil_primitives::{DerivationPath, EcdsaSignature, VerifyingKey};

/// Signs `prehash` at `path` with `committee` over an in-memory network.
async fn sign(
    committee: &[Validator],
    path: &DerivationPath,
    prehash: [u8; 32],
) -> Vec<(EcdsaSignature, VerifyingKey)> {
    let members = accounts(committee);
    let parties: Vec<_> = members.iter().copied().collect();
    // Parties must be indexed like `parties` (sorted), so sort the committee the same way.
    let mut sorted = committee.to_vec();
    sorted.sort_by_key(Validator::account);
    run_all(&parties, |i, mut channel| {
        let validator = sorted[i].clone();
        let members = members.clone();
        let path = path.clone();
        async move {
            let request = validator.sign_request(&members, &path, &prehash);
            let signed = validator
                .engine
                .sign(&[0x51; 32], &request, &mut channel)
                .await
                .unwrap();
            assert!(signed.stats.cpu > Duration::ZERO);
            check_profile(&signed.stats);
            (signed.signature, signed.verifying_key)
        }
    })
    .await
}

/// Interactive signing runs seven manul rounds whatever the committee size (no echo round
/// after round 4, which has no echo broadcast), and the profile accounts for the session.
fn check_profile(stats: &SessionStats) {
    let rounds: Vec<&str> = stats
        .rounds_profile
        .iter()
        .map(|round| round.round.as_str())
        .collect();
    assert_eq!(
        rounds,
        [
            "Round 1",
            "Round 1 (echo)",
            "Round 2",
            "Round 2 (echo)",
            "Round 3",
            "Round 3 (echo)",
            "Round 4"
        ]
    );
    assert_eq!(stats.rounds as usize, rounds.len());
    let cpu: Duration = stats.rounds_profile.iter().map(|round| round.cpu).sum();
    assert!(cpu <= stats.cpu, "rounds {cpu:?} > total {:?}", stats.cpu);
    let wall: Duration = stats.rounds_profile.iter().map(|round| round.wall).sum();
    assert!(
        wall <= stats.wall,
        "rounds {wall:?} > total {:?}",
        stats.wall
    );
    for round in &stats.rounds_profile {
        assert_eq!(round.protocol, ProtocolKind::Signing);
        assert!(round.waiting <= round.wall, "{round:?}");
    }
}

fn check_signature(
    network_key: &VerifyingKey,
    path: &DerivationPath,
    prehash: &[u8; 32],
    signature: &EcdsaSignature,
) {
    let expected = derive_user_key(network_key, path).unwrap();
    let key = k256::ecdsa::VerifyingKey::from(&expected.to_k256());
    let sig = k256::ecdsa::Signature::from_slice(&signature.as_bytes()[..64]).unwrap();
    key.verify_prehash(prehash, &sig)
        .expect("signature verifies with k256");
    assert!(sig.normalize_s().is_none(), "low-s");
    let (recovered, _) = recover_signer(prehash, signature).unwrap();
    assert_eq!(recovered, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_load_and_different_committees_sign_with_a_derived_key() {
    let all = validators();
    let network_key = recorded_network_key();
    for validator in &all {
        assert_eq!(validator.share.verifying_key(), network_key);
        assert_eq!(validator.share.threshold(), 3);
        assert_eq!(validator.share.holders(), &accounts(&all));
        assert_eq!(validator.aux.parties(), &accounts(&all));
        // Key material survives a round trip through bytes.
        let again = sigil_mpc::KeyShare::from_bytes(validator.share.to_bytes().expose()).unwrap();
        assert_eq!(again.verifying_key(), network_key);
    }
    let path = DerivationPath::new(vec![44, 60, 0, 0, 1]).unwrap();
    // The engine's BIP-32 derivation and sigil-crypto's agree.
    assert_eq!(
        all[0].share.derive_verifying_key(&path).unwrap(),
        derive_user_key(&network_key, &path).unwrap()
    );

    for (round, picks) in [[0, 1, 2], [1, 3, 4], [0, 2, 4]].into_iter().enumerate() {
        let committee: Vec<_> = picks.iter().map(|&i| all[i].clone()).collect();
        let prehash = keccak256(format!("transaction {round}").as_bytes());
        let results = sign(&committee, &path, prehash).await;
        for (signature, key) in &results {
            assert_eq!(*key, derive_user_key(&network_key, &path).unwrap());
            check_signature(&network_key, &path, &prehash, signature);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharing_from_abc_to_bcde_keeps_the_key_and_the_new_set_signs() {
    let all = validators();
    let network_key = recorded_network_key();
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    let abc: BTreeSet<_> = accounts([a, b, c]);

    // First make {A, B, C} a 2-of-3 holder set of the key (itself a resharing from 3-of-5).
    let plan = ResharePlan {
        verifying_key: network_key,
        old_holders: abc.clone(),
        old_threshold: 3,
        new_holders: abc.clone(),
        new_threshold: 2,
    };
    let two_of_three = reshare(&all[..3], &plan, [0x61; 32]).await;
    let two_of_three: Vec<_> = two_of_three.into_iter().map(Option::unwrap).collect();
    assert!(
        two_of_three
            .iter()
            .all(|share| share.threshold() == 2 && share.verifying_key() == network_key)
    );

    // {A, B, C} (t = 2) to {B, C, D, E} (t = 3).
    let bcde = accounts(&all[1..]);
    let plan = ResharePlan {
        verifying_key: network_key,
        old_holders: abc.clone(),
        old_threshold: 2,
        new_holders: bcde.clone(),
        new_threshold: 3,
    };
    let mut holders = all.clone();
    for (validator, share) in holders.iter_mut().zip(&two_of_three) {
        validator.share = share.clone();
    }
    let reshared = reshare(&holders, &plan, [0x62; 32]).await;
    assert!(reshared[0].is_none(), "A holds nothing afterwards");
    let mut new_set = Vec::new();
    for (validator, share) in holders.iter().zip(&reshared).skip(1) {
        let share = share.clone().unwrap();
        assert_eq!(share.verifying_key(), network_key);
        assert_eq!(share.threshold(), 3);
        assert_eq!(share.holders(), &bcde);
        new_set.push(Validator {
            share,
            ..validator.clone()
        });
    }

    // The new set signs (aux data covers all five, so it covers the new set).
    let path = DerivationPath::new(vec![7, 7]).unwrap();
    let prehash = keccak256(b"after resharing");
    let results = sign(&new_set[1..], &path, prehash).await;
    for (signature, _) in &results {
        check_signature(&network_key, &path, &prehash, signature);
    }

    // A's old share cannot take part: the new holders refuse a committee with A in it.
    let with_a = accounts([&holders[0], &new_set[0], &new_set[1]]);
    let request = new_set[0].sign_request(&with_a, &path, &prehash);
    let mut idle = sigil_mpc::MemoryChannel::network(&[new_set[0].account()])
        .remove(&new_set[0].account())
        .unwrap();
    let refused = new_set[0]
        .engine
        .sign(&[0x63; 32], &request, &mut idle)
        .await;
    assert!(
        matches!(refused, Err(MpcError::InvalidInput(ref message)) if message.contains("holds no share")),
        "{refused:?}"
    );
}

/// Runs a resharing among `parties` (old holders carry their share); new shares in input order.
async fn reshare(
    parties: &[Validator],
    plan: &ResharePlan,
    session: [u8; 32],
) -> Vec<Option<sigil_mpc::KeyShare>> {
    let mut sorted = parties.to_vec();
    sorted.sort_by_key(Validator::account);
    let ids: Vec<_> = sorted.iter().map(Validator::account).collect();
    let results = run_all(&ids, |i, mut channel| {
        let validator = sorted[i].clone();
        let plan = plan.clone();
        async move {
            let old = plan
                .old_holders
                .contains(&validator.account())
                .then_some(&validator.share);
            let (share, _) = validator
                .engine
                .reshare(&session, old, &plan, &mut channel)
                .await
                .unwrap();
            (validator.account(), share)
        }
    })
    .await;
    parties
        .iter()
        .map(|party| {
            results
                .iter()
                .find(|(id, _)| *id == party.account())
                .unwrap()
                .1
                .clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a full 5-party DKG with production parameters (about a minute on 2 cores); run with --ignored"]
async fn a_production_dkg_among_five_gives_a_key_that_signs() {
    let names = common::NAMES;
    let engines: Vec<_> = names
        .iter()
        .map(|name| engine(name, Duration::from_secs(600)))
        .collect();
    let signers: BTreeSet<_> = engines.iter().map(|engine| engine.account()).collect();
    let ids: Vec<_> = signers.iter().copied().collect();
    let generated = run_all(&ids, |i, mut channel| {
        let engine = engines
            .iter()
            .find(|engine| engine.account() == ids[i])
            .unwrap()
            .clone();
        let signers = signers.clone();
        async move {
            let (share, aux, _) = engine
                .generate_network_key(&[0x71; 32], &signers, 3, &mut channel)
                .await
                .unwrap();
            Validator {
                name: "generated",
                engine,
                share,
                aux,
            }
        }
    })
    .await;
    let network_key = generated[0].share.verifying_key();
    assert!(
        generated
            .iter()
            .all(|v| v.share.verifying_key() == network_key)
    );
    let path = DerivationPath::new(vec![5]).unwrap();
    let prehash = keccak256(b"fresh key");
    for (signature, _) in sign(&generated[2..], &path, prehash).await {
        check_signature(&network_key, &path, &prehash, &signature);
    }
}

#[test]
fn key_material_that_is_garbage_or_of_another_version_is_refused() {
    let alice = &validators()[0];
    let share = alice.share.to_bytes();
    let aux = alice.aux.to_bytes();
    for (bytes, is_share) in [(share.expose(), true), (aux.expose(), false)] {
        let mut wrong_version = bytes.to_vec();
        wrong_version[0] = 2;
        let truncated = &bytes[..bytes.len() / 2];
        for bad in [wrong_version.as_slice(), truncated, b"".as_slice()] {
            let error = if is_share {
                sigil_mpc::KeyShare::from_bytes(bad).unwrap_err()
            } else {
                sigil_mpc::AuxData::from_bytes(bad).unwrap_err()
            };
            assert!(matches!(error, MpcError::Decode { .. }), "{error}");
        }
    }
    // A share read back where aux data is expected is refused too.
    assert!(sigil_mpc::AuxData::from_bytes(share.expose()).is_err());
}
