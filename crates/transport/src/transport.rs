//! The transport: peer directory, one connection per peer, dialling with backoff, sessions and
//! the holding area for messages that arrive before their session opens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sigil_crypto::keys::{AccountKeypair, X25519StaticKey};
use sigil_primitives::{AccountId, X25519PublicKey};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::conn::{self, Control, Outgoing};
use crate::handshake::{self, Established, Identity};
use crate::{
    Backoff, Incoming, Kind, SessionId, TransportConfig, TransportError, ValidatorInfo, WS_PATH,
    metrics as m, websocket_config,
};

/// Refused inbound handshakes are logged at most every 10 s: anyone can open them.
static REFUSED_INBOUND: sigil_primitives::throttle::RateLimitedLog =
    sigil_primitives::throttle::RateLimitedLog::new(Duration::from_secs(10));

/// Messages queued per connection before senders wait.
const QUEUE_PER_CONNECTION: usize = 64;

/// A handle to this node's validator transport. Cheap to clone; all clones share one state.
///
/// See the [crate documentation](crate) for the model and an example.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("account", &self.inner.me)
            .finish_non_exhaustive()
    }
}

/// Counters for tests and status pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Peers with an open, authenticated connection now.
    pub connected_peers: usize,
    /// TCP connections this node opened to dial peers, since it started.
    pub dials: u64,
    /// Inbound websocket connections handed to the Noise handshake, since it started.
    pub inbound: u64,
    /// Handshakes that produced a connection, both directions, since it started.
    pub handshakes_ok: u64,
    /// Messages held for sessions not yet open.
    pub held_messages: usize,
    /// Bytes held for sessions not yet open.
    pub held_bytes: usize,
}

pub(crate) struct Inner {
    identity: Identity,
    me: AccountId,
    config: TransportConfig,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
    next_id: AtomicU64,
    dials: AtomicU64,
    inbound: AtomicU64,
    handshakes_ok: AtomicU64,
}

#[derive(Default)]
struct State {
    closed: bool,
    peers: HashMap<AccountId, ValidatorInfo>,
    links: HashMap<AccountId, Link>,
    sessions: HashMap<SessionId, SessionSlot>,
    held: HashMap<SessionId, VecDeque<Held>>,
    held_count: usize,
    held_bytes: usize,
}

/// Everything about one peer that outlives a connection.
struct Link {
    conn: Option<ConnHandle>,
    /// A dial loop task is alive for this peer.
    dialing: bool,
    /// Someone needed this peer; the dialling side keeps it connected from then on (with
    /// `persistent_connections` off, until no open session includes the peer).
    wanted: bool,
    last_error: Option<TransportError>,
    events: watch::Sender<LinkEvent>,
    /// Open sessions that include this peer (counted only with `persistent_connections` off).
    sessions: usize,
    /// Messages an ended connection did not write, with their deadline; the next connection
    /// writes them before its queue.
    pending: VecDeque<(Outgoing, Instant)>,
    /// The most recently registered connection, which may still be closing.
    last: Option<Arc<Control>>,
}

#[derive(Clone, Debug)]
enum LinkEvent {
    Idle,
    Connected,
    Disconnected,
    DialFailed(TransportError),
}

impl Link {
    fn new() -> Self {
        Self {
            conn: None,
            dialing: false,
            wanted: false,
            last_error: None,
            events: watch::Sender::new(LinkEvent::Idle),
            sessions: 0,
            pending: VecDeque::new(),
            last: None,
        }
    }

    /// No open session includes the peer any more: stop redialling and close the connection
    /// gracefully (its driver writes what is queued, sends Close and reads until the peer's).
    fn retire(&mut self, peer: &AccountId) {
        self.wanted = false;
        if let Some(conn) = self.conn.take() {
            // Set before the queue's sender drops: the writer checks it when the queue ends.
            conn.control.retired.store(true, Ordering::SeqCst);
            self.events.send_replace(LinkEvent::Disconnected);
            tracing::debug!(%peer, "no open session includes the peer; closing its connection");
        }
    }
}

struct ConnHandle {
    id: u64,
    remote_static: X25519PublicKey,
    queue: mpsc::Sender<Outgoing>,
    control: Arc<Control>,
}

struct SessionSlot {
    token: u64,
    members: Arc<HashSet<AccountId>>,
    tx: mpsc::UnboundedSender<Incoming>,
}

struct Held {
    from: AccountId,
    kind: Kind,
    payload: Vec<u8>,
    at: Instant,
}

impl Transport {
    /// A transport for the node with this account key and Noise static key. Nothing runs until
    /// [`serve`](Self::serve)/[`accept`](Self::accept) or a session needs a peer.
    pub fn new(
        account: AccountKeypair,
        static_key: X25519StaticKey,
        config: TransportConfig,
    ) -> Self {
        let me = account.account_id();
        Self {
            inner: Arc::new(Inner {
                identity: Identity {
                    account,
                    static_key,
                },
                me,
                config,
                state: Mutex::new(State::default()),
                shutdown: watch::Sender::new(false),
                next_id: AtomicU64::new(1),
                dials: AtomicU64::new(0),
                inbound: AtomicU64::new(0),
                handshakes_ok: AtomicU64::new(0),
            }),
        }
    }

    /// This node's account.
    pub fn account(&self) -> AccountId {
        self.inner.me
    }

    /// Replaces the peer directory (call it whenever the ledger's validator set changes). This
    /// node's own record is ignored. A connection whose peer left or whose x25519 key changed is
    /// closed.
    pub fn set_peers(&self, peers: Vec<ValidatorInfo>) {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.closed {
            return;
        }
        st.peers = peers
            .into_iter()
            .filter(|p| p.account != inner.me)
            .map(|p| (p.account, p))
            .collect();
        let State { peers, links, .. } = &mut *st;
        for (account, link) in links.iter_mut() {
            if let Some(conn) = &link.conn {
                let still_valid = peers
                    .get(account)
                    .is_some_and(|r| r.x25519 == conn.remote_static);
                if !still_valid {
                    tracing::info!(peer = %account, "peer left the directory or changed its key; closing its connection");
                    conn.control.kill.notify_one();
                }
            }
        }
        let restart: Vec<AccountId> = links
            .iter()
            .filter(|(a, l)| l.wanted && !l.dialing && peers.contains_key(*a) && inner.dials(a))
            .map(|(a, _)| *a)
            .collect();
        for peer in restart {
            inner.ensure_dialer(&mut st, peer);
        }
    }

    /// Serves the websocket endpoint on `listener` (path [`WS_PATH`]; other paths get 404)
    /// until [`shutdown`](Self::shutdown). Each connection runs in its own task.
    pub async fn serve(&self, listener: TcpListener) -> io::Result<()> {
        let mut shutdown = self.inner.shutdown_signal();
        loop {
            let accepted = tokio::select! {
                _ = shut_down(&mut shutdown) => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (stream, addr) = match accepted {
                Ok(a) => a,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.accept_tcp(stream).await {
                    tracing::debug!(%addr, error = %e, "inbound connection ended with an error");
                }
            });
        }
    }

    async fn accept_tcp(&self, stream: TcpStream) -> Result<(), TransportError> {
        let _ = stream.set_nodelay(true);
        let upgrade = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            check_path,
            Some(websocket_config()),
        );
        let ws = match tokio::time::timeout(self.inner.config.handshake_timeout, upgrade).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                return Err(TransportError::Handshake {
                    peer: "inbound".into(),
                    reason: format!("websocket upgrade: {e}"),
                });
            }
            Err(_) => {
                return Err(TransportError::Handshake {
                    peer: "inbound".into(),
                    reason: "websocket upgrade timed out".into(),
                });
            }
        };
        self.accept(ws).await
    }

    /// Runs the responder side of the handshake on an already upgraded websocket (for a node
    /// that serves [`WS_PATH`] from its own HTTP server; build the stream with
    /// [`websocket_config`]), then drives the connection until it closes. Returns early with
    /// the error if the handshake fails or the peer is refused.
    pub async fn accept<S>(&self, ws: WebSocketStream<S>) -> Result<(), TransportError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_holding(ws, ()).await
    }

    /// [`Transport::accept`], holding `during_handshake` (a slot of a cap on handshakes in
    /// flight, say) until the handshake is over, whatever its outcome.
    pub async fn accept_holding<S, G>(
        &self,
        mut ws: WebSocketStream<S>,
        during_handshake: G,
    ) -> Result<(), TransportError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let inner = &self.inner;
        inner.inbound.fetch_add(1, Ordering::Relaxed);
        let lookup = |account: &AccountId| inner.lock().peers.get(account).map(|r| r.x25519);
        let responded = tokio::time::timeout(
            inner.config.handshake_timeout,
            handshake::respond(&mut ws, &inner.identity, lookup),
        )
        .await;
        drop(during_handshake);
        let est = match responded {
            Ok(Ok(est)) => est,
            Ok(Err(failure)) => {
                let result = failure.code.as_ref().map_or("failed", |c| c.as_str());
                m::handshake("responder", result);
                if let Some(count) = REFUSED_INBOUND.hit() {
                    tracing::warn!(
                        count, claimed = ?failure.claimed, result, reason = %failure.reason,
                        "refused inbound validator connections (the last one shown)"
                    );
                }
                return Err(match (failure.code, failure.claimed) {
                    (Some(code), Some(peer)) => TransportError::Refused {
                        peer,
                        code,
                        message: failure.reason,
                    },
                    _ => TransportError::Handshake {
                        peer: "inbound".into(),
                        reason: failure.reason,
                    },
                });
            }
            Err(_) => {
                m::handshake("responder", "failed");
                return Err(TransportError::Handshake {
                    peer: "inbound".into(),
                    reason: "handshake timed out".into(),
                });
            }
        };
        m::handshake("responder", "ok");
        inner.run_connection(ws, est).await;
        Ok(())
    }

    /// Opens a session: messages for `id` from the other `members` are delivered to it,
    /// including any held since they arrived early. Connections to members this node dials
    /// are started now. Fails if `id` is already open here or this node is not a member.
    pub fn open_session(
        &self,
        id: SessionId,
        members: &[AccountId],
    ) -> Result<Session, TransportError> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.closed {
            return Err(TransportError::Shutdown);
        }
        if !members.contains(&inner.me) {
            return Err(TransportError::NotAMember(inner.me));
        }
        if st.sessions.contains_key(&id) {
            return Err(TransportError::SessionAlreadyOpen(id));
        }
        let members: Arc<HashSet<AccountId>> = Arc::new(members.iter().copied().collect());
        let (tx, rx) = mpsc::unbounded_channel();
        inner.prune_held(&mut st);
        if let Some(queue) = st.held.remove(&id) {
            for held in queue {
                st.held_count -= 1;
                st.held_bytes -= held.payload.len();
                if members.contains(&held.from) {
                    let _ = tx.send(Incoming {
                        from: held.from,
                        kind: held.kind,
                        payload: held.payload,
                    });
                } else {
                    m::dropped("not_member");
                    tracing::warn!(from = %held.from, session = %id, "dropping held message from a non-member");
                }
            }
        }
        let token = inner.next_id.fetch_add(1, Ordering::Relaxed);
        st.sessions.insert(
            id,
            SessionSlot {
                token,
                members: members.clone(),
                tx,
            },
        );
        if !inner.config.persistent_connections {
            for peer in members.iter().filter(|p| **p != inner.me) {
                st.links.entry(*peer).or_insert_with(Link::new).sessions += 1;
            }
        }
        for peer in members.iter() {
            if *peer != inner.me && inner.dials(peer) && st.peers.contains_key(peer) {
                inner.ensure_dialer(&mut st, *peer);
            }
        }
        Ok(Session {
            inner: inner.clone(),
            id,
            token,
            members,
            rx,
        })
    }

    /// Waits until a connection to `peer` is up, dialling it if this node is the dialling side.
    /// For a peer this node dials, a failed attempt is returned as it is (e.g. a
    /// [`TransportError::Refused`] with code `key_mismatch`); otherwise waits up to
    /// `send_timeout` for the peer to dial in.
    pub async fn connect(&self, peer: &AccountId) -> Result<(), TransportError> {
        let deadline = Instant::now() + self.inner.config.send_timeout;
        self.inner.connection(peer, deadline, true).await.map(drop)
    }

    /// The peers with an open, authenticated connection.
    pub fn connected_peers(&self) -> Vec<AccountId> {
        let st = self.inner.lock();
        st.links
            .iter()
            .filter(|(_, l)| l.conn.is_some())
            .map(|(a, _)| *a)
            .collect()
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        let inner = &self.inner;
        let mut st = inner.lock();
        inner.prune_held(&mut st);
        TransportStats {
            connected_peers: st.links.values().filter(|l| l.conn.is_some()).count(),
            dials: inner.dials.load(Ordering::Relaxed),
            inbound: inner.inbound.load(Ordering::Relaxed),
            handshakes_ok: inner.handshakes_ok.load(Ordering::Relaxed),
            held_messages: st.held_count,
            held_bytes: st.held_bytes,
        }
    }

    /// Stops everything: [`serve`](Self::serve) returns, connections close, dialling stops,
    /// open sessions' `recv` returns `None` and held messages are discarded. Not reversible.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        {
            // Closed before the signal: a dial loop woken by the signal must find it set.
            let mut st = inner.lock();
            st.closed = true;
            st.sessions.clear();
            st.held.clear();
            st.held_count = 0;
            st.held_bytes = 0;
            for link in st.links.values_mut() {
                link.pending.clear();
                if let Some(conn) = &link.conn {
                    conn.control.kill.notify_one();
                }
            }
        }
        inner.shutdown.send_replace(true);
    }
}

/// Resolves once the transport shuts down. Drops watch's read guard before returning, which
/// would otherwise make the caller's future `!Send`.
pub(crate) async fn shut_down(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|down| *down).await;
}

/// Websocket upgrade callback: only [`WS_PATH`] exists.
#[allow(clippy::result_large_err)] // the signature is tungstenite's
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == WS_PATH {
        Ok(response)
    } else {
        let mut not_found = ErrorResponse::new(Some("not found".into()));
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        Err(not_found)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> &TransportConfig {
        &self.config
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The peer with the larger account id dials.
    fn dials(&self, peer: &AccountId) -> bool {
        self.me.as_bytes() > peer.as_bytes()
    }

    /// Starts the dial loop for `peer` unless one runs. Call with the state locked.
    fn ensure_dialer(self: &Arc<Self>, st: &mut State, peer: AccountId) {
        let link = st.links.entry(peer).or_insert_with(Link::new);
        link.wanted = true;
        if link.dialing {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(%peer, "no tokio runtime: cannot dial");
            return;
        };
        link.dialing = true;
        runtime.spawn(self.clone().dial_loop(peer));
    }

    /// Waits for a connection to `peer` until `deadline`, starting the dialler if we dial.
    async fn connection(
        self: &Arc<Self>,
        peer: &AccountId,
        deadline: Instant,
        return_dial_errors: bool,
    ) -> Result<mpsc::Sender<Outgoing>, TransportError> {
        let started = Instant::now();
        loop {
            let mut events = {
                let mut st = self.lock();
                if st.closed {
                    return Err(TransportError::Shutdown);
                }
                if !st.peers.contains_key(peer) {
                    return Err(TransportError::UnknownPeer(*peer));
                }
                let link = st.links.entry(*peer).or_insert_with(Link::new);
                if let Some(conn) = &link.conn {
                    return Ok(conn.queue.clone());
                }
                let events = link.events.subscribe();
                if self.dials(peer) {
                    self.ensure_dialer(&mut st, *peer);
                }
                events
            };
            match tokio::time::timeout_at(deadline, events.changed()).await {
                Ok(Ok(())) => {
                    if return_dial_errors
                        && let LinkEvent::DialFailed(e) = &*events.borrow_and_update()
                    {
                        return Err(e.clone());
                    }
                }
                Ok(Err(_)) => return Err(TransportError::Shutdown),
                Err(_) => {
                    let last_error = self
                        .lock()
                        .links
                        .get(peer)
                        .and_then(|l| l.last_error.as_ref())
                        .map(ToString::to_string);
                    return Err(TransportError::Timeout {
                        peer: *peer,
                        waited: started.elapsed(),
                        last_error,
                    });
                }
            }
        }
    }

    /// Queues `out` for `peer`, waiting up to `send_timeout` for a connection and queue room.
    async fn send_to(
        self: &Arc<Self>,
        peer: &AccountId,
        out: Outgoing,
    ) -> Result<(), TransportError> {
        let started = Instant::now();
        let deadline = started + self.config.send_timeout;
        loop {
            let queue = self.connection(peer, deadline, false).await?;
            match tokio::time::timeout_at(deadline, queue.send(out.clone())).await {
                Ok(Ok(())) => return Ok(()),
                // The connection closed under us: wait for the next one.
                Ok(Err(_)) => tokio::task::yield_now().await,
                Err(_) => {
                    return Err(TransportError::Timeout {
                        peer: *peer,
                        waited: started.elapsed(),
                        last_error: Some("the connection's send queue stayed full".into()),
                    });
                }
            }
        }
    }

    /// Keeps `peer` connected while it is in the directory (and, with `persistent_connections`
    /// off, while it is wanted): dial, run, redial with backoff.
    async fn dial_loop(self: Arc<Self>, peer: AccountId) {
        let mut shutdown = self.shutdown_signal();
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        loop {
            let record = {
                let mut st = self.lock();
                let record = if st.closed || !self.still_wanted(&st, &peer) {
                    None
                } else {
                    st.peers.get(&peer).cloned()
                };
                match record {
                    Some(r) => r,
                    // Under the lock, so `ensure_dialer` either sees `dialing` cleared or its
                    // `wanted` is seen here.
                    None => {
                        if let Some(link) = st.links.get_mut(&peer) {
                            link.dialing = false;
                        }
                        return;
                    }
                }
            };
            self.dials.fetch_add(1, Ordering::Relaxed);
            let attempt = tokio::time::timeout(self.config.handshake_timeout, self.dial(&record))
                .await
                .unwrap_or_else(|_| {
                    Err(TransportError::Handshake {
                        peer: peer.to_string(),
                        reason: format!("timed out after {:?}", self.config.handshake_timeout),
                    })
                });
            let pause = match attempt {
                Ok((ws, est)) => {
                    m::handshake("initiator", "ok");
                    backoff.reset();
                    let retired = self.run_connection(ws, est).await;
                    // We closed it on purpose, or nobody needs the peer: no reason to wait.
                    if retired || !self.still_wanted(&self.lock(), &peer) {
                        Duration::ZERO
                    } else {
                        // Redial soon, but never in a tight loop against a peer that hangs up.
                        self.config.backoff_initial
                    }
                }
                Err(e) => {
                    let result = match &e {
                        TransportError::Refused { code, .. } => code.as_str().to_owned(),
                        _ => "failed".to_owned(),
                    };
                    m::handshake("initiator", &result);
                    tracing::warn!(%peer, endpoint = %record.endpoint, error = %e, retry_in = ?backoff.current(), "dial failed");
                    {
                        let mut st = self.lock();
                        let link = st.links.entry(peer).or_insert_with(Link::new);
                        link.last_error = Some(e.clone());
                        link.events.send_replace(LinkEvent::DialFailed(e));
                    }
                    let pause = backoff.next_wait();
                    if self.still_wanted(&self.lock(), &peer) {
                        pause
                    } else {
                        Duration::ZERO
                    }
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = shut_down(&mut shutdown) => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Whether the dial loop for `peer` should go on: always with persistent connections,
    /// else while a session (or a sender) needs the peer.
    fn still_wanted(&self, st: &State, peer: &AccountId) -> bool {
        self.config.persistent_connections || st.links.get(peer).is_some_and(|l| l.wanted)
    }

    /// One dial: TCP, websocket upgrade, Noise as initiator.
    async fn dial(
        &self,
        record: &ValidatorInfo,
    ) -> Result<(WebSocketStream<TcpStream>, Established), TransportError> {
        let fail = |reason: String| TransportError::Handshake {
            peer: record.account.to_string(),
            reason,
        };
        let stream = TcpStream::connect(record.endpoint.as_str())
            .await
            .map_err(|e| fail(format!("connect to {}: {e}", record.endpoint)))?;
        let _ = stream.set_nodelay(true);
        let url = format!("ws://{}{WS_PATH}", record.endpoint);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(websocket_config()))
                .await
                .map_err(|e| fail(format!("websocket upgrade: {e}")))?;
        let est = handshake::initiate(&mut ws, &self.identity, record).await?;
        Ok((ws, est))
    }

    /// Registers an established connection (replacing an older one), drives it, unregisters.
    /// Returns whether it ended because it was retired (no open session needed the peer).
    async fn run_connection<S>(self: &Arc<Self>, ws: WebSocketStream<S>, est: Established) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let peer = est.peer;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, rx) = mpsc::channel(QUEUE_PER_CONNECTION);
        let control = Arc::new(Control::new());
        let after;
        {
            let mut st = self.lock();
            if st.closed {
                return false;
            }
            let Some(record) = st.peers.get(&peer) else {
                return false;
            };
            let remote_static = record.x25519;
            let persistent = self.config.persistent_connections;
            let dials = self.dials(&peer);
            let link = st.links.entry(peer).or_insert_with(Link::new);
            let fresh = ConnHandle {
                id,
                remote_static,
                queue,
                control: control.clone(),
            };
            if let Some(old) = link.conn.replace(fresh) {
                tracing::info!(%peer, "a newer connection replaces the older one");
                old.control.kill.notify_one();
            }
            after = if persistent {
                None
            } else {
                link.last.replace(control.clone())
            };
            if !link.pending.is_empty() {
                control.pending.notify_one();
            }
            link.last_error = None;
            link.events.send_replace(LinkEvent::Connected);
            if !persistent && dials && !link.wanted {
                // Every session that wanted it ended while we dialled.
                link.retire(&peer);
            }
        }
        // Successors wait for `done`; set it even if this task is dropped.
        let _done = SetDone(control.clone());
        self.handshakes_ok.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(m::CONNECTIONS).increment(1.0);
        tracing::info!(%peer, "validator connection open");

        let ended = conn::run(self, ws, est, rx, &control, after).await;

        metrics::gauge!(m::CONNECTIONS).decrement(1.0);
        tracing::info!(%peer, reason = %ended.reason, "validator connection closed");
        let mut st = self.lock();
        if let Some(link) = st.links.get_mut(&peer)
            && link.conn.as_ref().is_some_and(|c| c.id == id)
        {
            link.conn = None;
            link.events.send_replace(LinkEvent::Disconnected);
        }
        self.stash_unsent(&mut st, peer, ended.unsent);
        control.is_retired()
    }

    /// Keeps messages a connection did not write for the next connection to `peer`, for up
    /// to `send_timeout`. Call with the state locked.
    fn stash_unsent(self: &Arc<Self>, st: &mut State, peer: AccountId, unsent: Vec<Outgoing>) {
        if unsent.is_empty() || st.closed {
            return;
        }
        tracing::debug!(%peer, count = unsent.len(), "messages not written; they go out on the next connection");
        let deadline = Instant::now() + self.config.send_timeout;
        let dial = self.dials(&peer) && st.peers.contains_key(&peer);
        let link = st.links.entry(peer).or_insert_with(Link::new);
        link.pending
            .extend(unsent.into_iter().map(|out| (out, deadline)));
        if let Some(conn) = &link.conn {
            conn.control.pending.notify_one();
        } else if dial {
            self.ensure_dialer(st, peer);
        }
        let inner = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            inner.expire_pending(&mut inner.lock(), &peer);
        });
    }

    /// The messages waiting for the next connection to `peer`, oldest first.
    pub(crate) fn take_pending(&self, peer: &AccountId) -> Vec<Outgoing> {
        let mut st = self.lock();
        self.expire_pending(&mut st, peer);
        st.links.get_mut(peer).map_or_else(Vec::new, |link| {
            link.pending.drain(..).map(|(out, _)| out).collect()
        })
    }

    /// Drops waiting messages whose `send_timeout` passed without a connection.
    fn expire_pending(&self, st: &mut State, peer: &AccountId) {
        let Some(link) = st.links.get_mut(peer) else {
            return;
        };
        let now = Instant::now();
        while link
            .pending
            .front()
            .is_some_and(|(_, deadline)| *deadline <= now)
        {
            let (out, _) = link.pending.pop_front().expect("front exists");
            m::dropped("send_timeout");
            tracing::warn!(%peer, session = %out.session, "dropping a message: no connection to the peer within send_timeout");
        }
    }

    /// Hands a reassembled message to its session, or holds it until the session opens.
    pub(crate) fn deliver(
        &self,
        from: AccountId,
        kind: Kind,
        session: SessionId,
        payload: Vec<u8>,
    ) {
        let mut st = self.lock();
        if let Some(slot) = st.sessions.get(&session) {
            if slot.members.contains(&from) {
                let _ = slot.tx.send(Incoming {
                    from,
                    kind,
                    payload,
                });
            } else {
                m::dropped("not_member");
                tracing::warn!(%from, %session, "dropping message from a peer that is not a session member");
            }
            return;
        }
        self.prune_held(&mut st);
        let fits = st.held_count < self.config.hold_max_messages
            && st.held_bytes + payload.len() <= self.config.hold_max_bytes;
        if !fits {
            m::dropped("hold_full");
            tracing::warn!(%from, %session, size = payload.len(), "dropping message for an unopened session: holding area full");
            return;
        }
        st.held_count += 1;
        st.held_bytes += payload.len();
        st.held.entry(session).or_default().push_back(Held {
            from,
            kind,
            payload,
            at: Instant::now(),
        });
    }

    /// Drops held messages older than `hold_unclaimed`.
    fn prune_held(&self, st: &mut State) {
        let now = Instant::now();
        let hold = self.config.hold_unclaimed;
        let mut freed = (0, 0);
        st.held.retain(|session, queue| {
            while let Some(front) = queue.front() {
                if now.duration_since(front.at) < hold {
                    break;
                }
                let held = queue.pop_front().expect("front exists");
                freed.0 += 1;
                freed.1 += held.payload.len();
                m::dropped("hold_expired");
                tracing::warn!(from = %held.from, %session, "dropping message: its session did not open within hold_unclaimed");
            }
            !queue.is_empty()
        });
        st.held_count -= freed.0;
        st.held_bytes -= freed.1;
    }
}

/// This node's end of one session. Dropping it closes the session here; later messages for
/// it are held like those of a session not yet open.
pub struct Session {
    inner: Arc<Inner>,
    id: SessionId,
    token: u64,
    members: Arc<HashSet<AccountId>>,
    rx: mpsc::UnboundedReceiver<Incoming>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// A cloneable handle that sends on this session, for senders that must not hold the
    /// receiving end (sending can wait for a connection; receiving must not wait behind it).
    pub fn sender(&self) -> SessionSender {
        SessionSender {
            inner: self.inner.clone(),
            id: self.id,
            members: self.members.clone(),
        }
    }

    /// Sends `payload` to one other member; see [`SessionSender::send`].
    pub async fn send(&self, to: &AccountId, payload: Vec<u8>) -> Result<(), TransportError> {
        self.sender().send(to, payload).await
    }

    /// Sends `payload` to every other member; see [`SessionSender::broadcast`].
    pub async fn broadcast(&self, payload: Vec<u8>) -> Result<(), TransportError> {
        self.sender().broadcast(payload).await
    }

    /// The next message from a member, in arrival order per peer. `None` once the transport
    /// shuts down. Messages queue without bound until received: keep receiving or drop the
    /// session.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }

    /// A message if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st
            .sessions
            .get(&self.id)
            .is_some_and(|s| s.token == self.token)
        {
            st.sessions.remove(&self.id);
        }
        if !inner.config.persistent_connections {
            let closed = st.closed;
            for peer in self.members.iter().filter(|p| **p != inner.me) {
                if let Some(link) = st.links.get_mut(peer) {
                    link.sessions = link.sessions.saturating_sub(1);
                    if link.sessions == 0 && !closed {
                        link.retire(peer);
                    }
                }
            }
        }
    }
}

/// Marks a connection's driver as finished when dropped.
struct SetDone(Arc<Control>);

impl Drop for SetDone {
    fn drop(&mut self) {
        self.0.done.send_replace(true);
    }
}

/// Sends on one session; cheap to clone and usable from any task. See [`Session::sender`].
#[derive(Clone)]
pub struct SessionSender {
    inner: Arc<Inner>,
    id: SessionId,
    members: Arc<HashSet<AccountId>>,
}

impl std::fmt::Debug for SessionSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSender")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SessionSender {
    /// Sends `payload` to one other member (kind [`Kind::Direct`]). Returns once the message
    /// is queued on the peer's connection, waiting up to `send_timeout` for one.
    pub async fn send(&self, to: &AccountId, payload: Vec<u8>) -> Result<(), TransportError> {
        if *to == self.inner.me || !self.members.contains(to) {
            return Err(TransportError::NotSessionMember {
                peer: *to,
                session: self.id,
            });
        }
        self.check_size(payload.len())?;
        let out = Outgoing {
            session: self.id,
            kind: Kind::Direct,
            payload: Arc::new(payload),
        };
        self.inner.send_to(to, out).await
    }

    /// Sends `payload` to every other member (kind [`Kind::Broadcast`]), to all peers at once.
    /// Every peer is attempted; the first error is returned.
    pub async fn broadcast(&self, payload: Vec<u8>) -> Result<(), TransportError> {
        self.check_size(payload.len())?;
        let out = Outgoing {
            session: self.id,
            kind: Kind::Broadcast,
            payload: Arc::new(payload),
        };
        let sends = self
            .members
            .iter()
            .filter(|p| **p != self.inner.me)
            .map(|p| self.inner.send_to(p, out.clone()));
        futures::future::join_all(sends)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(drop)
    }

    fn check_size(&self, size: usize) -> Result<(), TransportError> {
        let max = self.inner.config.message_cap();
        if size > max {
            return Err(TransportError::MessageTooLarge { size, max });
        }
        Ok(())
    }
}
