//! A replica on a real network: Commonware's tokio runtime on threads of its own, with
//! authenticated, encrypted p2p between the genesis replicas.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use commonware_codec::ReadExt as _;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::authenticated::lookup;
use commonware_runtime::{Quota, Runner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{NZU32, NZUsize};

use super::block::{ConsensusBlock, MAX_TRANSACTIONS_WIRE};
use super::engine::{CHANNELS, Channels, EngineConfig};
use super::source::ReplicaSource;
use crate::producer::Ledger;

/// Most peers a replica tracks in one set (an epoch's set with the replicas named for the
/// next). Each channel's inbound queue is allocated for a burst from every one of them.
pub const MAX_REPLICAS: usize = 32;

/// How to run a replica on the network.
pub struct ReplicaConfig {
    /// The 32-byte seed of the replica's ed25519 consensus key.
    pub consensus_seed: zeroize::Zeroizing<[u8; 32]>,
    /// Where its p2p listens; by default its address in the genesis.
    pub listen: Option<SocketAddr>,
    /// Where Commonware keeps consensus data (votes, finalized blocks and certificates).
    pub storage_dir: PathBuf,
    /// The least time between blocks.
    pub block_time: Duration,
    /// How long a leader gets before replicas vote to skip it.
    pub leader_timeout: Duration,
    /// Use Commonware's p2p settings for public networks (peers on private addresses refused,
    /// slower redials and handshakes rate-limited per address) instead of the local ones.
    pub public_network: bool,
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The genesis names no replicas, or not this one.
    #[error("{0}")]
    NotInGenesis(String),
    /// A replica's address or key in the genesis is unusable.
    #[error("invalid genesis replica: {0}")]
    BadReplica(String),
    /// Reading the chain failed.
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// The consensus runtime stopped before the replica started.
    #[error("the consensus runtime stopped while starting")]
    Stopped,
}

/// The ed25519 consensus key of a seed.
pub fn consensus_key(seed: &[u8; 32]) -> ed25519::PrivateKey {
    ed25519::PrivateKey::read(&mut commonware_codec::Copying(seed.as_slice()))
        .unwrap_or_else(|_| unreachable!("any 32 bytes are an ed25519 seed"))
}

/// The public consensus key of a seed, as a genesis names it.
pub fn consensus_public_key(seed: &[u8; 32]) -> [u8; 32] {
    use commonware_codec::Encode as _;
    let encoded = consensus_key(seed).public_key().encode();
    encoded
        .as_ref()
        .try_into()
        .unwrap_or_else(|_| unreachable!("ed25519 public keys are 32 bytes"))
}

/// The `change_replica` call that names the replica of `seed` at `address` as `account`'s,
/// with the proof that the account holds the key.
pub fn change_replica_call(
    seed: &[u8; 32],
    chain_id: &str,
    account: &sigil_primitives::AccountId,
    address: &str,
) -> crate::types::Call {
    let signer = sigil_crypto::AccountKeypair::from_secret(*seed);
    crate::types::Call::ChangeReplica {
        consensus_key: consensus_public_key(seed),
        address: address.to_owned(),
        proof: signer.sign(&crate::types::replica_proof_message(chain_id, account)),
    }
}

/// A consensus public key from its 32 bytes.
pub fn public_key(bytes: &[u8; 32]) -> Result<ed25519::PublicKey, String> {
    ed25519::PublicKey::read(&mut commonware_codec::Copying(bytes.as_slice()))
        .map_err(|e| format!("consensus key: {e}"))
}

/// The chain's consensus genesis block.
fn genesis_block(ledger: &Ledger) -> Result<ConsensusBlock, ReplicaError> {
    let chain = ledger.read();
    let genesis = chain.genesis()?;
    if genesis.replicas.is_empty() {
        return Err(ReplicaError::NotInGenesis(
            "the genesis names no replicas: run this ledger solo, or start from a genesis with replicas".into(),
        ));
    }
    // Stored at genesis, so this is the genesis state digest on a reopened chain too.
    let digest = chain
        .header(0)?
        .map(|h| h.state_digest)
        .unwrap_or_default()
        .try_into()
        .map_err(|_| ReplicaError::BadReplica("genesis has no state digest".into()))?;
    Ok(ConsensusBlock::genesis(&genesis, digest))
}

/// Where this replica's p2p listens: `listen`, else its address in the genesis; with the
/// address others dial.
fn listen_address(
    ledger: &Ledger,
    key: &[u8; 32],
    listen: Option<SocketAddr>,
) -> Result<(SocketAddr, String), ReplicaError> {
    if let Some(listen) = listen {
        return Ok((listen, listen.to_string()));
    }
    let genesis = ledger.read().genesis()?;
    let replica = genesis
        .replicas
        .iter()
        .find(|r| r.consensus_key == *key)
        .ok_or_else(|| {
            ReplicaError::NotInGenesis(
                "this replica's consensus key is not in the genesis: give the address its p2p \
                 listens on (--p2p)"
                    .into(),
            )
        })?;
    let socket = replica
        .address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ReplicaError::BadReplica(format!("address {:?}", replica.address)))?;
    Ok((socket, replica.address.clone()))
}

/// Starts the replica's consensus on a runtime of its own (its threads outlive the call) and
/// returns the source of finalized blocks, for [`Ledger::run`].
pub fn spawn(ledger: Ledger, config: ReplicaConfig) -> Result<ReplicaSource, ReplicaError> {
    let genesis = genesis_block(&ledger)?;
    let key = consensus_key(&config.consensus_seed);
    let public = consensus_public_key(&config.consensus_seed);
    let (listen, address) = listen_address(&ledger, &public, config.listen)?;
    let _ = ledger
        .local_replica
        .set(sigil_ledger_api::rpc::LocalReplica {
            consensus_key: public,
            address,
        });
    let chain_id = ledger.read().chain_id().to_owned();
    let engine = EngineConfig {
        key,
        namespace: EngineConfig::namespace_for(&chain_id),
        genesis,
        block_time: config.block_time,
        leader_timeout: config.leader_timeout,
        partition: "sigil".into(),
        reporter: sigil_crypto::AccountKeypair::consensus_reporter(&config.consensus_seed),
    };
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    let runtime = cw_tokio::Config::new()
        .with_storage_directory(config.storage_dir)
        .with_worker_threads(2);
    std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            cw_tokio::Runner::new(runtime).start(|context| async move {
                let source = run(context, ledger, engine, listen, config.public_network).await;
                let _ = started_tx.send(source);
                futures::future::pending::<()>().await;
            });
        })
        .map_err(|_| ReplicaError::Stopped)?;
    started_rx.recv().map_err(|_| ReplicaError::Stopped)
}

async fn run(
    context: cw_tokio::Context,
    ledger: Ledger,
    engine: EngineConfig,
    listen: SocketAddr,
    public_network: bool,
) -> ReplicaSource {
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: engine.key.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let settings = if public_network {
        lookup::Config::recommended
    } else {
        lookup::Config::local
    };
    let mut p2p = settings(
        handshake,
        &engine.namespace,
        listen,
        NZUsize!(MAX_REPLICAS),
        (MAX_TRANSACTIONS_WIRE + (1 << 20)) as u32,
        NZUsize!(1024),
    );
    // The epoch's set and the one before it: enough to finish the epoch being left.
    p2p.tracked_peer_sets = NZUsize!(2);
    let (mut network, oracle) = lookup::Network::new(context.child("network"), p2p);
    // Bursts bound the inbound queues, which are allocated up front for MAX_REPLICAS peers.
    let consensus = Quota::per_second(NZU32!(1_000)).allow_burst(NZU32!(128));
    let gossip = Quota::per_second(NZU32!(20_000)).allow_burst(NZU32!(2_048));
    let channels = Channels::from_ordered(
        CHANNELS.map(|c| network.register(c, if c == CHANNELS[5] { gossip } else { consensus })),
    );
    network.start();
    super::engine::start(
        context.child("replica"),
        ledger,
        engine,
        channels,
        oracle.clone(),
        oracle,
    )
    .await
}
