//! `sigil ledger`: run a solo ledger node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use sigil_ledger::node::{LedgerConfig, dev_genesis, start};
use sigil_ledger::types::{FaultKind, Genesis};
use sigil_primitives::AccountId;
use sigil_programs::{HostConfig, ProgramHost};

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
}

/// Runs the ledger until Ctrl-C or a fatal error.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    if args.block_time < Duration::from_millis(10) {
        bail!("--block-time must be at least 10ms");
    }
    let genesis: Option<Genesis> = match (&args.genesis, args.dev) {
        (Some(path), _) => {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read genesis {}", path.display()))?;
            Some(
                serde_json::from_slice(&text)
                    .with_context(|| format!("invalid genesis {}", path.display()))?,
            )
        }
        (None, true) => Some(dev_genesis()),
        (None, false) => None,
    };
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
    session: &[u8; 32],
    offender: &AccountId,
    kind: FaultKind,
    evidence: &[u8],
) -> Result<(), String> {
    sigil_mpc::verify_evidence(session, offender, kind, evidence)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
