//! Benchmarks the engine over the real transport on 127.0.0.1 with production parameters:
//! network DKG, signing and resharing for 2-of-3 and 3-of-5, reporting wall time and the CPU
//! time each party spent (thread time of its engine work).
//!
//! `cargo run --release -p sigil-mpc --example bench [-- --signatures N]`

#[path = "../tests/common/net.rs"]
mod net;

use std::{collections::BTreeSet, sync::Arc, time::Instant};

use net::{TransportChannel, network, transport_of};
use sigil_crypto::{NodeSeed, keccak256};
use sigil_mpc::{AuxData, Engine, KeyShare, ResharePlan, SessionConfig, SessionStats, SignRequest};
use sigil_primitives::{AccountId, DerivationPath};
use sigil_transport::{SessionId, Transport};

const NAMES: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

struct Party {
    engine: Engine,
    share: Option<KeyShare>,
    aux: Option<AuxData>,
}

fn report(what: &str, wall: std::time::Duration, stats: &[SessionStats]) {
    let cpu: Vec<String> = stats
        .iter()
        .map(|s| format!("{:.2}", s.cpu.as_secs_f64()))
        .collect();
    let sent: u64 = stats.iter().map(|s| s.bytes_sent).sum();
    println!(
        "{what:<24} wall {:>7.2} s   CPU per party [{}] s   {} rounds   {:.1} KiB sent in all",
        wall.as_secs_f64(),
        cpu.join(", "),
        stats.first().map_or(0, |s| s.rounds),
        sent as f64 / 1024.0
    );
}

/// Runs `op` for each of `members` at once, each over its own transport session.
async fn all<T, F, Fut>(
    transports: &Arc<Vec<Transport>>,
    members: &[AccountId],
    session: [u8; 32],
    op: F,
) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, TransportChannel) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let channel = TransportChannel(
                transport_of(transports, account)
                    .open_session(SessionId::new(session), members)
                    .expect("fresh session"),
            );
            tokio::spawn(op(i, channel))
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("party task"));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let signatures: usize = std::env::args()
        .skip_while(|arg| arg != "--signatures")
        .nth(1)
        .map_or(Ok(3), |n| n.parse())?;
    let mut session = 0u8;
    let mut next_session = || {
        session += 1;
        [session; 32]
    };
    for (threshold, n) in [(2usize, 3usize), (3, 5)] {
        println!("== {threshold}-of-{n}, production parameters, loopback transport ==");
        let names = &NAMES[..n];
        let transports = Arc::new(network(names).await);
        let mut parties: Vec<Party> = names
            .iter()
            .map(|name| Party {
                engine: Engine::new(
                    NodeSeed::dev(name).account_keypair(),
                    SessionConfig::default(),
                ),
                share: None,
                aux: None,
            })
            .collect();
        parties.sort_by_key(|party| party.engine.account());
        let members: Vec<AccountId> = parties.iter().map(|party| party.engine.account()).collect();
        let set: BTreeSet<AccountId> = members.iter().copied().collect();

        let started = Instant::now();
        let engines: Arc<Vec<Engine>> =
            Arc::new(parties.iter().map(|p| p.engine.clone()).collect());
        let sid = next_session();
        let generated = all(&transports, &members, sid, |i, mut channel| {
            let (engines, set) = (engines.clone(), set.clone());
            async move {
                engines[i]
                    .generate_network_key(&sid, &set, threshold, &mut channel)
                    .await
            }
        })
        .await;
        let wall = started.elapsed();
        let mut stats = Vec::new();
        for (party, result) in parties.iter_mut().zip(generated) {
            let (share, aux, s) = result?;
            party.share = Some(share);
            party.aux = Some(aux);
            stats.push(s);
        }
        report("dkg", wall, &stats);

        let committee = &members[..threshold];
        let committee_set: BTreeSet<AccountId> = committee.iter().copied().collect();
        let path = DerivationPath::new(vec![44, 60, 0, 0, 0])?;
        for round in 0..signatures {
            let prehash = keccak256(format!("bench {round}").as_bytes());
            let holders: Arc<Vec<(Engine, KeyShare, AuxData)>> = Arc::new(
                parties[..threshold]
                    .iter()
                    .map(|p| {
                        (
                            p.engine.clone(),
                            p.share.clone().unwrap(),
                            p.aux.clone().unwrap(),
                        )
                    })
                    .collect(),
            );
            let started = Instant::now();
            let sid = next_session();
            let signed = all(&transports, committee, sid, |i, mut channel| {
                let (holders, committee_set, path) =
                    (holders.clone(), committee_set.clone(), path.clone());
                async move {
                    let (engine, share, aux) = &holders[i];
                    let request = SignRequest {
                        share,
                        aux,
                        committee: &committee_set,
                        path: &path,
                        prehash: &prehash,
                    };
                    engine.sign(&sid, &request, &mut channel).await
                }
            })
            .await;
            let wall = started.elapsed();
            let stats: Vec<_> = signed
                .into_iter()
                .map(|r| r.map(|s| s.stats))
                .collect::<Result<_, _>>()?;
            report(&format!("sign #{}", round + 1), wall, &stats);
        }

        let plan = ResharePlan {
            verifying_key: parties[0].share.as_ref().unwrap().verifying_key(),
            old_holders: set.clone(),
            old_threshold: threshold,
            new_holders: set.clone(),
            new_threshold: threshold,
        };
        let holders: Arc<Vec<(Engine, KeyShare)>> = Arc::new(
            parties
                .iter()
                .map(|p| (p.engine.clone(), p.share.clone().unwrap()))
                .collect(),
        );
        let started = Instant::now();
        let sid = next_session();
        let reshared = all(&transports, &members, sid, |i, mut channel| {
            let (holders, plan) = (holders.clone(), plan.clone());
            async move {
                let (engine, share) = &holders[i];
                engine.reshare(&sid, Some(share), &plan, &mut channel).await
            }
        })
        .await;
        let wall = started.elapsed();
        let stats: Vec<_> = reshared
            .into_iter()
            .map(|r| r.map(|(_, s)| s))
            .collect::<Result<_, _>>()?;
        report("reshare (same set)", wall, &stats);
        for transport in transports.iter() {
            transport.shutdown();
        }
    }
    Ok(())
}
