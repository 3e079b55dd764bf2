//! Drives one manul session over a [`Channel`](crate::Channel): sends this party's messages,
//! feeds received ones to the engine, enforces the round timeout and turns a failed session's
//! report into named faults.
//!
//! The logic is a sans-IO round machine ([`machine::RoundMachine`]): it takes inputs (a message
//! arrived, blocking work finished, a deadline passed) and yields outputs (messages to send, work
//! for the blocking pool, the next deadline, the outcome). [`shell::run`] is the async loop
//! around it that does the channel I/O, runs the work and sleeps to the deadlines. [`blame`]
//! names the parties at fault; [`link::Link`] is the operation's end of the channel.

pub(crate) mod blame;
mod link;
mod machine;
mod sabotage;
mod shell;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::error::ProtocolKind;

pub(crate) use link::Link;
pub(crate) use shell::{new_session, run};

/// The round timeout of [`SessionConfig::default`]. Production-parameter rounds spend seconds
/// in proofs, and aux-data generation far more, so a slow but honest party must fit in it.
pub(crate) const DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// After a phase failed on a timeout or an abort notice, the parties about to be named
/// unresponsive get this share of the round timeout to say they stopped too: their own round
/// may have timed out just before ours, their notice in flight.
const ABORT_GRACE_DIVISOR: u32 = 4;

/// The longest the wait for such notices lasts, whatever the round timeout: a notice already
/// sent arrives within network latency, and the caller waits for the failure meanwhile.
const ABORT_GRACE_MAX: Duration = Duration::from_secs(5);

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
            round_timeout: DEFAULT_ROUND_TIMEOUT,
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

    /// How long a failed phase waits for the abort notices of the parties it would name
    /// unresponsive (see [`ABORT_GRACE_DIVISOR`] and [`ABORT_GRACE_MAX`]).
    pub(crate) fn abort_grace(&self) -> Duration {
        (self.round_timeout / ABORT_GRACE_DIVISOR).min(ABORT_GRACE_MAX)
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
    /// Fault injection: every message received, by sender, as wire bytes (what a framer
    /// forges evidence from).
    #[cfg(feature = "fault-injection")]
    pub heard: Vec<(sigil_primitives::AccountId, Vec<u8>)>,
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
