//! `sigil bench --chaos`: signing under failure. Requests run at `--concurrency` while one
//! signer is SIGKILLed and restarted every few seconds; every request must end in a verified signature
//! or a clear error with a stable code. A transport failure counts as lost, a signature that
//! does not verify as invalid; both must stay 0. Each request goes to a current relayer, since
//! accusations of the killed signer may rotate it out and a relayer in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::Serialize;
use sigil::devnet::Devnet;
use sigil::progress::Step;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::{ClientError, NodeClient, verify_response};
use sigil_primitives::AccountId;

use super::load::{Latency, Workload, round};

/// Node arguments of a chaos devnet: a silent (killed) signer is blamed after 10 s, not the
/// default minute, so that requests move on to another committee sooner.
pub const NODE_ARGS: [&str; 2] = ["--round-timeout", "10s"];

/// How long a killed signer stays down before it is restarted.
const DOWN_FOR: Duration = Duration::from_secs(3);

/// What a chaos run did and how every request ended.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosRun {
    /// Requests sent.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests answered with a signature that verified.
    pub signed: usize,
    /// Signed requests that needed more than one committee.
    pub retried: usize,
    /// Requests refused or failed with a stable error code, by code.
    pub errors: BTreeMap<String, usize>,
    /// Requests with no answer from the relayer (connection failure, not an API error).
    pub lost: usize,
    /// Answers whose signature, attestations or committee did not verify.
    pub invalid: usize,
    /// SIGKILLs of signers during the run.
    pub kills: usize,
    /// The signer killed, by name.
    pub victim: String,
    /// Offence records the ledger gained during the run.
    pub offences: usize,
    /// Of those, proven ones (evidence the ledger checked).
    pub proven_offences: usize,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// Latency of the signed requests.
    pub latency: Option<Latency>,
}

/// How one request ended.
enum Ending {
    Signed { elapsed: Duration, retried: bool },
    Refused(String),
    Lost,
    Invalid,
}

/// Runs `requests` requests through `workload` while killing and restarting a signer every
/// `kill_every`, and reports how each ended.
pub async fn run(
    devnet: &mut Devnet,
    workload: Arc<Workload>,
    requests: usize,
    concurrency: usize,
    kill_every: Duration,
) -> anyhow::Result<ChaosRun> {
    let offences_before = devnet.client().rpc().offences().await?.len();
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let victim = victim(devnet).await?;
    let spared = devnet
        .node(&victim)
        .map(|n| n.account)
        .ok_or_else(|| anyhow::anyhow!("no validator called {victim}"))?;
    let sender = tokio::spawn(send_all(
        workload,
        (requests, concurrency),
        spared,
        done.clone(),
    ));
    let mut kills = 0;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(kill_every).await;
        if done.load(Ordering::SeqCst) {
            break;
        }
        devnet.kill(&victim).await?;
        kills += 1;
        tokio::time::sleep(DOWN_FOR).await;
        devnet.restart(&victim).await?;
    }
    let endings = sender.await?;
    let offences = devnet.client().rpc().offences().await?;
    let new = &offences[offences_before.min(offences.len())..];
    Ok(tally(
        endings,
        concurrency,
        kills,
        victim,
        new.len(),
        new.iter().filter(|o| o.proven).count(),
        started.elapsed(),
    ))
}

/// The signer to kill all run long: the first signer by name. The network may rotate it out
/// for being unresponsive; it is killed all the same, as a validator then.
async fn victim(devnet: &Devnet) -> anyhow::Result<String> {
    let signers = devnet.signers().await?;
    let mut names: Vec<String> = signers
        .iter()
        .filter_map(|s| devnet.name_of(s).map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the devnet has no signers to kill"))
}

/// Sends every request, `concurrency` at a time, then raises `done`.
async fn send_all(
    workload: Arc<Workload>,
    (requests, concurrency): (usize, usize),
    victim: AccountId,
    done: Arc<AtomicBool>,
) -> Vec<Ending> {
    let mut step = Step::start(format!(
        "chaos: {requests} requests at concurrency {concurrency}"
    ));
    let mut outcomes = futures::stream::iter(0..requests)
        .map(|i| {
            let workload = workload.clone();
            async move { one(&workload, i % concurrency, &victim).await }
        })
        .buffer_unordered(concurrency);
    let mut endings = Vec::with_capacity(requests);
    while let Some(ending) = outcomes.next().await {
        endings.push(ending);
        step.update(&format!("{}/{requests}", endings.len()));
    }
    done.store(true, Ordering::SeqCst);
    step.finish("");
    endings
}

/// One request with worker `worker`'s key, through a validator that is a relayer now and is
/// not the one being killed: a reshare during the run may make the first relayer a signer, or
/// the killed signer a relayer, and a client goes to a relayer that answers.
async fn one(workload: &Workload, worker: usize, victim: &AccountId) -> Ending {
    let Ok(Some(relayer)) = workload
        .ledger
        .relayers()
        .await
        .map(|r| r.into_iter().find(|v| v.account != *victim))
    else {
        return Ending::Lost;
    };
    let Ok((request, sealed)) = workload.request_via(worker, &relayer).await else {
        return Ending::Lost;
    };
    let node = NodeClient::new(relayer.endpoint.as_str());
    let started = Instant::now();
    match node.relay(&sealed.envelope).await {
        Ok(response) => match verify_response(&sealed, &request, &response) {
            Ok(()) => Ending::Signed {
                elapsed: started.elapsed(),
                retried: response.attempts.len() > 1,
            },
            Err(_) => Ending::Invalid,
        },
        Err(ClientError::Node { code, .. }) => Ending::Refused(code.to_string()),
        Err(_) => Ending::Lost,
    }
}

fn tally(
    endings: Vec<Ending>,
    concurrency: usize,
    kills: usize,
    victim: String,
    offences: usize,
    proven_offences: usize,
    elapsed: Duration,
) -> ChaosRun {
    let requests = endings.len();
    let (mut samples, mut retried, mut lost, mut invalid) = (Vec::new(), 0, 0, 0);
    let mut errors = BTreeMap::new();
    for ending in endings {
        match ending {
            Ending::Signed {
                elapsed,
                retried: r,
            } => {
                samples.push(elapsed);
                retried += usize::from(r);
            }
            Ending::Refused(code) => *errors.entry(code).or_default() += 1,
            Ending::Lost => lost += 1,
            Ending::Invalid => invalid += 1,
        }
    }
    ChaosRun {
        requests,
        concurrency,
        signed: samples.len(),
        retried,
        errors,
        lost,
        invalid,
        kills,
        victim,
        offences,
        proven_offences,
        seconds: round(elapsed.as_secs_f64()),
        latency: Latency::of(&samples),
    }
}
