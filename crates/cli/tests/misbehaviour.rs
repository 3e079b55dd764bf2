//! Misbehaviour end to end: a ledger and five `sigil node` processes built with fault injection
//! (alice…dave the 2-of-4 signers from a real DKG, eve the relayer), production parameters.
//!
//! In order, on one devnet: each injected fault (the user still gets a signature, the faulty
//! node is the only one accused, with the right kind; an unproven accusation disputes without a
//! slash, a proven one excludes and slashes); a signer killed mid-session and restarted; false
//! reports that change nothing; a signer rotated out by resharing once two distinct peers
//! accused it (same keys before and after, its share deleted); governance raising the
//! threshold (a reshare) so an equivocation has two recipients to prove it. A tagged load test
//! signs 200 requests while a signer is killed and restarted every few seconds.

mod common;

use common::*;
use std::collections::BTreeSet;

use futures::StreamExt as _;
use std::time::{Duration, Instant};

use sigil::devnet::Devnet;
use sigil_client::rpc::LedgerApiClient;
use sigil_client::types::{Call, FaultKind, OffenceRecord};
use sigil_client::{ClientError, LedgerClient, NodeClient, seal_request};
use sigil_crypto::request::sign_session_id;
use sigil_crypto::verify_ecdsa;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{AccountId, BlockNumber, HashingAlgorithm, SessionId, VerifyingKey};

/// Blocks an offender stays excluded, a dispute lasts and accusations count (18 s at 300 ms
/// blocks): long enough for the retry and the next signature of a 3-of-4 committee on a slow
/// 2-core machine, short enough that each case soon starts with every signer eligible and
/// nobody accused.
const WINDOW: u64 = 60;

/// One injected fault: `name` misbehaves as told; the request is signed by a new committee
/// without it and the ledger holds exactly one offence, against `name`, of `kind`: proven
/// (excluded, slashed) or an accusation (a dispute with each reporter, no slash).
async fn injected_fault_case(
    devnet: &Devnet,
    key: VerifyingKey,
    name: &str,
    fault: &str,
    kinds: &[FaultKind],
    with: &[AccountId],
) {
    let ledger = devnet.client();
    wait_exclusions_expire(ledger).await;
    let node = devnet.node(name).unwrap();
    let faulty = node.account;
    let client = NodeClient::new(&node.endpoint);
    let known = offences(ledger).await.len();
    let stake_before = stake(ledger, faulty).await;
    let parameters = ledger.rpc().parameters().await.unwrap();

    set_fault(&client, Some(fault)).await;
    let members = [&[faulty][..], with].concat();
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &members).await;
    let response = sign_checked(ledger, &request, &sealed).await;
    set_fault(&client, None).await;

    assert!(
        response.attempts.len() >= 2,
        "{fault}: the first committee failed and another signed: {:?}",
        response.attempts
    );
    assert!(response.attempts[0].committee.contains(&faulty));
    assert!(response.attempts[0].error.is_some());
    assert!(
        !response.committee.contains(&faulty),
        "{fault}: the signing committee excluded the offender"
    );
    assert!(response.attempts.last().unwrap().excluded.contains(&faulty));
    let reported: Vec<_> = response
        .offences
        .iter()
        .map(|o| (o.offender, o.kind.as_str()))
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "{fault}: {:?}; attempts {:?}",
        response.offences,
        response.attempts
    );
    assert_eq!(reported[0].0, faulty);
    let kind = *kinds
        .iter()
        .find(|k| k.as_str() == reported[0].1)
        .unwrap_or_else(|| panic!("{fault}: unexpected kind {}", reported[0].1));

    let new: Vec<OffenceRecord> = offences(ledger).await.into_iter().skip(known).collect();
    assert_eq!(
        new.len(),
        1,
        "{fault}: one offence, no honest node accused: {new:?}"
    );
    let record = &new[0];
    assert_eq!((record.offender, record.kind), (faulty, kind), "{fault}");
    assert!(record.recorded.is_some(), "{fault}: recorded");
    let session = sign_session_id(&sealed.digest, 0);
    assert_eq!(record.session, session);
    // Only a proven offence slashes.
    let permille = if record.proven {
        parameters.slash_misbehaviour_permille
    } else {
        0
    };
    let expected = stake_before * u64::from(permille) / 1000;
    assert_eq!(record.slashed, expected, "{fault}");
    assert_eq!(
        stake(ledger, faulty).await,
        stake_before - expected,
        "{fault}"
    );
    let set = ledger.rpc().signer_set().await.unwrap();
    let now = head(ledger).await;
    if record.proven {
        assert!(set.excluded_at(now).contains(&faulty), "{fault}: excluded");
    } else {
        let disputes: Vec<_> = set
            .disputes_at(now)
            .map(|d| (d.accuser, d.accused))
            .collect();
        for reporter in &record.reporters {
            assert!(
                disputes.contains(&(*reporter, faulty)),
                "{fault}: {disputes:?}"
            );
        }
    }

    // The next committees keep it away from its accusers (out altogether when proven).
    let next = sigil_client::types::ValidatorRecord::clone(&ledger.relayers().await.unwrap()[0]);
    let request = SignatureRequest {
        verifying_key: key,
        block: head(ledger).await,
        hashing: HashingAlgorithm::Keccak256,
        aux_data: vec![vec![]],
        message: b"after the offence".to_vec(),
    };
    let sealed = seal_request(&dev("bob"), &next, &request).unwrap();
    let after = sign_checked(ledger, &request, &sealed).await;
    let with_accuser = record.reporters.iter().any(|r| after.committee.contains(r));
    assert!(
        !(after.committee.contains(&faulty) && with_accuser),
        "{fault}"
    );
    assert!(
        !record.proven || !after.committee.contains(&faulty),
        "{fault}"
    );
    assert_eq!(after.attempts.len(), 1);
    eprintln!(
        "fault {fault}: {} attempts, offence {} ({}), slashed {}",
        response.attempts.len(),
        record.kind.as_str(),
        if record.proven { "proven" } else { "reported" },
        record.slashed
    );
}

/// False reports: by a non-signer, with a ticket no relayer signed, about a non-member, with
/// evidence that does not hold. Each is refused and nothing changes.
async fn false_reports(devnet: &Devnet) {
    let ledger = devnet.client();
    let (alice, bob, charlie) = (
        devnet.node("alice").unwrap().account,
        devnet.node("bob").unwrap().account,
        devnet.node("charlie").unwrap().account,
    );
    let relayer_name = devnet
        .name_of(&ledger.relayers().await.unwrap()[0].account)
        .unwrap()
        .to_owned();
    let block = BlockNumber(head(ledger).await);
    let ticket = |by: &str, committee: Vec<AccountId>| {
        let mut committee = committee;
        committee.sort();
        sigil_client::tx::sign_ticket(
            &dev(by),
            ledger.chain_id(),
            SessionId::new(sigil_crypto::secret::random_array::<32>()),
            block,
            0,
            committee,
        )
    };
    let before = (
        offences(ledger).await,
        stake(ledger, bob).await,
        ledger.rpc().signer_set().await.unwrap(),
    );
    let report = |ticket, kind, evidence: Vec<u8>| Call::ReportOffence {
        ticket,
        offender: bob,
        kind,
        evidence,
    };
    let cases = [
        (
            relayer_name.as_str(),
            report(
                ticket(&relayer_name, vec![alice, bob]),
                FaultKind::Unresponsive,
                vec![],
            ),
            "only a signer may report",
        ),
        (
            "alice",
            report(
                ticket("alice", vec![alice, bob]),
                FaultKind::Unresponsive,
                vec![],
            ),
            "must come from a relayer",
        ),
        (
            "alice",
            report(
                ticket(&relayer_name, vec![alice, charlie]),
                FaultKind::Unresponsive,
                vec![],
            ),
            "not in that session's committee",
        ),
        (
            "alice",
            report(
                ticket(&relayer_name, vec![alice, bob]),
                FaultKind::FailedProof,
                b"not evidence".to_vec(),
            ),
            "evidence does not hold",
        ),
    ];
    for (by, call, why) in cases {
        let error = ledger
            .submit(&dev(by), call, true)
            .await
            .expect_err("a false report is refused");
        assert!(error.to_string().contains(why), "{why}: {error}");
    }
    let after = (
        offences(ledger).await,
        stake(ledger, bob).await,
        ledger.rpc().signer_set().await.unwrap(),
    );
    assert_eq!(before.0, after.0, "no offence recorded");
    assert_eq!(before.1, after.1, "no stake slashed");
    assert_eq!(before.2.excluded, after.2.excluded, "nobody excluded");
    assert_eq!(before.2.disputes, after.2.disputes, "nobody disputed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaviour_is_named_reported_and_survived() {
    let dir = TestDir::new();
    let (mut devnet, key) = start(dir.path()).await;
    let ledger = LedgerClient::connect(devnet.ledger_url()).await.unwrap();
    let ledger = &ledger;
    let network_key = devnet.network_key().unwrap();

    // Each injected fault in turn, all by dave.
    let charlie = devnet.node("charlie").unwrap().account;
    for (fault, kinds, with) in [
        ("silent", &[FaultKind::Unresponsive][..], &[][..]),
        (
            format!("drop-to:{charlie}").as_str(),
            &[FaultKind::Unresponsive],
            &[charlie],
        ),
        // A flipped byte either breaks decoding or a proof, depending on where it lands.
        (
            "corrupt",
            &[FaultKind::InvalidMessage, FaultKind::FailedProof],
            &[],
        ),
        ("bad-proof", &[FaultKind::FailedProof], &[]),
    ] {
        injected_fault_case(&devnet, key, "dave", fault, kinds, with).await;
    }

    // A signer killed mid-session: the request is still signed, by another committee; the
    // restarted signer signs again once its exclusion ends.
    wait_exclusions_expire(ledger).await;
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &[charlie]).await;
    let pending = {
        let ledger = LedgerClient::connect(devnet.ledger_url()).await.unwrap();
        let (request, sealed) = (request.clone(), sealed.clone());
        tokio::spawn(async move { sign_checked(&ledger, &request, &sealed).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    devnet.kill("charlie").await.unwrap();
    let response = pending.await.unwrap();
    assert!(response.attempts.len() >= 2 && !response.committee.contains(&charlie));
    devnet.restart("charlie").await.unwrap();
    wait_exclusions_expire(ledger).await;
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &[charlie]).await;
    let rejoined = sign_checked(ledger, &request, &sealed).await;
    assert!(rejoined.committee.contains(&charlie), "charlie signs again");

    false_reports(&devnet).await;

    // Rotation: two distinct peers that accused dave (the threshold) take it out of the signer
    // set, without a slash, and eve takes its place through a reshare. The cases above left
    // accusations older than the window; a longer window counts them again, and if they came
    // from one peer only, dave fails once more with another. The network key and the user's
    // key stay the same.
    let dave = devnet.node("dave").unwrap().account;
    let eve = devnet.node("eve").unwrap().account;
    let dave_stake = stake(ledger, dave).await;
    set_parameters(ledger, |p| p.accusation_window = 1_000).await;
    let accusers: BTreeSet<AccountId> = offences(ledger)
        .await
        .into_iter()
        .filter(|o| o.offender == dave)
        .flat_map(|o| o.reporters)
        .collect();
    let set = ledger.rpc().signer_set().await.unwrap();
    if accusers.len() < 2 && set.pending_reshare.is_none() {
        let peer = ["alice", "bob", "charlie"]
            .map(|n| devnet.node(n).unwrap().account)
            .into_iter()
            .find(|p| !accusers.contains(p))
            .unwrap();
        let dave_client = NodeClient::new(&devnet.node("dave").unwrap().endpoint);
        set_fault(&dave_client, Some("bad-proof")).await;
        let (request, sealed) = request_with(ledger, &dev("bob"), key, &[dave, peer]).await;
        sign_checked(ledger, &request, &sealed).await;
        set_fault(&dave_client, None).await;
    }
    let started = Instant::now();
    let expected: BTreeSet<AccountId> = ["alice", "bob", "charlie", "eve"]
        .iter()
        .map(|n| devnet.node(n).unwrap().account)
        .collect();
    loop {
        let set = ledger.rpc().signer_set().await.unwrap();
        if set.pending_reshare.is_none()
            && set.signers.iter().copied().collect::<BTreeSet<_>>() == expected
        {
            assert_eq!(set.network_key, Some(network_key), "same network key");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the reshare did not finish: {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("reshare to eve took {:?}", started.elapsed());
    assert_eq!(
        stake(ledger, dave).await,
        dave_stake,
        "accusations never slash"
    );
    assert!(
        ledger
            .relayers()
            .await
            .unwrap()
            .iter()
            .any(|r| r.account == dave)
    );
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &[eve]).await;
    let response = sign_checked(ledger, &request, &sealed).await;
    assert!(response.committee.contains(&eve), "the new signer signs");
    // dave deleted its share once the switch happened.
    let dave_node = devnet.node("dave").unwrap();
    let (dave_endpoint, dave_data, dave_key_file) = (
        dave_node.endpoint.clone(),
        dave_node.data_dir.clone(),
        dave_node.key_file.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = NodeClient::new(&dave_endpoint).info().await.unwrap();
        if !info.signer {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    devnet.kill("dave").await.unwrap();
    let keystore = sigil_keystore::Keystore::open(
        &dave_data.join("keystore.redb"),
        &sigil_keystore::KeySource::KeyFile(dave_key_file),
    )
    .unwrap();
    let names = keystore.names().unwrap();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("share") || n.contains("aux")),
        "the removed signer's keystore holds no share: {names:?}"
    );
    drop(keystore);
    devnet.restart("dave").await.unwrap();

    // Equivocation needs two recipients to contradict: governance raises the threshold to 3,
    // which reshares the key to 3-of-4 (and remakes the FROST keys at 3); then eve equivocates.
    // A lower threshold reshares the same way; the engine's production test (sigil-mpc, 3-of-5
    // to 2-of-3) covers it, so CI does not pay for a fourth reshare here.
    set_threshold(ledger, 3, network_key).await;
    // The last case: nothing waits for its exclusion to end, so a longer window keeps the
    // check that the proven offender is excluded clear of the time the retry takes.
    set_parameters(ledger, |p| p.offence_window = 300).await;
    injected_fault_case(
        &devnet,
        key,
        "eve",
        "equivocate",
        &[FaultKind::Equivocation],
        &[],
    )
    .await;
    devnet.stop().await.unwrap();
}

/// The devnet of these tests: alice…dave the 2-of-4 signers from fixture shares, eve the
/// relayer, short offence windows; returns it with a registered key (owner bob).
async fn start(dir: &std::path::Path) -> (Devnet, VerifyingKey) {
    let node_args = [
        "--round-timeout",
        "15s",
        "--offence-wait",
        "30s",
        "--max-attempts",
        "4",
    ];
    fixture_devnet(dir, &node_args, |p| {
        p.offence_window = WINDOW;
        p.accusation_window = WINDOW;
        p.max_offences = 100;
        p.request_limit = 1000;
    })
    .await
}

/// The load test: 200 production-parameter signatures take about ten minutes on two cores, so
/// it is tagged; run it with `cargo test -p sigil --test misbehaviour -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test, about ten minutes on two cores"]
async fn load_while_a_signer_is_killed_and_restarted() {
    let dir = TestDir::new();
    let (mut devnet, key) = start(dir.path()).await;
    load_test(&mut devnet, key).await;
    devnet.stop().await.unwrap();
}

/// Governance sets the threshold; waits for the reshare to finish with the same network key.
async fn set_threshold(ledger: &LedgerClient, threshold: u16, network_key: VerifyingKey) {
    let started = Instant::now();
    set_parameters(ledger, |p| p.threshold = threshold).await;
    loop {
        let set = ledger.rpc().signer_set().await.unwrap();
        if set.pending_reshare.is_none() && set.threshold == threshold {
            assert_eq!(set.network_key, Some(network_key), "same network key");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the reshare to threshold {threshold} did not finish: {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let every node see the switch.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "reshare to threshold {threshold} took {:?}",
        started.elapsed()
    );
}

/// 200 requests while bob is killed and restarted every few seconds: each gets a valid
/// signature or a clear error.
async fn load_test(devnet: &mut Devnet, key: VerifyingKey) {
    const REQUESTS: usize = 200;
    const CONCURRENCY: usize = 6;
    let ledger = LedgerClient::connect(devnet.ledger_url()).await.unwrap();
    wait_exclusions_expire(&ledger).await;
    let offences_before = offences(&ledger).await.len();
    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let requests = {
        let ledger = LedgerClient::connect(devnet.ledger_url()).await.unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let relayer_info = ledger.relayers().await.unwrap()[0].clone();
            let relayer = NodeClient::new(relayer_info.endpoint.as_str());
            let user = dev("bob");
            let outcomes = futures::stream::iter(0..REQUESTS)
                .map(|i| {
                    let (ledger, relayer, relayer_info, user) =
                        (&ledger, &relayer, &relayer_info, &user);
                    async move {
                        let request = SignatureRequest {
                            verifying_key: key,
                            block: head(ledger).await,
                            hashing: HashingAlgorithm::Keccak256,
                            aux_data: vec![vec![]],
                            message: format!("load {i}").into_bytes(),
                        };
                        let sealed = seal_request(user, relayer_info, &request).unwrap();
                        let answer = relayer.relay(&sealed.envelope).await;
                        (request, sealed, answer)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            outcomes
        })
    };
    let mut kills = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(4)).await;
        devnet.kill("bob").await.unwrap();
        kills += 1;
        tokio::time::sleep(Duration::from_secs(3)).await;
        devnet.restart("bob").await.unwrap();
    }
    let outcomes = requests.await.unwrap();
    let (mut ok, mut retried) = (0, 0);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for (request, sealed, answer) in outcomes {
        match answer {
            Ok(response) => {
                sigil_client::verify_response(&sealed, &request, &response)
                    .expect("every signature verifies");
                let hash =
                    sigil_crypto::message_hash(HashingAlgorithm::Keccak256, &request.message)
                        .unwrap();
                verify_ecdsa(&key, &hash, response.signature.ecdsa().unwrap()).unwrap();
                ok += 1;
                if response.attempts.len() > 1 {
                    retried += 1;
                }
            }
            Err(ClientError::Node { code, message, .. }) => {
                assert!(code != sigil_primitives::ErrorCode::Unknown && !message.is_empty());
                *errors.entry(code.as_str().to_owned()).or_default() += 1;
            }
            Err(other) => panic!("not a clear error: {other:?}"),
        }
    }
    let recorded = offences(&ledger).await.len() - offences_before;
    eprintln!(
        "load test: {REQUESTS} requests in {:?}, {ok} signed ({retried} after a retry), errors {errors:?}, bob killed {kills} times, {recorded} offences recorded",
        started.elapsed()
    );
    assert!(ok >= REQUESTS / 2, "most requests are signed: {ok}");
}
