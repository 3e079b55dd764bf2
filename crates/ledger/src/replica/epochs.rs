//! Epochs: one Simplex engine per epoch, over the consensus set the ledger fixed for it.
//!
//! The last block of each epoch fixes the next epoch's set (see `state::consensus`). Once this
//! replica has executed that block, it stops the epoch's engine and starts the next one, whose
//! first block builds on that boundary block. A replica outside the set runs the engine as an
//! observer and follows; one that is behind executes finalized blocks from marshal's backfill,
//! epoch by epoch, and votes only once it has reached the epoch it is in the set of. Votes and
//! certificates travel on per-epoch subchannels; a message for a later epoch tells a replica
//! it is behind, and it asks the sender for the boundary block it lacks.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs as _;
use std::sync::{Arc, Mutex};

use commonware_consensus::marshal::core::Mailbox as MarshalMailbox;
use commonware_consensus::marshal::standard::Standard;
use commonware_consensus::simplex;
use commonware_consensus::simplex::config::{Floor, ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::types::{Epoch, Epocher as _, FixedEpocher, Height, ViewDelta};
use commonware_consensus::{CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::certificate::{Provider, Scoped};
use commonware_cryptography::ed25519;
use commonware_cryptography::sha256::{Digest, Sha256};
use commonware_p2p::utils::mux::{Builder as _, MuxHandle, Muxer};
use commonware_p2p::{Address, AddressableManager, AddressableTrackedPeers, Blocker};
use commonware_p2p::{Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::Handle;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_utils::ordered::Map;
use commonware_utils::vec::NonEmptyVec;
use commonware_utils::{NZDuration, NZUsize};
use tokio::sync::watch;

use super::Scheme;
use super::block::ConsensusBlock;
use super::engine::{Channel, EngineConfig, Runtime};
use crate::producer::Ledger;
use crate::types::Replica;

/// Epochs whose schemes are kept below the current one: certificates of a just-ended epoch
/// still arrive for a while.
const KEPT_EPOCHS: u64 = 2;

/// The signing scheme of each epoch whose set this replica knows: marshal verifies
/// certificates with it, and each epoch's engine signs (or, outside the set, observes) with it.
#[derive(Clone, Default)]
pub struct Schemes {
    epochs: Arc<Mutex<BTreeMap<Epoch, Arc<Scheme>>>>,
}

impl Schemes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Epoch, Arc<Scheme>>> {
        self.epochs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Installs the scheme of `epoch` for the set `replicas`: a signer if `key` is in it.
    /// Returns it, with whether this replica votes.
    fn install(
        &self,
        epoch: Epoch,
        replicas: &[Replica],
        namespace: &[u8],
        key: &ed25519::PrivateKey,
    ) -> Result<(Arc<Scheme>, bool), String> {
        let (participants, _) = super::evidence::participants(replicas)?;
        let signer = Scheme::signer(namespace, participants.clone(), key.clone());
        let votes = signer.is_some();
        let scheme = signer.unwrap_or_else(|| Scheme::verifier(namespace, participants));
        let scheme = Arc::new(scheme);
        let mut epochs = self.lock();
        epochs.insert(epoch, scheme.clone());
        let oldest = Epoch::new(epoch.get().saturating_sub(KEPT_EPOCHS));
        epochs.retain(|e, _| *e >= oldest);
        Ok((scheme, votes))
    }
}

impl Provider for Schemes {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, epoch: Epoch) -> Option<Scoped<Scheme>> {
        self.lock().get(&epoch).cloned().map(Scoped::scheme)
    }
}

/// The peers a replica connects to: the set of the epoch it is in (primary) and the replicas
/// named for the next (secondary), so a joining replica is reached before it votes.
type Tracked = (Vec<Replica>, Vec<Replica>);

/// Messages of epochs that have no engine here: the subchannel (epoch) and the message.
type Backup = commonware_utils::channel::mpsc::Receiver<(
    commonware_p2p::Channel,
    commonware_p2p::Message<ed25519::PublicKey>,
)>;

/// What the epoch loop needs, besides the consensus channels.
pub(super) struct Epochs<E, M, B, A, R> {
    pub context: E,
    pub ledger: Ledger,
    pub executed: watch::Receiver<u64>,
    pub schemes: Schemes,
    pub marshal: MarshalMailbox<Scheme, Standard<ConsensusBlock>>,
    pub manager: M,
    pub blocker: B,
    /// The application (marshal's wrapper around the ledger), automaton and relay.
    pub application: A,
    pub reporter: R,
    pub config: EngineConfig,
    pub cache: CacheRef,
    pub epocher: FixedEpocher,
}

/// The three consensus channels of every epoch's engine.
pub(super) struct ConsensusChannels<S, Rx> {
    pub votes: Channel<S, Rx>,
    pub certificates: Channel<S, Rx>,
    pub resolver: Channel<S, Rx>,
}

fn addressed(replicas: &[Replica]) -> Vec<(ed25519::PublicKey, Address)> {
    replicas
        .iter()
        .filter_map(|r| {
            let key = super::network::public_key(&r.consensus_key).ok()?;
            let Some(address) = r.address.to_socket_addrs().ok().and_then(|mut a| a.next())
            else {
                tracing::warn!(replica = %r.account, address = %r.address, "cannot resolve a replica's address");
                return None;
            };
            Some((key, Address::from(address)))
        })
        .collect()
}

impl<E, M, B, A, R> Epochs<E, M, B, A, R>
where
    E: Runtime,
    M: AddressableManager<PublicKey = ed25519::PublicKey> + Sync,
    B: Blocker<PublicKey = ed25519::PublicKey> + Sync,
    A: CertifiableAutomaton<
            Context = simplex::types::Context<Digest, ed25519::PublicKey>,
            Digest = Digest,
        > + Relay<
            Digest = Digest,
            PublicKey = ed25519::PublicKey,
            Plan = simplex::Plan<ed25519::PublicKey>,
        >,
    R: Reporter<Activity = simplex::types::Activity<Scheme, Digest>>,
{
    /// Tracks the peers of the state after `head`, if they changed.
    fn track(&mut self, head: u64, tracked: &mut Option<Tracked>) {
        let now = {
            let chain = self.ledger.read();
            let state = chain.state();
            let epoch = state.epoch_of(head + 1);
            let primary = state.consensus_set(epoch).unwrap_or_default().to_vec();
            (primary, state.next_consensus_set())
        };
        if tracked.as_ref() == Some(&now) {
            return;
        }
        let primary = addressed(&now.0);
        let secondary = addressed(&now.1)
            .into_iter()
            .filter(|(key, _)| primary.iter().all(|(k, _)| k != key))
            .collect::<Vec<_>>();
        let (Ok(primary), Ok(secondary)) = (Map::try_from(primary), Map::try_from(secondary))
        else {
            tracing::error!("the consensus set names a key twice");
            return;
        };
        let _ = self
            .manager
            .track(head, AddressableTrackedPeers::new(primary, secondary));
        *tracked = Some(now);
    }

    /// The block an epoch's engine starts from: the genesis, or the last block of the epoch
    /// before (from marshal, which stored it when it was finalized).
    async fn floor(&self, epoch: Epoch) -> Option<Digest> {
        match epoch.previous() {
            None => Some(commonware_cryptography::Digestible::digest(
                &self.config.genesis,
            )),
            Some(previous) => {
                let last = self.epocher.last(previous)?;
                self.marshal.get_info(last).await.map(|(_, digest)| digest)
            }
        }
    }

    fn engine_config(
        &self,
        epoch: Epoch,
        scheme: Scheme,
        floor: Digest,
    ) -> simplex::Config<Scheme, RoundRobin<Sha256>, B, Digest, A, A, R, Sequential> {
        let timeout = self.config.leader_timeout;
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker: self.blocker.clone(),
            automaton: self.application.clone(),
            relay: self.application.clone(),
            reporter: self.reporter.clone(),
            track_historical_votes: false,
            strategy: Sequential,
            partition: format!("{}-simplex-epoch-{}", self.config.partition, epoch.get()),
            mailbox_size: NZUsize!(1024),
            epoch,
            floor: Floor::Genesis(floor),
            replay_buffer: NZUsize!(1 << 20),
            write_buffer: NZUsize!(1 << 20),
            page_cache: self.cache.clone(),
            leader_timeout: timeout,
            certification_timeout: timeout * 2,
            timeout_retry: timeout * 10,
            view_retention: ViewDelta::new(10),
            skip: SkipPolicy::Enabled {
                timeout: timeout * 12,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(std::time::Duration::from_secs(1)),
            fetch_retry_delay: std::time::Duration::from_millis(100),
            forward: ForwardPolicy::Disabled,
        }
    }

    /// Runs each epoch's engine in turn, for as long as the ledger runs.
    pub async fn run<S, Rx>(mut self, channels: ConsensusChannels<S, Rx>)
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        Rx: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let (mut votes, mut vote_backup) = self.mux_with_backup("vote_mux", channels.votes);
        let (mut certificates, mut certificate_backup) =
            self.mux_with_backup("certificate_mux", channels.certificates);
        let (mux, mut resolver) = Muxer::new(
            self.context.child("resolver_mux"),
            channels.resolver.0,
            channels.resolver.1,
        );
        mux.start();
        let mut tracked = None;
        loop {
            let head = *self.executed.borrow_and_update();
            self.track(head, &mut tracked);
            let entered = self
                .enter(head, [&mut votes, &mut certificates, &mut resolver])
                .await;
            let Some((epoch, handle)) = entered else {
                return;
            };
            let Some(boundary) = self.epocher.last(epoch) else {
                return;
            };
            loop {
                tokio::select! {
                    changed = self.executed.changed() => {
                        if changed.is_err() {
                            handle.abort();
                            return;
                        }
                        let head = *self.executed.borrow_and_update();
                        self.track(head, &mut tracked);
                        if head >= boundary.get() {
                            break;
                        }
                    }
                    Some((theirs, (from, _))) = vote_backup.recv() => {
                        self.behind(epoch, boundary, theirs, from);
                    }
                    Some((theirs, (from, _))) = certificate_backup.recv() => {
                        self.behind(epoch, boundary, theirs, from);
                    }
                }
            }
            handle.abort();
        }
    }

    /// Demultiplexes `channel` by epoch; messages of epochs without an engine here go to the
    /// returned backup receiver.
    fn mux_with_backup<S, Rx>(
        &self,
        name: &'static str,
        (sender, receiver): Channel<S, Rx>,
    ) -> (MuxHandle<S>, Backup)
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        Rx: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let (mux, handle, backup) = Muxer::builder(self.context.child(name), sender, receiver)
            .with_backup()
            .build();
        mux.start();
        (handle, backup)
    }

    /// Starts the engine of the epoch of the block after `head`, on that epoch's subchannels
    /// of the votes, certificates and resolver muxers. `None` when it cannot (logged).
    async fn enter<S>(
        &mut self,
        head: u64,
        [votes, certificates, resolver]: [&mut MuxHandle<S>; 3],
    ) -> Option<(Epoch, Handle<()>)>
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
    {
        let (epoch, replicas) = {
            let chain = self.ledger.read();
            let state = chain.state();
            let epoch = state.epoch_of(head + 1);
            (
                Epoch::new(epoch),
                state.consensus_set(epoch).map(<[_]>::to_vec),
            )
        };
        let Some(replicas) = replicas else {
            tracing::error!(
                epoch = epoch.get(),
                "the ledger has no consensus set for this epoch"
            );
            return None;
        };
        let Some(floor) = self.floor(epoch).await else {
            tracing::error!(
                epoch = epoch.get(),
                "the epoch's first parent is not stored"
            );
            return None;
        };
        let installed =
            self.schemes
                .install(epoch, &replicas, &self.config.namespace, &self.config.key);
        let (scheme, votes_here) = installed
            .inspect_err(|error| tracing::error!(%error, "cannot use the epoch's consensus set"))
            .ok()?;
        let engine = simplex::Engine::new(
            self.context.child("simplex"),
            self.engine_config(epoch, scheme.as_ref().clone(), floor),
        );
        let (Ok(v), Ok(c), Ok(r)) = (
            votes.register(epoch.get()).await,
            certificates.register(epoch.get()).await,
            resolver.register(epoch.get()).await,
        ) else {
            return None;
        };
        let handle = engine.start(v, c, r);
        metrics::gauge!("ledger_consensus_epoch").set(epoch.get() as f64);
        tracing::info!(
            epoch = epoch.get(),
            replicas = replicas.len(),
            voting = votes_here,
            "entered consensus epoch"
        );
        Some((epoch, handle))
    }

    /// A message of a later epoch: this replica is behind, so it asks the sender for the
    /// current epoch's last block and its finalization.
    fn behind(&self, ours: Epoch, boundary: Height, theirs: u64, from: ed25519::PublicKey) {
        if theirs > ours.get() {
            self.marshal
                .hint_finalized(boundary, NonEmptyVec::new(from));
        }
    }
}
