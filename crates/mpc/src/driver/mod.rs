//! The async loop that drives one manul session over a [`Channel`]: sends this party's
//! messages, feeds received ones to the engine, enforces the round timeout and turns a failed
//! session's report into named faults.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use manul::{
    protocol::{LocalError, Protocol},
    session::{
        CanFinalize, Message, PreprocessOutcome, RoundOutcome, Session, SessionOutcome,
        SessionReport,
    },
};
use rand_core::OsRng;
use serde::Serialize;
use sigil_primitives::AccountId;
use tokio::sync::mpsc;

use crate::{
    channel::{Channel, ChannelSender},
    error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind, SessionFailure},
    evidence::Wire,
    party::{Party, SigilSession},
};

/// Timing and behaviour of sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How long one round may take before the parties that have not sent are named unresponsive.
    /// Production-parameter rounds spend seconds in proofs, so keep this generous.
    pub round_timeout: Duration,
    /// Fault injection: the misbehaviour this party commits, if any.
    #[cfg(feature = "fault-injection")]
    pub fault: Option<crate::fault::InjectedFault>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            round_timeout: Duration::from_secs(120),
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }
}

impl SessionConfig {
    /// The default configuration with another round timeout.
    // Without `fault-injection` every field is set, so the update is needless there.
    #[allow(clippy::needless_update)]
    pub fn with_round_timeout(round_timeout: Duration) -> Self {
        Self {
            round_timeout,
            ..Self::default()
        }
    }
}

/// What a finished operation cost this party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Rounds completed.
    pub rounds: u32,
    /// Wall-clock time from start to result.
    pub wall: Duration,
    /// CPU time this party spent creating, verifying and finalizing (thread time of its work).
    pub cpu: Duration,
    /// Messages handed to the channel.
    pub messages_sent: u64,
    /// Bytes handed to the channel.
    pub bytes_sent: u64,
    /// Messages received for this session.
    pub messages_received: u64,
    /// Bytes received for this session.
    pub bytes_received: u64,
    /// Every completed round, in the order this party went through them (all phases of the
    /// operation); one entry per round counted in `rounds`.
    pub rounds_profile: Vec<RoundProfile>,
}

/// What one completed round of a session cost this party: where a signature's time goes.
///
/// Rounds are manul's: each synedrion round that sends an echo broadcast is followed by an
/// echo round (`Round N (echo)`), in which the parties confirm they all got the same broadcast
/// and whose finalization runs the synedrion round's own finalization. The crate documentation
/// lists what each round of interactive signing computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundProfile {
    /// The protocol (phase of the operation) the round belongs to.
    pub protocol: ProtocolKind,
    /// The round as the engine (manul) names it, e.g. `Round 2` or `Round 2 (echo)`.
    pub round: String,
    /// Thread CPU time this party spent on the round: making its messages, checking received
    /// ones (part signatures, then the proofs), and finalizing, which in manul also builds the
    /// next round and its broadcasts. The first round of a phase also carries the creation of
    /// the phase's session (synedrion's entry round), even when that ran in the background.
    /// Work runs on the blocking pool in parallel, so this can exceed `wall`.
    pub cpu: Duration,
    /// Wall-clock time from the round's start to the end of its finalization. A round starts
    /// when the previous one is finalized; the first of a phase when this party began creating
    /// the phase's session, or when the previous phase ended if it was created in the
    /// background.
    pub wall: Duration,
    /// The part of `wall` this party spent blocked on the channel with none of its own work
    /// running, while the round still needed messages: waiting on its peers and the network.
    pub waiting: Duration,
    /// Messages this party sent in the round.
    pub messages_sent: u64,
    /// Bytes this party sent in the round.
    pub bytes_sent: u64,
    /// Messages received for the round (one that arrived early, during the previous round,
    /// counts here), plus undecodable or refused ones received during it.
    pub messages_received: u64,
    /// Bytes of `messages_received`.
    pub bytes_received: u64,
}

impl RoundProfile {
    /// The part of `wall` this party had work of its own in progress (computing, or that work
    /// waiting for a free core): `wall - waiting`.
    pub fn busy(&self) -> Duration {
        self.wall.saturating_sub(self.waiting)
    }
}

/// Where a piece of engine work adds its thread CPU time: the operation's total and the
/// current round's (or the session creation's) share of it.
#[derive(Clone)]
pub(crate) struct CpuMeter {
    total: Arc<AtomicU64>,
    part: Arc<AtomicU64>,
}

impl CpuMeter {
    fn new(total: &Arc<AtomicU64>) -> Self {
        Self {
            total: total.clone(),
            part: Arc::new(AtomicU64::new(0)),
        }
    }

    fn add(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.total.fetch_add(nanos, Ordering::Relaxed);
        self.part.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts `time`, already in the total, in this meter's part (work done before the round).
    fn carry(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.part.fetch_add(nanos, Ordering::Relaxed);
    }

    /// What was added through this meter.
    fn part(&self) -> Duration {
        Duration::from_nanos(self.part.load(Ordering::Relaxed))
    }
}

/// One party's end of an operation that may run several protocols in turn (phases). Messages
/// for later phases that arrive early are kept until their phase starts.
pub(crate) struct Link<'c, C> {
    channel: &'c mut C,
    me: AccountId,
    parties: BTreeSet<AccountId>,
    phase: u8,
    /// Messages for later phases, with their phase and size.
    early: Vec<(u8, usize, Incoming)>,
    cpu_nanos: Arc<AtomicU64>,
    stats: SessionStats,
    /// When the operation started.
    opened: Instant,
    /// When the last phase ended (or the operation started): the earliest a phase's first
    /// round can be said to start.
    idle_since: Instant,
    /// Every protocol message each party sent us, with its phase, as received: what a fault
    /// report proves things with.
    received: BTreeMap<AccountId, Vec<(u8, Vec<u8>)>>,
    /// One queue and sending task per peer: order is kept per peer, and a peer that is slow to
    /// connect delays nobody else. The tasks flush and end when the link is dropped.
    outboxes: BTreeMap<AccountId, mpsc::UnboundedSender<Vec<u8>>>,
    /// The last phase this party told the others it stopped.
    stopped: Option<u8>,
    /// The misbehaviour this party commits (fault injection).
    #[cfg(feature = "fault-injection")]
    fault: Option<crate::fault::InjectedFault>,
}

enum Incoming {
    Message(AccountId, Box<Message<Party>>),
    /// The sender stopped the phase, naming these faults.
    Abort(AccountId, Vec<(AccountId, FaultKind)>),
    Undecodable(AccountId, String),
}

impl<'c, C: Channel> Link<'c, C> {
    pub(crate) fn new(channel: &'c mut C, me: AccountId, parties: BTreeSet<AccountId>) -> Self {
        Self {
            channel,
            me,
            parties,
            phase: 0,
            early: Vec::new(),
            cpu_nanos: Arc::new(AtomicU64::new(0)),
            stats: SessionStats::default(),
            opened: Instant::now(),
            idle_since: Instant::now(),
            received: BTreeMap::new(),
            outboxes: BTreeMap::new(),
            stopped: None,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    pub(crate) fn stats(&self) -> SessionStats {
        let mut stats = self.stats.clone();
        stats.cpu = Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed));
        stats
    }

    /// Moves to the next phase; messages for it that arrived early are served first.
    pub(crate) fn next_phase(&mut self) {
        self.phase += 1;
    }

    fn send(&mut self, to: &Party, message: Message<Party>) {
        let wire = Wire::Protocol {
            phase: self.phase,
            message,
        };
        self.push(to.0, &wire);
    }

    /// Tells every peer, once per phase, that this party stopped the phase and whom it named,
    /// so that they stop waiting for it and do not take its silence for its own fault.
    fn abort(&mut self, faults: Vec<(AccountId, FaultKind)>) {
        if self.stopped == Some(self.phase) {
            return;
        }
        self.stopped = Some(self.phase);
        let wire: Wire<Message<Party>> = Wire::Abort {
            phase: self.phase,
            faults,
        };
        let peers: Vec<AccountId> = self
            .parties
            .iter()
            .filter(|peer| **peer != self.me)
            .copied()
            .collect();
        for peer in peers {
            self.push(peer, &wire);
        }
    }

    fn push<M: Serialize>(&mut self, to: AccountId, wire: &Wire<M>) {
        if self.withheld(&to) {
            return;
        }
        let bytes = match postcard::to_allocvec(wire) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot encode a protocol message");
                return;
            }
        };
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let outbox = self.outboxes.entry(to).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
            let sender = self.channel.sender();
            tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    // An unreachable peer shows up as unresponsive when the round times out.
                    if let Err(error) = sender.send(to, bytes).await {
                        tracing::warn!(%error, "protocol message not sent");
                    }
                }
            });
            tx
        });
        let _ = outbox.send(bytes);
    }

    /// Whether fault injection keeps this party from sending to `to`.
    #[cfg(feature = "fault-injection")]
    fn withheld(&self, to: &AccountId) -> bool {
        use crate::fault::InjectedFault;
        match &self.fault {
            Some(InjectedFault::Silent) => true,
            Some(InjectedFault::DropTo(peer)) => peer == to,
            _ => false,
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn withheld(&self, _to: &AccountId) -> bool {
        false
    }

    /// The next message for the current phase, with its size. Cancel-safe: early messages are
    /// stashed before any await point.
    async fn recv(&mut self) -> Option<(Incoming, usize)> {
        loop {
            if let Some(index) = self
                .early
                .iter()
                .position(|(phase, _, _)| *phase == self.phase)
            {
                let (_, len, incoming) = self.early.swap_remove(index);
                return Some((incoming, len));
            }
            let (from, bytes) = self.channel.recv().await?;
            if !self.parties.contains(&from) || from == self.me {
                tracing::warn!(%from, "dropped a protocol message from outside the session");
                continue;
            }
            self.stats.messages_received += 1;
            self.stats.bytes_received += bytes.len() as u64;
            let len = bytes.len();
            let (phase, incoming) = match postcard::from_bytes::<Wire<Message<Party>>>(&bytes) {
                Err(error) => return Some((Incoming::Undecodable(from, error.to_string()), len)),
                Ok(Wire::Protocol { phase, message }) => {
                    if message.destination().0 != self.me {
                        return Some((
                            Incoming::Undecodable(
                                from,
                                "message addressed to another party".into(),
                            ),
                            len,
                        ));
                    }
                    self.received.entry(from).or_default().push((phase, bytes));
                    (phase, Incoming::Message(from, Box::new(message)))
                }
                Ok(Wire::Abort { phase, faults }) => (phase, Incoming::Abort(from, faults)),
            };
            match phase.cmp(&self.phase) {
                std::cmp::Ordering::Equal => return Some((incoming, len)),
                std::cmp::Ordering::Greater => self.early.push((phase, len, incoming)),
                std::cmp::Ordering::Less => {
                    tracing::debug!(%from, "dropped a message for a finished phase")
                }
            }
        }
    }
}

/// Runs `f` on the blocking pool, adding its thread CPU time to `meter`.
async fn blocking<R: Send + 'static>(
    meter: &CpuMeter,
    corrupt: bool,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, MpcError> {
    let meter = meter.clone();
    tokio::task::spawn_blocking(move || {
        let start = cpu_time::ThreadTime::now();
        let result = with_fault(corrupt, f);
        meter.add(start.elapsed());
        result
    })
    .await
    .map_err(|error| MpcError::Local(format!("engine task failed: {error}")))
}

#[cfg(feature = "fault-injection")]
fn with_fault<R>(corrupt: bool, f: impl FnOnce() -> R) -> R {
    crate::fault::with_corruption(corrupt, f)
}

#[cfg(not(feature = "fault-injection"))]
fn with_fault<R>(_corrupt: bool, f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether this party corrupts its payloads (fault injection).
fn corrupting(config: &SessionConfig) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        config.fault == Some(crate::fault::InjectedFault::Corrupt)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = config;
        false
    }
}

/// A session ready to run.
pub(crate) struct Started<P: Protocol<Party>> {
    session: Session<P, SigilSession>,
    /// When creating the session began.
    created_at: Instant,
    /// CPU time creating it took (synedrion's entry round).
    setup_cpu: Duration,
    /// A second, independent run of the same session whose first-round messages go to some
    /// peers instead of the real ones (fault injection: equivocation).
    #[cfg(feature = "fault-injection")]
    shadow: Option<Session<P, SigilSession>>,
}

/// Creates a session on the blocking pool (entry rounds can generate Paillier keys).
pub(crate) async fn new_session<EP>(
    link_cpu: &Arc<AtomicU64>,
    config: &SessionConfig,
    session_id: manul::session::SessionId,
    signer: crate::party::PartySigner,
    entry_point: EP,
) -> Result<Started<EP::Protocol>, MpcError>
where
    EP: manul::protocol::EntryPoint<Party> + Clone + Send + 'static,
    EP::Protocol: Send + Sync,
    <EP::Protocol as Protocol<Party>>::ProtocolError: Send + Sync,
    <EP::Protocol as Protocol<Party>>::Result: Send,
{
    #[cfg(feature = "fault-injection")]
    let fault = config.fault.clone();
    let created_at = Instant::now();
    let meter = CpuMeter::new(link_cpu);
    let created = blocking(&meter, corrupting(config), move || {
        #[cfg(feature = "fault-injection")]
        {
            use crate::fault::{InjectedFault, Misbound};
            let shadow = match fault {
                Some(InjectedFault::Equivocate) => Some(Session::new(
                    &mut OsRng,
                    session_id.clone(),
                    signer.clone(),
                    entry_point.clone(),
                )?),
                _ => None,
            };
            let session = match fault {
                Some(InjectedFault::BadProof) => {
                    Session::new(&mut OsRng, session_id, signer, Misbound(entry_point))?
                }
                _ => Session::new(&mut OsRng, session_id, signer, entry_point)?,
            };
            Ok::<_, LocalError>((session, shadow))
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            Session::new(&mut OsRng, session_id, signer, entry_point)
        }
    })
    .await?
    .map_err(MpcError::from)?;
    #[cfg(feature = "fault-injection")]
    let (session, shadow) = created;
    #[cfg(not(feature = "fault-injection"))]
    let session = created;
    Ok(Started {
        session,
        created_at,
        setup_cpu: meter.part(),
        #[cfg(feature = "fault-injection")]
        shadow,
    })
}

/// The shadow run's first-round messages for the second half of the peers (the first half gets
/// the real ones), so the two halves receive different broadcasts.
#[cfg(feature = "fault-injection")]
async fn equivocation<P>(
    cpu: &CpuMeter,
    shadow: Session<P, SigilSession>,
) -> Result<BTreeMap<Party, Message<Party>>, MpcError>
where
    P: Protocol<Party> + Send + Sync,
    P::ProtocolError: Send + Sync,
{
    blocking(cpu, false, move || {
        let destinations: Vec<Party> = shadow.message_destinations().iter().copied().collect();
        if destinations.len() < 2 {
            tracing::warn!("equivocation needs two peers to be seen");
        }
        destinations[destinations.len().div_ceil(2)..]
            .iter()
            .map(|destination| {
                let (message, _) = shadow.make_message(&mut OsRng, destination)?;
                Ok((*destination, message))
            })
            .collect::<Result<BTreeMap<_, _>, LocalError>>()
    })
    .await?
    .map_err(MpcError::from)
}

impl<C> Link<'_, C> {
    pub(crate) fn cpu_counter(&self) -> &Arc<AtomicU64> {
        &self.cpu_nanos
    }

    /// The protocol messages received in the current phase, by sender.
    fn phase_messages(&self) -> BTreeMap<AccountId, Vec<&[u8]>> {
        self.received
            .iter()
            .map(|(from, messages)| {
                let current = messages
                    .iter()
                    .filter(|(phase, _)| *phase == self.phase)
                    .map(|(_, bytes)| bytes.as_slice())
                    .collect();
                (*from, current)
            })
            .collect()
    }
}

/// Results of blocking work coming back to the session loop (manul does not name these types,
/// so they stay generic and are inferred).
enum Work<Made, Processed> {
    Made(Party, Result<Made, LocalError>),
    Processed(Processed),
    /// Processing a message failed in the engine (a panic).
    Lost(MpcError),
}

/// What woke the session loop.
enum Event<W> {
    Work(W),
    Incoming(Option<(Incoming, usize)>),
    TimedOut,
}

enum RoundEnd {
    Ready,
    Never,
    TimedOut,
    ChannelClosed,
    Aborted,
}

/// Runs `session` to completion over the link's current phase.
pub(crate) async fn run<P, C>(
    link: &mut Link<'_, C>,
    protocol: ProtocolKind,
    started: Started<P>,
    config: &SessionConfig,
) -> Result<P::Result, MpcError>
where
    P: Protocol<Party> + Send + Sync,
    P::Result: Send,
    P::ProtocolError: Send + Sync,
    C: Channel,
{
    let started_at = Instant::now();
    let corrupt = corrupting(config);
    // The first round carries the cost of preparing the phase.
    let mut round_start = started.created_at.max(link.idle_since);
    let prepared = CpuMeter::new(link.cpu_counter());
    prepared.carry(started.setup_cpu);
    // Messages that replace this party's own to some peers (fault injection: equivocation).
    #[cfg(feature = "fault-injection")]
    let mut substitutes = {
        link.fault = config.fault.clone();
        match started.shadow {
            Some(shadow) => equivocation(&prepared, shadow).await?,
            None => BTreeMap::new(),
        }
    };
    #[cfg(not(feature = "fault-injection"))]
    let mut substitutes: BTreeMap<Party, Message<Party>> = BTreeMap::new();
    let engine_session = started.session.session_id().clone();
    let mut local_faults: BTreeMap<AccountId, String> = BTreeMap::new();
    // Parties that stopped this phase, with the faults they named.
    let mut aborted: Aborted = BTreeMap::new();
    // Senders of messages cached for the next round.
    let mut early_senders: BTreeSet<AccountId> = BTreeSet::new();
    // Messages and bytes cached for the next round, counted there.
    let mut early_received = (0u64, 0u64);
    let mut carried_cpu = prepared.part();
    let mut session = Arc::new(started.session);
    let mut cached = Vec::new();

    // Verification never corrupts: only outgoing payloads are under fault injection.
    macro_rules! spawn_processing {
        ($work_tx:expr, $meter:expr, $message:expr) => {{
            let session = session.clone();
            let work_tx = $work_tx.clone();
            let cpu = $meter.clone();
            let message = $message;
            tokio::spawn(async move {
                let work =
                    match blocking(&cpu, false, move || session.process_message(message)).await {
                        Ok(processed) => Work::Processed(processed),
                        // Reported, or the round would wait for it forever.
                        Err(error) => Work::Lost(error),
                    };
                let _ = work_tx.send(work);
            });
        }};
    }
    macro_rules! apply_work {
        ($accum:expr, $work:expr) => {
            match $work {
                Work::Made(destination, made) => {
                    let (message, artifact) = made?;
                    let message = substitutes.remove(&destination).unwrap_or(message);
                    link.send(&destination, message);
                    session.add_artifact(&mut $accum, artifact)?;
                }
                Work::Processed(processed) => {
                    session.add_processed_message(&mut $accum, processed)?
                }
                Work::Lost(error) => return Err(error),
            }
        };
    }

    // In a block so that every way out, `?` included, passes the abort notice below.
    let result: Result<P::Result, MpcError> = async {
        loop {
            let round = session.round_id().to_string();
            tracing::debug!(%protocol, %round, "round starts");
            let deadline = tokio::time::Instant::now() + config.round_timeout;
            let meter = CpuMeter::new(link.cpu_counter());
            meter.carry(std::mem::take(&mut carried_cpu));
            let sent_before = (link.stats.messages_sent, link.stats.bytes_sent);
            let mut received = std::mem::take(&mut early_received);
            let mut waiting = Duration::ZERO;
            let mut accum = session.make_accumulator();
            let (work_tx, mut work_rx) = mpsc::unbounded_channel();
            let mut in_flight = 0usize;
            // Parties whose message for this round is in hand.
            let mut delivered = std::mem::take(&mut early_senders);

            for destination in session.message_destinations().clone() {
                let session = session.clone();
                let work_tx = work_tx.clone();
                let cpu = meter.clone();
                in_flight += 1;
                tokio::spawn(async move {
                    let made = blocking(&cpu, corrupt, move || {
                        session.make_message(&mut OsRng, &destination)
                    })
                    .await
                    .unwrap_or_else(|error| Err(LocalError::new(error.to_string())));
                    let _ = work_tx.send(Work::Made(destination, made));
                });
            }
            for message in std::mem::take(&mut cached) {
                spawn_processing!(work_tx, meter, message);
                in_flight += 1;
            }

            let mut channel_open = true;
            let end = loop {
                if in_flight == 0 {
                    match session.can_finalize(&accum) {
                        CanFinalize::Yes => break RoundEnd::Ready,
                        CanFinalize::Never => break RoundEnd::Never,
                        CanFinalize::NotYet if !channel_open => break RoundEnd::ChannelClosed,
                        CanFinalize::NotYet => {}
                    }
                }
                // A party that stopped sends nothing more: waiting for it is pointless.
                if aborted.keys().any(|party| !delivered.contains(party)) {
                    break RoundEnd::Aborted;
                }
                // With none of its own work running, only a peer's message can move the round on.
                let idle_since = (in_flight == 0).then(Instant::now);
                let event = tokio::select! {
                    Some(work) = work_rx.recv() => Event::Work(work),
                    incoming = link.recv(), if channel_open => Event::Incoming(incoming),
                    _ = tokio::time::sleep_until(deadline) => Event::TimedOut,
                };
                if let Some(since) = idle_since {
                    waiting += since.elapsed();
                }
                let (incoming, len) = match event {
                    Event::Work(work) => {
                        in_flight -= 1;
                        apply_work!(accum, work);
                        continue;
                    }
                    Event::TimedOut => break RoundEnd::TimedOut,
                    // Finish the work in flight: the last messages may still complete the round.
                    Event::Incoming(None) => {
                        channel_open = false;
                        continue;
                    }
                    Event::Incoming(Some(message)) => message,
                };
                let len = len as u64;
                match incoming {
                    Incoming::Undecodable(from, reason) => {
                        received = (received.0 + 1, received.1 + len);
                        tracing::warn!(%from, %reason, "undecodable protocol message");
                        local_faults.entry(from).or_insert(reason);
                    }
                    Incoming::Abort(from, faults) => {
                        received = (received.0 + 1, received.1 + len);
                        tracing::info!(%from, ?faults, "a party stopped the session");
                        aborted.insert(from, faults);
                    }
                    Incoming::Message(from, message) => {
                        // Checking the part signatures is work of this round too.
                        let checking = cpu_time::ThreadTime::now();
                        let outcome =
                            session.preprocess_message(&mut accum, &Party(from), *message);
                        meter.add(checking.elapsed());
                        match outcome? {
                            PreprocessOutcome::ToProcess(verified) => {
                                received = (received.0 + 1, received.1 + len);
                                delivered.insert(from);
                                spawn_processing!(work_tx, meter, *verified);
                                in_flight += 1;
                            }
                            PreprocessOutcome::Cached => {
                                early_received = (early_received.0 + 1, early_received.1 + len);
                                early_senders.insert(from);
                                tracing::debug!(%from, "message for a later round cached");
                            }
                            rejected => {
                                received = (received.0 + 1, received.1 + len);
                                tracing::warn!(%from, ?rejected, "protocol message rejected");
                            }
                        }
                    }
                }
            };
            // Finish what is in flight so the session can be taken back.
            while in_flight > 0 {
                let Some(work) = work_rx.recv().await else {
                    break;
                };
                in_flight -= 1;
                apply_work!(accum, work);
            }
            drop(work_tx);
            let owned = Arc::into_inner(session)
                .ok_or_else(|| MpcError::Local("session still shared".into()))?;
            let reason = match end {
                RoundEnd::Ready => {
                    let outcome = blocking(&meter, corrupt, move || {
                        owned.finalize_round(&mut OsRng, accum)
                    })
                    .await??;
                    let finalized = Instant::now();
                    link.stats.rounds += 1;
                    link.stats.rounds_profile.push(RoundProfile {
                        protocol,
                        round: round.clone(),
                        cpu: meter.part(),
                        wall: finalized.saturating_duration_since(round_start),
                        waiting,
                        messages_sent: link.stats.messages_sent - sent_before.0,
                        bytes_sent: link.stats.bytes_sent - sent_before.1,
                        messages_received: received.0,
                        bytes_received: received.1,
                    });
                    round_start = finalized;
                    match outcome {
                        RoundOutcome::Finished(report) => {
                            let blame = Blame {
                                protocol,
                                round: &round,
                                engine_session: engine_session.as_ref(),
                                local_faults: &local_faults,
                            };
                            break finished(&blame, report, &aborted, link);
                        }
                        RoundOutcome::AnotherRound {
                            session: next,
                            cached_messages,
                        } => {
                            session = Arc::new(next);
                            cached = cached_messages;
                            continue;
                        }
                    }
                }
                RoundEnd::Never => FailureReason::Misbehaviour,
                RoundEnd::TimedOut => FailureReason::TimedOut,
                RoundEnd::ChannelClosed => FailureReason::ChannelClosed,
                RoundEnd::Aborted => FailureReason::Aborted,
            };
            let report = owned.terminate(accum)?;
            let blame = Blame {
                protocol,
                round: &round,
                engine_session: engine_session.as_ref(),
                local_faults: &local_faults,
            };
            let mut error = failure(&blame, reason, &report, &aborted, link);
            // Tell the others at once: one of them may be about to time out waiting for us.
            link.abort(findings(&error));
            // Parties still missing may be stopping too (their notice in flight): hear them out.
            if matches!(reason, FailureReason::TimedOut | FailureReason::Aborted) {
                let missing = report
                    .missing_messages
                    .values()
                    .flatten()
                    .map(|party| party.0);
                if await_aborts(link, missing.collect(), &mut aborted, config.round_timeout).await {
                    error = failure(&blame, reason, &report, &aborted, link);
                }
            }
            break Err(error);
        }
    }
    .await;
    if let Err(error) = &result {
        link.abort(findings(error));
    }
    // From the start of the operation, so that creating sessions (Paillier keys in aux-data
    // generation) counts too.
    link.idle_since = Instant::now();
    link.stats.wall = link.idle_since.saturating_duration_since(link.opened);
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    metrics::counter!("sigil_mpc_sessions_total", "protocol" => protocol.as_str(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sigil_mpc_session_seconds", "protocol" => protocol.as_str())
        .record(started_at.elapsed().as_secs_f64());
    result
}

/// The faults this party found itself (not those it was told of), for its abort notice.
fn findings(error: &MpcError) -> Vec<(AccountId, FaultKind)> {
    match error {
        MpcError::Failed(failure) => failure
            .faults
            .iter()
            .filter(|fault| fault.reported_by.is_none())
            .map(|fault| (fault.party, fault.kind))
            .collect(),
        _ => Vec::new(),
    }
}

/// After a round timed out or a party stopped it: a short wait for the parties about to be
/// named unresponsive to say they stopped because of someone else (their own round may have
/// timed out just before). Whether any did.
async fn await_aborts<C: Channel>(
    link: &mut Link<'_, C>,
    missing: BTreeSet<AccountId>,
    aborted: &mut Aborted,
    round_timeout: Duration,
) -> bool {
    let mut waiting: BTreeSet<AccountId> = missing
        .into_iter()
        .filter(|party| !aborted.contains_key(party))
        .collect();
    let deadline = tokio::time::Instant::now() + (round_timeout / 4).min(Duration::from_secs(5));
    let mut heard = false;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, link.recv()).await {
            Ok(Some((Incoming::Abort(from, faults), _))) => {
                waiting.remove(&from);
                aborted.insert(from, faults);
                heard = true;
            }
            // The session is over: other messages no longer matter.
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    heard
}

/// What naming the faults of a failed phase needs besides manul's report.
struct Blame<'a> {
    protocol: ProtocolKind,
    round: &'a str,
    /// manul's session id of the phase (what message parts are signed for).
    engine_session: &'a [u8],
    /// Undecodable messages, by sender.
    local_faults: &'a BTreeMap<AccountId, String>,
}

/// Parties that stopped a phase, with the faults they named.
type Aborted = BTreeMap<AccountId, Vec<(AccountId, FaultKind)>>;

fn finished<P: Protocol<Party>, C>(
    blame: &Blame<'_>,
    mut report: SessionReport<P, SigilSession>,
    aborted: &Aborted,
    link: &Link<'_, C>,
) -> Result<P::Result, MpcError> {
    let errors = report.provable_errors.len() + report.unprovable_errors.len();
    match std::mem::replace(&mut report.outcome, SessionOutcome::Terminated) {
        SessionOutcome::Result(result) => {
            if errors > 0 {
                tracing::warn!(protocol = %blame.protocol, errors, "session succeeded despite misbehaviour");
            }
            Ok(result)
        }
        SessionOutcome::NotEnoughMessages | SessionOutcome::Terminated => Err(failure(
            blame,
            FailureReason::Misbehaviour,
            &report,
            aborted,
            link,
        )),
    }
}

/// How manul's description of a provable error maps to a fault kind.
fn classify(description: &str) -> FaultKind {
    if description.starts_with("Echo round error: The echoed message is different") {
        FaultKind::Equivocation
    } else if description.starts_with("Protocol error") {
        FaultKind::FailedProof
    } else {
        FaultKind::InvalidMessage
    }
}

/// Which of two findings against one party is kept.
fn severity(kind: FaultKind) -> u8 {
    match kind {
        FaultKind::Unresponsive => 0,
        FaultKind::InvalidMessage => 1,
        FaultKind::FailedProof => 2,
        FaultKind::Equivocation => 3,
    }
}

/// Names every party at fault, most serious kind first: proven misbehaviour, then invalid
/// messages, then silence (its own observation, then what parties that stopped reported).
fn failure<P: Protocol<Party>, C>(
    blame: &Blame<'_>,
    reason: FailureReason,
    report: &SessionReport<P, SigilSession>,
    aborted: &Aborted,
    link: &Link<'_, C>,
) -> MpcError {
    let received = link.phase_messages();
    let mut faults: BTreeMap<AccountId, Fault> = BTreeMap::new();
    // Keyed by the sender of the message that showed the error; for a mismatched echo that is
    // the honest echoer, so the accused is the evidence's guilty party.
    for evidence in report.provable_errors.values() {
        let party = evidence.guilty_party().0;
        let description = evidence.description().to_string();
        let kind = classify(&description);
        if faults
            .get(&party)
            .is_some_and(|known| severity(known.kind) >= severity(kind))
        {
            continue;
        }
        let evidence = crate::evidence::record(
            kind,
            blame.protocol,
            blame.round,
            blame.engine_session,
            &party,
            &received,
        );
        faults.insert(
            party,
            Fault {
                party,
                kind,
                description,
                evidence,
                reported_by: None,
            },
        );
    }
    for (party, error) in &report.unprovable_errors {
        faults.entry(party.0).or_insert_with(|| Fault {
            party: party.0,
            kind: FaultKind::InvalidMessage,
            description: error.to_string(),
            evidence: None,
            reported_by: None,
        });
    }
    for (party, reason) in blame.local_faults {
        faults.entry(*party).or_insert_with(|| Fault {
            party: *party,
            kind: FaultKind::InvalidMessage,
            description: reason.clone(),
            evidence: None,
            reported_by: None,
        });
    }
    // A party that stopped because it named someone is not silent by its own fault.
    let stopped_for_cause =
        |party: &AccountId| aborted.get(party).is_some_and(|named| !named.is_empty());
    for (missing_round, parties) in &report.missing_messages {
        for party in parties.iter().filter(|party| !stopped_for_cause(&party.0)) {
            faults.entry(party.0).or_insert_with(|| Fault {
                party: party.0,
                kind: FaultKind::Unresponsive,
                description: format!("sent nothing in round {missing_round}"),
                evidence: None,
                reported_by: None,
            });
        }
    }
    // Silence toward another party cannot be seen from here: take its word (unproven, and
    // marked as such).
    for (reporter, named) in aborted {
        for (party, kind) in named {
            if *kind == FaultKind::Unresponsive && *party != link.me && !stopped_for_cause(party) {
                faults.entry(*party).or_insert_with(|| Fault {
                    party: *party,
                    kind: FaultKind::Unresponsive,
                    description: format!("reported unresponsive by {reporter}"),
                    evidence: None,
                    reported_by: Some(*reporter),
                });
            }
        }
    }
    let failure = SessionFailure {
        protocol: blame.protocol,
        reason,
        round: blame.round.to_string(),
        faults: faults.into_values().collect(),
    };
    tracing::warn!(%failure, "session failed");
    MpcError::Failed(Box::new(failure))
}
