//! The running node: its identity, ledger view, transport, engine and HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sigil_client::LedgerClient;
use sigil_client::rpc::LedgerApiClient;
use sigil_client::types::{Call, Parameters, SignerSet, ValidatorRecord};
use sigil_crypto::{AccountKeypair, X25519StaticKey};
use sigil_mpc::{AuxData, Engine, KeyShare, SessionConfig};
use sigil_primitives::{AccountId, Endpoint};
use sigil_programs::{HostConfig, ProgramHost};
use sigil_transport::{Backoff, Transport, TransportConfig};
use tokio::sync::watch;

use crate::identity::{Identity, KeySourceArg};
use crate::state::RequestMemory;
use crate::view::View;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Keystore directory.
    pub data_dir: PathBuf,
    /// Ledger RPC websocket URL.
    pub ledger_url: String,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Published endpoint.
    pub endpoint: Endpoint,
    /// How the keystore is unlocked.
    pub key_source: KeySourceArg,
    /// Development identity, if any.
    pub dev_name: Option<String>,
    /// Fixture key shares to use at jump start instead of the DKG.
    pub dev_key_shares: Option<PathBuf>,
    /// Stake locked when joining.
    pub stake: u64,
    /// Largest age of a request's block, in blocks.
    pub request_window: u64,
    /// How long results stay retrievable.
    pub result_ttl: Duration,
    /// Threshold-protocol round timeout.
    pub round_timeout: Duration,
    /// Signing attempts a relayer makes per request (each with a new committee).
    pub max_attempts: u32,
    /// How long a relayer waits for the ledger to record a failed attempt's offences.
    pub offence_wait: Duration,
    /// Keep validator connections across sessions (false: one handshake per session).
    pub persistent_connections: bool,
    /// How a request's programs share the fuel budget.
    pub fuel_policy: sigil_programs::FuelPolicy,
    /// Compiled programs kept in memory (0: compile on every evaluation).
    pub program_cache: usize,
    /// As a relayer, commitments made ahead kept per signer and scheme (0: none).
    pub nonce_pool: usize,
    /// Limits of the HTTP server.
    pub http: crate::http::HttpLimits,
    /// Read a replica that is not this validator's own (one run with another consensus key).
    pub trust_remote_ledger: bool,
    /// Misbehaviour this node commits in signing sessions (fault-injection builds only).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<sigil_mpc::InjectedFault>,
}

/// On a replicated chain a node reads its own replica, the one run with the consensus key
/// its seed derives (PROTOCOL §9.5): a replica run by anyone else could feed it a false
/// signer set, programs or registrations. `--trust-remote-ledger` reads another on purpose.
async fn check_own_replica(
    ledger: &LedgerClient,
    identity: &Identity,
    config: &NodeConfig,
) -> anyhow::Result<()> {
    let consensus = ledger
        .rpc()
        .consensus()
        .await
        .context("cannot read the ledger's consensus")?;
    if consensus.mode != "replicated" {
        return Ok(());
    }
    let own = identity.consensus_keypair().account_id();
    let theirs = consensus.local.map(|local| local.consensus_key);
    if theirs == Some(*own.as_bytes()) {
        return Ok(());
    }
    let theirs = theirs.map_or_else(
        || "none".to_owned(),
        |key| format!("0x{}", hex::encode(key)),
    );
    if config.trust_remote_ledger {
        tracing::warn!(
            ledger = %config.ledger_url,
            replica_key = %theirs,
            "reading a replica that is not this validator's own (--trust-remote-ledger)"
        );
        return Ok(());
    }
    anyhow::bail!(
        "the ledger at {} is a replica with consensus key {theirs}, not this validator's \
         ({own}): a node reads its own replica; run `sigil ledger --replica-key-file F` with F \
         written by `sigil node --write-replica-key F`, or pass --trust-remote-ledger to read \
         a replica you trust",
        config.ledger_url
    )
}

/// First wait before reconnecting to the ledger; it doubles up to [`LEDGER_RETRY_MAX`].
const LEDGER_RETRY_INITIAL: Duration = Duration::from_millis(200);
/// Longest wait between attempts to reconnect to the ledger.
const LEDGER_RETRY_MAX: Duration = Duration::from_secs(5);
/// Longest a request to another node may take: a signing session with production parameters
/// and retries fits well inside.
const NODE_HTTP_TIMEOUT: Duration = Duration::from_secs(600);

/// Shortest round timeout of key generation and resharing sessions.
const KEYGEN_ROUND_TIMEOUT: Duration = Duration::from_secs(300);

/// A key share and the aux data that goes with it.
pub struct HeldKey {
    /// The share.
    pub share: KeyShare,
    /// Its aux data.
    pub aux: AuxData,
}

/// Who a node is: its account and x25519 keys, its keystore and the key share it holds.
pub(crate) struct Keys {
    pub(crate) account: AccountKeypair,
    pub(crate) x25519: X25519StaticKey,
    pub(crate) identity: Identity,
    /// The share of the current network key, replaced after a DKG or reshare.
    pub(crate) held: RwLock<Option<Arc<HeldKey>>>,
    /// The shares of the other schemes' network keys (FROST).
    pub(crate) frost: RwLock<
        std::collections::BTreeMap<sigil_mpc::frost::Scheme, Arc<sigil_mpc::frost::FrostShare>>,
    >,
}

/// The node's background key work: the jump start's DKG and its part in a reshare.
#[derive(Default)]
pub(crate) struct KeyWork {
    pub(crate) jump_start_running: Mutex<bool>,
    /// Whether the other schemes' key generation is running.
    pub(crate) scheme_keys_running: Mutex<bool>,
    /// This node's progress in the current reshare.
    pub(crate) reshare: Mutex<crate::rotation::ReshareState>,
}

/// Shared state of a running node, by concern.
pub struct Inner {
    pub(crate) config: NodeConfig,
    pub(crate) keys: Keys,
    /// The ledger connection, replaced when it is re-established.
    pub(crate) ledger: RwLock<Arc<LedgerClient>>,
    /// The ledger view, replaced (never mutated) at every head; waiters use `subscribe`.
    pub(crate) view: watch::Sender<Arc<View>>,
    /// Serialises this node's ledger transactions, so nonces do not collide.
    pub(crate) tx_lock: tokio::sync::Mutex<()>,
    pub(crate) transport: Transport,
    pub(crate) engine: Engine,
    pub(crate) host: Arc<ProgramHost>,
    /// The pool of connections to other nodes' HTTP APIs.
    pub(crate) http: reqwest::Client,
    pub(crate) requests: RequestMemory,
    /// The signing sessions this node started, on disk.
    pub(crate) sessions: crate::session_log::SessionLog,
    /// Validator-transport handshakes in flight, capped in total and per address.
    pub(crate) handshakes: Arc<sigil_primitives::throttle::AddressCaps>,
    pub(crate) key_work: KeyWork,
    /// This signer's unused nonces made ahead, by scheme and relayer (§7.8).
    pub(crate) nonces: Mutex<crate::nonces::NonceIndex>,
    /// As a relayer, the signers' commitments made ahead (§7.8).
    pub(crate) nonce_pool: crate::nonce_pool::NoncePool,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Misbehaviour to commit in signing sessions, changeable at run time.
    #[cfg(feature = "fault-injection")]
    pub(crate) fault: Mutex<Option<sigil_mpc::InjectedFault>>,
    /// What a framing node keeps between sessions.
    #[cfg(feature = "fault-injection")]
    pub(crate) frame_memory: Mutex<crate::frame::FrameMemory>,
}

/// A running node.
pub struct Node {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Opens the keystore, connects to the ledger, joins as a validator if needed, starts the
    /// HTTP server and follows the ledger.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Self> {
        let identity = Identity::open(
            &config.data_dir,
            &config.key_source,
            config.dev_name.as_deref(),
        )?;
        let account = identity.seed.account_keypair();
        let x25519 = identity.seed.x25519_key();
        let me = account.account_id();
        tracing::info!(account = %me, x25519 = %x25519.public_key(), "identity loaded");

        #[cfg(feature = "fault-injection")]
        let fault = config.fault.clone();
        let ledger = LedgerClient::connect(&config.ledger_url)
            .await
            .context("cannot reach the ledger")?;
        check_own_replica(&ledger, &identity, &config).await?;
        let view = fetch_view(&ledger)
            .await
            .context("cannot read the ledger")?;

        let transport = Transport::new(
            account.clone(),
            x25519.clone(),
            TransportConfig {
                persistent_connections: config.persistent_connections,
                ..TransportConfig::default()
            },
        );
        // Key generation and resharing run production Paillier proofs for every party at once:
        // their rounds get minutes, whatever the signing round timeout.
        let engine = Engine::new(
            account.clone(),
            SessionConfig::with_round_timeout(config.round_timeout.max(KEYGEN_ROUND_TIMEOUT)),
        );
        let host = Arc::new(program_host(&config)?);
        let key = held_key(&identity)?;
        let frost = crate::scheme_keys::load_shares(&identity)?;
        let nonces = crate::nonces::load_index(&identity)?;
        let sessions = crate::session_log::SessionLog::open(&config.data_dir)?;
        let handshakes = sigil_primitives::throttle::AddressCaps::new(
            config.http.max_handshakes,
            config.http.max_handshakes_per_address,
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let metrics = install_metrics();

        let inner = Arc::new(Inner {
            config,
            keys: Keys {
                account,
                x25519,
                identity,
                held: RwLock::new(key),
                frost: RwLock::new(frost),
            },
            ledger: RwLock::new(Arc::new(ledger)),
            view: watch::Sender::new(Arc::new(view)),
            tx_lock: tokio::sync::Mutex::new(()),
            transport,
            engine,
            host,
            http: reqwest::Client::builder()
                .timeout(NODE_HTTP_TIMEOUT)
                .build()
                .context("cannot build the HTTP client")?,
            requests: RequestMemory::default(),
            sessions,
            handshakes,
            key_work: KeyWork::default(),
            nonces: Mutex::new(nonces),
            nonce_pool: crate::nonce_pool::NoncePool::default(),
            metrics,
            shutdown: watch::Sender::new(false),
            #[cfg(feature = "fault-injection")]
            fault: Mutex::new(fault),
            #[cfg(feature = "fault-injection")]
            frame_memory: Mutex::default(),
        });
        inner.update_peers();
        let server = serve(&inner, listener);

        inner.join_as_validator().await?;
        tokio::spawn(inner.clone().follow_ledger());
        inner.clone().act_on_ledger();
        Ok(Self {
            inner,
            local_addr,
            server,
        })
    }

    /// This node's account.
    pub fn account(&self) -> AccountId {
        self.inner.keys.account.account_id()
    }

    /// Where the HTTP API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving and closes validator connections.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.transport.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// The program host the node's configuration asks for.
fn program_host(config: &NodeConfig) -> anyhow::Result<ProgramHost> {
    ProgramHost::new(HostConfig {
        cache_capacity: config.program_cache,
        fuel_policy: config.fuel_policy,
        ..HostConfig::default()
    })
    .context("cannot start the program host")
}

/// The key share and aux data in the keystore, if any.
fn held_key(identity: &Identity) -> anyhow::Result<Option<Arc<HeldKey>>> {
    Ok(identity.key_share()?.map(|(share, aux)| {
        tracing::info!(
            network_key = %share.verifying_key(),
            threshold = share.threshold(),
            "key share loaded"
        );
        Arc::new(HeldKey { share, aux })
    }))
}

/// Serves the HTTP API on `listener` until the node shuts down.
fn serve(inner: &Arc<Inner>, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let app = crate::api::router(inner.clone());
    let stop = inner.shutdown.subscribe();
    let limits = inner.config.http.clone();
    tokio::spawn(crate::http::serve(listener, app, limits, stop))
}

/// Installs the Prometheus recorder once per process; later nodes in the same process (tests)
/// share it.
fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// Reads one consistent-enough view of the ledger.
pub(crate) async fn fetch_view(
    ledger: &LedgerClient,
) -> Result<View, jsonrpsee::core::client::Error> {
    let head = ledger.rpc().head().await?;
    let (validators, signer_set, params) = fetch_sets(ledger).await?;
    let mut view = View {
        head: head.height.0,
        synced: true,
        head_timestamp_ms: head.timestamp_ms,
        blocks: Default::default(),
        validators: validators.into_iter().map(|v| (v.account, v)).collect(),
        signer_set,
        params,
    };
    view.remember_block(&head);
    Ok(view)
}

/// What the node refreshes at every head: validators, the signer set and the parameters.
async fn fetch_sets(
    ledger: &LedgerClient,
) -> Result<(Vec<ValidatorRecord>, SignerSet, Parameters), jsonrpsee::core::client::Error> {
    let rpc = ledger.rpc();
    Ok((
        rpc.validators().await?,
        rpc.signer_set().await?,
        rpc.parameters().await?,
    ))
}

impl Inner {
    /// This node's account id.
    pub(crate) fn me(&self) -> AccountId {
        self.keys.account.account_id()
    }

    /// The current ledger connection.
    pub(crate) fn ledger(&self) -> Arc<LedgerClient> {
        self.ledger
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current ledger view.
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.borrow().clone()
    }

    /// An engine for one signing session, with the misbehaviour currently injected, if any.
    pub(crate) fn signing_engine(&self) -> Engine {
        #[allow(unused_mut)]
        let mut config = SessionConfig::with_round_timeout(self.config.round_timeout);
        #[cfg(feature = "fault-injection")]
        {
            config.fault = self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone();
        }
        Engine::new(self.keys.account.clone(), config)
    }

    /// Whether fault injection tells this node to corrupt what it sends (`corrupt`); FROST
    /// sessions then corrupt the signature shares and key generation secret shares.
    pub(crate) fn corrupts_shares(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            *self.fault.lock().unwrap_or_else(|e| e.into_inner())
                == Some(sigil_mpc::InjectedFault::Corrupt)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// Whether this node was told to misbehave (always false outside fault-injection builds).
    pub(crate) fn misbehaving(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.fault
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// The held key share, if any.
    pub(crate) fn held_key(&self) -> Option<Arc<HeldKey>> {
        self.keys
            .held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the node can serve its role.
    pub(crate) fn ready(&self, view: &View) -> bool {
        let me = self.me();
        view.synced
            && view.is_validator(&me)
            && (!view.is_signer(&me)
                || self
                    .held_key()
                    .is_some_and(|k| view.signer_set.network_key == Some(k.share.verifying_key())))
    }

    /// Hands the ledger's validators to the transport as its peer directory.
    pub(crate) fn update_peers(&self) {
        let peers = self
            .view()
            .validators
            .values()
            .map(ValidatorRecord::info)
            .collect();
        self.transport.set_peers(peers);
    }

    /// Submits `validate` (or updates the published endpoint and key) so the ledger lists this
    /// node with its current endpoint and x25519 key.
    async fn join_as_validator(&self) -> anyhow::Result<()> {
        let me = self.me();
        let ledger = self.ledger();
        let existing = ledger.rpc().validator(me).await?;
        let x25519 = self.keys.x25519.public_key();
        let endpoint = self.config.endpoint.clone();
        let calls = match existing {
            None => {
                self.check_can_stake().await?;
                vec![Call::Validate {
                    x25519,
                    endpoint,
                    stake: self.config.stake,
                }]
            }
            Some(info) => {
                let mut calls = Vec::new();
                if info.endpoint != endpoint {
                    calls.push(Call::ChangeEndpoint { endpoint });
                }
                if info.x25519 != x25519 {
                    calls.push(Call::ChangeKeys { x25519 });
                }
                calls
            }
        };
        let calls = calls.into_iter().chain(self.replica_call(&ledger).await?);
        for call in calls {
            tracing::info!(?call, "updating this validator on the ledger");
            let result = ledger
                .submit(&self.keys.account, call, true)
                .await
                .context("the ledger refused this validator")?;
            if result.included.is_none() {
                anyhow::bail!("the ledger did not include the validator transaction");
            }
        }
        let view = fetch_view(&ledger).await?;
        self.view.send_replace(Arc::new(view));
        self.update_peers();
        Ok(())
    }

    /// `change_replica` naming the replica this node reads, when the ledger is replicated,
    /// that replica runs with this validator's consensus key, and the ledger does not name it
    /// as this validator's yet: a validator's replica votes from the next epoch.
    async fn replica_call(&self, ledger: &LedgerClient) -> anyhow::Result<Option<Call>> {
        let me = self.me();
        let consensus = ledger.rpc().consensus().await?;
        let Some(local) = consensus.local else {
            return Ok(None);
        };
        let signer = self.keys.identity.consensus_keypair();
        if local.consensus_key != *signer.account_id().as_bytes() {
            tracing::warn!(
                "the ledger this node reads is a replica with another validator's consensus key; \
                 not naming it as this validator's"
            );
            return Ok(None);
        }
        let named = consensus.next_replicas.iter().any(|r| {
            r.account == me && r.consensus_key == local.consensus_key && r.address == local.address
        });
        if named {
            return Ok(None);
        }
        let message = sigil_client::types::replica_proof_message(ledger.chain_id(), &me);
        Ok(Some(Call::ChangeReplica {
            consensus_key: local.consensus_key,
            address: local.address,
            proof: signer.sign(&message),
        }))
    }

    /// Fails with what to run when this node's account cannot pay its stake and the fee, so
    /// that a new validator learns how to get funds instead of reading "insufficient balance".
    async fn check_can_stake(&self) -> anyhow::Result<()> {
        let me = self.me();
        let ledger = self.ledger();
        let account = ledger.rpc().account(me).await?;
        let fee = ledger.rpc().parameters().await?.transaction_fee;
        let need = self.config.stake.saturating_add(fee);
        let free = account.balance;
        if free < need {
            anyhow::bail!(
                "account {me} holds {free} but joining as a validator needs {need} (stake {} and \
                 a fee of {fee}): have it funded, for example `sigil account transfer --to {me} \
                 --amount {need} --ledger {} --dev-account faucet` on a dev ledger, or from any \
                 funded account with --phrase-file, then start the node again",
                self.config.stake,
                self.config.ledger_url
            );
        }
        Ok(())
    }

    /// Follows new heads, refreshing the view; reconnects when the ledger goes away.
    async fn follow_ledger(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let mut backoff = Backoff::new(LEDGER_RETRY_INITIAL, LEDGER_RETRY_MAX);
        loop {
            if *stop.borrow() {
                return;
            }
            let ledger = self.ledger();
            match ledger.heads().await {
                Ok(mut heads) => {
                    backoff.reset();
                    loop {
                        let next = tokio::select! {
                            next = heads.next() => next,
                            _ = stop.changed() => return,
                        };
                        let Some(Ok(header)) = next else { break };
                        self.on_head(&ledger, header).await;
                    }
                    tracing::warn!("ledger subscription ended; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "cannot subscribe to the ledger"),
            }
            tokio::time::sleep(backoff.next_wait()).await;
            match LedgerClient::connect(&self.config.ledger_url).await {
                Ok(client) => {
                    *self.ledger.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(client);
                }
                Err(error) => tracing::warn!(%error, "cannot reconnect to the ledger"),
            }
        }
    }

    async fn on_head(
        self: &Arc<Self>,
        ledger: &LedgerClient,
        header: sigil_client::types::BlockHeader,
    ) {
        let (validators, signer_set, params) = match fetch_sets(ledger).await {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "cannot refresh the ledger view");
                return;
            }
        };
        let peers_changed = {
            let mut view = View::clone(&self.view());
            if header.height.0 >= view.head {
                view.head_timestamp_ms = header.timestamp_ms;
            }
            view.head = view.head.max(header.height.0);
            view.synced = true;
            view.remember_block(&header);
            let validators: std::collections::BTreeMap<_, _> =
                validators.into_iter().map(|v| (v.account, v)).collect();
            let changed = validators != view.validators;
            view.validators = validators;
            view.signer_set = signer_set;
            view.params = params;
            metrics::gauge!("sigil_node_ledger_head").set(view.head as f64);
            self.view.send_replace(Arc::new(view));
            changed
        };
        if peers_changed {
            self.update_peers();
        }
        self.clone().act_on_ledger();
        self.clone().act_on_rotation();
    }
}
