//! One 2-of-4 threshold signature with production parameters (secp256k1, 112-bit), alice and
//! bob from the committed fixtures, over in-memory channels: the engine's cost without a
//! network.
//!
//! Criterion times whole signatures. The rounds of an interactive protocol cannot be timed
//! one by one without re-running the rounds before them (and synedrion 0.3's
//! `private_benches` only covers Paillier and zero-knowledge proof primitives), so the bench
//! prints the engine's own per-round profile ([`sigil_mpc::RoundProfile`]) instead: one
//! signature's, then the mean over every signature criterion ran.
//!
//! `cargo bench -p sigil-mpc --bench engine`

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::atomic::{AtomicU8, Ordering},
    time::Duration,
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use sigil_crypto::{NodeSeed, keccak256};
use sigil_mpc::{
    AuxData, Engine, KeyShare, MemoryChannel, SessionConfig, SessionStats, SignRequest,
};
use sigil_primitives::{AccountId, DerivationPath};

/// The committee: two of the four 2-of-4 fixture holders.
const COMMITTEE: [&str; 2] = ["alice", "bob"];

struct Signer {
    name: &'static str,
    engine: Engine,
    share: KeyShare,
    aux: AuxData,
}

fn load(name: &'static str) -> Signer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/2-of-4");
    let read = |ext: &str| {
        std::fs::read(dir.join(format!("{name}.{ext}")))
            .unwrap_or_else(|error| panic!("fixture {name}.{ext}: {error}"))
    };
    Signer {
        name,
        engine: Engine::new(
            NodeSeed::dev(name).account_keypair(),
            SessionConfig::default(),
        ),
        share: KeyShare::from_bytes(&read("share")).expect("fixture share"),
        aux: AuxData::from_bytes(&read("aux")).expect("fixture aux data"),
    }
}

/// One signature by every signer at once; each signer's stats, in `signers` order.
async fn sign_once(signers: &[Signer], session: u8) -> Vec<SessionStats> {
    let committee: BTreeSet<AccountId> = signers.iter().map(|s| s.engine.account()).collect();
    let ids: Vec<AccountId> = committee.iter().copied().collect();
    let mut channels = MemoryChannel::network(&ids);
    let path = DerivationPath::new(vec![44, 60, 0, 0, 0]).expect("valid path");
    let prehash = keccak256(format!("bench signature {session}").as_bytes());
    let tasks: Vec<_> = signers
        .iter()
        .map(|signer| {
            let mut channel = channels
                .remove(&signer.engine.account())
                .expect("a channel per signer");
            let (engine, share, aux) = (
                signer.engine.clone(),
                signer.share.clone(),
                signer.aux.clone(),
            );
            let (committee, path) = (committee.clone(), path.clone());
            tokio::spawn(async move {
                let request = SignRequest {
                    share: &share,
                    aux: &aux,
                    committee: &committee,
                    path: &path,
                    prehash: &prehash,
                };
                engine
                    .sign(&[session; 32], &request, &mut channel)
                    .await
                    .expect("the committee signs")
                    .stats
            })
        })
        .collect();
    let mut stats = Vec::new();
    for task in tasks {
        stats.push(task.await.expect("signer task"));
    }
    stats
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Prints each signer's per-round profile, averaged over `runs` (each run: stats per signer).
fn print_profile(title: &str, signers: &[Signer], runs: &[Vec<SessionStats>]) {
    let n = runs.len() as f64;
    println!("\n{title} ({} signature(s) averaged)", runs.len());
    for (i, signer) in signers.iter().enumerate() {
        let first = &runs[0][i];
        let total_cpu: f64 = runs.iter().map(|run| ms(run[i].cpu)).sum::<f64>() / n;
        let total_wall: f64 = runs.iter().map(|run| ms(run[i].wall)).sum::<f64>() / n;
        println!(
            "{}: {} rounds, CPU {total_cpu:.1} ms, wall {total_wall:.1} ms",
            signer.name, first.rounds
        );
        println!(
            "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>15} {:>15}",
            "round", "CPU ms", "wall ms", "busy ms", "wait ms", "sent msg/KiB", "recv msg/KiB"
        );
        let mut sums = [0.0f64; 4];
        for (r, round) in first.rounds_profile.iter().enumerate() {
            let mean = |f: &dyn Fn(&sigil_mpc::RoundProfile) -> f64| {
                runs.iter()
                    .map(|run| f(&run[i].rounds_profile[r]))
                    .sum::<f64>()
                    / n
            };
            let row = [
                mean(&|p| ms(p.cpu)),
                mean(&|p| ms(p.wall)),
                mean(&|p| ms(p.busy())),
                mean(&|p| ms(p.waiting)),
            ];
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum += value;
            }
            let sent = mean(&|p| p.bytes_sent as f64) / 1024.0;
            let received = mean(&|p| p.bytes_received as f64) / 1024.0;
            println!(
                "  {:<16} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>8.1} {:>6} {:>8.1}",
                round.round,
                row[0],
                row[1],
                row[2],
                row[3],
                round.messages_sent,
                sent,
                round.messages_received,
                received
            );
        }
        println!(
            "  {:<16} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            "all rounds", sums[0], sums[1], sums[2], sums[3]
        );
    }
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let signers: Vec<Signer> = COMMITTEE.into_iter().map(load).collect();
    let session = AtomicU8::new(0);
    let next = || session.fetch_add(1, Ordering::Relaxed);

    let one = runtime.block_on(sign_once(&signers, next()));
    print_profile(
        "Per-round profile of one 2-of-4 signature (alice, bob)",
        &signers,
        &[one],
    );

    let mut runs = Vec::new();
    let mut group = c.benchmark_group("engine");
    // Seconds per signature: a few flat samples, one signature each.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("sign/2-of-4/production", |b| {
        b.iter(|| runs.push(runtime.block_on(sign_once(&signers, next()))))
    });
    group.finish();
    print_profile(
        "Per-round profile, mean over the signatures criterion ran",
        &signers,
        &runs,
    );
}

criterion_group!(benches, engine);
criterion_main!(benches);
