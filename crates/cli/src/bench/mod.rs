//! `sigil bench`: end-to-end speed of a Sigil network, measured, with an optional baseline.
//!
//! It starts a devnet (or attaches to a running network with `--ledger`/`--relayer`) and
//! measures, with production parameters:
//! 1. the jump-start DKG, registering keys and evaluating the key's program;
//! 2. end-to-end signature latency (client → relayer → committee → client) over `--requests`
//!    requests at `--concurrency`;
//! 3. throughput at increasing concurrency (`--sweep`) until it stops growing while latency
//!    grows;
//! 4. with `--baseline`, the same 2 and 3 on the same nodes restarted with the Entropy-style
//!    path switched on by configuration (a new connection and Noise handshake per session,
//!    one fuel budget shared by a request's programs, programs compiled on every evaluation);
//! 5. resharing to one more signer;
//! 6. the engine alone: the same signature by the same key shares in one process over
//!    in-memory channels, so the network path's overhead shows as one figure;
//! 7. the ledger: submit to final, and a burst's transactions per second, on the devnet's
//!    replicated ledger (or solo, with `--solo-ledger`).
//!
//! It prints a table, or one JSON object with `--json`, and draws `--plot FILE.svg`.

mod chaos;
mod engine;
mod ledger;
mod load;
mod metrics;
mod plot;
mod report;
mod schemes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use sigil::devnet::{Devnet, DevnetConfig, DevnetOpts, dev_keypair};
use sigil::progress::Step;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Parameters, ValidatorRecord};
use sigil_client::{LedgerClient, NodeClient};
use sigil_crypto::AccountKeypair;
use sigil_primitives::{DerivationPath, ProgramList, VerifyingKey};

use load::{BenchKey, Latency, Level, Workload, round};
use report::{Figures, PathRun, Report, Setup};

/// One switch of the Entropy-style baseline and the `sigil node` arguments that turn it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// A new connection and Noise handshake per session (`--connections per-session`).
    Connections,
    /// One fuel budget shared by a request's programs (`--program-fuel shared`).
    Fuel,
    /// No compile cache: every evaluation compiles the program (`--program-cache 0`).
    Compile,
}

impl Switch {
    fn node_args(self) -> [&'static str; 2] {
        match self {
            Self::Connections => ["--connections", "per-session"],
            Self::Fuel => ["--program-fuel", "shared"],
            Self::Compile => ["--program-cache", "0"],
        }
    }
}

/// How long restarted nodes get to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a reshare may take on a busy 2-core machine.
const RESHARE_TIMEOUT: Duration = Duration::from_secs(600);

/// Options of `sigil bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Attach to the network of this ledger (websocket JSON-RPC URL) instead of starting a
    /// devnet. DKG, resharing, the engine-alone figure and the baseline need a devnet.
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// With --ledger: the relayer to send requests to, `host:port` (default: the first relayer
    /// the ledger lists).
    #[arg(long, value_name = "HOST:PORT", requires = "ledger")]
    relayer: Option<String>,
    #[command(flatten)]
    devnet: DevnetOpts,
    /// Requests in the latency run.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    requests: u64,
    /// Requests in flight at once in the latency run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Concurrency levels of the throughput sweep, in increasing order.
    #[arg(long, default_value = "1,2,4,8", value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Requests per sweep level (at least three per request in flight).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    sweep_requests: u64,
    /// Signatures of the engine-alone run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    engine_signatures: u64,
    /// Also run the Entropy-style baseline on the same nodes and print ratios to it.
    #[arg(long)]
    baseline: bool,
    /// Which switches make the baseline (default: all three).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "connections,fuel,compile",
        requires = "baseline"
    )]
    baseline_switches: Vec<Switch>,
    /// Skip the resharing measurement.
    #[arg(long)]
    no_reshare: bool,
    /// Transfers of the ledger's submit-to-final run, one after another (0 skips the ledger
    /// figures).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    ledger_samples: u64,
    /// Transfers of the ledger's burst, from a sender per 250 at once.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    ledger_burst: u64,
    /// Print one JSON object with every figure on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Write a latency histogram and a throughput-vs-concurrency plot to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Keep the devnet's data and logs here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Instead of the speed figures, run `--requests` requests at `--concurrency` while a
    /// signer is SIGKILLed every `--kill-every` and restarted 3 s later, and report how every
    /// request ended. The nodes run with `--round-timeout 10s`.
    #[arg(long, conflicts_with_all = ["baseline", "ledger"])]
    chaos: bool,
    /// With --chaos: time between kills.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration, requires = "chaos")]
    kill_every: Duration,
}

impl BenchArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.ledger.is_some() && self.baseline {
            bail!(
                "--baseline restarts the nodes with another configuration, so it needs the devnet \
                 `sigil bench` starts: drop --ledger"
            );
        }
        if self.sweep.is_empty() || self.sweep.contains(&0) {
            bail!("--sweep needs concurrency levels of at least 1, e.g. 1,2,4,8");
        }
        if self.sweep.windows(2).any(|w| w[0] >= w[1]) {
            bail!("--sweep levels must increase, e.g. 1,2,4,8");
        }
        if let Some(plot) = &self.plot
            && plot.extension().and_then(|e| e.to_str()) != Some("svg")
        {
            bail!("--plot writes SVG: give a file name ending in .svg");
        }
        Ok(())
    }

    fn max_concurrency(&self) -> usize {
        let sweep = self.sweep.iter().copied().max().unwrap_or(1);
        sweep.max(self.concurrency as usize)
    }
}

/// The ledger's figures, unless `--ledger-samples 0`.
async fn ledger_figures(
    args: &BenchArgs,
    ledger: &LedgerClient,
) -> anyhow::Result<Option<ledger::LedgerRun>> {
    if args.ledger_samples == 0 {
        return Ok(None);
    }
    let sizes = ledger::Sizes {
        samples: args.ledger_samples as usize,
        burst: args.ledger_burst as usize,
    };
    ledger::run(ledger, sizes).await.map(Some)
}

/// Runs `sigil bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    args.check()?;
    let started = Instant::now();
    let report = crate::block_on(async {
        match args.ledger.clone() {
            Some(url) => attached(&args, &url).await,
            None => on_devnet(&args).await,
        }
    })?;
    let mut report = report;
    report.total_seconds = round(started.elapsed().as_secs_f64());
    if let Some(path) = &args.plot {
        plot::write(path, &report).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    // With --json the table goes to stderr, beside the progress, so stdout stays one object.
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        eprint!("{}", report::table(&report));
    } else {
        print!("{}", report::table(&report));
    }
    Ok(())
}

/// The benchmark on a network someone else runs.
async fn attached(args: &BenchArgs, url: &str) -> anyhow::Result<Report> {
    let ledger = LedgerClient::connect(url)
        .await
        .map_err(|e| anyhow!("{e} (is a ledger running there?)"))?;
    let relayer = match &args.relayer {
        Some(endpoint) => relayer_at(&ledger, endpoint).await?,
        None => first_relayer(&ledger).await?,
    };
    let set = ledger.rpc().signer_set().await?;
    let validators = ledger.rpc().validators().await?.len();
    let mut report = Report::new(args, &relayer, validators, &set, true).await?;
    let mut figures = Figures::default();
    let (keys, registered) = register_keys(&ledger, args.max_concurrency(), &mut figures).await?;
    program_figures(&registered.1, &mut figures)?;
    report.ledger = ledger_figures(args, &ledger).await?;
    report.ours = Some(measure_path(args, &args.sweep, url, &relayer, keys, "ours").await?);
    report.figures = figures;
    Ok(report)
}

/// The benchmark on a devnet it starts and stops.
async fn on_devnet(args: &BenchArgs) -> anyhow::Result<Report> {
    let binary = std::env::current_exe().context("cannot find the sigil executable")?;
    let (temp, dir) = sigil::devnet::work_dir(args.dir.as_deref(), "sigil-bench-")?;
    let mut config = args.devnet.apply(DevnetConfig {
        jump_start: false,
        ..DevnetConfig::new(binary, dir)
    });
    if args.chaos {
        // A killed signer is blamed after this long instead of the default minute.
        config
            .extra_node_args
            .extend(chaos::NODE_ARGS.iter().map(|a| (*a).to_owned()));
    }
    let result = async {
        let step = Step::start("starting the devnet");
        let mut devnet = Devnet::start(config).await?;
        let devnet_seconds = step.finish("");
        let outcome = bench_devnet(args, &mut devnet, devnet_seconds).await;
        let stop = Step::start("stopping the devnet");
        devnet.stop().await?;
        stop.finish("");
        let (mut report, engine_input) = outcome?;
        if let Some(input) = engine_input {
            report.engine = Some(engine::run(&input, args.engine_signatures as usize).await?);
            report.finish_overhead();
        }
        Ok::<_, anyhow::Error>(report)
    }
    .await;
    if result.is_err()
        && let Some(temp) = temp
    {
        // A failed run's logs are what explains it.
        eprintln!("the devnet's logs are kept in {}", temp.keep().display());
    }
    result
}

async fn bench_devnet(
    args: &BenchArgs,
    devnet: &mut Devnet,
    devnet_seconds: Duration,
) -> anyhow::Result<(Report, Option<engine::Input>)> {
    let dkg = devnet.jump_start().await?;
    let ledger = devnet.client();
    let relayer = first_relayer(ledger).await?;
    let mut report = devnet_report(args, devnet, &relayer, dkg, devnet_seconds).await?;

    let mut figures = Figures::default();
    let (keys, (first_key, programs, path)) =
        register_keys(ledger, args.max_concurrency(), &mut figures).await?;
    program_figures(&programs, &mut figures)?;
    let url = devnet.ledger_url().to_owned();
    if args.chaos {
        let workload = Arc::new(Workload::new(&url, &relayer, keys).await?);
        let (requests, concurrency) = (args.requests as usize, args.concurrency as usize);
        report.chaos =
            Some(chaos::run(devnet, workload, requests, concurrency, args.kill_every).await?);
        report.figures = figures;
        return Ok((report, None));
    }
    report.ledger = ledger_figures(args, ledger).await?;
    let engine_prehash = engine::sample_prehash();
    report.ours =
        Some(measure_path(args, &args.sweep, &url, &relayer, keys.clone(), "ours").await?);
    report.schemes = schemes::run(ledger, &relayer, args.requests as usize).await?;

    if args.baseline {
        report.baseline = Some(run_baseline(args, devnet, &report, &url, &relayer, keys).await?);
        report.finish_ratios();
    }
    if !args.no_reshare {
        measure_reshare(devnet, &mut report).await?;
    }
    let input = engine_input(devnet, path, engine_prehash, first_key).await?;
    report.figures = figures;
    Ok((report, input))
}

/// Restarts the nodes on the Entropy-style path, measures it at the levels ours ran, and
/// (unless a reshare follows) restarts them on Sigil's own path.
async fn run_baseline(
    args: &BenchArgs,
    devnet: &mut Devnet,
    report: &Report,
    url: &str,
    relayer: &ValidatorRecord,
    keys: Vec<BenchKey>,
) -> anyhow::Result<PathRun> {
    let step = Step::start("restarting the nodes on the Entropy-style path (baseline)");
    let baseline_args: Vec<String> = args
        .baseline_switches
        .iter()
        .flat_map(|s| s.node_args())
        .map(str::to_owned)
        .collect();
    devnet.restart_all_with(baseline_args).await?;
    let connections = if args.baseline_switches.contains(&Switch::Connections) {
        "per-session"
    } else {
        "persistent"
    };
    wait_ready(devnet, connections).await?;
    step.finish("");
    // The same levels ours ran, so every level has a ratio.
    let sweep: Vec<usize> = report
        .ours
        .as_ref()
        .map(|o| o.throughput.iter().map(|l| l.concurrency).collect())
        .unwrap_or_default();
    let baseline = measure_path(args, &sweep, url, relayer, keys, "baseline").await?;
    if !args.no_reshare {
        let step = Step::start("restarting the nodes on Sigil's own path");
        devnet.restart_all_with(Vec::new()).await?;
        wait_ready(devnet, "persistent").await?;
        step.finish("");
    }
    Ok(baseline)
}

/// Reshares to a new signer set and records how long it took, if a validator can join.
async fn measure_reshare(devnet: &mut Devnet, report: &mut Report) -> anyhow::Result<()> {
    match reshare(devnet).await? {
        Some((seconds, what)) => {
            report.setup.reshare_seconds = Some(round(seconds.as_secs_f64()));
            report.setup.reshare = Some(what);
        }
        None => {
            report.setup.reshare = Some("not measured: every validator is already a signer".into());
        }
    }
    Ok(())
}

/// What the engine-alone run needs: a threshold of signers' key shares, read once the nodes
/// have stopped.
async fn engine_input(
    devnet: &Devnet,
    path: DerivationPath,
    prehash: [u8; 32],
    verifying_key: VerifyingKey,
) -> anyhow::Result<Option<engine::Input>> {
    let set = devnet.client().rpc().signer_set().await?;
    let members: Vec<engine::Member> = set
        .signers
        .iter()
        .take(usize::from(set.threshold))
        .filter_map(|account| devnet.nodes().iter().find(|n| n.account == *account))
        .map(|n| engine::Member {
            name: n.name.clone(),
            data_dir: n.data_dir.clone(),
            key_file: n.key_file.clone(),
            account: dev_keypair(&n.name),
        })
        .collect();
    Ok(
        (members.len() == usize::from(set.threshold)).then(|| engine::Input {
            members,
            path,
            prehash,
            verifying_key,
        }),
    )
}

/// The report of a devnet run before any figure: topology with names, set-up times.
async fn devnet_report(
    args: &BenchArgs,
    devnet: &Devnet,
    relayer: &ValidatorRecord,
    dkg: Duration,
    devnet_seconds: Duration,
) -> anyhow::Result<Report> {
    let set = devnet.client().rpc().signer_set().await?;
    let mut report = Report::new(args, relayer, devnet.nodes().len(), &set, false).await?;
    report.setup = Setup {
        devnet_seconds: Some(round(devnet_seconds.as_secs_f64())),
        dkg_seconds: args
            .devnet
            .dev_key_shares
            .is_none()
            .then(|| round(dkg.as_secs_f64())),
        reshare_seconds: None,
        reshare: None,
    };
    report.topology.relayer_name = devnet.name_of(&relayer.account).map(str::to_owned);
    report.topology.signer_names = set
        .signers
        .iter()
        .map(|a| {
            devnet
                .name_of(a)
                .map_or_else(|| a.to_string(), str::to_owned)
        })
        .collect();
    Ok(report)
}

/// The first relayer the ledger lists.
async fn first_relayer(ledger: &LedgerClient) -> anyhow::Result<ValidatorRecord> {
    ledger
        .relayers()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the network has no relayer: every validator is a signer"))
}

/// The validator at `endpoint`, which must be a relayer.
async fn relayer_at(ledger: &LedgerClient, endpoint: &str) -> anyhow::Result<ValidatorRecord> {
    let info = NodeClient::new(endpoint)
        .info()
        .await
        .with_context(|| format!("cannot read /v1/info of the relayer at {endpoint}"))?;
    ledger
        .relayers()
        .await?
        .into_iter()
        .find(|r| r.account == info.account)
        .ok_or_else(|| anyhow!("the node at {endpoint} is not a relayer of this ledger"))
}

/// Funds (from the dev faucet) a deployer and one owner per worker, deploys the program and
/// registers one key per worker, timing each registration. Returns the keys, and the first key
/// with its program list and derivation path.
async fn register_keys(
    ledger: &LedgerClient,
    count: usize,
    figures: &mut Figures,
) -> anyhow::Result<(Vec<BenchKey>, (VerifyingKey, ProgramList, DerivationPath))> {
    let deployer = AccountKeypair::generate();
    let owners: Vec<AccountKeypair> = (0..count).map(|_| AccountKeypair::generate()).collect();
    let accounts: Vec<_> = std::iter::once(&deployer)
        .chain(&owners)
        .map(AccountKeypair::account_id)
        .collect();
    sigil::devnet::fund(ledger, &accounts, sigil::devnet::USER_FUNDING).await?;
    let program = crate::demo::deploy_allowlist(ledger, &deployer).await?;
    let programs = crate::demo::allowlist_programs(program)?;
    let mut keys = Vec::with_capacity(count);
    let mut times = Vec::with_capacity(count);
    let mut first = None;
    for owner in owners {
        let started = Instant::now();
        let registered = crate::register::register(
            ledger,
            &owner,
            programs.clone(),
            false,
            sigil_primitives::KeyScheme::EcdsaSecp256k1,
        )
        .await?;
        times.push(started.elapsed());
        if first.is_none() {
            first = Some((
                registered.verifying_key,
                programs.clone(),
                registered.derivation_path.clone(),
            ));
        }
        keys.push(BenchKey {
            owner,
            verifying_key: registered.verifying_key,
        });
    }
    figures.register = Latency::of(&times);
    let first = first.ok_or_else(|| anyhow!("no key registered"))?;
    Ok((keys, first))
}

/// Program evaluation in this process with the node's host: compile once, then evaluate.
fn program_figures(programs: &ProgramList, figures: &mut Figures) -> anyhow::Result<()> {
    figures.program = Some(engine::program_eval(programs)?);
    Ok(())
}

/// Latency run and throughput sweep (at the `sweep` levels) through `relayer`.
async fn measure_path(
    args: &BenchArgs,
    sweep: &[usize],
    ledger_url: &str,
    relayer: &ValidatorRecord,
    keys: Vec<BenchKey>,
    label: &str,
) -> anyhow::Result<PathRun> {
    let workload = Arc::new(Workload::new(ledger_url, relayer, keys).await?);
    let info = workload
        .node
        .info()
        .await
        .context("reading the relayer's /v1/info")?;

    // One request per signer, so that most likely every signer has compiled the program and
    // opened its connections before anything is timed.
    let warm_up = ledger_signers(&workload.ledger).await?.max(1);
    let mut step = Step::start(format!("{label}: {warm_up} warm-up signatures"));
    let warm = workload.run(warm_up, 1, &mut step).await;
    if warm.signed != warm_up {
        bail!(
            "{label}: a warm-up signature failed: {}",
            warm.error_samples.join("; ")
        );
    }
    step.finish("");
    let endpoints: Vec<String> = workload
        .ledger
        .rpc()
        .validators()
        .await?
        .iter()
        .map(|v| v.endpoint.as_str().to_owned())
        .collect();
    let before = metrics::Metrics::scrape(&endpoints).await;

    let concurrency = args.concurrency as usize;
    let mut step = Step::start(format!(
        "{label}: latency, {} requests at concurrency {concurrency}",
        args.requests
    ));
    let latency = workload
        .run(args.requests as usize, concurrency, &mut step)
        .await;
    step.finish(&summary(&latency));
    let after_latency = metrics::Metrics::scrape(&endpoints).await;

    let mut throughput: Vec<Level> = Vec::new();
    for &level in sweep {
        let requests = (args.sweep_requests as usize).max(3 * level);
        let mut step = Step::start(format!(
            "{label}: throughput, {requests} requests at concurrency {level}"
        ));
        let outcome = workload.run(requests, level, &mut step).await;
        step.finish(&summary(&outcome));
        let saturated = saturated(&throughput, &outcome);
        throughput.push(outcome);
        if saturated {
            break;
        }
    }
    let after = metrics::Metrics::scrape(&endpoints).await;
    let mut run = PathRun::new(info.path, latency, throughput);
    if let (Some(before), Some(after)) = (&before, &after) {
        run.set_handshakes(Some(after.since(before).handshakes()));
    }
    if let (Some(before), Some(after)) = (&before, &after_latency) {
        run.profile = Some(after.since(before).profile());
    }
    Ok(run)
}

async fn ledger_signers(ledger: &LedgerClient) -> anyhow::Result<usize> {
    Ok(ledger.rpc().signer_set().await?.signers.len())
}

/// Throughput stopped growing (under 10% over the best level so far) while latency grew by
/// half over the lowest level's.
fn saturated(before: &[Level], now: &Level) -> bool {
    let best = before
        .iter()
        .map(|l| l.signatures_per_second)
        .fold(0.0, f64::max);
    let base_p50 = before
        .first()
        .and_then(|l| l.latency.as_ref())
        .map(|l| l.p50_ms);
    let now_p50 = now.latency.as_ref().map(|l| l.p50_ms);
    match (base_p50, now_p50) {
        (Some(base), Some(p50)) => now.signatures_per_second < best * 1.1 && p50 > base * 1.5,
        _ => false,
    }
}

fn summary(level: &Level) -> String {
    let latency = level.latency.as_ref().map_or_else(String::new, |l| {
        format!(", p50 {:.0} ms, p99 {:.0} ms", l.p50_ms, l.p99_ms)
    });
    format!(
        "{}/{} signed, {:.2} signatures/s{latency}{}",
        level.signed,
        level.requests,
        level.signatures_per_second,
        if level.errors > 0 {
            format!(
                ", {} errors: {}",
                level.errors,
                level.error_samples.join("; ")
            )
        } else {
            String::new()
        }
    )
}

/// Waits until every node answers `/v1/info` ready, with its connections set to `connections`.
async fn wait_ready(devnet: &Devnet, connections: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    for node in devnet.nodes() {
        let client = NodeClient::new(&node.endpoint);
        loop {
            if let Ok(info) = client.info().await
                && info.ready
                && info.path.connections == connections
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become ready with --connections {connections} within {}s; log: {}",
                    node.name,
                    READY_TIMEOUT.as_secs(),
                    node.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Governance adds one signer; waits until the reshare is done. `None` when no validator is
/// left to add.
async fn reshare(devnet: &Devnet) -> anyhow::Result<Option<(Duration, String)>> {
    let ledger = devnet.client();
    let set = ledger.rpc().signer_set().await?;
    let validators = ledger.rpc().validators().await?.len();
    let signers = set.signers.len();
    if validators <= signers {
        return Ok(None);
    }
    let target = signers + 1;
    let what = format!("{signers} → {target} signers, threshold {}", set.threshold);
    let mut step = Step::start(format!(
        "resharing: {what} (resharing, then aux data for the new set)"
    ));
    let current: Parameters = ledger.rpc().parameters().await?;
    let parameters = Parameters {
        signer_count: u16::try_from(target)?,
        ..current
    };
    let started = Instant::now();
    ledger
        .submit(
            &dev_keypair("alice"),
            Call::SetParameters { parameters },
            true,
        )
        .await
        .context("set_parameters (one more signer) was refused")?;
    loop {
        let now = ledger.rpc().signer_set().await?;
        if now.pending_reshare.is_none() && now.signers.len() == target {
            if now.network_key != set.network_key {
                bail!("the reshare changed the network key");
            }
            break;
        }
        step.update(if now.pending_reshare.is_some() {
            "in progress"
        } else {
            "waiting for the ledger to start it"
        });
        if started.elapsed() > RESHARE_TIMEOUT {
            bail!(
                "the reshare did not finish within {} minutes",
                RESHARE_TIMEOUT.as_secs() / 60
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = step.finish("same network key");
    Ok(Some((elapsed, what)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(concurrency: usize, rate: f64, p50: u64) -> Level {
        let samples = vec![Duration::from_millis(p50)];
        Level {
            concurrency,
            requests: 1,
            signed: 1,
            errors: 0,
            error_samples: Vec::new(),
            retried: 0,
            seconds: 1.0,
            signatures_per_second: rate,
            latency: Latency::of(&samples),
            samples,
        }
    }

    #[test]
    fn the_sweep_stops_when_throughput_stalls_and_latency_grows() {
        let first = [level(1, 1.2, 800)];
        // More throughput: keep going, whatever the latency.
        assert!(!saturated(&first, &level(2, 2.0, 1600)));
        // Flat throughput, latency doubled: saturated.
        assert!(saturated(&first, &level(2, 1.25, 1600)));
        // Flat throughput but latency barely moved: not yet.
        assert!(!saturated(&first, &level(2, 1.25, 900)));
        // Nothing measured before: never saturated.
        assert!(!saturated(&[], &level(1, 1.0, 800)));
    }
}
