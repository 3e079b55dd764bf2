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
use serde::{Deserialize, Serialize};
use sigil_primitives::AccountId;
use tokio::sync::mpsc;

use crate::{
    channel::{Channel, ChannelSender},
    error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind, SessionFailure},
    party::{Party, SigilSession},
};

/// Timing and behaviour of sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How long one round may take before the parties that have not sent are named unresponsive.
    /// Production-parameter rounds spend seconds in proofs, so keep this generous.
    pub round_timeout: Duration,
    /// Fault injection: this party corrupts the payloads of its own (signed) messages.
    #[cfg(feature = "fault-injection")]
    pub corrupt_messages: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            round_timeout: Duration::from_secs(120),
            #[cfg(feature = "fault-injection")]
            corrupt_messages: false,
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
}

/// A message on the channel: the phase of a multi-protocol operation and the engine's message.
#[derive(Serialize, Deserialize)]
struct WireMessage {
    phase: u8,
    message: Message<Party>,
}

/// One party's end of an operation that may run several protocols in turn (phases). Messages
/// for later phases that arrive early are kept until their phase starts.
pub(crate) struct Link<'c, C> {
    channel: &'c mut C,
    me: AccountId,
    parties: BTreeSet<AccountId>,
    phase: u8,
    early: Vec<(AccountId, u8, Message<Party>)>,
    cpu_nanos: Arc<AtomicU64>,
    stats: SessionStats,
    /// Every message each party sent us, as received: what a fault report proves things with.
    received: BTreeMap<AccountId, Vec<Vec<u8>>>,
    /// One queue and sending task per peer: order is kept per peer, and a peer that is slow to
    /// connect delays nobody else. The tasks flush and end when the link is dropped.
    outboxes: BTreeMap<AccountId, mpsc::UnboundedSender<Vec<u8>>>,
}

enum Incoming {
    Message(AccountId, Box<Message<Party>>),
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
            received: BTreeMap::new(),
            outboxes: BTreeMap::new(),
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
        let wire = WireMessage {
            phase: self.phase,
            message,
        };
        let bytes = match postcard::to_allocvec(&wire) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot encode a protocol message");
                return;
            }
        };
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let outbox = self.outboxes.entry(to.0).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
            let sender = self.channel.sender();
            let peer = to.0;
            tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    // An unreachable peer shows up as unresponsive when the round times out.
                    if let Err(error) = sender.send(peer, bytes).await {
                        tracing::warn!(%error, "protocol message not sent");
                    }
                }
            });
            tx
        });
        let _ = outbox.send(bytes);
    }

    /// The next message for the current phase. Cancel-safe: early messages are stashed before
    /// any await point.
    async fn recv(&mut self) -> Option<Incoming> {
        loop {
            if let Some(index) = self
                .early
                .iter()
                .position(|(_, phase, _)| *phase == self.phase)
            {
                let (from, _, message) = self.early.swap_remove(index);
                return Some(Incoming::Message(from, Box::new(message)));
            }
            let (from, bytes) = self.channel.recv().await?;
            if !self.parties.contains(&from) || from == self.me {
                tracing::warn!(%from, "dropped a protocol message from outside the session");
                continue;
            }
            self.stats.messages_received += 1;
            self.stats.bytes_received += bytes.len() as u64;
            let decoded = postcard::from_bytes::<WireMessage>(&bytes);
            self.received.entry(from).or_default().push(bytes);
            let wire = match decoded {
                Ok(wire) => wire,
                Err(error) => return Some(Incoming::Undecodable(from, error.to_string())),
            };
            if wire.message.destination().0 != self.me {
                return Some(Incoming::Undecodable(
                    from,
                    "message addressed to another party".into(),
                ));
            }
            match wire.phase.cmp(&self.phase) {
                std::cmp::Ordering::Equal => {
                    return Some(Incoming::Message(from, Box::new(wire.message)));
                }
                std::cmp::Ordering::Greater => self.early.push((from, wire.phase, wire.message)),
                std::cmp::Ordering::Less => {
                    tracing::debug!(%from, "dropped a message for a finished phase")
                }
            }
        }
    }
}

/// Runs `f` on the blocking pool, adding its thread CPU time to `cpu_nanos`.
async fn blocking<R: Send + 'static>(
    cpu_nanos: &Arc<AtomicU64>,
    corrupt: bool,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, MpcError> {
    let cpu_nanos = cpu_nanos.clone();
    tokio::task::spawn_blocking(move || {
        let start = cpu_time::ThreadTime::now();
        let result = with_fault(corrupt, f);
        cpu_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
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

fn corrupting(config: &SessionConfig) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        config.corrupt_messages
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = config;
        false
    }
}

/// Creates a session on the blocking pool (entry rounds can generate Paillier keys).
pub(crate) async fn new_session<EP>(
    link_cpu: &Arc<AtomicU64>,
    config: &SessionConfig,
    session_id: manul::session::SessionId,
    signer: crate::party::PartySigner,
    entry_point: EP,
) -> Result<Session<EP::Protocol, SigilSession>, MpcError>
where
    EP: manul::protocol::EntryPoint<Party> + Send + 'static,
    EP::Protocol: Send + Sync,
    <EP::Protocol as Protocol<Party>>::ProtocolError: Send + Sync,
    <EP::Protocol as Protocol<Party>>::Result: Send,
{
    blocking(link_cpu, corrupting(config), move || {
        Session::new(&mut OsRng, session_id, signer, entry_point)
    })
    .await?
    .map_err(MpcError::from)
}

impl<C> Link<'_, C> {
    pub(crate) fn cpu_counter(&self) -> &Arc<AtomicU64> {
        &self.cpu_nanos
    }
}

/// Results of blocking work coming back to the session loop (manul does not name these types,
/// so they stay generic and are inferred).
enum Work<Made, Processed> {
    Made(Party, Result<Made, LocalError>),
    Processed(Processed),
}

enum RoundEnd {
    Ready,
    Never,
    TimedOut,
    ChannelClosed,
}

/// Runs `session` to completion over the link's current phase.
pub(crate) async fn run<P, C>(
    link: &mut Link<'_, C>,
    protocol: ProtocolKind,
    session: Session<P, SigilSession>,
    config: &SessionConfig,
) -> Result<P::Result, MpcError>
where
    P: Protocol<Party> + Send + Sync,
    P::Result: Send,
    P::ProtocolError: Send + Sync,
    C: Channel,
{
    let started = Instant::now();
    let corrupt = corrupting(config);
    let mut local_faults: BTreeMap<AccountId, String> = BTreeMap::new();
    let mut session = Arc::new(session);
    let mut cached = Vec::new();

    // Verification never corrupts: only outgoing payloads are under fault injection.
    macro_rules! spawn_processing {
        ($work_tx:expr, $message:expr) => {{
            let session = session.clone();
            let work_tx = $work_tx.clone();
            let cpu = link.cpu_counter().clone();
            let message = $message;
            tokio::spawn(async move {
                match blocking(&cpu, false, move || session.process_message(message)).await {
                    Ok(processed) => {
                        let _ = work_tx.send(Work::Processed(processed));
                    }
                    Err(error) => tracing::error!(%error, "message processing task failed"),
                }
            });
        }};
    }
    macro_rules! apply_work {
        ($accum:expr, $work:expr) => {
            match $work {
                Work::Made(destination, made) => {
                    let (message, artifact) = made?;
                    link.send(&destination, message);
                    session.add_artifact(&mut $accum, artifact)?;
                }
                Work::Processed(processed) => {
                    session.add_processed_message(&mut $accum, processed)?
                }
            }
        };
    }

    let result = loop {
        let round = session.round_id().to_string();
        tracing::debug!(%protocol, %round, "round starts");
        let deadline = tokio::time::Instant::now() + config.round_timeout;
        let mut accum = session.make_accumulator();
        let (work_tx, mut work_rx) = mpsc::unbounded_channel();
        let mut in_flight = 0usize;

        for destination in session.message_destinations().clone() {
            let session = session.clone();
            let work_tx = work_tx.clone();
            let cpu = link.cpu_counter().clone();
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
            spawn_processing!(work_tx, message);
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
            tokio::select! {
                Some(work) = work_rx.recv() => {
                    in_flight -= 1;
                    apply_work!(accum, work);
                }
                incoming = link.recv(), if channel_open => match incoming {
                    // Finish the work in flight: the last messages may still complete the round.
                    None => channel_open = false,
                    Some(Incoming::Undecodable(from, reason)) => {
                        tracing::warn!(%from, %reason, "undecodable protocol message");
                        local_faults.entry(from).or_insert(reason);
                    }
                    Some(Incoming::Message(from, message)) => {
                        match session.preprocess_message(&mut accum, &Party(from), *message)? {
                            PreprocessOutcome::ToProcess(verified) => {
                                spawn_processing!(work_tx, *verified);
                                in_flight += 1;
                            }
                            PreprocessOutcome::Cached => tracing::debug!(%from, "message for a later round cached"),
                            rejected => tracing::warn!(%from, ?rejected, "protocol message rejected"),
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break RoundEnd::TimedOut,
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
                let cpu = link.cpu_counter().clone();
                let outcome = blocking(&cpu, corrupt, move || {
                    owned.finalize_round(&mut OsRng, accum)
                })
                .await??;
                link.stats.rounds += 1;
                match outcome {
                    RoundOutcome::Finished(report) => {
                        break finished(protocol, &round, report, local_faults, link);
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
        };
        let report = owned.terminate(accum)?;
        break Err(failure(
            protocol,
            &round,
            reason,
            report,
            local_faults,
            link,
        ));
    };
    link.stats.wall += started.elapsed();
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    metrics::counter!("sigil_mpc_sessions_total", "protocol" => protocol.as_str(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sigil_mpc_session_seconds", "protocol" => protocol.as_str())
        .record(started.elapsed().as_secs_f64());
    result
}

fn finished<P: Protocol<Party>, C>(
    protocol: ProtocolKind,
    round: &str,
    mut report: SessionReport<P, SigilSession>,
    local_faults: BTreeMap<AccountId, String>,
    link: &Link<'_, C>,
) -> Result<P::Result, MpcError> {
    let errors = report.provable_errors.len() + report.unprovable_errors.len();
    match std::mem::replace(&mut report.outcome, SessionOutcome::Terminated) {
        SessionOutcome::Result(result) => {
            if errors > 0 {
                tracing::warn!(%protocol, errors, "session succeeded despite misbehaviour");
            }
            Ok(result)
        }
        SessionOutcome::NotEnoughMessages | SessionOutcome::Terminated => Err(failure(
            protocol,
            round,
            FailureReason::Misbehaviour,
            report,
            local_faults,
            link,
        )),
    }
}

/// What a fault's evidence bytes hold: the accused's own messages as received (each carries
/// message parts signed by its account key) and the engine's finding.
///
/// synedrion 0.3's evidence objects cannot be serialised (manul's `Evidence` derives serde with
/// a bound on the protocol marker type, which synedrion does not make serialisable), so the
/// report carries the signed messages the engine judged instead.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The protocol that failed.
    pub protocol: ProtocolKind,
    /// The round the session stopped in.
    pub round: String,
    /// The engine's description of the fault.
    pub description: String,
    /// Every message the accused sent this party during the operation, as received.
    pub messages: Vec<Vec<u8>>,
}

/// Names every party at fault, most serious kind first: proven misbehaviour, then invalid
/// messages, then silence.
fn failure<P: Protocol<Party>, C>(
    protocol: ProtocolKind,
    round: &str,
    reason: FailureReason,
    report: SessionReport<P, SigilSession>,
    local_faults: BTreeMap<AccountId, String>,
    link: &Link<'_, C>,
) -> MpcError {
    let evidence_of = |party: &AccountId, description: &str| {
        let record = EvidenceRecord {
            protocol,
            round: round.to_string(),
            description: description.to_string(),
            messages: link.received.get(party).cloned().unwrap_or_default(),
        };
        postcard::to_allocvec(&record).ok()
    };
    let mut faults: BTreeMap<AccountId, Fault> = BTreeMap::new();
    for (party, evidence) in &report.provable_errors {
        let description = evidence.description().to_string();
        let kind = if description.starts_with("Echo round error: The echoed message is different") {
            FaultKind::Equivocation
        } else if description.starts_with("Protocol error") {
            FaultKind::FailedProof
        } else {
            FaultKind::InvalidMessage
        };
        let evidence = evidence_of(&party.0, &description);
        faults.insert(
            party.0,
            Fault {
                party: party.0,
                kind,
                description,
                evidence,
            },
        );
    }
    for (party, error) in &report.unprovable_errors {
        faults.entry(party.0).or_insert_with(|| Fault {
            party: party.0,
            kind: FaultKind::InvalidMessage,
            description: error.to_string(),
            evidence: None,
        });
    }
    for (party, reason) in local_faults {
        faults.entry(party).or_insert_with(|| Fault {
            party,
            kind: FaultKind::InvalidMessage,
            description: reason,
            evidence: None,
        });
    }
    for (missing_round, parties) in &report.missing_messages {
        for party in parties {
            faults.entry(party.0).or_insert_with(|| Fault {
                party: party.0,
                kind: FaultKind::Unresponsive,
                description: format!("sent nothing in round {missing_round}"),
                evidence: None,
            });
        }
    }
    let failure = SessionFailure {
        protocol,
        reason,
        round: round.to_string(),
        faults: faults.into_values().collect(),
    };
    tracing::warn!(%failure, "session failed");
    MpcError::Failed(Box::new(failure))
}
