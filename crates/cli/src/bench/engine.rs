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
use sigil_mpc::{AuxData, Engine, KeyShare, MemoryChannel, SessionConfig, SignRequest, Signed};
use sigil_node::{Identity, KeySourceArg};
use sigil_primitives::{AccountId, DerivationPath, ProgramList, VerifyingKey};
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
    let committee = Committee::load(input)?;
    let mut totals = Totals::new(committee.engines.len(), signatures);
    for done in 0..signatures {
        let (wall, outcomes) = committee.sign_once(input).await?;
        totals.add(wall, &outcomes, &input.verifying_key)?;
        step.update(&format!("{}/{signatures}", done + 1));
    }
    let result = totals.into_run(input, signatures)?;
    step.finish(&format!("p50 {:.0} ms", result.wall.p50_ms));
    Ok(result)
}

/// The committee's engines and key shares, ready to sign one signature after another.
struct Committee {
    /// Each member's key share, in member order.
    shares: Arc<Vec<(KeyShare, AuxData)>>,
    /// The members' accounts.
    accounts: BTreeSet<AccountId>,
    /// The same, as the in-memory network's parties.
    parties: Vec<AccountId>,
    /// One engine per member, in member order.
    engines: Vec<Engine>,
}

impl Committee {
    /// Reads each member's key share and makes its engine.
    fn load(input: &Input) -> anyhow::Result<Self> {
        let shares = input
            .members
            .iter()
            .map(load)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let accounts: BTreeSet<_> = input
            .members
            .iter()
            .map(|m| m.account.account_id())
            .collect();
        Ok(Self {
            shares: Arc::new(shares),
            parties: accounts.iter().copied().collect(),
            accounts,
            engines: input
                .members
                .iter()
                .map(|m| Engine::new(m.account.clone(), SessionConfig::default()))
                .collect(),
        })
    }

    /// One signature of `input.prehash`, every member in its own task; returns its wall time
    /// and each member's outcome, in member order.
    async fn sign_once(&self, input: &Input) -> anyhow::Result<(Duration, Vec<Signed>)> {
        let session: [u8; 32] = sigil_crypto::secret::random_array();
        let mut channels = MemoryChannel::network(&self.parties);
        let started = Instant::now();
        let tasks: Vec<_> = self
            .engines
            .iter()
            .enumerate()
            .map(|(i, engine)| {
                let engine = engine.clone();
                let shares = self.shares.clone();
                let committee = self.accounts.clone();
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
        Ok((started.elapsed(), outcomes))
    }
}

/// What the signatures so far cost, summed.
struct Totals {
    /// Wall time of each signature.
    walls: Vec<Duration>,
    /// CPU time of each party, in member order.
    cpu: Vec<Duration>,
    /// Rounds of the last signature.
    rounds: u32,
    /// Bytes sent by all parties.
    bytes: u64,
    /// Each round, in the order rounds first appeared.
    per_round: Vec<RoundTotal>,
}

/// One round's CPU, waiting and wall time summed over parties and signatures.
struct RoundTotal {
    round: String,
    cpu: Duration,
    wait: Duration,
    wall: Duration,
    /// How many times a party ran it.
    count: u32,
}

impl Totals {
    /// Nothing yet, for `parties` parties and room for `signatures` signatures.
    fn new(parties: usize, signatures: usize) -> Self {
        Self {
            walls: Vec::with_capacity(signatures),
            cpu: vec![Duration::ZERO; parties],
            rounds: 0,
            bytes: 0,
            per_round: Vec::new(),
        }
    }

    /// Adds one signature: its wall time and its outcomes (one per party, in member order),
    /// checking each was made with `verifying_key`.
    fn add(
        &mut self,
        wall: Duration,
        outcomes: &[Signed],
        verifying_key: &VerifyingKey,
    ) -> anyhow::Result<()> {
        self.walls.push(wall);
        for (i, signed) in outcomes.iter().enumerate() {
            if signed.verifying_key != *verifying_key {
                bail!("the engine signed under another key than the registered one");
            }
            self.cpu[i] += signed.stats.cpu;
            self.rounds = signed.stats.rounds;
            self.bytes += signed.stats.bytes_sent;
            for r in &signed.stats.rounds_profile {
                let slot = self.round_mut(&r.round);
                slot.cpu += r.cpu;
                slot.wait += r.waiting;
                slot.wall += r.wall;
                slot.count += 1;
            }
        }
        Ok(())
    }

    /// The totals of round `name`, added at the end if it is new.
    fn round_mut(&mut self, name: &str) -> &mut RoundTotal {
        let at = match self.per_round.iter().position(|p| p.round == name) {
            Some(at) => at,
            None => {
                self.per_round.push(RoundTotal {
                    round: name.to_owned(),
                    cpu: Duration::ZERO,
                    wait: Duration::ZERO,
                    wall: Duration::ZERO,
                    count: 0,
                });
                self.per_round.len() - 1
            }
        };
        &mut self.per_round[at]
    }

    /// The figures of `signatures` signatures by `input.members`.
    fn into_run(self, input: &Input, signatures: usize) -> anyhow::Result<EngineRun> {
        let wall = Latency::of(&self.walls).ok_or_else(|| anyhow!("no signature"))?;
        Ok(EngineRun {
            committee: input.members.iter().map(|m| m.name.clone()).collect(),
            cpu_per_party_ms: input
                .members
                .iter()
                .zip(&self.cpu)
                .map(|(m, c)| {
                    (
                        m.name.clone(),
                        round(c.as_secs_f64() * 1e3 / signatures as f64),
                    )
                })
                .collect(),
            rounds: self.rounds,
            bytes_sent_per_party: self.bytes / (signatures * self.cpu.len()).max(1) as u64,
            profile: self.per_round.into_iter().map(RoundTotal::mean).collect(),
            wall,
        })
    }
}

impl RoundTotal {
    /// The round's mean cost to one party in one signature.
    fn mean(self) -> RoundCost {
        let mean = |d: Duration| round(d.as_secs_f64() * 1e3 / f64::from(self.count.max(1)));
        RoundCost {
            cpu_ms: mean(self.cpu),
            wait_ms: mean(self.wait),
            wall_ms: mean(self.wall),
            round: self.round,
        }
    }
}
