//! Framing end to end: a ledger and five `sigil node` processes built with fault injection
//! (alice…dave the 2-of-4 signers from fixture shares, eve the relayer), production parameters.
//!
//! dave is told `frame:<alice>`: it signs honestly, keeps what alice sends it, and after every
//! session it shares with her files false reports against her with whatever it holds (her
//! real signed messages as evidence of each offence kind, her broadcasts paired across parts,
//! rounds and sessions, a bare accusation of each kind, the same report again, and a report on
//! a session she was not in). Over several sessions, alice loses no stake and stays a signer;
//! the only effect is the documented one, a dispute in which the accuser sits out.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sigil::devnet::Devnet;
use sigil_client::NodeClient;
use sigil_client::rpc::LedgerApiClient;
use sigil_primitives::{AccountId, VerifyingKey};

/// Sessions dave shares with alice and frames her in.
const TRIALS: u64 = 4;

/// Blocks a dispute lasts (9 s at 300 ms blocks): it outlasts one trial's reports, and the
/// next trial starts once it is over.
const WINDOW: u64 = 30;

/// The evidence-carrying and replayed false reports, each of which the ledger must refuse.
const REFUSED_VARIANTS: [&str; 7] = [
    "own-message-as-failed-proof",
    "own-message-as-invalid",
    "direct-message-as-broadcast",
    "broadcasts-of-two-rounds",
    "broadcasts-of-two-sessions",
    "replayed-report",
    "session-without-the-victim",
];

/// dave's false reports so far, by (variant, outcome), from its Prometheus metrics.
async fn frame_reports(node: &NodeClient) -> BTreeMap<(String, String), u64> {
    let text = reqwest::get(format!("{}/metrics", node.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = |line: &str, name: &str| -> String {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[start..].split('"').next().unwrap().to_string()
    };
    text.lines()
        .filter(|line| line.starts_with("sigil_node_frame_reports_total{"))
        .map(|line| {
            let count = line.rsplit(' ').next().unwrap().parse().unwrap();
            ((label(line, "variant"), label(line, "outcome")), count)
        })
        .collect()
}

/// Waits until dave filed the last report of its `trials`-th framing round (a report on a
/// session alice was not in comes last).
async fn wait_for_reports(node: &NodeClient, trials: u64) -> BTreeMap<(String, String), u64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reports = frame_reports(node).await;
        let last = reports
            .iter()
            .filter(|((variant, _), _)| variant == "session-without-the-victim")
            .map(|(_, n)| n)
            .sum::<u64>();
        if last >= trials {
            return reports;
        }
        assert!(
            Instant::now() < deadline,
            "dave filed too few reports: {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn start(dir: &std::path::Path) -> (Devnet, VerifyingKey) {
    fixture_devnet(dir, &[], |p| {
        p.offence_window = WINDOW;
        p.request_limit = 1000;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_framing_an_honest_one_gets_nobody_slashed_or_rotated_out() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, key) = start(dir.path()).await;
    let ledger = devnet.client();
    let account = |name: &str| devnet.node(name).unwrap().account;
    let (alice, bob, dave) = (account("alice"), account("bob"), account("dave"));
    let signers = ["alice", "bob", "charlie", "dave"].map(account);
    let mut stakes = BTreeMap::new();
    for signer in signers {
        stakes.insert(signer, stake(ledger, signer).await);
    }
    let framer = NodeClient::new(&devnet.node("dave").unwrap().endpoint);
    set_fault(&framer, Some(&format!("frame:{alice}"))).await;

    // A session without alice, whose ticket dave later uses against her.
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &[dave, bob]).await;
    sign_checked(ledger, &request, &sealed).await;
    let mut reports = BTreeMap::new();
    for trial in 1..=TRIALS {
        wait_exclusions_expire(ledger).await;
        let (request, sealed) = request_with(ledger, &dev("bob"), key, &[alice, dave]).await;
        let response = sign_checked(ledger, &request, &sealed).await;
        assert_eq!(response.attempts.len(), 1, "the framer signs honestly");
        reports = wait_for_reports(&framer, trial).await;
        // The accusation is a dispute in which the accuser, not alice, sits out.
        let set = ledger.rpc().signer_set().await.unwrap();
        let now = head(ledger).await;
        let sidelined = set.sidelined_at(now);
        assert!(!sidelined.contains(&alice), "trial {trial}: {sidelined:?}");
        if set
            .disputes_at(now)
            .any(|d| (d.accuser, d.accused) == (dave, alice))
        {
            assert!(sidelined.contains(&dave), "trial {trial}: {sidelined:?}");
        }
        assert!(
            set.excluded_at(now).is_empty(),
            "trial {trial}: nobody excluded"
        );
    }
    set_fault(&framer, None).await;

    let count = |variant: &str, outcome: &str| {
        reports
            .get(&(variant.to_string(), outcome.to_string()))
            .copied()
            .unwrap_or(0)
    };
    let filed: u64 = reports.values().sum();
    let accepted: u64 = reports
        .iter()
        .filter(|((_, outcome), _)| outcome == "accepted")
        .map(|(_, n)| n)
        .sum();
    // One bare accusation per shared session is accepted, as a dispute; everything else is
    // refused.
    assert_eq!(count("bare-accusation", "accepted"), TRIALS, "{reports:?}");
    assert_eq!(accepted, TRIALS, "{reports:?}");
    for variant in REFUSED_VARIANTS {
        assert!(count(variant, "refused") >= 1, "{variant}: {reports:?}");
    }

    // On the ledger: accusations by dave alone, none proven, nothing slashed.
    let against_alice: Vec<_> = offences(ledger)
        .await
        .into_iter()
        .filter(|o| o.offender == alice)
        .collect();
    assert_eq!(against_alice.len() as u64, TRIALS, "{against_alice:?}");
    for record in &against_alice {
        assert!(!record.proven && record.slashed == 0, "{record:?}");
        assert_eq!(record.reporters, vec![dave]);
    }
    let mut slashed = 0;
    for (signer, before) in &stakes {
        if stake(ledger, *signer).await != *before {
            slashed += 1;
        }
    }
    assert_eq!(slashed, 0, "nobody lost stake");
    let set = ledger.rpc().signer_set().await.unwrap();
    let current: BTreeSet<AccountId> = set.signers.iter().copied().collect();
    assert_eq!(current, signers.into_iter().collect(), "nobody rotated out");
    assert!(set.pending_reshare.is_none(), "no reshare: {set:?}");
    eprintln!(
        "framing: {TRIALS} shared sessions, {filed} false reports filed, {} refused, \
         {accepted} accepted as disputes, honest signers slashed 0, rotated out 0",
        filed - accepted
    );
    devnet.stop().await.unwrap();
}
