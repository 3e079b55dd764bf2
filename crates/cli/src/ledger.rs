//! `sigil ledger`: run a ledger node, solo or as a replica of a replicated ledger.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use sigil_ledger::node::{LedgerConfig, start};
use sigil_ledger::replica::network::ReplicaConfig;
use sigil_ledger::state::ReportedSession;
use sigil_ledger::types::{FaultKind, Genesis};
use sigil_primitives::AccountId;
use sigil_programs::{HostConfig, ProgramHost};
use zeroize::Zeroizing;

/// Options of `sigil ledger`.
#[derive(Args)]
pub struct LedgerArgs {
    /// Where the chain is stored (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// JSON-RPC address (HTTP and websocket).
    #[arg(long, default_value = "127.0.0.1:9944")]
    rpc: SocketAddr,
    /// A second JSON-RPC address for validators' nodes, with caps of its own, so that clients
    /// holding the public one's connections cannot crowd nodes out. Bind it where only
    /// validators reach it, and point their `sigil node --ledger` at it.
    #[arg(long, value_name = "ADDR")]
    validator_rpc: Option<SocketAddr>,
    /// Time between blocks, e.g. `1s` or `500ms`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    block_time: Duration,
    /// Genesis JSON for a new chain.
    #[arg(long, conflicts_with = "dev")]
    genesis: Option<PathBuf>,
    /// Use the development genesis (alice…eve and the faucet funded, alice governs).
    #[arg(long)]
    dev: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Run as a replica of the genesis's consensus set, signing votes with the consensus key
    /// whose seed (64 hex digits) is in FILE. With `--print-consensus-key`, FILE is created
    /// if missing.
    #[arg(long, value_name = "FILE", conflicts_with = "dev_replica")]
    replica_key_file: Option<PathBuf>,
    /// Run as the development replica NAME (alice, bob…): its consensus key is derived from
    /// the dev identity, which everyone knows. For local networks only.
    #[arg(long, value_name = "NAME")]
    dev_replica: Option<String>,
    /// With `--dev`: the replicas of the dev genesis, as NAME=HOST:PORT,… (dev identities and
    /// their p2p addresses). Every replica must be given the same list.
    #[arg(long, value_name = "LIST", requires = "dev", value_delimiter = ',')]
    dev_replicas: Vec<String>,
    /// Where consensus p2p listens, and the address other replicas dial (default: this
    /// replica's address in the genesis; required for a replica the genesis does not name).
    #[arg(long, value_name = "ADDR")]
    p2p: Option<SocketAddr>,
    /// Consensus p2p for a public network: peers on private or loopback addresses are refused,
    /// and handshakes are rate-limited per address (Commonware's recommended settings; the
    /// default allows the local addresses a single machine or a LAN uses).
    #[arg(long)]
    p2p_public: bool,
    /// With `--dev`: blocks per consensus epoch of the dev genesis (default 600; the
    /// consensus set changes only between epochs). Every replica must be given the same.
    #[arg(long, value_name = "BLOCKS", requires = "dev")]
    epoch_length: Option<u64>,
    /// How long a consensus leader gets to propose before the replicas vote to skip it.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    leader_timeout: Duration,
    /// Print the public consensus key of `--replica-key-file` (creating the file with a new
    /// key if it does not exist) or `--dev-replica`, and exit: what a genesis names.
    #[arg(long)]
    print_consensus_key: bool,
}

impl LedgerArgs {
    /// The genesis for a new chain, from `--genesis` or `--dev` (with `--dev-replicas`).
    fn genesis(&self) -> anyhow::Result<Option<Genesis>> {
        if let Some(path) = &self.genesis {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read genesis {}", path.display()))?;
            let genesis = serde_json::from_slice(&text)
                .with_context(|| format!("invalid genesis {}", path.display()))?;
            return Ok(Some(genesis));
        }
        if !self.dev {
            return Ok(None);
        }
        let mut replicas = Vec::with_capacity(self.dev_replicas.len());
        for entry in &self.dev_replicas {
            let replica = entry
                .split_once('=')
                .with_context(|| format!("--dev-replicas: {entry:?} is not NAME=HOST:PORT"))?;
            replicas.push(replica);
        }
        let mut genesis = sigil_ledger::node::dev_genesis_with_replicas(replicas);
        if let Some(length) = self.epoch_length {
            genesis.epoch_length = length;
        }
        Ok(Some(genesis))
    }

    /// The seed of this replica's consensus key, if it runs as one.
    fn consensus_seed(&self) -> anyhow::Result<Option<Zeroizing<[u8; 32]>>> {
        if let Some(name) = &self.dev_replica {
            return Ok(Some(sigil_crypto::NodeSeed::dev(name).consensus_seed()));
        }
        let Some(path) = &self.replica_key_file else {
            return Ok(None);
        };
        if !path.exists() && self.print_consensus_key {
            let seed = sigil_crypto::NodeSeed::generate();
            let hex = Zeroizing::new(hex::encode(seed.expose()));
            sigil_keystore::write_secret_file(path, hex.as_bytes())?;
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .with_context(|| format!("{} does not hold 64 hex digits", path.display()))?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes);
        Ok(Some(seed))
    }
}

/// Runs the ledger until Ctrl-C or a fatal error.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    if args.block_time < Duration::from_millis(10) {
        bail!("--block-time must be at least 10ms");
    }
    let genesis = args.genesis()?;
    let consensus_seed = args.consensus_seed()?;
    if args.print_consensus_key {
        let seed = consensus_seed
            .context("--print-consensus-key needs --replica-key-file or --dev-replica")?;
        let key = sigil_ledger::replica::network::consensus_public_key(&seed);
        println!("{}", hex::encode(key));
        return Ok(());
    }
    let replica = consensus_seed.map(|consensus_seed| ReplicaConfig {
        consensus_seed,
        listen: args.p2p,
        storage_dir: args.data_dir.join("consensus"),
        block_time: args.block_time,
        leader_timeout: args.leader_timeout,
        public_network: args.p2p_public,
    });
    // Programs are validated with the same WebAssembly host the nodes evaluate them with.
    let host = ProgramHost::new(HostConfig::default())
        .map_err(|e| anyhow::anyhow!("cannot start the program host: {e}"))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        if let Some(addr) = args.metrics {
            crate::serve_metrics(addr)?;
        }
        let running = start(LedgerConfig {
            data_dir: args.data_dir.clone(),
            rpc: args.rpc,
            block_time: args.block_time,
            genesis,
            validate_program: Arc::new(move |b: &[u8]| host.validate(b).map(|_| ()).map_err(|e| e.to_string())),
            verify_evidence: Some(Arc::new(verify_evidence)),
            rpc_limits: sigil_ledger::rpc::RpcLimits::default(),
            validator_rpc: args.validator_rpc,
            replica,
        })
        .await
        .map_err(anyhow::Error::msg)?;
        let head = running.ledger.read().head().height.0;
        tracing::info!(rpc = %running.rpc_addr, head, data_dir = %args.data_dir.display(), "ledger ready");
        let validators = running
            .validator_rpc
            .as_ref()
            .map(|(addr, _)| format!(" validator_rpc={addr}"))
            .unwrap_or_default();
        println!("ledger ready: rpc={} ws=ws://{} head={head}{validators}", running.rpc_addr, running.rpc_addr);
        let mut producer = running.producer;
        tokio::select! {
            result = &mut producer => {
                match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::Error::new(e).context("block production stopped")),
                    Err(e) => Err(anyhow::anyhow!("block production panicked: {e}")),
                }
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("shutting down");
                let _ = running.server.stop();
                Ok(())
            }
        }
    })
}

/// Checks offence evidence by the threshold engine's own rules, for the ledger.
fn verify_evidence(
    of: ReportedSession,
    session: &[u8; 32],
    offender: &AccountId,
    kind: FaultKind,
    evidence: &[u8],
) -> Result<(), String> {
    match of {
        ReportedSession::Signing => sigil_mpc::verify_evidence(session, offender, kind, evidence),
        ReportedSession::KeyGeneration if kind == FaultKind::FailedProof => {
            sigil_mpc::verify_keygen_evidence(session, offender, evidence)
        }
        ReportedSession::KeyGeneration => Err(sigil_mpc::MpcError::InvalidEvidence(format!(
            "a key generation fault is proven as failed_proof, not {kind}"
        ))),
    }
    .map_err(|e| e.to_string())
}
