//! What the network path is measured against: the engine alone (the same signature by the same
//! key shares, in one process over in-memory channels) and program evaluation in-process.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use sigil::progress::Step;
use sigil_crypto::AccountKeypair;
use sigil_mpc::{AuxData, Engine, KeyShare, MemoryChannel, SessionConfig, SignRequest};
use sigil_node::{Identity, KeySourceArg};
use sigil_primitives::{DerivationPath, ProgramList, VerifyingKey};
use sigil_programs::{HostConfig, ProgramCall, ProgramHost};

use super::load::{Latency, round};
use super::metrics::RoundCost;
use crate::demo::{ALLOWED, CHAIN_ID, ETH_ALLOWLIST, VALUE_WEI};

/// Evaluations timed with a warm compile cache.
const CACHED_EVALUATIONS: usize = 200;
/// Evaluations timed with no cache (each compiles the program).
const UNCACHED_EVALUATIONS: usize = 5;
/// The fuel budget for in-process evaluations (the ledger's default is far above what the
/// program needs).
const FUEL: u64 = 1_000_000_000;

/// One committee member whose key share the engine-alone run reads.
pub struct Member {
    /// Devnet name.
    pub name: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The key file sealing its keystore.
    pub key_file: PathBuf,
    /// Its account key (signs protocol messages).
    pub account: AccountKeypair,
}

/// What the engine-alone run signs, and with whose shares.
pub struct Input {
    /// A committee of `threshold` signers.
    pub members: Vec<Member>,
    /// The registered key's derivation path.
    pub path: DerivationPath,
    /// The prehash to sign (a transaction's keccak256, like the network run's).
    pub prehash: [u8; 32],
    /// The registered key the signature must verify under.
    pub verifying_key: VerifyingKey,
}

/// The engine-alone figures.
#[derive(Debug, Serialize)]
pub struct EngineRun {
    /// The committee.
    pub committee: Vec<String>,
    /// Wall time of each signature, all parties together.
    pub wall: Latency,
    /// Mean CPU time per party per signature, in milliseconds.
    pub cpu_per_party_ms: Vec<(String, f64)>,
    /// Rounds of one signature.
    pub rounds: u32,
    /// Bytes one party sends per signature (mean over parties).
    pub bytes_sent_per_party: u64,
    /// Each round's mean cost to one party.
    pub profile: Vec<RoundCost>,
}

/// Program evaluation figures.
#[derive(Debug, Serialize)]
pub struct ProgramEval {
    /// The program.
    pub program: String,
    /// Size of its WebAssembly component, in bytes.
    pub bytecode_bytes: usize,
    /// Compiling it once (Cranelift) and checking its exports.
    pub compile_ms: f64,
    /// Median of one evaluation with the compiled program cached, in microseconds.
    pub cached_p50_us: f64,
    /// 99th percentile of the same, in microseconds.
    pub cached_p99_us: f64,
    /// Median of one evaluation with no cache: compile, instantiate, call.
    pub uncached_p50_ms: f64,
    /// Fuel one evaluation used.
    pub fuel_used: u64,
}

/// The keccak256 of the transaction the engine-alone run signs.
pub fn sample_prehash() -> [u8; 32] {
    let tx = sigil::eth::transfer(CHAIN_ID, u64::MAX, ALLOWED, U256::from(VALUE_WEI));
    sigil_crypto::keccak256(&sigil::eth::signing_payload(&tx))
}

/// Times `eth-allowlist` on a transaction it allows: compile, cached and uncached evaluations.
pub fn program_eval(programs: &ProgramList) -> anyhow::Result<ProgramEval> {
    let step = Step::start("program evaluation in-process (eth-allowlist)");
    let instance = programs
        .as_slice()
        .first()
        .ok_or_else(|| anyhow!("the key has no program"))?;
    let tx = sigil::eth::transfer(CHAIN_ID, 0, ALLOWED, U256::from(VALUE_WEI));
    let message = sigil::eth::signing_payload(&tx);
    let call = ProgramCall::new(instance, ETH_ALLOWLIST, &[]);
    let host = ProgramHost::new(HostConfig::default())?;
    let started = Instant::now();
    host.prepare(instance.program, ETH_ALLOWLIST)
        .context("eth-allowlist does not compile")?;
    let compile = started.elapsed();
    let mut cached = Vec::with_capacity(CACHED_EVALUATIONS);
    let mut fuel_used = 0;
    for _ in 0..CACHED_EVALUATIONS {
        let started = Instant::now();
        let outcome = host
            .evaluate_all(&message, &[call], &[], FUEL)
            .map_err(|f| anyhow!("eth-allowlist refused the benchmark's transaction: {f}"))?;
        cached.push(started.elapsed());
        fuel_used = outcome.first().map_or(0, |o| o.fuel_used);
    }
    let uncached_host = ProgramHost::new(HostConfig {
        cache_capacity: 0,
        ..HostConfig::default()
    })?;
    let mut uncached = Vec::with_capacity(UNCACHED_EVALUATIONS);
    for _ in 0..UNCACHED_EVALUATIONS {
        let started = Instant::now();
        uncached_host
            .evaluate_all(&message, &[call], &[], FUEL)
            .map_err(|f| anyhow!("eth-allowlist refused the benchmark's transaction: {f}"))?;
        uncached.push(started.elapsed());
    }
    // Scaled by 1000 so that the millisecond percentiles read as microseconds.
    let cached: Vec<Duration> = cached.iter().map(|d| *d * 1000).collect();
    let cached = Latency::of(&cached).ok_or_else(|| anyhow!("no evaluation"))?;
    let uncached = Latency::of(&uncached).ok_or_else(|| anyhow!("no evaluation"))?;
    let result = ProgramEval {
        program: "eth-allowlist".into(),
        bytecode_bytes: ETH_ALLOWLIST.len(),
        compile_ms: round(compile.as_secs_f64() * 1e3),
        cached_p50_us: cached.p50_ms,
        cached_p99_us: cached.p99_ms,
        uncached_p50_ms: uncached.p50_ms,
        fuel_used,
    };
    step.finish(&format!(
        "compile {:.1} ms, cached evaluation {:.1} µs",
        result.compile_ms, result.cached_p50_us
    ));
    Ok(result)
}

/// Loads each member's current key share from its keystore (the node must have stopped).
fn load(member: &Member) -> anyhow::Result<(KeyShare, AuxData)> {
    let identity = Identity::open(
        &member.data_dir,
        &KeySourceArg::KeyFile(member.key_file.clone()),
        Some(&member.name),
    )
    .with_context(|| format!("cannot open {}'s keystore", member.name))?;
    identity
        .key_share()?
        .ok_or_else(|| anyhow!("{} holds no key share", member.name))
}

/// `signatures` signatures by `input.members` over in-memory channels, one after another.
pub async fn run(input: &Input, signatures: usize) -> anyhow::Result<EngineRun> {
    let mut step = Step::start(format!(
        "engine alone: {signatures} signatures by {} in one process",
        input
            .members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let shares = input
        .members
        .iter()
        .map(load)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shares = Arc::new(shares);
    let committee: BTreeSet<_> = input
        .members
        .iter()
        .map(|m| m.account.account_id())
        .collect();
    let parties: Vec<_> = committee.iter().copied().collect();
    let engines: Vec<Engine> = input
        .members
        .iter()
        .map(|m| Engine::new(m.account.clone(), SessionConfig::default()))
        .collect();
    let mut walls = Vec::with_capacity(signatures);
    let mut cpu = vec![Duration::ZERO; engines.len()];
    let mut rounds = 0;
    let mut bytes = 0u64;
    // Per round, in order: CPU, waiting and wall summed over parties and signatures.
    let mut per_round: Vec<(String, Duration, Duration, Duration, u32)> = Vec::new();
    for done in 0..signatures {
        let session: [u8; 32] = sigil_crypto::secret::random_array();
        let mut channels = MemoryChannel::network(&parties);
        let started = Instant::now();
        let tasks: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(i, engine)| {
                let engine = engine.clone();
                let shares = shares.clone();
                let committee = committee.clone();
                let path = input.path.clone();
                let prehash = input.prehash;
                let mut channel = channels
                    .remove(&engine.account())
                    .expect("a channel per party");
                tokio::spawn(async move {
                    let (share, aux) = &shares[i];
                    let request = SignRequest {
                        share,
                        aux,
                        committee: &committee,
                        path: &path,
                        prehash: &prehash,
                    };
                    engine.sign(&session, &request, &mut channel).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.context("an engine task panicked")??);
        }
        walls.push(started.elapsed());
        for (i, signed) in outcomes.iter().enumerate() {
            if signed.verifying_key != input.verifying_key {
                bail!("the engine signed under another key than the registered one");
            }
            cpu[i] += signed.stats.cpu;
            rounds = signed.stats.rounds;
            bytes += signed.stats.bytes_sent;
            for r in &signed.stats.rounds_profile {
                let slot = match per_round.iter().position(|p| p.0 == r.round) {
                    Some(at) => &mut per_round[at],
                    None => {
                        per_round.push((
                            r.round.clone(),
                            Duration::ZERO,
                            Duration::ZERO,
                            Duration::ZERO,
                            0,
                        ));
                        per_round.last_mut().expect("just pushed")
                    }
                };
                slot.1 += r.cpu;
                slot.2 += r.waiting;
                slot.3 += r.wall;
                slot.4 += 1;
            }
        }
        step.update(&format!("{}/{signatures}", done + 1));
    }
    let wall = Latency::of(&walls).ok_or_else(|| anyhow!("no signature"))?;
    let result = EngineRun {
        committee: input.members.iter().map(|m| m.name.clone()).collect(),
        cpu_per_party_ms: input
            .members
            .iter()
            .zip(&cpu)
            .map(|(m, c)| {
                (
                    m.name.clone(),
                    round(c.as_secs_f64() * 1e3 / signatures as f64),
                )
            })
            .collect(),
        rounds,
        bytes_sent_per_party: bytes / (signatures * engines.len()).max(1) as u64,
        profile: per_round
            .into_iter()
            .map(|(round_name, cpu, wait, wall, n)| {
                let mean = |d: Duration| round(d.as_secs_f64() * 1e3 / f64::from(n.max(1)));
                RoundCost {
                    round: round_name,
                    cpu_ms: mean(cpu),
                    wait_ms: mean(wait),
                    wall_ms: mean(wall),
                }
            })
            .collect(),
        wall,
    };
    step.finish(&format!("p50 {:.0} ms", result.wall.p50_ms));
    Ok(result)
}
