//! Protocol-logic tests on synedrion's toy curve (fast, not secp256k1): DKG, signing,
//! resharing, timeouts and blame, over in-memory channels.

use std::{collections::BTreeSet, future::Future, time::Duration};

use sigil_crypto::{AccountKeypair, NodeSeed};
use sigil_primitives::{AccountId, DerivationPath};
use synedrion::{SchemeParams, dev::TestParams};

use crate::{
    channel::MemoryChannel,
    driver::{SessionConfig, SessionStats},
    engine::{self, Ctx, Held, HeldAux, Resharing},
    error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind},
    evidence::{EquivocationEvidence, verify_evidence},
    fault::InjectedFault,
};

type Toy = TestParams;
type Prehash = synedrion::PrehashedMessage<<Toy as SchemeParams>::Curve>;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn keypairs(n: usize) -> Vec<AccountKeypair> {
    init_tracing();
    (0..n)
        .map(|i| NodeSeed::dev(&format!("toy-{i}")).account_keypair())
        .collect()
}

fn ids(keys: &[AccountKeypair]) -> BTreeSet<AccountId> {
    keys.iter().map(AccountKeypair::account_id).collect()
}

fn prehash(seed: u8) -> Prehash {
    let mut message = Prehash::default();
    for (i, byte) in message.iter_mut().enumerate() {
        *byte = seed.wrapping_add(i as u8).wrapping_mul(31) | 1;
    }
    message
}

fn config(timeout: Duration) -> SessionConfig {
    SessionConfig::with_round_timeout(timeout)
}

/// Runs `f` for every party concurrently, each with its own end of an in-memory network.
async fn run_parties<T, F, Fut>(keys: &[AccountKeypair], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, AccountKeypair, MemoryChannel) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut channels = MemoryChannel::network(
        &keys
            .iter()
            .map(AccountKeypair::account_id)
            .collect::<Vec<_>>(),
    );
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let channel = channels.remove(&key.account_id()).unwrap();
            tokio::spawn(f(i, key.clone(), channel))
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn toy_network(keys: &[AccountKeypair], threshold: usize) -> Vec<(Held<Toy>, HeldAux<Toy>)> {
    let holders = ids(keys);
    run_parties(keys, move |_, key, mut channel| {
        let holders = holders.clone();
        async move {
            let ctx = Ctx {
                signer: &key,
                session_id: &[1; 32],
                config: &config(Duration::from_secs(60)),
            };
            let (share, aux, _) =
                engine::generate_key::<Toy, _>(&ctx, &holders, threshold, &mut channel)
                    .await
                    .unwrap();
            (share, aux)
        }
    })
    .await
}

/// What one toy signer ends with: the signature, the derived key and its cost.
type ToySigned = (
    synedrion::RecoverableSignature<Toy>,
    ecdsa::VerifyingKey<<Toy as SchemeParams>::Curve>,
    SessionStats,
);

/// Every one of `signers`, with its share and aux data, signs `prehash(message)` at `path`.
async fn toy_sign(
    signers: &[AccountKeypair],
    material: Vec<(Held<Toy>, HeldAux<Toy>)>,
    session: u8,
    path: &DerivationPath,
    message: u8,
) -> Vec<Result<ToySigned, MpcError>> {
    let committee = ids(signers);
    run_parties(signers, |i, signer, mut channel| {
        let (share, aux) = material[i].clone();
        let (committee, path) = (committee.clone(), path.clone());
        async move {
            let ctx = Ctx {
                signer: &signer,
                session_id: &[session; 32],
                config: &config(Duration::from_secs(60)),
            };
            engine::sign::<Toy, _>(
                &ctx,
                &share,
                &aux,
                &committee,
                &path,
                &prehash(message),
                &mut channel,
            )
            .await
        }
    })
    .await
}

/// The rounds of synedrion 0.3's interactive signing as manul runs them, failure-free: each
/// round with an echo broadcast is followed by its echo round.
const SIGNING_ROUNDS: [&str; 7] = [
    "Round 1",
    "Round 1 (echo)",
    "Round 2",
    "Round 2 (echo)",
    "Round 3",
    "Round 3 (echo)",
    "Round 4",
];

/// What holds for the per-round profile of any successful operation.
fn check_profile(stats: &SessionStats) {
    let profile = &stats.rounds_profile;
    assert_eq!(profile.len(), stats.rounds as usize, "one entry per round");
    let cpu: Duration = profile.iter().map(|round| round.cpu).sum();
    assert!(cpu <= stats.cpu, "rounds {cpu:?} > total {:?}", stats.cpu);
    // Rounds follow each other without overlapping, inside the operation.
    let wall: Duration = profile.iter().map(|round| round.wall).sum();
    assert!(
        wall <= stats.wall,
        "rounds {wall:?} > total {:?}",
        stats.wall
    );
    for round in profile {
        assert!(round.waiting <= round.wall, "{round:?}");
        assert_eq!(round.busy() + round.waiting, round.wall);
        assert!(round.cpu > Duration::ZERO, "{round:?}");
        assert!(round.messages_sent > 0 && round.bytes_sent > 0, "{round:?}");
    }
    let sent: u64 = profile.iter().map(|round| round.messages_sent).sum();
    let sent_bytes: u64 = profile.iter().map(|round| round.bytes_sent).sum();
    assert_eq!(
        (sent, sent_bytes),
        (stats.messages_sent, stats.bytes_sent),
        "a successful operation sends only in its rounds"
    );
    let received: u64 = profile.iter().map(|round| round.messages_received).sum();
    let received_bytes: u64 = profile.iter().map(|round| round.bytes_received).sum();
    assert!(received <= stats.messages_received && received_bytes <= stats.bytes_received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_party_signature_profiles_each_of_its_seven_rounds() {
    let keys = keypairs(2);
    let network = toy_network(&keys, 2).await;
    let path = DerivationPath::new(vec![1, 2]).unwrap();
    for result in toy_sign(&keys, network, 12, &path, 3).await {
        let (_, _, stats) = result.unwrap();
        check_profile(&stats);
        let rounds: Vec<&str> = stats
            .rounds_profile
            .iter()
            .map(|round| round.round.as_str())
            .collect();
        assert_eq!(rounds, SIGNING_ROUNDS);
        for round in &stats.rounds_profile {
            assert_eq!(round.protocol, ProtocolKind::Signing);
            // One peer: one message each way per round, the early one counted for its round.
            assert_eq!(
                (round.messages_sent, round.messages_received),
                (1, 1),
                "{round:?}"
            );
        }
        // Creating the session and running the rounds is all of signing's work.
        let cpu: Duration = stats.rounds_profile.iter().map(|round| round.cpu).sum();
        assert_eq!(cpu, stats.cpu);
        assert_eq!(stats.messages_received, 7);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkg_among_five_gives_one_key_that_any_three_sign_with() {
    let keys = keypairs(5);
    let network = toy_network(&keys, 3).await;
    let key = network[0].0.share.verifying_key().unwrap();
    for (share, aux) in &network {
        assert_eq!(share.share.verifying_key().unwrap(), key);
        assert_eq!(share.share.threshold(), 3);
        assert_eq!(share.holders, ids(&keys));
        assert_eq!(aux.parties, ids(&keys));
    }

    let committee_keys: Vec<_> = [0, 2, 4].iter().map(|&i| keys[i].clone()).collect();
    let material = [0, 2, 4].iter().map(|&i| network[i].clone()).collect();
    let path = DerivationPath::new(vec![44, 60, 0, 0, 7]).unwrap();
    let signatures: Vec<_> = toy_sign(&committee_keys, material, 2, &path, 9)
        .await
        .into_iter()
        .map(|result| {
            let (signature, derived, stats) = result.unwrap();
            assert!(stats.rounds >= 3 && stats.messages_sent > 0 && stats.cpu > Duration::ZERO);
            check_profile(&stats);
            assert_eq!(stats.rounds_profile.len(), SIGNING_ROUNDS.len());
            (signature.to_backend(), derived)
        })
        .collect();
    // Every member ends with the same signature under the same derived key, which differs
    // from the network key.
    assert!(signatures.windows(2).all(|pair| pair[0] == pair[1]));
    assert_ne!(signatures[0].1, key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharing_keeps_the_key_and_shuts_out_the_old_holder() {
    let keys = keypairs(5);
    let (a, b, c, d, e) = (&keys[0], &keys[1], &keys[2], &keys[3], &keys[4]);
    let first: Vec<_> = vec![a.clone(), b.clone(), c.clone()];
    let network = toy_network(&first, 2).await;
    let key = network[0].0.share.verifying_key().unwrap();
    let old_holders = ids(&first);
    let new_set = vec![b.clone(), c.clone(), d.clone(), e.clone()];
    let new_holders = ids(&new_set);

    let reshared = run_parties(&keys, |i, signer, mut channel| {
        let old = (i < 3).then(|| network[i].0.clone());
        let (old_holders, new_holders) = (old_holders.clone(), new_holders.clone());
        async move {
            let ctx = Ctx {
                signer: &signer,
                session_id: &[3; 32],
                config: &config(Duration::from_secs(60)),
            };
            let plan = Resharing::<Toy> {
                // New-only holders learn the key from the ledger.
                verifying_key: key,
                old_holders: &old_holders,
                old_threshold: 2,
                new_holders: &new_holders,
                new_threshold: 3,
            };
            engine::reshare::<Toy, _>(&ctx, old.as_ref(), &plan, &mut channel)
                .await
                .unwrap()
                .0
        }
    })
    .await;
    assert!(reshared[0].is_none(), "A is not a new holder");
    let new_shares: Vec<Held<Toy>> = reshared.into_iter().skip(1).map(Option::unwrap).collect();
    for share in &new_shares {
        assert_eq!(share.share.verifying_key().unwrap(), key);
        assert_eq!(share.share.threshold(), 3);
        assert_eq!(share.holders, new_holders);
    }

    // A's old share cannot join a committee with the new shares: the new holders refuse it.
    let aux_parties = ids(&keys);
    let auxes = toy_aux(&keys).await;
    let committee = ids(&[a.clone(), b.clone(), c.clone()]);
    let ctx_key = b.clone();
    let ctx = Ctx {
        signer: &ctx_key,
        session_id: &[4; 32],
        config: &config(Duration::from_secs(5)),
    };
    let mut idle = MemoryChannel::network(&[b.account_id()])
        .remove(&b.account_id())
        .unwrap();
    let refused = engine::sign::<Toy, _>(
        &ctx,
        &new_shares[0],
        &auxes[1],
        &committee,
        &DerivationPath::new(vec![]).unwrap(),
        &prehash(1),
        &mut idle,
    )
    .await;
    assert!(
        matches!(refused, Err(MpcError::InvalidInput(ref m)) if m.contains("holds no share")),
        "{refused:?}"
    );
    assert_eq!(auxes[0].parties, aux_parties);

    // The new set signs.
    let signers = vec![c.clone(), d.clone(), e.clone()];
    let material = (0..3)
        .map(|i| (new_shares[i + 1].clone(), auxes[i + 2].clone()))
        .collect();
    let path = DerivationPath::new(vec![1]).unwrap();
    let results = toy_sign(&signers, material, 5, &path, 2).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// synedrion 0.3 has no evidence checks for resharing (`unimplemented!()`, reached when it finds
/// a subshare that does not match): a corrupt old holder makes the reshare fail, cleanly, with
/// nothing anyone could prove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_old_holder_fails_a_reshare_without_a_crash_or_a_proof() {
    let keys = keypairs(4);
    let old: Vec<_> = keys[..3].to_vec();
    let network = toy_network(&old, 2).await;
    let key = network[0].0.share.verifying_key().unwrap();
    let (old_holders, new_holders) = (ids(&old), ids(&keys[1..]));
    let results = run_parties(&keys, |i, signer, mut channel| {
        let share = (i < 3).then(|| network[i].0.clone());
        let (old_holders, new_holders) = (old_holders.clone(), new_holders.clone());
        let mut config = config(Duration::from_secs(5));
        if i == 0 {
            config.fault = Some(InjectedFault::Corrupt);
        }
        async move {
            let ctx = Ctx {
                signer: &signer,
                session_id: &[9; 32],
                config: &config,
            };
            let plan = Resharing::<Toy> {
                verifying_key: key,
                old_holders: &old_holders,
                old_threshold: 2,
                new_holders: &new_holders,
                new_threshold: 2,
            };
            engine::reshare::<Toy, _>(&ctx, share.as_ref(), &plan, &mut channel)
                .await
                .map(|_| ())
        }
    })
    .await;
    for (i, result) in results.iter().enumerate().skip(1) {
        match result {
            Err(MpcError::Failed(failure)) => {
                assert!(
                    failure.faults.iter().all(|f| f.evidence.is_none()),
                    "{failure}"
                )
            }
            Err(_) => {}
            Ok(()) => panic!("party {i} finished a reshare fed corrupt subshares"),
        }
    }
}

async fn toy_aux(keys: &[AccountKeypair]) -> Vec<HeldAux<Toy>> {
    let parties = ids(keys);
    run_parties(keys, move |_, key, mut channel| {
        let parties = parties.clone();
        async move {
            let ctx = Ctx {
                signer: &key,
                session_id: &[6; 32],
                config: &config(Duration::from_secs(60)),
            };
            engine::generate_aux::<Toy, _>(&ctx, &parties, &mut channel)
                .await
                .unwrap()
                .0
        }
    })
    .await
}

/// Signs with `committee_idx` of a toy network in session `[session; 32]`; party `faulty`
/// commits `fault`.
async fn sign_with_fault(
    keys: &[AccountKeypair],
    network: &[(Held<Toy>, HeldAux<Toy>)],
    committee_idx: &[usize],
    faulty: usize,
    fault: InjectedFault,
    session: u8,
) -> Vec<Result<SessionStats, MpcError>> {
    let members: Vec<_> = committee_idx.iter().map(|&i| keys[i].clone()).collect();
    let committee = ids(&members);
    run_parties(&members, |i, key, mut channel| {
        let (share, aux) = network[committee_idx[i]].clone();
        let committee = committee.clone();
        let mut config = config(Duration::from_secs(2));
        if committee_idx[i] == faulty {
            config.fault = Some(fault.clone());
        }
        async move {
            let ctx = Ctx {
                signer: &key,
                session_id: &[session; 32],
                config: &config,
            };
            let path = DerivationPath::new(vec![3]).unwrap();
            engine::sign::<Toy, _>(
                &ctx,
                &share,
                &aux,
                &committee,
                &path,
                &prehash(4),
                &mut channel,
            )
            .await
            .map(|(_, _, stats)| stats)
        }
    })
    .await
}

/// Every honest member's failure names `faulty`, and only it, as one of `kinds`; returns their
/// faults.
fn named_by_every_honest_party(
    results: &[Result<SessionStats, MpcError>],
    keys: &[AccountKeypair],
    committee_idx: &[usize],
    faulty: usize,
    kinds: &[FaultKind],
) -> Vec<Fault> {
    let accused = keys[faulty].account_id();
    let mut faults = Vec::new();
    for (position, result) in results.iter().enumerate() {
        if committee_idx[position] == faulty {
            continue; // the faulty party's own view does not matter
        }
        let Err(MpcError::Failed(failure)) = result else {
            panic!("expected a failed session, got {result:?}")
        };
        assert_eq!(failure.accused(), vec![accused], "{failure}");
        let fault = failure.fault_of(&accused).unwrap();
        assert!(kinds.contains(&fault.kind), "{fault:?}");
        faults.push(fault.clone());
    }
    assert_eq!(faults.len(), committee_idx.len() - 1);
    faults
}

/// `verify_evidence` accepts each fault's proof of equivocation, and refuses it with any byte
/// flipped, for another session, offender or kind.
fn proof_holds(faults: &[Fault], session: u8, innocent: &AccountId) {
    let session = [session; 32];
    for fault in faults {
        let evidence = fault
            .evidence
            .as_deref()
            .expect("an equivocation carries its proof");
        let record: EquivocationEvidence = postcard::from_bytes(evidence).unwrap();
        assert_eq!(record.protocol, ProtocolKind::Signing);
        verify_evidence(&session, &fault.party, fault.kind, evidence).unwrap();
        for index in 0..evidence.len() {
            let mut flipped = evidence.to_vec();
            flipped[index] ^= 0x01;
            assert!(
                verify_evidence(&session, &fault.party, fault.kind, &flipped).is_err(),
                "flipped byte {index} of {} accepted",
                evidence.len()
            );
        }
        let mut truncated = evidence.to_vec();
        truncated.pop();
        assert!(verify_evidence(&session, &fault.party, fault.kind, &truncated).is_err());
        let mut extended = evidence.to_vec();
        extended.push(0);
        assert!(verify_evidence(&session, &fault.party, fault.kind, &extended).is_err());
        let mut other_session = session;
        other_session[0] ^= 1;
        assert!(verify_evidence(&other_session, &fault.party, fault.kind, evidence).is_err());
        assert!(verify_evidence(&session[..31], &fault.party, fault.kind, evidence).is_err());
        assert!(verify_evidence(&session, innocent, fault.kind, evidence).is_err());
        for kind in [
            FaultKind::Unresponsive,
            FaultKind::InvalidMessage,
            FaultKind::FailedProof,
        ] {
            assert!(verify_evidence(&session, &fault.party, kind, evidence).is_err());
        }
    }
}

/// Faults no evidence can prove are named without any.
fn unproven(faults: &[Fault]) {
    for fault in faults {
        assert!(fault.evidence.is_none(), "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_party_is_named_unresponsive_when_the_round_times_out() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let silent = 2;
    let started = std::time::Instant::now();
    let results = sign_with_fault(
        &keys,
        &network,
        &[0, 1, 2],
        silent,
        InjectedFault::Silent,
        8,
    )
    .await;
    // The 2 s round timeout and the short wait for stop notices after it ended the session.
    assert!(started.elapsed() < Duration::from_secs(5));
    let faults = named_by_every_honest_party(
        &results,
        &keys,
        &[0, 1, 2],
        silent,
        &[FaultKind::Unresponsive],
    );
    for fault in &faults {
        assert!(fault.evidence.is_none());
        assert_eq!(fault.reported_by, None);
        assert!(
            verify_evidence(&[8; 32], &fault.party, fault.kind, &[]).is_err(),
            "unresponsiveness has no evidence"
        );
    }
    for result in &results[..2] {
        let Err(MpcError::Failed(failure)) = result else {
            unreachable!()
        };
        assert_eq!(failure.reason, FailureReason::TimedOut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_that_drops_one_peer_is_named_unresponsive_by_both_honest_parties() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let (faulty, starved) = (3, 1);
    let fault = InjectedFault::DropTo(keys[starved].account_id());
    let started = std::time::Instant::now();
    let results = sign_with_fault(&keys, &network, &[0, 1, 3], faulty, fault, 12).await;
    assert!(started.elapsed() < Duration::from_secs(6));
    named_by_every_honest_party(
        &results,
        &keys,
        &[0, 1, 3],
        faulty,
        &[FaultKind::Unresponsive],
    );
    // The starved party saw the silence; the other honest one took its word (and does not
    // blame it for stopping).
    let Err(MpcError::Failed(starved_view)) = &results[1] else {
        unreachable!()
    };
    assert_eq!(starved_view.reason, FailureReason::TimedOut);
    let Err(MpcError::Failed(other_view)) = &results[0] else {
        unreachable!()
    };
    let fault = other_view.fault_of(&keys[faulty].account_id()).unwrap();
    assert_eq!(
        fault.reported_by,
        Some(keys[starved].account_id()),
        "{fault:?}"
    );
    let fault = starved_view.fault_of(&keys[faulty].account_id()).unwrap();
    assert_eq!(fault.reported_by, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_sending_corrupt_signed_messages_is_named_without_evidence() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let corrupt = 1;
    let results = sign_with_fault(
        &keys,
        &network,
        &[0, 1, 3],
        corrupt,
        InjectedFault::Corrupt,
        13,
    )
    .await;
    // Whether an altered payload still decodes (into a proof that fails) depends on the
    // random value in its last field.
    let faults = named_by_every_honest_party(
        &results,
        &keys,
        &[0, 1, 3],
        corrupt,
        &[FaultKind::FailedProof, FaultKind::InvalidMessage],
    );
    unproven(&faults);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_sending_proofs_that_fail_is_named_without_evidence() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let faulty = 0;
    let results = sign_with_fault(
        &keys,
        &network,
        &[0, 2, 3],
        faulty,
        InjectedFault::BadProof,
        14,
    )
    .await;
    let faults = named_by_every_honest_party(
        &results,
        &keys,
        &[0, 2, 3],
        faulty,
        &[FaultKind::FailedProof],
    );
    for fault in &faults {
        assert!(
            fault.description.starts_with("Protocol error: Round 1"),
            "{fault:?}"
        );
    }
    unproven(&faults);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_party_is_named_with_two_whole_broadcasts() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let faulty = 2;
    let results = sign_with_fault(
        &keys,
        &network,
        &[1, 2, 3],
        faulty,
        InjectedFault::Equivocate,
        15,
    )
    .await;
    let faults = named_by_every_honest_party(
        &results,
        &keys,
        &[1, 2, 3],
        faulty,
        &[FaultKind::Equivocation],
    );
    // Each honest party proves it with the broadcast it got and the one the other exhibited:
    // the same two, so the same bytes.
    assert_eq!(faults[0].evidence, faults[1].evidence);
    proof_holds(&faults, 15, &keys[1].account_id());
}

#[test]
fn injected_faults_parse_from_their_names() {
    let peer = NodeSeed::dev("peer").account_keypair().account_id();
    for fault in [
        InjectedFault::Silent,
        InjectedFault::DropTo(peer),
        InjectedFault::Corrupt,
        InjectedFault::BadProof,
        InjectedFault::Equivocate,
        InjectedFault::Frame(peer),
        InjectedFault::CrashAfterNonce,
    ] {
        assert_eq!(fault.to_string().parse::<InjectedFault>(), Ok(fault));
    }
    assert_eq!(
        format!("drop-to:{peer}").parse::<InjectedFault>(),
        Ok(InjectedFault::DropTo(peer))
    );
    for bad in [
        "",
        "Silent",
        "drop-to:",
        "drop-to:0x12",
        "drop-to",
        "lie",
        "frame:",
        "frame:x",
    ] {
        let error = bad.parse::<InjectedFault>().unwrap_err();
        assert!(!error.is_empty(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framer_holds_nothing_that_proves_an_honest_party_guilty() {
    let keys = keypairs(4);
    let network = toy_network(&keys, 3).await;
    let (framer, victim) = (1, 2);
    let fault = InjectedFault::Frame(keys[victim].account_id());
    let mut heard = Vec::new();
    for session in [16, 17] {
        let results =
            sign_with_fault(&keys, &network, &[0, 1, 2], framer, fault.clone(), session).await;
        let stats = results[1].as_ref().expect("the framer signs honestly");
        let from_victim: Vec<Vec<u8>> = stats
            .heard
            .iter()
            .filter(|(from, _)| *from == keys[victim].account_id())
            .map(|(_, bytes)| bytes.clone())
            .collect();
        assert!(!from_victim.is_empty());
        heard.push(from_victim);
    }
    let forged = crate::forgeries(&heard[1], &heard[0]);
    let variants: BTreeSet<&str> = forged.iter().map(|f| f.variant).collect();
    for variant in [
        "own-message-as-failed-proof",
        "own-message-as-invalid",
        "direct-message-as-broadcast",
        "broadcasts-of-two-rounds",
        "broadcasts-of-two-sessions",
        "bare-accusation",
    ] {
        assert!(variants.contains(variant), "{variant}: {variants:?}");
    }
    let accused = keys[victim].account_id();
    for forgery in forged.iter().filter(|f| !f.evidence.is_empty()) {
        for session in [[16; 32], [17; 32]] {
            let verdict = verify_evidence(&session, &accused, forgery.kind, &forgery.evidence);
            assert!(verdict.is_err(), "{}: {verdict:?}", forgery.variant);
        }
    }
}

#[test]
fn garbage_is_not_evidence() {
    let offender = NodeSeed::dev("offender").account_keypair().account_id();
    for kind in [FaultKind::InvalidMessage, FaultKind::FailedProof] {
        assert!(matches!(
            verify_evidence(&[1; 32], &offender, kind, b"anything"),
            Err(MpcError::InvalidEvidence(_))
        ));
    }
    assert!(matches!(
        verify_evidence(
            &[1; 32],
            &offender,
            FaultKind::Equivocation,
            b"not evidence"
        ),
        Err(MpcError::Decode { .. })
    ));
    let empty = EquivocationEvidence {
        protocol: ProtocolKind::Signing,
        broadcasts: [vec![], vec![1]],
    };
    let bytes = postcard::to_allocvec(&empty).unwrap();
    assert!(matches!(
        verify_evidence(&[1; 32], &offender, FaultKind::Equivocation, &bytes),
        Err(MpcError::InvalidEvidence(_))
    ));
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_message_is_sent() {
    let keys = keypairs(3);
    let holders = ids(&keys);
    let outsider = NodeSeed::dev("outsider").account_keypair();
    let mut channel = MemoryChannel::network(&[outsider.account_id()])
        .remove(&outsider.account_id())
        .unwrap();
    let cfg = config(Duration::from_secs(1));
    let ctx = Ctx {
        signer: &outsider,
        session_id: &[9; 32],
        config: &cfg,
    };
    let not_member = engine::generate_key::<Toy, _>(&ctx, &holders, 2, &mut channel).await;
    assert!(
        matches!(not_member, Err(MpcError::InvalidInput(ref m)) if m.contains("not in the signer set"))
    );
    let ctx = Ctx {
        signer: &keys[0],
        ..ctx
    };
    for threshold in [0, 1, 4] {
        let bad = engine::generate_key::<Toy, _>(&ctx, &holders, threshold, &mut channel).await;
        assert!(
            matches!(bad, Err(MpcError::InvalidInput(ref m)) if m.contains("threshold")),
            "{threshold}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_gives_new_shares_and_aux_data_of_the_same_key_that_sign() {
    let keys = keypairs(3);
    let network = toy_network(&keys, 2).await;
    let key = network[0].0.share.verifying_key().unwrap();
    let refreshed = run_parties(&keys, |i, signer, mut channel| {
        let share = network[i].0.clone();
        async move {
            let ctx = Ctx {
                signer: &signer,
                session_id: &[10; 32],
                config: &config(Duration::from_secs(60)),
            };
            engine::refresh::<Toy, _>(&ctx, &share, &mut channel)
                .await
                .unwrap()
        }
    })
    .await;
    for (share, aux, stats) in &refreshed {
        assert_eq!(share.share.verifying_key().unwrap(), key);
        assert_eq!(share.share.threshold(), 2);
        assert_eq!(share.holders, ids(&keys));
        assert_eq!(aux.parties, ids(&keys));
        assert!(stats.rounds > 0);
        // Two phases in one operation: the resharing's rounds, then the aux-data rounds.
        check_profile(stats);
        let phases: Vec<ProtocolKind> = stats.rounds_profile.iter().map(|r| r.protocol).collect();
        let resharing = phases
            .iter()
            .take_while(|p| **p == ProtocolKind::KeyResharing)
            .count();
        assert!(resharing > 0 && resharing < phases.len(), "{phases:?}");
        assert!(
            phases[resharing..]
                .iter()
                .all(|p| *p == ProtocolKind::AuxGen),
            "{phases:?}"
        );
    }

    let signers = vec![keys[0].clone(), keys[2].clone()];
    let material = [0, 2]
        .iter()
        .map(|&i| (refreshed[i].0.clone(), refreshed[i].1.clone()))
        .collect();
    let path = DerivationPath::new(vec![2]).unwrap();
    let results: Vec<_> = toy_sign(&signers, material, 11, &path, 5)
        .await
        .into_iter()
        .map(|result| result.map(|(signature, ..)| signature.to_backend()))
        .collect();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
}
