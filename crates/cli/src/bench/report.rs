//! What `sigil bench` measured: one serialisable report, printed as a table or as JSON.

use serde::Serialize;
use sigil_client::NodeClient;
use sigil_client::types::{SignerSet, ValidatorRecord};
use sigil_primitives::request::PathSettings;

use super::BenchArgs;
use super::engine::{EngineRun, ProgramEval};
use super::load::{Latency, Level, round};

/// Every figure of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `sigil` version.
    pub version: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The git commit of the working directory, when run from a checkout.
    pub commit: Option<String>,
    /// The machine.
    pub machine: Machine,
    /// The threshold engine's parameter set (`production`).
    pub parameters: String,
    /// Validators, signers, threshold, relayer.
    pub topology: Topology,
    /// Network set-up times.
    pub setup: Setup,
    /// Registration and program figures.
    pub figures: Figures,
    /// Sigil's own path.
    pub ours: Option<PathRun>,
    /// Ed25519 and BIP-340 keys signing one request at a time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<super::schemes::SchemeRun>,
    /// The Entropy-style baseline, with `--baseline`.
    pub baseline: Option<PathRun>,
    /// Ours divided by the baseline's.
    pub ratios: Option<Ratios>,
    /// The same signature in one process over in-memory channels.
    pub engine: Option<EngineRun>,
    /// What the network path adds to the engine's own time.
    pub network_overhead: Option<Overhead>,
    /// With `--chaos`: signing while signers are killed and restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<super::chaos::ChaosRun>,
    /// The ledger's own figures: submit to final, and a burst's transactions per second.
    pub ledger: Option<super::ledger::LedgerRun>,
    /// Wall time of the whole benchmark, in seconds.
    pub total_seconds: f64,
}

/// The machine the figures come from.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// CPU model, from /proc/cpuinfo when there is one.
    pub cpu: Option<String>,
    /// Operating system and architecture.
    pub os: String,
}

/// Who is in the network.
#[derive(Debug, Serialize)]
pub struct Topology {
    /// Validators (TSS nodes).
    pub validators: usize,
    /// Signers when the run started.
    pub signers: usize,
    /// Their names (devnet) or accounts.
    pub signer_names: Vec<String>,
    /// Signatures need this many signers: the committee size.
    pub threshold: u16,
    /// The relayer every request went to.
    pub relayer: String,
    /// Its devnet name.
    pub relayer_name: Option<String>,
    /// Block time of the devnet, in milliseconds (`None` when attached).
    pub block_time_ms: Option<u64>,
    /// Whether the run attached to an existing network instead of starting a devnet.
    pub attached: bool,
}

/// Set-up times, in seconds.
#[derive(Debug, Default, Serialize)]
pub struct Setup {
    /// Starting the ledger and the validators.
    pub devnet_seconds: Option<f64>,
    /// The jump-start DKG (key generation and aux data), from `jump_start` to every confirmation.
    pub dkg_seconds: Option<f64>,
    /// A reshare to one more signer, from `set_parameters` until the ledger switched.
    pub reshare_seconds: Option<f64>,
    /// What was reshared, or why it was not.
    pub reshare: Option<String>,
}

/// Registration and programs.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// Registering a key: one transaction until its block is final.
    pub register: Option<Latency>,
    /// Evaluating the key's program.
    pub program: Option<ProgramEval>,
}

/// One signing path's runs.
#[derive(Debug, Serialize)]
pub struct PathRun {
    /// How the relayer said its path is configured (`/v1/info`).
    pub settings: PathSettings,
    /// The latency run.
    pub latency: Level,
    /// The throughput sweep, by increasing concurrency.
    pub throughput: Vec<Level>,
    /// The best throughput of the sweep.
    pub peak_signatures_per_second: f64,
    /// The concurrency it was reached at.
    pub peak_concurrency: usize,
    /// Validator connections opened (Noise handshakes) during the latency run and the sweep,
    /// from the validators' metrics.
    pub handshakes: Option<u64>,
    /// The same per signed request.
    pub handshakes_per_signature: Option<f64>,
    /// Where a signature's time went on the signers during the latency run.
    pub profile: Option<super::metrics::NetProfile>,
}

impl PathRun {
    /// Collects the runs of one path.
    pub fn new(settings: PathSettings, latency: Level, throughput: Vec<Level>) -> Self {
        let peak = throughput
            .iter()
            .max_by(|a, b| a.signatures_per_second.total_cmp(&b.signatures_per_second));
        Self {
            settings,
            peak_signatures_per_second: peak.map_or(0.0, |l| l.signatures_per_second),
            peak_concurrency: peak.map_or(0, |l| l.concurrency),
            latency,
            throughput,
            handshakes: None,
            handshakes_per_signature: None,
            profile: None,
        }
    }

    /// Records the handshakes counted during the runs.
    pub fn set_handshakes(&mut self, handshakes: Option<u64>) {
        let signed = self.latency.signed + self.throughput.iter().map(|l| l.signed).sum::<usize>();
        self.handshakes = handshakes;
        self.handshakes_per_signature = handshakes.map(|h| ratio3(h as f64 / signed.max(1) as f64));
    }
}

/// Ours over the baseline's: below 1 is faster for latency, above 1 is more for throughput.
#[derive(Debug, Serialize)]
pub struct Ratios {
    /// Median latency, ours / baseline.
    pub latency_p50: Option<f64>,
    /// 90th percentile, ours / baseline.
    pub latency_p90: Option<f64>,
    /// 99th percentile, ours / baseline.
    pub latency_p99: Option<f64>,
    /// Peak throughput, ours / baseline.
    pub throughput_peak: f64,
    /// Throughput at each concurrency both ran, ours / baseline.
    pub throughput_by_concurrency: Vec<(usize, f64)>,
}

/// The network path's cost over the engine's.
#[derive(Debug, Serialize)]
pub struct Overhead {
    /// End-to-end median latency (ours, latency run).
    pub end_to_end_p50_ms: f64,
    /// The engine's median signature time in one process.
    pub engine_p50_ms: f64,
    /// The difference: envelope, programs, committee, transport, ledger reads, HTTP.
    pub overhead_ms: f64,
    /// The difference as a share of the end-to-end latency.
    pub overhead_share: f64,
}

impl Report {
    /// A report with the run's identity filled in.
    pub async fn new(
        args: &BenchArgs,
        relayer: &ValidatorRecord,
        validators: usize,
        set: &SignerSet,
        attached: bool,
    ) -> anyhow::Result<Self> {
        let info = NodeClient::new(relayer.endpoint.as_str()).info().await?;
        Ok(Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            commit: git_commit(),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, usize::from),
                cpu: cpu_model(),
                os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            },
            parameters: info.security_parameters,
            topology: Topology {
                validators,
                signers: set.signers.len(),
                signer_names: set.signers.iter().map(ToString::to_string).collect(),
                threshold: set.threshold,
                relayer: relayer.account.to_string(),
                relayer_name: None,
                block_time_ms: (!attached).then_some(args.devnet.block_time.as_millis() as u64),
                attached,
            },
            setup: Setup::default(),
            figures: Figures::default(),
            ours: None,
            schemes: vec![],
            baseline: None,
            ratios: None,
            engine: None,
            network_overhead: None,
            chaos: None,
            ledger: None,
            total_seconds: 0.0,
        })
    }

    /// Computes [`Ratios`] once both paths ran.
    pub fn finish_ratios(&mut self) {
        let (Some(ours), Some(base)) = (&self.ours, &self.baseline) else {
            return;
        };
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| ratio3(a / b));
        let lat = |f: fn(&Latency) -> f64| match (&ours.latency.latency, &base.latency.latency) {
            (Some(o), Some(b)) => ratio(f(o), f(b)),
            _ => None,
        };
        self.ratios = Some(Ratios {
            latency_p50: lat(|l| l.p50_ms),
            latency_p90: lat(|l| l.p90_ms),
            latency_p99: lat(|l| l.p99_ms),
            throughput_peak: ratio(
                ours.peak_signatures_per_second,
                base.peak_signatures_per_second,
            )
            .unwrap_or(0.0),
            throughput_by_concurrency: ours
                .throughput
                .iter()
                .filter_map(|o| {
                    let b = base
                        .throughput
                        .iter()
                        .find(|b| b.concurrency == o.concurrency)?;
                    Some((
                        o.concurrency,
                        ratio(o.signatures_per_second, b.signatures_per_second)?,
                    ))
                })
                .collect(),
        });
    }

    /// Computes [`Overhead`] once the engine-alone run is done.
    pub fn finish_overhead(&mut self) {
        let (Some(ours), Some(engine)) = (&self.ours, &self.engine) else {
            return;
        };
        let Some(latency) = &ours.latency.latency else {
            return;
        };
        let overhead = latency.p50_ms - engine.wall.p50_ms;
        self.network_overhead = Some(Overhead {
            end_to_end_p50_ms: latency.p50_ms,
            engine_p50_ms: engine.wall.p50_ms,
            overhead_ms: round(overhead),
            overhead_share: ratio3(overhead / latency.p50_ms.max(1e-9)),
        });
    }
}

fn ratio3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `git rev-parse --short HEAD` of the working directory, if it is a checkout.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn ms(v: f64) -> String {
    format!("{v:.0} ms")
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "not measured".to_owned(), |s| format!("{s:.1} s"))
}

/// `println!` into a `String`.
macro_rules! line {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    identity_lines(r, &mut out);
    setup_table(r, &mut out);
    latency_table(r, &mut out);
    throughput_table(r, &mut out);
    profile_table(r, &mut out);
    ratio_lines(r, &mut out);
    ledger_lines(r, &mut out);
    chaos_lines(r, &mut out);
    line!(out);
    line!(out, "  total {:.0} s", r.total_seconds);
    out
}

/// The title, then what ran where: run, machine, topology.
fn identity_lines(r: &Report, out: &mut String) {
    let t = &r.topology;
    line!(out);
    line!(out, "Sigil benchmark");
    line!(
        out,
        "  run          {} {}, sigil {}, {} parameters",
        r.date,
        r.commit.as_deref().unwrap_or("(no commit)"),
        r.version,
        r.parameters
    );
    line!(
        out,
        "  machine      {} cores{}, {}",
        r.machine.cores,
        r.machine
            .cpu
            .as_deref()
            .map_or_else(String::new, |c| format!(" ({c})")),
        r.machine.os
    );
    line!(
        out,
        "  topology     {} validators, {} signers, threshold {} (committee of {}), relayer {}{}",
        t.validators,
        t.signers,
        t.threshold,
        t.threshold,
        t.relayer_name.as_deref().unwrap_or(&t.relayer),
        t.block_time_ms
            .map_or_else(String::new, |b| format!(", {b} ms blocks"))
    );
}

/// Set-up times, registration and program evaluation.
fn setup_table(r: &Report, out: &mut String) {
    line!(out);
    line!(out, "  {:<44} {:>12}", "setup", "");
    line!(
        out,
        "  {:<44} {:>12}",
        "  DKG (jump start)",
        opt_s(r.setup.dkg_seconds)
    );
    line!(
        out,
        "  {:<44} {:>12}",
        format!(
            "  reshare ({})",
            r.setup.reshare.as_deref().unwrap_or("skipped")
        ),
        opt_s(r.setup.reshare_seconds)
    );
    if let Some(reg) = &r.figures.register {
        line!(
            out,
            "  {:<44} {:>12}",
            format!(
                "  register a key (p50 of {}, max {:.0} ms)",
                reg.samples, reg.max_ms
            ),
            ms(reg.p50_ms)
        );
    }
    if let Some(p) = &r.figures.program {
        line!(
            out,
            "  {:<44} {:>12}",
            format!("  program {} (cached, p50)", p.program),
            format!("{:.1} µs", p.cached_p50_us)
        );
        line!(
            out,
            "  {:<44} {:>12}",
            "  program compile + evaluate (no cache, p50)",
            format!("{:.1} ms", p.uncached_p50_ms)
        );
    }
}

/// The latency run of each path and of the engine alone, and the network path's overhead.
fn latency_table(r: &Report, out: &mut String) {
    line!(out);
    latency_header(
        out,
        &format!(
            "latency ({} at c={})",
            r.ours.as_ref().map_or(0, |o| o.latency.requests),
            r.ours.as_ref().map_or(0, |o| o.latency.concurrency)
        ),
    );
    if let Some(o) = &r.ours {
        latency_row(out, "sigil", &o.latency);
    }
    if let Some(b) = &r.baseline {
        latency_row(out, "baseline", &b.latency);
    }
    for run in &r.schemes {
        scheme_row(out, run);
    }
    if let Some(e) = &r.engine {
        line!(
            out,
            "  {:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "engine alone",
            ms(e.wall.p50_ms),
            ms(e.wall.p90_ms),
            ms(e.wall.p99_ms),
            ms(e.wall.max_ms),
            ms(e.wall.mean_ms)
        );
    }
    if let Some(o) = &r.network_overhead {
        line!(
            out,
            "  network path overhead: {:.0} ms of {:.0} ms ({:.0}%)",
            o.overhead_ms,
            o.end_to_end_p50_ms,
            o.overhead_share * 100.0
        );
    }
}

/// The latency columns' header, after `label`.
fn latency_header(out: &mut String, label: &str) {
    line!(
        out,
        "  {label:<22} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "p50",
        "p90",
        "p99",
        "max",
        "mean",
        "errors"
    );
}

/// One path's latency run under [`latency_header`].
fn latency_row(out: &mut String, name: &str, level: &Level) {
    figures_row(out, name, level.latency.as_ref(), level.errors);
}

/// One FROST scheme's latency at concurrency 1 under [`latency_header`].
fn scheme_row(out: &mut String, run: &super::schemes::SchemeRun) {
    let name = format!("{} (c=1)", run.scheme);
    figures_row(out, &name, run.latency.as_ref(), run.errors);
}

/// A latency row: the figures, or why there are none.
fn figures_row(out: &mut String, name: &str, latency: Option<&Latency>, errors: usize) {
    match latency {
        Some(l) => line!(
            out,
            "  {name:<22} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p99_ms),
            ms(l.max_ms),
            ms(l.mean_ms),
            errors
        ),
        None => line!(out, "  {name:<22} no request signed ({errors} errors)"),
    }
}

/// Our throughput sweep beside the baseline's at the same concurrency, and both peaks.
fn throughput_table(r: &Report, out: &mut String) {
    line!(out);
    line!(
        out,
        "  {:<22} {:>14} {:>14} {:>8}",
        "throughput (sig/s)",
        "sigil",
        "baseline",
        "ratio"
    );
    let Some(o) = &r.ours else {
        return;
    };
    for level in &o.throughput {
        let base = r.baseline.as_ref().and_then(|b| {
            b.throughput
                .iter()
                .find(|l| l.concurrency == level.concurrency)
        });
        throughput_row(out, level, base);
    }
    line!(
        out,
        "  {:<22} {:>14} {:>14}",
        "  peak",
        format!(
            "{:.2} @c={}",
            o.peak_signatures_per_second, o.peak_concurrency
        ),
        r.baseline.as_ref().map_or_else(
            || "-".into(),
            |b| format!(
                "{:.2} @c={}",
                b.peak_signatures_per_second, b.peak_concurrency
            )
        )
    );
}

/// One concurrency of our sweep, with the baseline's level at the same concurrency if it ran.
fn throughput_row(out: &mut String, level: &Level, base: Option<&Level>) {
    let ratio = base.filter(|b| b.signatures_per_second > 0.0).map(|b| {
        format!(
            "{:.2}",
            level.signatures_per_second / b.signatures_per_second
        )
    });
    line!(
        out,
        "  {:<22} {:>14} {:>14} {:>8}",
        format!("  concurrency {}", level.concurrency),
        format!("{:.2}", level.signatures_per_second),
        base.map_or_else(|| "-".into(), |b| format!("{:.2}", b.signatures_per_second)),
        ratio.unwrap_or_else(|| "-".into())
    );
}

/// Ours over the baseline's, and how each path was configured.
fn ratio_lines(r: &Report, out: &mut String) {
    let Some(x) = &r.ratios else {
        return;
    };
    line!(out);
    let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
    line!(
        out,
        "  ratios (sigil / baseline): latency p50 {}, p90 {}, p99 {}; peak throughput {:.3}",
        f(x.latency_p50),
        f(x.latency_p90),
        f(x.latency_p99),
        x.throughput_peak
    );
    if let (Some(o), Some(b)) = (&r.ours, &r.baseline) {
        path_line(out, "baseline path: ", b);
        path_line(out, "sigil path:    ", o);
    }
}

/// The ledger's figures: who orders blocks, submit to final, and the burst.
fn ledger_lines(r: &Report, out: &mut String) {
    let Some(l) = &r.ledger else {
        return;
    };
    line!(out);
    let ordering = if l.replicas == 0 {
        l.mode.clone()
    } else {
        format!("{}, {} replicas", l.mode, l.replicas)
    };
    line!(out, "  {:<44} {:>12}", format!("ledger ({ordering})"), "");
    if let Some(f) = &l.submit_to_final {
        line!(
            out,
            "  {:<44} {:>12}",
            format!(
                "  submit to final (p50 of {}, p99 {:.0} ms)",
                f.samples, f.p99_ms
            ),
            ms(f.p50_ms)
        );
    }
    line!(
        out,
        "  {:<44} {:>12}",
        format!(
            "  burst of {} transfers ({:.1} s, {} blocks, {:.0} ms apart)",
            l.burst_transactions, l.burst_seconds, l.burst_blocks, l.block_interval_ms
        ),
        format!("{:.0} tx/s", l.transactions_per_second)
    );
}

/// How every request of a chaos run ended.
fn chaos_lines(r: &Report, out: &mut String) {
    let Some(c) = &r.chaos else {
        return;
    };
    line!(out);
    line!(
        out,
        "  chaos        {} requests at concurrency {} in {:.0} s; {} SIGKILLs of {}",
        c.requests,
        c.concurrency,
        c.seconds,
        c.kills,
        c.victim
    );
    let errors: Vec<String> = c.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    line!(
        out,
        "  endings      signed {} ({} after a retry), errors {} [{}], lost {}, invalid {}",
        c.signed,
        c.retried,
        c.errors.values().sum::<usize>(),
        errors.join(", "),
        c.lost,
        c.invalid
    );
    line!(
        out,
        "  offences     {} recorded ({} proven)",
        c.offences,
        c.proven_offences
    );
    if let Some(l) = &c.latency {
        line!(
            out,
            "  latency      p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            l.p50_ms,
            l.p99_ms,
            l.max_ms
        );
    }
}

/// How one path was configured, and its handshakes per signature; `label` ends in its padding.
fn path_line(out: &mut String, label: &str, p: &PathRun) {
    line!(
        out,
        "  {label}connections {}, program fuel {}, program cache {}; {} handshakes per signature",
        p.settings.connections,
        p.settings.program_fuel,
        p.settings.program_cache,
        p.handshakes_per_signature
            .map_or_else(|| "?".into(), |h| format!("{h:.2}"))
    );
}

/// Where one signature's time goes: each round's CPU and waiting on a signer of the network
/// path (latency run), beside the engine alone.
fn profile_table(r: &Report, out: &mut String) {
    let Some(net) = r.ours.as_ref().and_then(|o| o.profile.as_ref()) else {
        return;
    };
    line!(out);
    line!(
        out,
        "  one signature on a signer (mean): checks {}, program evaluation {}, session {}",
        net.checks_ms.map_or_else(|| "-".into(), ms),
        net.program_ms
            .map_or_else(|| "-".into(), |v| format!("{v:.2} ms")),
        net.session_ms.map_or_else(|| "-".into(), ms)
    );
    line!(
        out,
        "  {:<18} {:>10} {:>10} {:>10}   {:>10} {:>10}",
        "round",
        "net CPU",
        "net wait",
        "net wall",
        "alone CPU",
        "alone wait"
    );
    for round in &net.rounds {
        let alone = r
            .engine
            .as_ref()
            .and_then(|e| e.profile.iter().find(|p| p.round == round.round));
        line!(
            out,
            "  {:<18} {:>10} {:>10} {:>10}   {:>10} {:>10}",
            round.round,
            ms(round.cpu_ms),
            ms(round.wait_ms),
            ms(round.wall_ms),
            alone.map_or_else(|| "-".into(), |a| ms(a.cpu_ms)),
            alone.map_or_else(|| "-".into(), |a| ms(a.wait_ms)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::metrics::{NetProfile, RoundCost};
    use super::*;

    fn latency(p50_ms: f64) -> Latency {
        Latency {
            samples: 20,
            mean_ms: p50_ms + 3.4,
            p50_ms,
            p90_ms: p50_ms + 10.6,
            p99_ms: p50_ms + 20.5,
            max_ms: p50_ms + 31.0,
            min_ms: p50_ms - 5.0,
        }
    }

    fn level(concurrency: usize, rate: f64, latency: Option<Latency>) -> Level {
        Level {
            concurrency,
            requests: 20,
            signed: 19,
            errors: 1,
            error_samples: Vec::new(),
            retried: 0,
            seconds: 2.0,
            signatures_per_second: rate,
            latency,
            samples: Vec::new(),
        }
    }

    fn settings(connections: &str) -> PathSettings {
        PathSettings {
            connections: connections.into(),
            program_fuel: "per-program".into(),
            program_cache: 64,
        }
    }

    fn round_cost(round: &str, cpu_ms: f64) -> RoundCost {
        RoundCost {
            round: round.into(),
            cpu_ms,
            wait_ms: cpu_ms * 2.0,
            wall_ms: cpu_ms * 3.0,
        }
    }

    /// A report with every optional part present.
    fn full() -> Report {
        let mut ours = PathRun::new(
            settings("persistent"),
            level(1, 1.5, Some(latency(640.0))),
            vec![
                level(1, 1.5, Some(latency(650.0))),
                level(4, 4.25, Some(latency(900.0))),
            ],
        );
        ours.set_handshakes(Some(12));
        ours.profile = Some(NetProfile {
            checks_ms: Some(4.4),
            program_ms: Some(0.123),
            session_ms: None,
            rounds: vec![round_cost("Round1", 10.0), round_cost("Round2", 4.0)],
        });
        let mut baseline = PathRun::new(
            settings("per-session"),
            level(1, 1.0, None),
            vec![level(1, 1.0, Some(latency(1000.0))), level(2, 0.0, None)],
        );
        baseline.set_handshakes(None);
        let mut report = Report {
            version: "0.1.0".into(),
            date: "2026-01-02T03:04:05Z".into(),
            commit: Some("0123456789ab".into()),
            machine: Machine {
                cores: 8,
                cpu: Some("Test CPU".into()),
                os: "linux x86_64".into(),
            },
            parameters: "production".into(),
            topology: Topology {
                validators: 5,
                signers: 3,
                signer_names: vec!["alice".into(), "bob".into(), "charlie".into()],
                threshold: 2,
                relayer: "5Relayer".into(),
                relayer_name: Some("dave".into()),
                block_time_ms: Some(500),
                attached: false,
            },
            setup: Setup {
                devnet_seconds: Some(3.0),
                dkg_seconds: Some(41.26),
                reshare_seconds: None,
                reshare: None,
            },
            figures: Figures {
                register: Some(latency(1500.0)),
                program: Some(ProgramEval {
                    program: "eth-allowlist".into(),
                    bytecode_bytes: 1000,
                    compile_ms: 120.0,
                    cached_p50_us: 35.25,
                    cached_p99_us: 50.0,
                    uncached_p50_ms: 130.5,
                    fuel_used: 1234,
                }),
            },
            ours: Some(ours),
            schemes: vec![],
            baseline: Some(baseline),
            ratios: None,
            engine: Some(EngineRun {
                committee: vec!["alice".into(), "bob".into()],
                wall: latency(420.0),
                cpu_per_party_ms: vec![("alice".into(), 100.0)],
                rounds: 3,
                bytes_sent_per_party: 1000,
                profile: vec![round_cost("Round1", 9.0)],
            }),
            network_overhead: None,
            chaos: None,
            ledger: None,
            total_seconds: 123.4,
        };
        report.finish_ratios();
        report.finish_overhead();
        report
    }

    /// A report of a run that measured nothing.
    fn empty() -> Report {
        Report {
            version: "0.1.0".into(),
            date: "2026-01-02T03:04:05Z".into(),
            commit: None,
            machine: Machine {
                cores: 1,
                cpu: None,
                os: "linux x86_64".into(),
            },
            parameters: "production".into(),
            topology: Topology {
                validators: 1,
                signers: 1,
                signer_names: Vec::new(),
                threshold: 1,
                relayer: "5Relayer".into(),
                relayer_name: None,
                block_time_ms: None,
                attached: true,
            },
            setup: Setup {
                reshare: Some("not enough validators".into()),
                ..Setup::default()
            },
            figures: Figures::default(),
            ours: None,
            schemes: vec![],
            baseline: None,
            ratios: None,
            engine: None,
            network_overhead: None,
            chaos: None,
            ledger: None,
            total_seconds: 0.4,
        }
    }

    // The table is what people compare runs by: its layout must not drift.
    #[test]
    fn the_table_of_a_full_report() {
        assert_eq!(table(&full()), FULL_TABLE);
    }

    #[test]
    fn the_table_of_an_empty_report() {
        assert_eq!(table(&empty()), EMPTY_TABLE);
    }

    const FULL_TABLE: &str = r"
Sigil benchmark
  run          2026-01-02T03:04:05Z 0123456789ab, sigil 0.1.0, production parameters
  machine      8 cores (Test CPU), linux x86_64
  topology     5 validators, 3 signers, threshold 2 (committee of 2), relayer dave, 500 ms blocks

  setup                                                    
    DKG (jump start)                                 41.3 s
    reshare (skipped)                          not measured
    register a key (p50 of 20, max 1531 ms)         1500 ms
    program eth-allowlist (cached, p50)             35.2 µs
    program compile + evaluate (no cache, p50)     130.5 ms

  latency (20 at c=1)           p50        p90        p99        max       mean   errors
  sigil                      640 ms     651 ms     660 ms     671 ms     643 ms        1
  baseline               no request signed (1 errors)
  engine alone               420 ms     431 ms     440 ms     451 ms     423 ms
  network path overhead: 220 ms of 640 ms (34%)

  throughput (sig/s)              sigil       baseline    ratio
    concurrency 1                  1.50           1.00     1.50
    concurrency 4                  4.25              -        -
    peak                      4.25 @c=4      1.00 @c=1

  one signature on a signer (mean): checks 4 ms, program evaluation 0.12 ms, session -
  round                 net CPU   net wait   net wall    alone CPU alone wait
  Round1                  10 ms      20 ms      30 ms         9 ms      18 ms
  Round2                   4 ms       8 ms      12 ms            -          -

  ratios (sigil / baseline): latency p50 -, p90 -, p99 -; peak throughput 4.250
  baseline path: connections per-session, program fuel per-program, program cache 64; ? handshakes per signature
  sigil path:    connections persistent, program fuel per-program, program cache 64; 0.21 handshakes per signature

  total 123 s
";

    const EMPTY_TABLE: &str = r"
Sigil benchmark
  run          2026-01-02T03:04:05Z (no commit), sigil 0.1.0, production parameters
  machine      1 cores, linux x86_64
  topology     1 validators, 1 signers, threshold 1 (committee of 1), relayer 5Relayer

  setup                                                    
    DKG (jump start)                           not measured
    reshare (not enough validators)            not measured

  latency (0 at c=0)            p50        p90        p99        max       mean   errors

  throughput (sig/s)              sigil       baseline    ratio

  total 0 s
";
}
