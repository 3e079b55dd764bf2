//! A local Sigil network of real processes: one `sigil ledger --dev` and `n` `sigil node`s, each
//! a child process of the caller with its data and log under one directory.
//!
//! [`Devnet::start`] picks free ports on 127.0.0.1, starts the ledger, funds (from the dev
//! faucet) validators beyond the five funded by the dev genesis, makes the ledger's signer count and threshold match the
//! configuration (a governance `set_parameters` from alice), starts the first `signers`
//! validators and waits until the ledger lists them, then starts the others. That order makes the
//! jump start, which picks the first `n` validators by joining block and then account id, pick
//! exactly the first `signers` names. With [`DevnetConfig::jump_start`] it then submits
//! `jump_start` and waits until the chosen signers have run the DKG and confirmed the network key.
//!
//! Validators use the dev identities alice, bob, charlie, dave, eve, ferdie, grace, heidi, ivan,
//! judy, then `node10`, `node11`…, in that order. Under the directory:
//!
//! ```text
//! DIR/ledger/       the chain          DIR/ledger.log   its output
//! DIR/NAME/         a node's data      DIR/NAME.log     its output
//! DIR/NAME.key      the raw key file that seals the node's keystore
//! DIR/ports.json    the ports, reused when a devnet is started again in the same directory
//! ```
//!
//! Nodes read the ledger through its validators' listener (`--validator-rpc`, a fresh port at
//! each start), clients through the public one.
//!
//! Children never outlive the [`Devnet`]: they are killed when it is dropped (and by tokio when
//! their handles are dropped), or stopped gracefully by [`Devnet::stop`].

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use sigil_client::LedgerClient;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, JumpStartStatus, Parameters};
use sigil_crypto::{AccountKeypair, NodeSeed};
use sigil_primitives::{AccountId, VerifyingKey};
use tokio::process::{Child, Command};

use crate::ports::ReservedPort;
use crate::progress::Step;

/// Dev identities of the validators, in start order; later ones are named `node{index}`.
pub const DEV_NAMES: [&str; 10] = [
    "alice", "bob", "charlie", "dave", "eve", "ferdie", "grace", "heidi", "ivan", "judy",
];

/// The validators the dev genesis funds (the faucet funds the others).
const GENESIS_FUNDED: usize = 5;

/// What the faucet transfers to each validator the dev genesis does not fund, so it can stake.
pub const VALIDATOR_FUNDING: u64 = 10_000_000;

/// What [`Devnet::fund`] gives a new user: fees and deposits for many programs and keys.
pub const USER_FUNDING: u64 = 1_000_000_000;

/// How long the ledger and each node get to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long validators get to appear on the ledger once their node answers.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the jump start (DKG with production parameters on a busy machine) may take.
const JUMP_START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause between polls.
const POLL: Duration = Duration::from_millis(200);

/// The shape of a devnet, as `sigil devnet` and `sigil bench` take it on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetOpts {
    /// Number of validators (TSS nodes).
    #[arg(long, default_value_t = 5)]
    pub validators: usize,
    /// Number of signers the jump start chooses; the other validators are relayers.
    #[arg(long, default_value_t = 3)]
    pub signers: u16,
    /// Signatures need this many signers.
    #[arg(long, default_value_t = 2)]
    pub threshold: u16,
    /// Time between ledger blocks.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub block_time: Duration,
    /// Load committed key shares (e.g. `crates/mpc/fixtures`, or `crates/mpc/fixtures/2-of-4`
    /// with --signers 4) instead of running the DKG (which `sigil bench` then does not measure).
    #[arg(long, value_name = "DIR")]
    pub dev_key_shares: Option<PathBuf>,
    /// Run one solo ledger process instead of a replica per validator.
    #[arg(long)]
    pub solo_ledger: bool,
}

impl DevnetOpts {
    /// `config` with this shape.
    pub fn apply(&self, config: DevnetConfig) -> DevnetConfig {
        DevnetConfig {
            validators: self.validators,
            signers: self.signers,
            threshold: self.threshold,
            block_time: self.block_time,
            key_share_fixtures: self.dev_key_shares.clone(),
            ledger: if self.solo_ledger {
                LedgerMode::Solo
            } else {
                LedgerMode::Replicated
            },
            ..config
        }
    }
}

/// The directory a command keeps its devnet in: `dir` if given (kept), else a new temporary
/// directory named `PREFIX…`, deleted when the returned guard drops.
pub fn work_dir(
    dir: Option<&Path>,
    prefix: &str,
) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match dir {
        Some(dir) => Ok((None, dir.to_path_buf())),
        None => {
            let temp = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .context("cannot create a temporary directory")?;
            let dir = temp.path().to_path_buf();
            Ok((Some(temp), dir))
        }
    }
}

/// The name of the validator at `index` (0-based).
pub fn validator_name(index: usize) -> String {
    DEV_NAMES
        .get(index)
        .map_or_else(|| format!("node{index}"), |name| (*name).to_owned())
}

/// The account key of the dev identity `name` (alice governs the dev ledger).
pub fn dev_keypair(name: &str) -> AccountKeypair {
    NodeSeed::dev(name).account_keypair()
}

/// Transfers `amount` from the dev faucet to each of `accounts` and waits until a block holds
/// the last transfer (the others are before it). The ledger must have the dev genesis.
pub async fn fund(
    client: &LedgerClient,
    accounts: &[AccountId],
    amount: u64,
) -> anyhow::Result<()> {
    let faucet = dev_keypair(sigil_ledger::node::DEV_FAUCET);
    for (i, to) in accounts.iter().enumerate() {
        let wait = i + 1 == accounts.len();
        client
            .submit(&faucet, Call::Transfer { to: *to, amount }, wait)
            .await
            .with_context(|| format!("the dev faucet could not fund {to}"))?;
    }
    Ok(())
}

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The `sigil` executable to run the ledger and the nodes with.
    pub binary: PathBuf,
    /// Where everything is stored (created if missing; an existing devnet there is resumed).
    pub dir: PathBuf,
    /// Number of validators (nodes).
    pub validators: usize,
    /// Number of signers the jump start chooses.
    pub signers: u16,
    /// Signatures need this many signers.
    pub threshold: u16,
    /// Time between ledger blocks.
    pub block_time: Duration,
    /// Committed key shares to load instead of running the DKG (`--dev-key-shares` of the nodes).
    pub key_share_fixtures: Option<PathBuf>,
    /// Extra arguments for every `sigil node`.
    pub extra_node_args: Vec<String>,
    /// Whether [`Devnet::start`] also jump-starts the network and waits for the network key.
    pub jump_start: bool,
    /// One solo ledger, or a replica per validator.
    pub ledger: LedgerMode,
}

/// How a devnet runs its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerMode {
    /// One `sigil ledger --dev` process orders blocks alone.
    Solo,
    /// Every validator runs a replica; consensus orders blocks.
    Replicated,
}

impl DevnetConfig {
    /// The defaults: 5 validators, 3 signers, threshold 2, 500 ms blocks, real DKG, jump start,
    /// a replicated ledger.
    pub fn new(binary: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            dir: dir.into(),
            validators: 5,
            signers: 3,
            threshold: 2,
            block_time: Duration::from_millis(500),
            key_share_fixtures: None,
            extra_node_args: Vec::new(),
            jump_start: true,
            ledger: LedgerMode::Replicated,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.threshold < 2 {
            bail!("the threshold must be at least 2");
        }
        if self.threshold > self.signers {
            bail!(
                "the threshold ({}) cannot exceed the number of signers ({})",
                self.threshold,
                self.signers
            );
        }
        if usize::from(self.signers) > self.validators {
            bail!(
                "{} signers need at least as many validators, not {}",
                self.signers,
                self.validators
            );
        }
        if self.block_time < Duration::from_millis(10) {
            bail!("the block time must be at least 10ms");
        }
        if let Some(dir) = &self.key_share_fixtures {
            self.check_fixtures(dir)?;
        }
        if !self.binary.is_file() {
            bail!(
                "the sigil executable {} does not exist",
                self.binary.display()
            );
        }
        Ok(())
    }
}

impl DevnetConfig {
    /// Fixture shares fit only the signer count and threshold they were made for: the jump
    /// start would otherwise wait forever for confirmations that cannot come.
    fn check_fixtures(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join("network-key.txt");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} holds no fixture shares ({})",
                dir.display(),
                path.display()
            )
        })?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(str::trim)
        };
        let threshold: u16 = field("threshold")
            .and_then(|t| t.parse().ok())
            .with_context(|| format!("{} has no threshold= line", path.display()))?;
        let signers = field("signers").map_or(0, |s| s.split(',').count());
        if usize::from(self.signers) != signers || self.threshold != threshold {
            bail!(
                "the fixture shares in {} are a {threshold}-of-{signers} key: run with \
                 --signers {signers} --threshold {threshold}",
                dir.display()
            );
        }
        Ok(())
    }
}

/// A child process with the arguments it was started with and the file its output goes to.
#[derive(Debug)]
struct Process {
    label: String,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self, binary: &Path) -> anyhow::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let stderr = file
            .try_clone()
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let child = Command::new(binary)
            .args(&self.args)
            // Children stop when the devnet process dies, even by SIGKILL (see main.rs).
            .env(crate::EXIT_WITH_PARENT, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.label, binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The exit status if the process was started and has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// An error if the process has exited: its status, last log line and log path.
    fn ensure_running(&mut self, while_doing: &str) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => Err(anyhow!(
                "{} exited ({status}) {while_doing}; last log line: {:?}; log: {}",
                self.label,
                last_line(&self.log),
                self.log.display()
            )),
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, then reap.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = child.kill().await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// The last non-empty line of a log file (for error messages).
fn last_line(path: &Path) -> String {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| {
            String::from_utf8_lossy(&bytes)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().chars().take(300).collect())
        })
        .unwrap_or_default()
}

/// One validator of a devnet.
#[derive(Debug)]
pub struct NodeHandle {
    /// Its dev identity (`alice`, …).
    pub name: String,
    /// Its account on the ledger.
    pub account: AccountId,
    /// Where its HTTP API listens, `127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The file its stdout and stderr go to.
    pub log: PathBuf,
    /// The raw key file sealing its keystore.
    pub key_file: PathBuf,
    process: Process,
}

impl NodeHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.endpoint)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// One ledger process of a devnet: the solo ledger, or a validator's replica.
#[derive(Debug)]
pub struct LedgerHandle {
    /// `ledger` for the solo ledger, else the validator's name.
    pub name: String,
    /// Its public JSON-RPC, `ws://127.0.0.1:PORT`.
    pub rpc_url: String,
    /// The listener for validators' nodes, `ws://127.0.0.1:PORT`.
    pub validator_url: String,
    /// The file its output goes to.
    pub log: PathBuf,
    process: Process,
}

impl LedgerHandle {
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// A running local network; see the module docs.
pub struct Devnet {
    config: DevnetConfig,
    ledgers: Vec<LedgerHandle>,
    nodes: Vec<NodeHandle>,
    client: LedgerClient,
    http: reqwest::Client,
    network_key: Option<VerifyingKey>,
    /// Every port of the devnet, reserved while it runs.
    _ports: Vec<ReservedPort>,
}

impl Devnet {
    /// Starts the ledger and the validators, and jump-starts the network if configured.
    ///
    /// On error every process started so far is killed.
    pub async fn start(config: DevnetConfig) -> anyhow::Result<Self> {
        config.check()?;
        std::fs::create_dir_all(&config.dir)
            .with_context(|| format!("cannot create {}", config.dir.display()))?;
        let (ports, mut reserved) = ports(&config)?;
        let (mut ledgers, validator_ports) = ledger_processes(&config, &ports)?;
        reserved.extend(validator_ports);
        let step = Step::start(match config.ledger {
            LedgerMode::Solo => "starting the ledger".to_owned(),
            LedgerMode::Replicated => format!("starting {} ledger replicas", ledgers.len()),
        });
        for ledger in &mut ledgers {
            ledger.process.spawn(&config.binary)?;
        }
        let client = connect_ledger(&mut ledgers[0]).await?;
        step.finish("ready");

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("cannot build an HTTP client")?;
        let nodes = (0..config.validators)
            .map(|i| {
                let name = validator_name(i);
                let endpoint = format!("127.0.0.1:{}", ports.nodes[i]);
                // A validator reads its own replica.
                let validator_url = ledgers[i.min(ledgers.len() - 1)].validator_url.clone();
                let data_dir = config.dir.join(&name);
                let key_file = config.dir.join(format!("{name}.key"));
                let log = config.dir.join(format!("{name}.log"));
                let mut args: Vec<OsString> = vec![
                    "node".into(),
                    "--data-dir".into(),
                    data_dir.clone().into(),
                    "--ledger".into(),
                    validator_url.clone().into(),
                    "--listen".into(),
                    endpoint.clone().into(),
                    "--key-file".into(),
                    key_file.clone().into(),
                    "--dev".into(),
                    name.clone().into(),
                ];
                if let Some(fixtures) = &config.key_share_fixtures {
                    args.push("--dev-key-shares".into());
                    args.push(fixtures.clone().into());
                }
                args.extend(config.extra_node_args.iter().map(OsString::from));
                NodeHandle {
                    account: dev_keypair(&name).account_id(),
                    process: Process {
                        label: format!("node {name}"),
                        args,
                        log: log.clone(),
                        child: None,
                    },
                    name,
                    endpoint,
                    data_dir,
                    log,
                    key_file,
                }
            })
            .collect();
        // From here on, dropping `devnet` on an error kills what was started.
        let mut devnet = Devnet {
            config,
            ledgers,
            nodes,
            client,
            http,
            network_key: None,
            _ports: reserved,
        };
        devnet.fund_validators().await?;
        devnet.set_parameters().await?;
        let signers = usize::from(devnet.config.signers);
        let validators = devnet.config.validators;
        devnet.launch(0..signers).await?;
        devnet.launch(signers..validators).await?;
        if devnet.config.jump_start {
            devnet.jump_start().await?;
        }
        Ok(devnet)
    }

    /// The ledger's websocket URL, `ws://127.0.0.1:PORT`.
    pub fn ledger_url(&self) -> &str {
        &self.ledgers[0].rpc_url
    }

    /// The ledger processes: the solo ledger, or a replica per validator in validator order.
    pub fn ledgers(&self) -> &[LedgerHandle] {
        &self.ledgers
    }

    /// Kills the ledger process `name` (a validator's replica, or `ledger`) with SIGKILL.
    pub async fn kill_ledger(&mut self, name: &str) -> anyhow::Result<()> {
        self.ledger_mut(name)?.process.kill().await;
        Ok(())
    }

    /// Starts the ledger process `name` again on its data directory and waits until its RPC
    /// answers.
    pub async fn restart_ledger(&mut self, name: &str) -> anyhow::Result<()> {
        let binary = self.config.binary.clone();
        let ledger = self.ledger_mut(name)?;
        ledger.process.terminate(STOP_GRACE).await;
        ledger.process.spawn(&binary)?;
        connect_ledger(ledger).await.map(drop)
    }

    fn ledger_mut(&mut self, name: &str) -> anyhow::Result<&mut LedgerHandle> {
        self.ledgers
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| anyhow!("no ledger process called {name} in this devnet"))
    }

    /// A client connected to the ledger.
    pub fn client(&self) -> &LedgerClient {
        &self.client
    }

    /// The validators, in start order.
    pub fn nodes(&self) -> &[NodeHandle] {
        &self.nodes
    }

    /// The validator called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeHandle> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The name of the validator with this account.
    pub fn name_of(&self, account: &AccountId) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.account == *account)
            .map(|n| n.name.as_str())
    }

    /// The directory holding everything.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &DevnetConfig {
        &self.config
    }

    /// The network key, once the jump start is done.
    pub fn network_key(&self) -> Option<VerifyingKey> {
        self.network_key
    }

    /// The current signers, as the ledger lists them.
    pub async fn signers(&self) -> anyhow::Result<Vec<AccountId>> {
        Ok(self.client.rpc().signer_set().await?.signers)
    }

    /// The current relayers: validators that are not signers, as the ledger lists them.
    pub async fn relayers(&self) -> anyhow::Result<Vec<AccountId>> {
        Ok(self
            .client
            .relayers()
            .await?
            .into_iter()
            .map(|v| v.account)
            .collect())
    }

    /// Submits `jump_start` (unless it already happened) and waits until every chosen signer
    /// confirmed the network key of every scheme; returns how long the wait took.
    pub async fn jump_start(&mut self) -> anyhow::Result<Duration> {
        let set = self.client.rpc().signer_set().await?;
        if let (JumpStartStatus::Done, Some(key), true) =
            (&set.jump_start, set.network_key, every_scheme_key(&set))
        {
            self.network_key = Some(key);
            return Ok(Duration::ZERO);
        }
        let mut step = Step::start(if self.config.key_share_fixtures.is_some() {
            "jump start: the signers load fixture key shares"
        } else {
            "jump start: the signers run the DKG (production parameters, about a minute)"
        });
        if set.jump_start == JumpStartStatus::Ready {
            self.client
                .submit(&dev_keypair("alice"), Call::JumpStart, true)
                .await
                .context("jump_start was refused")?;
        }
        let chosen = self.client.rpc().signer_set().await?.signers;
        step.note(&format!(
            "signers: {}",
            chosen
                .iter()
                .map(|a| self.name_of(a).map_or_else(|| a.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let deadline = Instant::now() + JUMP_START_TIMEOUT;
        loop {
            let set = self.client.rpc().signer_set().await?;
            match (&set.jump_start, set.network_key) {
                (JumpStartStatus::Done, Some(key)) if every_scheme_key(&set) => {
                    self.network_key = Some(key);
                    return Ok(step.finish(&format!(
                        "network keys {key} (ecdsa-secp256k1), {}",
                        set.scheme_keys
                            .iter()
                            .map(|k| format!("{k} ({})", k.scheme()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                (JumpStartStatus::Done, Some(_)) => {
                    step.update("ecdsa key confirmed; waiting for the ed25519 and bip340 keys");
                }
                (JumpStartStatus::InProgress { confirmations, .. }, _) => {
                    step.update(&format!(
                        "{}/{} signers confirmed",
                        confirmations.len(),
                        set.signers.len()
                    ));
                }
                _ => {}
            }
            for node in &mut self.nodes {
                if set.signers.contains(&node.account) {
                    node.process.ensure_running("during the jump start")?;
                }
            }
            for ledger in &mut self.ledgers {
                ledger.process.ensure_running("during the jump start")?;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|n| set.signers.contains(&n.account))
                    .map(|n| n.log.display().to_string())
                    .collect();
                bail!(
                    "the jump start did not finish within {} minutes; see the signers' logs: {}",
                    JUMP_START_TIMEOUT.as_secs() / 60,
                    logs.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Kills the validator `name` with SIGKILL (no clean shutdown).
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        self.node_mut(name)?.process.kill().await;
        Ok(())
    }

    /// Starts the validator `name` again with the same arguments (stopping it first if it still
    /// runs) and waits until it answers `/healthz`.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let binary = self.config.binary.clone();
        let http = self.http.clone();
        let node = self.node_mut(name)?;
        node.process.terminate(STOP_GRACE).await;
        node.process.spawn(&binary)?;
        wait_healthy(&http, node).await
    }

    /// Replaces the extra arguments every `sigil node` gets (see
    /// [`DevnetConfig::extra_node_args`]) and restarts each validator with them, one after
    /// another, waiting for each to answer `/healthz`. Data directories, and so key shares, stay.
    pub async fn restart_all_with(&mut self, extra_node_args: Vec<String>) -> anyhow::Result<()> {
        let old = self.config.extra_node_args.len();
        for node in &mut self.nodes {
            let keep = node.process.args.len() - old;
            node.process.args.truncate(keep);
            node.process
                .args
                .extend(extra_node_args.iter().map(OsString::from));
        }
        self.config.extra_node_args = extra_node_args;
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        for name in names {
            self.restart(&name).await?;
        }
        Ok(())
    }

    /// Stops every validator, then the ledger: SIGTERM, then SIGKILL after a few seconds.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        futures::future::join_all(
            self.nodes
                .iter_mut()
                .map(|n| n.process.terminate(STOP_GRACE)),
        )
        .await;
        futures::future::join_all(
            self.ledgers
                .iter_mut()
                .map(|l| l.process.terminate(STOP_GRACE)),
        )
        .await;
        Ok(())
    }

    /// The processes that do not run (exited, killed or not started): `ledger`, `ledger NAME`
    /// for a replica, or node names.
    pub fn exited(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        for ledger in &mut self.ledgers {
            if !ledger.process.is_running() {
                gone.push(ledger.process.label.clone());
            }
        }
        for node in &mut self.nodes {
            if !node.process.is_running() {
                gone.push(node.name.clone());
            }
        }
        gone
    }

    fn node_mut(&mut self, name: &str) -> anyhow::Result<&mut NodeHandle> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("no validator called {name} in this devnet"))
    }

    /// Transfers `amount` from the dev faucet to `to` and waits until a block holds it: how a
    /// new account gets what its fees and deposits cost.
    pub async fn fund(&self, to: AccountId, amount: u64) -> anyhow::Result<()> {
        fund(&self.client, &[to], amount).await
    }

    /// Funds, from the faucet, validators the dev genesis does not fund.
    async fn fund_validators(&self) -> anyhow::Result<()> {
        let unfunded: Vec<&NodeHandle> = self.nodes.iter().skip(GENESIS_FUNDED).collect();
        if unfunded.is_empty() {
            return Ok(());
        }
        let step = Step::start(format!("funding {} validators", unfunded.len()));
        let faucet = dev_keypair(sigil_ledger::node::DEV_FAUCET);
        for (i, node) in unfunded.iter().enumerate() {
            if self.client.rpc().account(node.account).await?.balance >= VALIDATOR_FUNDING {
                continue;
            }
            let last = i + 1 == unfunded.len();
            self.client
                .submit(
                    &faucet,
                    Call::Transfer {
                        to: node.account,
                        amount: VALIDATOR_FUNDING,
                    },
                    last,
                )
                .await
                .with_context(|| format!("cannot fund {}", node.name))?;
        }
        step.finish("");
        Ok(())
    }

    /// Makes the ledger's signer count and threshold those of the configuration.
    async fn set_parameters(&self) -> anyhow::Result<()> {
        let current: Parameters = self.client.rpc().parameters().await?;
        if current.signer_count == self.config.signers && current.threshold == self.config.threshold
        {
            return Ok(());
        }
        let step = Step::start(format!(
            "setting {} signers, threshold {}",
            self.config.signers, self.config.threshold
        ));
        let parameters = Parameters {
            signer_count: self.config.signers,
            threshold: self.config.threshold,
            ..current
        };
        self.client
            .submit(
                &dev_keypair("alice"),
                Call::SetParameters { parameters },
                true,
            )
            .await
            .context("set_parameters was refused")?;
        step.finish("");
        Ok(())
    }

    /// Starts the validators in `range`, waits for their `/healthz` and for the ledger to list
    /// them.
    async fn launch(&mut self, range: std::ops::Range<usize>) -> anyhow::Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self.nodes[range.clone()]
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let mut step = Step::start(format!("starting validators {}", names.join(", ")));
        for node in &mut self.nodes[range.clone()] {
            std::fs::create_dir_all(&node.data_dir)
                .with_context(|| format!("cannot create {}", node.data_dir.display()))?;
            if !node.key_file.exists() {
                sigil_keystore::generate_key_file(&node.key_file).with_context(|| {
                    format!("cannot create the key file {}", node.key_file.display())
                })?;
            }
            node.process.spawn(&self.config.binary)?;
        }
        for node in &mut self.nodes[range.clone()] {
            step.update(&format!("waiting for {} to answer /healthz", node.name));
            wait_healthy(&self.http, node).await?;
        }
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let joined: Vec<AccountId> = self
                .client
                .rpc()
                .validators()
                .await?
                .into_iter()
                .map(|v| v.account)
                .collect();
            let missing: Vec<String> = self.nodes[range.clone()]
                .iter()
                .filter(|n| !joined.contains(&n.account))
                .map(|n| n.name.clone())
                .collect();
            if missing.is_empty() {
                break;
            }
            step.update(&format!("waiting for {} to join", missing.join(", ")));
            for node in &mut self.nodes[range.clone()] {
                node.process.ensure_running("before joining the ledger")?;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become validators within {}s; see their logs in {}",
                    missing.join(", "),
                    JOIN_TIMEOUT.as_secs(),
                    self.config.dir.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        step.finish("validating");
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // Nodes first, then the ledger; `Process::drop` sends SIGKILL.
        self.nodes.clear();
    }
}

/// Waits until the node answers `GET /healthz` with 200, or fails if it exits or times out.
async fn wait_healthy(http: &reqwest::Client, node: &mut NodeHandle) -> anyhow::Result<()> {
    let url = format!("{}/healthz", node.http_url());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match http.get(&url).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(()),
            _ => {}
        }
        node.process.ensure_running("before answering /healthz")?;
        if Instant::now() > deadline {
            bail!(
                "node {} did not answer {url} within {}s; log: {}",
                node.name,
                START_TIMEOUT.as_secs(),
                node.log.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `ledger`'s public RPC answers, or fails if it exits or times out.
async fn connect_ledger(ledger: &mut LedgerHandle) -> anyhow::Result<LedgerClient> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match LedgerClient::connect(&ledger.rpc_url).await {
            Ok(client) => return Ok(client),
            Err(e) => {
                ledger.process.ensure_running("before its RPC answered")?;
                if Instant::now() > deadline {
                    bail!(
                        "{} did not answer at {} within {}s ({e}); log: {}",
                        ledger.process.label,
                        ledger.rpc_url,
                        START_TIMEOUT.as_secs(),
                        ledger.log.display()
                    );
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The devnet's ledger processes, `sigil ledger --dev`: one solo, or a replica per validator
/// with the dev genesis naming them all. Nodes read on a listener of their own (a fresh port at
/// each start, returned reserved), which clients cannot fill.
fn ledger_processes(
    config: &DevnetConfig,
    ports: &Ports,
) -> anyhow::Result<(Vec<LedgerHandle>, Vec<ReservedPort>)> {
    let recorded: Vec<u16> = [&ports.ledgers, &ports.p2p, &ports.nodes]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let validator_ports = crate::ports::reserve(ports.ledgers.len(), &recorded)?;
    let names: Vec<String> = match config.ledger {
        LedgerMode::Solo => vec!["ledger".to_owned()],
        LedgerMode::Replicated => (0..config.validators).map(validator_name).collect(),
    };
    let replicas: Vec<String> = names
        .iter()
        .zip(&ports.p2p)
        .map(|(name, port)| format!("{name}=127.0.0.1:{port}"))
        .collect();
    let block_time = humantime::format_duration(config.block_time).to_string();
    let handles = names.into_iter().enumerate().map(|(i, name)| {
        let (dir, log, label) = match config.ledger {
            LedgerMode::Solo => (
                "ledger".to_owned(),
                "ledger.log".to_owned(),
                "the ledger".to_owned(),
            ),
            LedgerMode::Replicated => (
                format!("ledger-{name}"),
                format!("ledger-{name}.log"),
                format!("ledger {name}"),
            ),
        };
        let rpc = format!("127.0.0.1:{}", ports.ledgers[i]);
        let validator_rpc = format!("127.0.0.1:{}", validator_ports[i].port());
        let mut args: Vec<OsString> = vec![
            "ledger".into(),
            "--dev".into(),
            "--data-dir".into(),
            config.dir.join(dir).into(),
            "--rpc".into(),
            rpc.clone().into(),
            "--validator-rpc".into(),
            validator_rpc.clone().into(),
            "--block-time".into(),
            block_time.clone().into(),
        ];
        if config.ledger == LedgerMode::Replicated {
            args.extend(["--dev-replica".into(), name.clone().into()]);
            args.extend(["--dev-replicas".into(), replicas.join(",").into()]);
        }
        let log = config.dir.join(log);
        LedgerHandle {
            rpc_url: format!("ws://{rpc}"),
            validator_url: format!("ws://{validator_rpc}"),
            log: log.clone(),
            process: Process {
                label,
                args,
                log,
                child: None,
            },
            name,
        }
    });
    Ok((handles.collect(), validator_ports))
}

/// The ports a devnet keeps across restarts (validators' endpoints are on its ledger, and the
/// replicas' p2p addresses in its genesis).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Ports {
    /// How the ledger runs.
    mode: LedgerMode,
    /// Each ledger process's public RPC.
    ledgers: Vec<u16>,
    /// Each replica's consensus p2p (none when solo).
    p2p: Vec<u16>,
    /// Each validator's HTTP API.
    nodes: Vec<u16>,
}

/// The ports recorded in `DIR/ports.json` when resuming a devnet, else fresh ones, then
/// recorded; reserved either way.
fn ports(config: &DevnetConfig) -> anyhow::Result<(Ports, Vec<ReservedPort>)> {
    let path = config.dir.join("ports.json");
    let ledgers = match config.ledger {
        LedgerMode::Solo => 1,
        LedgerMode::Replicated => config.validators,
    };
    if let Ok(text) = std::fs::read(&path) {
        let ports: Ports = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a devnet's ports", path.display()))?;
        if ports.nodes.len() != config.validators || ports.mode != config.ledger {
            bail!(
                "{} was started with {} validators and a {:?} ledger, not {} and {:?}; use \
                 another directory",
                config.dir.display(),
                ports.nodes.len(),
                ports.mode,
                config.validators,
                config.ledger
            );
        }
        let reserved = [&ports.ledgers, &ports.p2p, &ports.nodes]
            .into_iter()
            .flatten()
            .map(|&port| crate::ports::reserve_recorded(port))
            .collect::<anyhow::Result<_>>()?;
        return Ok((ports, reserved));
    }
    let replicas = if config.ledger == LedgerMode::Replicated {
        ledgers
    } else {
        0
    };
    let reserved = crate::ports::reserve(ledgers + replicas + config.validators, &[])?;
    let mut fresh = reserved.iter().map(ReservedPort::port);
    let ports = Ports {
        mode: config.ledger,
        ledgers: fresh.by_ref().take(ledgers).collect(),
        p2p: fresh.by_ref().take(replicas).collect(),
        nodes: fresh.collect(),
    };
    std::fs::write(&path, serde_json::to_vec(&ports)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((ports, reserved))
}

/// Whether the ledger holds the network key of every scheme.
fn every_scheme_key(set: &sigil_client::types::SignerSet) -> bool {
    sigil_primitives::KeyScheme::ALL
        .iter()
        .all(|scheme| set.network_key_of(*scheme).is_some())
}
