//! The engine over the real validator transport (Noise over websockets on 127.0.0.1), with
//! production parameters and the committed fixtures: concurrent signings over the same
//! connections, a silent committee member, and members that corrupt, equivocate or send
//! failing proofs.

mod common;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use common::{
    Validator, accounts,
    net::{TransportChannel, network, transport_of},
    validators,
};
use sigil_crypto::{NodeSeed, derive_user_key, keccak256, verify_ecdsa};
use sigil_mpc::{Engine, FaultKind, InjectedFault, MpcError, SessionConfig};
use sigil_primitives::{AccountId, DerivationPath};
use sigil_transport::{SessionId, Transport};

/// Every committee member except `silent` signs over its own transport (with `engines[i]`
/// instead of its own engine when given); results in committee order, the silent one left out.
async fn sign_over(
    transports: &Arc<Vec<Transport>>,
    committee: &[Validator],
    session: [u8; 32],
    prehash: [u8; 32],
    engines: Option<Vec<Engine>>,
    silent: Option<AccountId>,
) -> Vec<Result<sigil_mpc::Signed, MpcError>> {
    let members = accounts(committee);
    let member_list: Vec<_> = members.iter().copied().collect();
    let path = DerivationPath::new(vec![60, 1]).unwrap();
    let tasks: Vec<_> = committee
        .iter()
        .enumerate()
        .filter(|(_, validator)| Some(validator.account()) != silent)
        .map(|(i, validator)| {
            let validator = validator.clone();
            let engine = engines
                .as_ref()
                .map_or(validator.engine.clone(), |engines| engines[i].clone());
            let transports = transports.clone();
            let (members, member_list, path) = (members.clone(), member_list.clone(), path.clone());
            tokio::spawn(async move {
                let transport = transport_of(&transports, &validator.account());
                let mut channel = TransportChannel(
                    transport
                        .open_session(SessionId::new(session), &member_list)
                        .unwrap(),
                );
                let request = validator.sign_request(&members, &path, &prehash);
                engine.sign(&session, &request, &mut channel).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_committees_sign_concurrently_over_the_same_connections() {
    let all = validators();
    let transports = Arc::new(network(&common::NAMES).await);
    let first: Vec<_> = [0, 2, 4].iter().map(|&i| all[i].clone()).collect();
    let second: Vec<_> = [1, 2, 3].iter().map(|&i| all[i].clone()).collect();
    let (one, two) = tokio::join!(
        sign_over(
            &transports,
            &first,
            [0xa1; 32],
            keccak256(b"first"),
            None,
            None
        ),
        sign_over(
            &transports,
            &second,
            [0xa2; 32],
            keccak256(b"second"),
            None,
            None
        ),
    );
    let path = DerivationPath::new(vec![60, 1]).unwrap();
    let key = derive_user_key(&all[0].share.verifying_key(), &path).unwrap();
    for (results, message) in [(one, b"first".as_slice()), (two, b"second".as_slice())] {
        for result in results {
            let signed = result.unwrap();
            assert_eq!(signed.verifying_key, key);
            verify_ecdsa(&key, &keccak256(message), &signed.signature).unwrap();
        }
    }
    // One connection per pair that talked, reused by both sessions.
    let charlie = transport_of(&transports, &all[2].account());
    let peers: BTreeSet<_> = charlie.connected_peers().into_iter().collect();
    assert_eq!(peers.len(), 4, "charlie signed with everyone once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_joins_is_named_unresponsive() {
    let all = validators();
    let transports = Arc::new(network(&common::NAMES).await);
    let committee: Vec<_> = [0, 1, 3].iter().map(|&i| all[i].clone()).collect();
    let silent = all[3].account();
    // The silent member never opens its session; the others still address it.
    let engines: Vec<_> = committee
        .iter()
        .map(|v| common::engine(v.name, Duration::from_secs(8)))
        .collect();
    let results = sign_over(
        &transports,
        &committee,
        [0xb1; 32],
        keccak256(b"silence"),
        Some(engines),
        Some(silent),
    )
    .await;
    assert_eq!(results.len(), 2);
    for result in results {
        let Err(MpcError::Failed(failure)) = result else {
            panic!("the session must fail")
        };
        assert_eq!(failure.accused(), vec![silent], "{failure}");
        assert_eq!(
            failure.fault_of(&silent).unwrap().kind,
            FaultKind::Unresponsive
        );
    }
}

/// Signs with `committee` over the transport in `session`, `faulty` committing `fault`, and
/// checks that every honest member names `faulty`, and only it, as one of `kinds`; with a proof
/// that `verify_evidence` accepts (and refuses altered, for another session or another
/// offender) when `proven`, with no evidence otherwise.
async fn faulty_signing(
    committee: &[Validator],
    faulty: AccountId,
    fault: InjectedFault,
    session: [u8; 32],
    kinds: &[FaultKind],
    proven: bool,
) {
    let transports = Arc::new(network(&common::NAMES).await);
    let engines: Vec<_> = committee
        .iter()
        .map(|v| {
            let mut config = SessionConfig::with_round_timeout(Duration::from_secs(30));
            if v.account() == faulty {
                config.fault = Some(fault.clone());
            }
            Engine::new(NodeSeed::dev(v.name).account_keypair(), config)
        })
        .collect();
    let results = sign_over(
        &transports,
        committee,
        session,
        keccak256(&session),
        Some(engines),
        None,
    )
    .await;
    for (validator, result) in committee.iter().zip(results) {
        if validator.account() == faulty {
            continue;
        }
        let Err(MpcError::Failed(failure)) = result else {
            panic!("the session must fail: {result:?}")
        };
        assert_eq!(failure.accused(), vec![faulty], "{failure}");
        let fault = failure.fault_of(&faulty).unwrap();
        assert!(kinds.contains(&fault.kind), "{fault:?}");
        let kind = fault.kind;
        if !proven {
            assert!(fault.evidence.is_none(), "{fault:?}");
            continue;
        }
        let evidence = fault.evidence.as_ref().unwrap();
        sigil_mpc::verify_evidence(&session, &faulty, kind, evidence).unwrap();
        let mut other = session;
        other[31] ^= 1;
        assert!(sigil_mpc::verify_evidence(&other, &faulty, kind, evidence).is_err());
        let honest = validator.account();
        assert!(sigil_mpc::verify_evidence(&session, &honest, kind, evidence).is_err());
        let mut flipped = evidence.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x80;
        assert!(sigil_mpc::verify_evidence(&session, &faulty, kind, &flipped).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sending_corrupt_messages_is_named_without_evidence() {
    let all = validators();
    let committee: Vec<_> = [1, 2, 4].iter().map(|&i| all[i].clone()).collect();
    faulty_signing(
        &committee,
        all[2].account(),
        InjectedFault::Corrupt,
        [0xc1; 32],
        // Whether the altered payload still decodes depends on its last field.
        &[FaultKind::FailedProof, FaultKind::InvalidMessage],
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_member_is_named_with_two_whole_broadcasts() {
    let all = validators();
    let committee: Vec<_> = [0, 2, 3].iter().map(|&i| all[i].clone()).collect();
    faulty_signing(
        &committee,
        all[3].account(),
        InjectedFault::Equivocate,
        [0xe1; 32],
        &[FaultKind::Equivocation],
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sending_failing_proofs_is_named_without_evidence() {
    let all = validators();
    let committee: Vec<_> = [0, 1, 4].iter().map(|&i| all[i].clone()).collect();
    faulty_signing(
        &committee,
        all[0].account(),
        InjectedFault::BadProof,
        [0xb2; 32],
        &[FaultKind::FailedProof],
        false,
    )
    .await;
}
