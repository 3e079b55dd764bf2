//! Wiring one replica: Simplex orders blocks, marshal makes them final and delivers them in
//! order, a buffered broadcast spreads them, a resolver backfills missing ones, and gossip
//! spreads transactions. Generic over the runtime and the network, so the same wiring runs on
//! tokio with authenticated TCP and in the deterministic runtime with a simulated network.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use commonware_broadcast::buffered;
use commonware_consensus::marshal;
use commonware_consensus::marshal::core::{Actor as MarshalActor, Mailbox as MarshalMailbox};
use commonware_consensus::marshal::standard::{Inline, Standard};
use commonware_consensus::simplex::types::Activity;
use commonware_consensus::types::{FixedEpocher, ViewDelta};
use commonware_consensus::{Reporter, Reporters};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible as _, Signer as _, ed25519};
use commonware_p2p::{AddressableManager, Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize};
use tokio::sync::{mpsc, watch};

use super::Scheme;
use super::app::{FinalizedReporter, LedgerApp};
use super::block::ConsensusBlock;
use super::epochs::{ConsensusChannels, Epochs, Schemes};
use super::source::ReplicaSource;
use crate::producer::Ledger;

/// What a replica needs of its runtime: Commonware's tokio runtime in production, the
/// deterministic one in tests.
pub trait Runtime:
    Spawner + Clock + Metrics + Storage + rand_core_10::CryptoRng + commonware_runtime::Supervisor
{
}

impl<T> Runtime for T where
    T: Spawner
        + Clock
        + Metrics
        + Storage
        + rand_core_10::CryptoRng
        + commonware_runtime::Supervisor
{
}

/// A channel pair of the network, as the p2p layer registers them.
pub type Channel<S, R> = (S, R);

/// The p2p channels a replica uses, one per purpose.
pub struct Channels<S, R> {
    /// Consensus votes.
    pub votes: Channel<S, R>,
    /// Consensus certificates.
    pub certificates: Channel<S, R>,
    /// Consensus's own fetches of missing certificates.
    pub resolver: Channel<S, R>,
    /// Block broadcast.
    pub blocks: Channel<S, R>,
    /// Marshal's backfill of finalized blocks and certificates.
    pub backfill: Channel<S, R>,
    /// Mempool gossip.
    pub mempool: Channel<S, R>,
}

/// Channel numbers on the wire, in [`Channels`] order.
pub const CHANNELS: [u64; 6] = [0, 1, 2, 3, 4, 5];

impl<S, R> Channels<S, R> {
    /// The channels registered for [`CHANNELS`], in that order.
    pub fn from_ordered(registered: [Channel<S, R>; 6]) -> Self {
        let [votes, certificates, resolver, blocks, backfill, mempool] = registered;
        Self {
            votes,
            certificates,
            resolver,
            blocks,
            backfill,
            mempool,
        }
    }
}

/// What a replica needs beyond its ledger and network.
#[derive(Clone)]
pub struct EngineConfig {
    /// The replica's consensus key.
    pub key: ed25519::PrivateKey,
    /// Domain of every consensus signature: the chain id, so votes of one chain never count
    /// in another.
    pub namespace: Vec<u8>,
    /// The chain's consensus genesis block.
    pub genesis: ConsensusBlock,
    /// The least time between blocks.
    pub block_time: Duration,
    /// How long a leader gets to propose before replicas vote to skip it.
    pub leader_timeout: Duration,
    /// Prefix of this replica's storage partitions.
    pub partition: String,
    /// The account that signs this replica's reports of consensus faults (they are free).
    pub reporter: sigil_crypto::AccountKeypair,
}

impl EngineConfig {
    /// Consensus settings for a chain: its id names the signatures' domain.
    pub fn namespace_for(chain_id: &str) -> Vec<u8> {
        [b"sigil-consensus/v1/".as_slice(), chain_id.as_bytes()].concat()
    }
}

/// Passes signed evidence of consensus faults on, to be reported to the ledger.
#[derive(Clone)]
struct Evidence {
    faults: mpsc::UnboundedSender<Vec<u8>>,
}

impl Reporter for Evidence {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        if let Some(evidence) = super::evidence::encode(&activity) {
            tracing::warn!("a replica signed conflicting consensus votes; reporting it");
            metrics::counter!("ledger_consensus_faults_total").increment(1);
            let _ = self.faults.send(evidence);
        }
        commonware_actor::Feedback::Ok
    }
}

/// Submits `report_consensus_fault` for each piece of evidence, signed by `reporter`, to this
/// replica's pool; the ledger records each fault once, whoever reports it first.
async fn report_faults(
    ledger: Ledger,
    reporter: sigil_crypto::AccountKeypair,
    mut faults: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(evidence) = faults.recv().await {
        let chain = ledger.read();
        let nonce = ledger.pool.next_nonce(&chain, &reporter.account_id());
        let call = crate::types::Call::ReportConsensusFault { evidence };
        let tx = crate::tx::sign(&reporter, chain.chain_id(), nonce, call);
        match ledger.pool.submit(&chain, tx) {
            Ok(_) => tracing::info!("consensus fault reported"),
            Err(error) => tracing::debug!(%error, "consensus fault report not admitted"),
        }
    }
}

fn archive<C>(prefix: &str, name: &str, codec: C, cache: &CacheRef) -> immutable::Config<C> {
    let p = format!("{prefix}-{name}");
    immutable::Config {
        metadata_partition: format!("{p}-metadata"),
        freezer_table_partition: format!("{p}-freezer-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{p}-freezer-key"),
        freezer_key_page_cache: cache.clone(),
        freezer_value_partition: format!("{p}-freezer-value"),
        freezer_value_target_size: 1 << 20,
        freezer_value_compression: None,
        ordinal_partition: format!("{p}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config: codec,
        replay_buffer: NZUsize!(1 << 20),
        freezer_key_write_buffer: NZUsize!(1 << 20),
        freezer_value_write_buffer: NZUsize!(1 << 20),
        ordinal_write_buffer: NZUsize!(1 << 20),
    }
}

const MAILBOX: NonZeroUsize = NZUsize!(1024);

/// Which heights make each epoch: the genesis's `epoch_length` blocks each.
fn epocher(ledger: &Ledger) -> FixedEpocher {
    let length = ledger.read().state().globals.epoch_length;
    FixedEpocher::new(NonZeroU64::new(length).unwrap_or(NZU64!(1)))
}

/// Spawns mempool gossip and fault reporting; returns where consensus evidence goes.
fn spawn_side_tasks<E, S, R>(
    context: &E,
    ledger: &Ledger,
    reporter: sigil_crypto::AccountKeypair,
    mempool: Channel<S, R>,
) -> mpsc::UnboundedSender<Vec<u8>>
where
    E: Spawner + commonware_runtime::Supervisor,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let (gossip_tx, gossip_rx) = mpsc::unbounded_channel();
    ledger.pool.set_gossip(gossip_tx);
    let gossip = super::gossip::run(ledger.clone(), gossip_rx, mempool);
    context.child("mempool_gossip").spawn(|_| gossip);
    let (faults_tx, faults_rx) = mpsc::unbounded_channel();
    let reports = report_faults(ledger.clone(), reporter, faults_rx);
    context.child("fault_reports").spawn(|_| reports);
    faults_tx
}

/// Opens marshal's archives of finalization certificates and finalized blocks.
async fn open_archives<E>(
    context: &E,
    prefix: &str,
    cache: &CacheRef,
) -> (
    immutable::Archive<
        E,
        Digest,
        commonware_consensus::simplex::types::Finalization<Scheme, Digest>,
    >,
    immutable::Archive<E, Digest, std::sync::Arc<ConsensusBlock>>,
)
where
    E: Spawner + Clock + Metrics + Storage + commonware_runtime::Supervisor,
{
    let certificates = immutable::Archive::init(
        context.child("finalizations_by_height"),
        archive(
            prefix,
            "finalizations",
            Scheme::certificate_codec_config_unbounded(),
            cache,
        ),
    )
    .await
    .expect("consensus storage opens");
    let stored = immutable::Archive::init(
        context.child("finalized_blocks"),
        archive(prefix, "blocks", (), cache),
    )
    .await
    .expect("consensus storage opens");
    (certificates, stored)
}

/// Starts marshal, with its block broadcast and backfill, delivering finalized blocks to
/// `finalized`; returns its mailbox.
#[allow(clippy::too_many_arguments)]
async fn start_marshal<E, S, R, P, B>(
    context: &E,
    config: &EngineConfig,
    (schemes, epocher): (Schemes, FixedEpocher),
    (peers, blocker): (P, B),
    (blocks, backfill): (Channel<S, R>, Channel<S, R>),
    finalized: FinalizedReporter,
    cache: &CacheRef,
) -> MarshalMailbox<Scheme, Standard<ConsensusBlock>>
where
    E: Runtime,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    let me = config.key.public_key();
    let (broadcast, buffer) = buffered::Engine::<_, _, ConsensusBlock, _, _>::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX,
            deque_size: 10,
            priority: false,
            codec_config: (),
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    broadcast.start(blocks);
    let resolver = marshal::resolver::p2p::init(
        context.child("marshal_resolver"),
        marshal::resolver::p2p::Config {
            public_key: me,
            peer_provider: peers,
            blocker,
            mailbox_size: MAILBOX,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        backfill,
    );
    let prefix = &config.partition;
    let (certificates, stored) = open_archives(context, prefix, cache).await;
    let genesis = config.genesis.clone();
    let digest = genesis.digest();
    let (actor, mailbox, _processed) = MarshalActor::init(
        context.child("marshal"),
        certificates,
        stored,
        marshal::Config {
            provider: schemes,
            epocher,
            start: marshal::Start::Genesis(Digested::precomputed(genesis, digest)),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: MAILBOX,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: NZU64!(10),
            page_cache: cache.clone(),
            replay_buffer: NZUsize!(1 << 20),
            key_write_buffer: NZUsize!(1 << 20),
            value_write_buffer: NZUsize!(1 << 20),
            block_codec_config: (),
            max_repair: NZUsize!(10),
            max_pending_acks: NZUsize!(16),
            strategy: Sequential,
        },
    )
    .await;
    actor.start(finalized, buffer, resolver);
    mailbox
}

/// Starts a replica's consensus on `context` and returns the source of its finalized blocks,
/// for [`Ledger::run`]. `manager` tracks the peer sets, `blocker` blocks misbehaving peers.
pub async fn start<E, S, R, M, B>(
    context: E,
    ledger: Ledger,
    config: EngineConfig,
    channels: Channels<S, R>,
    manager: M,
    blocker: B,
) -> ReplicaSource
where
    E: Runtime,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    M: AddressableManager<PublicKey = ed25519::PublicKey> + Sync,
    B: Blocker<PublicKey = ed25519::PublicKey> + Sync,
{
    let head = ledger.read().head().height.0;
    let (executed_tx, executed) = watch::channel(head);
    let (finalized_tx, finalized_rx) = mpsc::unbounded_channel();
    let faults = spawn_side_tasks(&context, &ledger, config.reporter.clone(), channels.mempool);
    let cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let finalized = FinalizedReporter {
        blocks: finalized_tx,
    };
    let schemes = Schemes::default();
    let epocher = epocher(&ledger);
    let mailbox = start_marshal(
        &context,
        &config,
        (schemes.clone(), epocher.clone()),
        (manager.clone(), blocker.clone()),
        (channels.blocks, channels.backfill),
        finalized,
        &cache,
    )
    .await;
    let app = LedgerApp {
        ledger: ledger.clone(),
        executed: executed.clone(),
        block_time: config.block_time,
    };
    let wrapper = Inline::new(
        context.child("application"),
        app,
        mailbox.clone(),
        epocher.clone(),
    );
    let evidence = Evidence { faults };
    let reporter: Reporters<_, Evidence> = Reporters::from((wrapper.clone(), evidence));
    let epochs = Epochs {
        context: context.child("epochs"),
        ledger: ledger.clone(),
        executed,
        schemes,
        marshal: mailbox,
        manager,
        blocker,
        application: wrapper,
        reporter,
        config,
        cache,
        epocher,
    };
    let consensus = ConsensusChannels {
        votes: channels.votes,
        certificates: channels.certificates,
        resolver: channels.resolver,
    };
    context
        .child("epoch_loop")
        .spawn(move |_| epochs.run(consensus));
    ReplicaSource::new(ledger, finalized_rx, executed_tx)
}
