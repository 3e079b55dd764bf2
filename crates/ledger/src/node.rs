//! Running a solo ledger node: open the chain, produce blocks, serve the RPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sigil_crypto::NodeSeed;
use sigil_primitives::AccountId;

use crate::chain::{Chain, ChainError};
use crate::producer::{Ledger, SoloProducer};
use crate::state::{EvidenceVerifier, ProgramValidator};
use crate::types::{Balance, Genesis, Parameters};

/// Names of the development accounts, funded in the dev genesis; the first is governance.
pub const DEV_ACCOUNTS: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];
/// Balance of each development account.
pub const DEV_BALANCE: Balance = 1_000_000_000_000;
/// Chain id of the dev genesis.
pub const DEV_CHAIN_ID: &str = "sigil-dev";
/// The development account that funds new accounts (users, extra validators) on a dev ledger;
/// no validator uses it, so its transactions never race a node's.
pub const DEV_FAUCET: &str = "faucet";
/// Balance of the faucet in the dev genesis.
pub const DEV_FAUCET_BALANCE: Balance = 1_000_000_000_000_000;

/// The account id of a development account (`alice`…`eve`, or any name).
pub fn dev_account(name: &str) -> AccountId {
    NodeSeed::dev(name).account_keypair().account_id()
}

/// A genesis for local development: alice…eve and the faucet funded, alice governs.
pub fn dev_genesis() -> Genesis {
    Genesis {
        chain_id: DEV_CHAIN_ID.into(),
        balances: DEV_ACCOUNTS
            .iter()
            .map(|n| (dev_account(n), DEV_BALANCE))
            .chain([(dev_account(DEV_FAUCET), DEV_FAUCET_BALANCE)])
            .collect(),
        governance: dev_account(DEV_ACCOUNTS[0]),
        parameters: Parameters::default(),
        timestamp_ms: 0,
        replicas: Vec::new(),
        epoch_length: crate::types::DEFAULT_EPOCH_LENGTH,
    }
}

/// The dev genesis with the development replicas `(name, address)`: a replicated dev chain.
pub fn dev_genesis_with_replicas<'a>(
    replicas: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Genesis {
    let mut genesis = dev_genesis();
    genesis.replicas = replicas
        .into_iter()
        .map(|(name, address)| dev_replica(name, address))
        .collect();
    genesis
}

/// A development replica: the dev identity `name`'s account and consensus key, at `address`.
pub fn dev_replica(name: &str, address: &str) -> crate::types::Replica {
    let seed = NodeSeed::dev(name);
    crate::types::Replica {
        account: seed.account_keypair().account_id(),
        consensus_key: crate::replica::network::consensus_public_key(&seed.consensus_seed()),
        address: address.to_owned(),
    }
}

/// Structural check used when no WebAssembly host is plugged in: a component binary header.
pub fn component_header_check(bytecode: &[u8]) -> Result<(), String> {
    // Components start with the wasm magic, then version 0x0d and layer 1.
    if bytecode.len() < 8 || &bytecode[..4] != b"\0asm" {
        return Err("not WebAssembly (missing \\0asm magic)".into());
    }
    if bytecode[4..8] != [0x0d, 0x00, 0x01, 0x00] {
        return Err("a core module, not a component".into());
    }
    Ok(())
}

/// How to run a ledger node.
pub struct LedgerConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// RPC listen address.
    pub rpc: SocketAddr,
    /// Time between blocks.
    pub block_time: Duration,
    /// Genesis for a new data directory.
    pub genesis: Option<Genesis>,
    /// Program check at store time.
    pub validate_program: Arc<ProgramValidator>,
    /// Offence evidence check; without one no evidence holds.
    pub verify_evidence: Option<Arc<EvidenceVerifier>>,
    /// Limits of the RPC server.
    pub rpc_limits: crate::rpc::RpcLimits,
    /// A second RPC listener for validators' nodes, with its own caps
    /// ([`crate::rpc::RpcLimits::validators`]), so clients filling the public one cannot
    /// crowd nodes out. Bind it where only validators reach it.
    pub validator_rpc: Option<SocketAddr>,
    /// Run as a replica of the genesis's consensus set instead of producing blocks alone.
    pub replica: Option<crate::replica::network::ReplicaConfig>,
}

/// A started ledger: its RPC address, and a task that ends when block production stops.
pub struct RunningLedger {
    /// Where the RPC listens.
    pub rpc_addr: SocketAddr,
    /// The ledger.
    pub ledger: Ledger,
    /// Block production.
    pub producer: tokio::task::JoinHandle<Result<(), ChainError>>,
    /// The RPC server.
    pub server: jsonrpsee::server::ServerHandle,
    /// Where the validators' RPC listens, and its server.
    pub validator_rpc: Option<(SocketAddr, jsonrpsee::server::ServerHandle)>,
}

/// Opens the chain and starts producing blocks and serving the RPC.
pub async fn start(config: LedgerConfig) -> Result<RunningLedger, String> {
    let LedgerConfig {
        data_dir,
        rpc,
        block_time,
        genesis,
        validate_program,
        verify_evidence,
        rpc_limits,
        validator_rpc,
        replica,
    } = config;
    let chain = tokio::task::spawn_blocking(move || {
        Chain::open(
            &data_dir,
            genesis.as_ref(),
            validate_program,
            verify_evidence,
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let replicated = !chain
        .genesis()
        .map_err(|e| e.to_string())?
        .replicas
        .is_empty();
    if replicated && replica.is_none() {
        return Err(
            "this chain's genesis names replicas, so it runs only as one of them: give \
                    --replica-key-file (or --dev-replica for a dev chain)"
                .into(),
        );
    }
    let ledger = Ledger::new(chain);
    let (rpc_addr, server) = crate::rpc::serve(ledger.clone(), rpc, rpc_limits)
        .await
        .map_err(|e| format!("cannot listen on {rpc}: {e}"))?;
    let validator_rpc = match validator_rpc {
        Some(addr) => Some(
            crate::rpc::serve(ledger.clone(), addr, crate::rpc::RpcLimits::validators())
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let producer = match replica {
        Some(replica) => {
            let source = crate::replica::network::spawn(ledger.clone(), replica)
                .map_err(|e| e.to_string())?;
            tokio::spawn(ledger.clone().run(source))
        }
        None => tokio::spawn(
            ledger
                .clone()
                .run(SoloProducer::new(ledger.pool.clone(), block_time)),
        ),
    };
    Ok(RunningLedger {
        rpc_addr,
        ledger,
        producer,
        server,
        validator_rpc,
    })
}
