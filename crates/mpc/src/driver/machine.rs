//! The sans-IO round machine: one manul session of a phase, driven by inputs (a message arrived,
//! blocking work finished, a deadline passed, the channel closed) and read through outputs
//! (messages and abort notices to send, work for the blocking pool, the next deadline, completed
//! rounds, the outcome). It never touches a channel, a task or a clock: the caller passes the
//! time in and does the I/O (see [`super::shell`]).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    mem,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use manul::{
    protocol::{LocalError, Protocol},
    session::{
        CanFinalize, Message, PreprocessOutcome, RoundAccumulator, RoundOutcome, Session,
        SessionOutcome, SessionReport, VerifiedMessage,
    },
};
use rand_core::OsRng;
use sigil_primitives::AccountId;

use super::{
    CpuMeter, RoundProfile,
    blame::{self, Aborted},
};
use crate::{
    error::{FailureReason, FaultKind, MpcError, ProtocolKind, SessionFailure},
    party::{Party, SigilSession},
};

type EngineSession<P> = Session<P, SigilSession>;
type Accumulator<P> = RoundAccumulator<P, SigilSession>;

/// Adds the result of a piece of work to the round's accumulator. manul does not name the types
/// of those results, so they travel inside this closure.
pub(crate) type Apply<P> =
    Box<dyn FnOnce(&EngineSession<P>, &mut Accumulator<P>) -> Result<(), LocalError> + Send>;

/// A received message for the current phase, decoded.
pub(crate) enum Incoming {
    /// A protocol message, with its bytes as received (what evidence is made of).
    Message {
        /// The sender.
        from: AccountId,
        /// The decoded message.
        message: Box<Message<Party>>,
        /// The message as received.
        bytes: Vec<u8>,
    },
    /// The sender stopped the phase.
    Abort(AccountId, Notice),
    /// Bytes from a party that are no message for this party, and why.
    Undecodable(AccountId, String),
}

/// Work for the blocking pool. The caller runs `work`, adds its thread CPU time to `meter` and
/// hands the result back with [`RoundMachine::handle_done`].
pub(crate) struct Job<P: Protocol<Party>> {
    /// Where the work's CPU time counts.
    pub(crate) meter: CpuMeter,
    /// Whether the work serializes this party's outgoing payloads (what fault injection
    /// corrupts); checking received messages never does.
    pub(crate) outgoing: bool,
    /// The work itself.
    pub(crate) work: Box<dyn FnOnce() -> Done<P> + Send>,
}

/// The result of a [`Job`].
pub(crate) enum Done<P: Protocol<Party>> {
    /// This party's message for a destination, and what adds its artifact.
    Made(Party, Result<(Box<Message<Party>>, Apply<P>), LocalError>),
    /// What adds a received message, checked.
    Processed(Apply<P>),
    /// The round's finalization.
    Finalized(Box<Result<RoundOutcome<P, SigilSession>, LocalError>>),
    /// The work failed in the engine (a panic); reported, or the round would wait forever.
    Lost(MpcError),
}

/// Something to hand to the channel.
pub(crate) enum Transmit {
    /// This party's message for a peer. The caller reports the bytes it sent with
    /// [`RoundMachine::note_sent`].
    Message(Party, Box<Message<Party>>),
    /// Tell every peer that this party stopped the phase.
    Abort(Notice),
}

/// A party's word that it stopped a phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Notice {
    /// Whom it named, and for what.
    pub(crate) faults: Vec<(AccountId, FaultKind)>,
    /// The messages of the parties it named for equivocation, as it received them.
    pub(crate) exhibits: Vec<Vec<u8>>,
}

/// What the caller should wait for next.
pub(crate) struct Wait {
    /// Wake up with [`RoundMachine::handle_timeout`] at this time.
    pub(crate) deadline: Option<Instant>,
    /// Receive from the channel.
    pub(crate) listen: bool,
}

/// Messages and bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    messages: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, len: usize) {
        self.messages += 1;
        self.bytes += len as u64;
    }
}

/// Why a round ended.
#[derive(Debug, Clone, Copy)]
enum RoundEnd {
    Ready,
    Stopped(FailureReason),
}

/// What the current round has cost so far, for its [`RoundProfile`].
struct Costs {
    name: String,
    started: Instant,
    meter: CpuMeter,
    /// Time blocked on the channel with none of its own work running.
    waiting: Duration,
    sent: Tally,
    received: Tally,
}

/// The current round.
struct Round<P: Protocol<Party>> {
    session: Arc<EngineSession<P>>,
    accumulator: Accumulator<P>,
    /// Why it ended, once it has; it is then only waiting for the work in flight.
    end: Option<RoundEnd>,
    deadline: Instant,
    /// Parties whose message for this round is in hand.
    delivered: BTreeSet<AccountId>,
    costs: Costs,
}

/// A failed phase hearing out the parties it would name unresponsive.
struct Hearing<P: Protocol<Party>> {
    reason: FailureReason,
    /// The round the phase stopped in.
    round: String,
    report: SessionReport<P, SigilSession>,
    /// The failure as judged before hearing anyone.
    failure: MpcError,
    waiting: BTreeSet<AccountId>,
    deadline: Instant,
    heard: bool,
}

enum State<P: Protocol<Party>> {
    Round(Box<Round<P>>),
    Finalizing(Box<Costs>),
    Hearing(Box<Hearing<P>>),
    Done,
}

/// What a machine needs besides the session.
pub(crate) struct Setup {
    /// This party.
    pub(crate) me: AccountId,
    /// The phase's protocol.
    pub(crate) protocol: ProtocolKind,
    /// How long a round may take.
    pub(crate) round_timeout: Duration,
    /// How long a failed phase waits for abort notices.
    pub(crate) abort_grace: Duration,
    /// The operation's CPU time counter.
    pub(crate) cpu_total: Arc<AtomicU64>,
    /// When the first round started (the phase's preparation counts in it).
    pub(crate) first_round_start: Instant,
    /// CPU time already spent preparing the phase, counted in the first round.
    pub(crate) prepared_cpu: Duration,
}

/// One phase's manul session as a sans-IO state machine.
pub(crate) struct RoundMachine<P: Protocol<Party>> {
    setup: Setup,
    /// manul's session id of the phase (what message parts are signed for).
    engine_session: Vec<u8>,
    state: State<P>,
    /// Undecodable messages, by sender.
    local_faults: BTreeMap<AccountId, String>,
    /// Parties that stopped this phase, with the faults they named.
    aborted: Aborted,
    /// Every protocol message each party sent us in this phase, as received: what a fault
    /// report proves things with.
    received: BTreeMap<AccountId, Vec<Vec<u8>>>,
    /// Messages other parties exhibited in their abort notices (checked when used).
    exhibited: Vec<Vec<u8>>,
    /// Senders of messages manul cached for the next round.
    early_senders: BTreeSet<AccountId>,
    /// Messages and bytes cached for the next round, counted there.
    early_received: Tally,
    channel_open: bool,
    /// Jobs handed out (or queued) whose result is not back.
    in_flight: usize,
    /// Since when the round has been waiting with none of its own work running.
    idle_since: Option<Instant>,
    jobs: VecDeque<Job<P>>,
    transmits: VecDeque<Transmit>,
    rounds: VecDeque<RoundProfile>,
    outcome: Option<Result<P::Result, MpcError>>,
}

impl<P> RoundMachine<P>
where
    P: Protocol<Party> + Send + Sync,
    P::Result: Send,
    P::ProtocolError: Send + Sync,
{
    /// A machine running `session` from its first round, started at `now`.
    pub(crate) fn new(setup: Setup, session: EngineSession<P>, now: Instant) -> Self {
        let engine_session = session.session_id().as_ref().to_vec();
        let mut machine = Self {
            setup,
            engine_session,
            state: State::Done,
            local_faults: BTreeMap::new(),
            aborted: BTreeMap::new(),
            received: BTreeMap::new(),
            exhibited: Vec::new(),
            early_senders: BTreeSet::new(),
            early_received: Tally::default(),
            channel_open: true,
            in_flight: 0,
            idle_since: None,
            jobs: VecDeque::new(),
            transmits: VecDeque::new(),
            rounds: VecDeque::new(),
            outcome: None,
        };
        let (started, carried) = (machine.setup.first_round_start, machine.setup.prepared_cpu);
        machine.start_round(Arc::new(session), Vec::new(), started, carried, now);
        machine
    }

    /// The next message or notice to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next work to run on the blocking pool.
    pub(crate) fn poll_job(&mut self) -> Option<Job<P>> {
        self.jobs.pop_front()
    }

    /// The next completed round.
    pub(crate) fn poll_round(&mut self) -> Option<RoundProfile> {
        self.rounds.pop_front()
    }

    /// The phase's result, once there is one (then nothing more is to be done).
    pub(crate) fn poll_outcome(&mut self) -> Option<Result<P::Result, MpcError>> {
        self.outcome.take()
    }

    /// What to wait for before the next input; the caller is about to block at `now`.
    pub(crate) fn wait(&mut self, now: Instant) -> Wait {
        match &self.state {
            State::Round(round) if round.end.is_none() => {
                // With none of its own work running, only a peer's message can move it on.
                self.idle_since = (self.in_flight == 0).then_some(now);
                Wait {
                    deadline: Some(round.deadline),
                    listen: self.channel_open,
                }
            }
            State::Hearing(hearing) => Wait {
                deadline: Some(hearing.deadline),
                listen: true,
            },
            _ => Wait {
                deadline: None,
                listen: false,
            },
        }
    }

    /// The caller sent `len` bytes of this party's message.
    pub(crate) fn note_sent(&mut self, len: usize) {
        match &mut self.state {
            State::Round(round) => round.costs.sent.add(len),
            // Sent as the last work of the round came back.
            State::Finalizing(costs) => costs.sent.add(len),
            _ => {}
        }
    }

    /// A message for the current phase arrived, `len` bytes on the wire.
    pub(crate) fn handle_incoming(&mut self, now: Instant, incoming: Incoming, len: usize) {
        self.woke(now);
        if let Incoming::Message { from, bytes, .. } = &incoming {
            self.received.entry(*from).or_default().push(bytes.clone());
        }
        match (&mut self.state, incoming) {
            (State::Round(round), incoming) if round.end.is_none() => {
                if let Err(error) = self.take(incoming, len) {
                    self.finish(Err(error));
                }
            }
            // The session is over: only abort notices still matter.
            (State::Hearing(hearing), Incoming::Abort(from, notice)) => {
                hearing.waiting.remove(&from);
                hearing.heard = true;
                self.note(from, notice);
            }
            _ => {}
        }
        self.advance(now);
    }

    /// A job's result.
    pub(crate) fn handle_done(&mut self, now: Instant, done: Done<P>) {
        self.woke(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        let applied = match done {
            Done::Made(to, made) => made.map_err(MpcError::from).and_then(|(message, apply)| {
                self.transmits.push_back(Transmit::Message(to, message));
                self.apply(apply)
            }),
            Done::Processed(apply) => self.apply(apply),
            Done::Finalized(outcome) => self.finalized(now, *outcome),
            Done::Lost(error) => Err(error),
        };
        if let Err(error) = applied {
            self.finish(Err(error));
        }
        self.advance(now);
    }

    /// The deadline [`Self::wait`] gave passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.woke(now);
        match &mut self.state {
            State::Round(round) if round.end.is_none() => {
                round.end = Some(RoundEnd::Stopped(FailureReason::TimedOut));
            }
            State::Hearing(hearing) => hearing.waiting.clear(),
            _ => {}
        }
        self.advance(now);
    }

    /// The channel closed: nothing more will arrive.
    pub(crate) fn handle_closed(&mut self, now: Instant) {
        self.woke(now);
        self.channel_open = false;
        if let State::Hearing(hearing) = &mut self.state {
            hearing.waiting.clear();
        }
        self.advance(now);
    }

    /// Counts the time blocked since [`Self::wait`] as the round's waiting.
    fn woke(&mut self, now: Instant) {
        if let (Some(since), State::Round(round)) = (self.idle_since.take(), &mut self.state) {
            round.costs.waiting += now.saturating_duration_since(since);
        }
    }

    /// Starts a round at `now` (counted from `started`, with `carried_cpu` spent before it):
    /// queues making this party's messages and checking those manul cached for the round.
    fn start_round(
        &mut self,
        session: Arc<EngineSession<P>>,
        cached: Vec<VerifiedMessage<Party>>,
        started: Instant,
        carried_cpu: Duration,
        now: Instant,
    ) {
        let name = session.round_id().to_string();
        tracing::debug!(protocol = %self.setup.protocol, round = %name, "round starts");
        let meter = CpuMeter::new(&self.setup.cpu_total);
        meter.carry(carried_cpu);
        for destination in session.message_destinations().clone() {
            self.make(&session, &meter, destination);
        }
        for message in cached {
            self.process(&session, &meter, message);
        }
        self.state = State::Round(Box::new(Round {
            accumulator: session.make_accumulator(),
            session,
            end: None,
            deadline: now + self.setup.round_timeout,
            delivered: mem::take(&mut self.early_senders),
            costs: Costs {
                name,
                started,
                meter,
                waiting: Duration::ZERO,
                sent: Tally::default(),
                received: mem::take(&mut self.early_received),
            },
        }));
    }

    /// Queues making this party's message for `destination`.
    fn make(&mut self, session: &Arc<EngineSession<P>>, meter: &CpuMeter, destination: Party) {
        let session = session.clone();
        self.queue(meter, true, move || {
            let made = session
                .make_message(&mut OsRng, &destination)
                .map(|(message, artifact)| {
                    let apply: Apply<P> = Box::new(move |session, accumulator| {
                        session.add_artifact(accumulator, artifact)
                    });
                    (Box::new(message), apply)
                });
            Done::Made(destination, made)
        });
    }

    /// Queues checking a received message (its proofs).
    fn process(
        &mut self,
        session: &Arc<EngineSession<P>>,
        meter: &CpuMeter,
        message: VerifiedMessage<Party>,
    ) {
        let session = session.clone();
        self.queue(meter, false, move || {
            let processed = session.process_message(message);
            Done::Processed(Box::new(move |session, accumulator| {
                session.add_processed_message(accumulator, processed)
            }))
        });
    }

    /// Queues `work` for the blocking pool, its CPU time counted by `meter`.
    fn queue(
        &mut self,
        meter: &CpuMeter,
        outgoing: bool,
        work: impl FnOnce() -> Done<P> + Send + 'static,
    ) {
        self.in_flight += 1;
        self.jobs.push_back(Job {
            meter: meter.clone(),
            outgoing,
            work: Box::new(work),
        });
    }

    /// Adds a work result to the round's accumulator. manul builds the evidence of a provable
    /// error here, which for some engine errors panics (synedrion 0.3's resharing leaves its
    /// evidence `unimplemented!()`): the phase then fails with a local error, naming no one.
    fn apply(&mut self, apply: Apply<P>) -> Result<(), MpcError> {
        let State::Round(round) = &mut self.state else {
            return Ok(());
        };
        let (session, accumulator) = (&round.session, &mut round.accumulator);
        let applied = panic::catch_unwind(AssertUnwindSafe(|| apply(session, accumulator)));
        match applied {
            Ok(result) => Ok(result?),
            Err(_) => Err(MpcError::Local(
                "the engine failed on a received message (a panic)".into(),
            )),
        }
    }

    /// Keeps what a party that stopped said.
    fn note(&mut self, from: AccountId, notice: Notice) {
        tracing::info!(%from, faults = ?notice.faults, "a party stopped the session");
        self.aborted.insert(from, notice.faults);
        self.exhibited.extend(notice.exhibits);
    }

    /// This party's notice for `error`: its own findings, with the messages of the parties it
    /// names for equivocation, so the others can prove it too.
    fn notice(&self, error: &MpcError) -> Notice {
        let faults = blame::findings(error);
        let exhibits = faults
            .iter()
            .filter(|(_, kind)| *kind == FaultKind::Equivocation)
            .flat_map(|(party, _)| self.received.get(party).into_iter().flatten())
            .cloned()
            .collect();
        Notice { faults, exhibits }
    }

    /// Takes a message of the running round.
    fn take(&mut self, incoming: Incoming, len: usize) -> Result<(), MpcError> {
        let State::Round(round) = &mut self.state else {
            return Ok(());
        };
        match incoming {
            Incoming::Undecodable(from, reason) => {
                round.costs.received.add(len);
                tracing::warn!(%from, %reason, "undecodable protocol message");
                self.local_faults.entry(from).or_insert(reason);
            }
            Incoming::Abort(from, notice) => {
                round.costs.received.add(len);
                self.note(from, notice);
            }
            Incoming::Message { from, message, .. } => {
                // Checking the part signatures is work of this round too.
                let checking = cpu_time::ThreadTime::now();
                let outcome = round.session.preprocess_message(
                    &mut round.accumulator,
                    &Party(from),
                    *message,
                );
                round.costs.meter.add(checking.elapsed());
                match outcome? {
                    PreprocessOutcome::ToProcess(verified) => {
                        round.costs.received.add(len);
                        round.delivered.insert(from);
                        let (session, meter) = (round.session.clone(), round.costs.meter.clone());
                        self.process(&session, &meter, *verified);
                    }
                    PreprocessOutcome::Cached => {
                        self.early_received.add(len);
                        self.early_senders.insert(from);
                        tracing::debug!(%from, "message for a later round cached");
                    }
                    rejected => {
                        round.costs.received.add(len);
                        tracing::warn!(%from, ?rejected, "protocol message rejected");
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves on as far as the inputs so far allow.
    fn advance(&mut self, now: Instant) {
        if let State::Round(round) = &mut self.state
            && round.end.is_none()
        {
            round.end = round_end(round, self.in_flight, self.channel_open, &self.aborted);
        }
        match &self.state {
            State::Round(round) if round.end.is_some() && self.in_flight == 0 => {
                if let Err(error) = self.end_round(now) {
                    self.finish(Err(error));
                }
            }
            State::Hearing(hearing) if hearing.waiting.is_empty() => self.conclude_hearing(),
            _ => {}
        }
    }

    /// With the work in flight done, finalizes the round or terminates the session.
    fn end_round(&mut self, now: Instant) -> Result<(), MpcError> {
        let State::Round(round) = mem::replace(&mut self.state, State::Done) else {
            return Ok(());
        };
        let Round {
            session,
            accumulator,
            end,
            costs,
            ..
        } = *round;
        let session = Arc::into_inner(session)
            .ok_or_else(|| MpcError::Local("session still shared".into()))?;
        match end {
            Some(RoundEnd::Stopped(reason)) => {
                let report = session.terminate(accumulator)?;
                self.stopped(now, costs.name, reason, report);
            }
            _ => {
                self.queue(&costs.meter, true, move || {
                    Done::Finalized(Box::new(session.finalize_round(&mut OsRng, accumulator)))
                });
                self.state = State::Finalizing(Box::new(costs));
            }
        }
        Ok(())
    }

    /// The round's finalization came back: the next round, or the phase's end.
    fn finalized(
        &mut self,
        now: Instant,
        outcome: Result<RoundOutcome<P, SigilSession>, LocalError>,
    ) -> Result<(), MpcError> {
        let outcome = outcome?;
        let State::Finalizing(costs) = mem::replace(&mut self.state, State::Done) else {
            return Err(MpcError::Local("a finalization out of turn".into()));
        };
        self.rounds.push_back(RoundProfile {
            protocol: self.setup.protocol,
            round: costs.name.clone(),
            cpu: costs.meter.part(),
            wall: now.saturating_duration_since(costs.started),
            waiting: costs.waiting,
            messages_sent: costs.sent.messages,
            bytes_sent: costs.sent.bytes,
            messages_received: costs.received.messages,
            bytes_received: costs.received.bytes,
        });
        match outcome {
            RoundOutcome::Finished(mut report) => match self.finished(&mut report) {
                Some(result) => self.finish(Ok(result)),
                None => self.stopped(now, costs.name, FailureReason::Misbehaviour, report),
            },
            RoundOutcome::AnotherRound {
                session,
                cached_messages,
            } => self.start_round(Arc::new(session), cached_messages, now, Duration::ZERO, now),
        }
        Ok(())
    }

    /// The last round was finalized: the result, if the session has one.
    fn finished(&self, report: &mut SessionReport<P, SigilSession>) -> Option<P::Result> {
        let errors = report.provable_errors.len() + report.unprovable_errors.len();
        match mem::replace(&mut report.outcome, SessionOutcome::Terminated) {
            SessionOutcome::Result(result) => {
                if errors > 0 {
                    tracing::warn!(protocol = %self.setup.protocol, errors, "session succeeded despite misbehaviour");
                }
                Some(result)
            }
            SessionOutcome::NotEnoughMessages | SessionOutcome::Terminated => None,
        }
    }

    /// The parties whose abort notices could complete the proof of an equivocation this party
    /// names without one: everyone it heard from but the accused, until they have spoken.
    fn witnesses(&self, failure: &MpcError) -> BTreeSet<AccountId> {
        let MpcError::Failed(failure) = failure else {
            return BTreeSet::new();
        };
        let unproven: BTreeSet<AccountId> = failure
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::Equivocation && f.evidence.is_none())
            .map(|f| f.party)
            .collect();
        if unproven.is_empty() {
            return BTreeSet::new();
        }
        self.received
            .keys()
            .filter(|party| !unproven.contains(party) && !self.aborted.contains_key(party))
            .copied()
            .collect()
    }

    /// The round stopped without finishing: tell the others at once (one of them may be about
    /// to time out waiting for us), then hear out the parties still missing, which may be
    /// stopping too (their notice in flight), or the witnesses of an equivocation.
    fn stopped(
        &mut self,
        now: Instant,
        round: String,
        reason: FailureReason,
        report: SessionReport<P, SigilSession>,
    ) {
        let failure = self.failure(&round, reason, &report);
        self.transmits
            .push_back(Transmit::Abort(self.notice(&failure)));
        let waiting: BTreeSet<AccountId> =
            if matches!(reason, FailureReason::TimedOut | FailureReason::Aborted) {
                let missing = report.missing_messages.values().flatten();
                missing
                    .map(|party| party.0)
                    .filter(|party| !self.aborted.contains_key(party))
                    .collect()
            } else {
                self.witnesses(&failure)
            };
        if waiting.is_empty() {
            return self.finish(Err(failure));
        }
        self.state = State::Hearing(Box::new(Hearing {
            reason,
            round,
            report,
            failure,
            waiting,
            deadline: now + self.setup.abort_grace,
            heard: false,
        }));
    }

    /// The hearing is over: judge again if anyone said it stopped.
    fn conclude_hearing(&mut self) {
        let State::Hearing(hearing) = mem::replace(&mut self.state, State::Done) else {
            return;
        };
        let failure = if hearing.heard {
            self.failure(&hearing.round, hearing.reason, &hearing.report)
        } else {
            hearing.failure
        };
        self.finish(Err(failure));
    }

    /// Names every party at fault in `report`, with evidence from the messages received.
    fn failure(
        &self,
        round: &str,
        reason: FailureReason,
        report: &SessionReport<P, SigilSession>,
    ) -> MpcError {
        let evidence = |kind, accused: &AccountId| {
            if kind != FaultKind::Equivocation {
                return None;
            }
            let own = self.received.get(accused).into_iter().flatten();
            let messages = own.chain(&self.exhibited).map(Vec::as_slice);
            let (protocol, session) = (self.setup.protocol, self.engine_session.as_slice());
            crate::evidence::equivocation(protocol, session, accused, messages)
        };
        let observed = blame::Observed::of(report, &self.local_faults);
        let faults = blame::faults(&self.setup.me, &observed, &self.aborted, evidence);
        let failure = SessionFailure {
            protocol: self.setup.protocol,
            reason,
            round: round.to_string(),
            faults,
        };
        tracing::warn!(%failure, "session failed");
        MpcError::Failed(Box::new(failure))
    }

    /// Ends the phase; a failure is told to the others (once per phase: the link sees to it).
    fn finish(&mut self, outcome: Result<P::Result, MpcError>) {
        if let Err(error) = &outcome {
            self.transmits
                .push_back(Transmit::Abort(self.notice(error)));
        }
        self.state = State::Done;
        self.jobs.clear();
        self.outcome = Some(outcome);
    }
}

/// Why the round cannot go on, if it cannot.
fn round_end<P: Protocol<Party>>(
    round: &Round<P>,
    in_flight: usize,
    channel_open: bool,
    aborted: &Aborted,
) -> Option<RoundEnd> {
    if in_flight == 0 {
        match round.session.can_finalize(&round.accumulator) {
            CanFinalize::Yes => return Some(RoundEnd::Ready),
            CanFinalize::Never => return Some(RoundEnd::Stopped(FailureReason::Misbehaviour)),
            CanFinalize::NotYet if !channel_open => {
                return Some(RoundEnd::Stopped(FailureReason::ChannelClosed));
            }
            CanFinalize::NotYet => {}
        }
    }
    // A party that stopped sends nothing more: waiting for it is pointless.
    aborted
        .keys()
        .any(|party| !round.delivered.contains(party))
        .then_some(RoundEnd::Stopped(FailureReason::Aborted))
}

#[cfg(test)]
mod tests {
    use manul::session::Message;

    use super::*;
    use crate::{
        error::SessionFailure,
        evidence::Wire,
        manul_contract::{Probe, ProbeSession, party, sessions},
    };

    const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
    const ABORT_GRACE: Duration = Duration::from_secs(1);

    fn machine(me: Party, session: ProbeSession, now: Instant) -> RoundMachine<Probe> {
        let setup = Setup {
            me: me.0,
            protocol: ProtocolKind::Signing,
            round_timeout: ROUND_TIMEOUT,
            abort_grace: ABORT_GRACE,
            cpu_total: Arc::default(),
            first_round_start: now,
            prepared_cpu: Duration::ZERO,
        };
        RoundMachine::new(setup, session, now)
    }

    /// Abort notices: the faults each names.
    type Notices = Vec<Vec<(AccountId, FaultKind)>>;

    /// Runs the machine's work to the end, here, handing out what it sends as the shell does
    /// (each send reported before more work runs): messages ready for delivery, and notices.
    fn work(
        machine: &mut RoundMachine<Probe>,
        me: Party,
        now: Instant,
    ) -> (Vec<(Party, Incoming, usize)>, Notices) {
        let (mut mail, mut notices) = (Vec::new(), Vec::new());
        loop {
            while let Some(transmit) = machine.poll_transmit() {
                match transmit {
                    Transmit::Message(to, message) => {
                        let (incoming, len) = delivery(me, *message);
                        machine.note_sent(len);
                        mail.push((to, incoming, len));
                    }
                    Transmit::Abort(notice) => notices.push(notice.faults),
                }
            }
            let Some(job) = machine.poll_job() else {
                return (mail, notices);
            };
            machine.handle_done(now, (job.work)());
        }
    }

    fn delivery(from: Party, message: Message<Party>) -> (Incoming, usize) {
        let bytes = postcard::to_allocvec(&Wire::Protocol {
            phase: 0,
            message: message.clone(),
        })
        .unwrap();
        let len = bytes.len();
        let message = Box::new(message);
        (
            Incoming::Message {
                from: from.0,
                message,
                bytes,
            },
            len,
        )
    }

    fn failure(outcome: Option<Result<u8, MpcError>>) -> SessionFailure {
        match outcome {
            Some(Err(MpcError::Failed(failure))) => *failure,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn machines_exchanging_messages_finish_both_rounds_and_profile_them() {
        let now = Instant::now();
        let mut machines: BTreeMap<Party, _> = sessions(1, 2)
            .into_iter()
            .map(|(id, session)| (id, machine(id, session, now)))
            .collect();
        let mut results = BTreeMap::new();
        // Each step: everyone works for a second, then waits half a second for the mail.
        for step in 0..4 {
            let at = now + Duration::from_secs(step);
            let mut mail = Vec::new();
            for (id, machine) in &mut machines {
                let (sent, notices) = work(machine, *id, at);
                assert!(notices.is_empty(), "an abort notice from an honest run");
                mail.extend(sent);
                machine.wait(at);
            }
            for (to, incoming, len) in mail {
                let arrival = at + Duration::from_millis(500);
                machines
                    .get_mut(&to)
                    .unwrap()
                    .handle_incoming(arrival, incoming, len);
            }
            for (id, machine) in &mut machines {
                if let Some(outcome) = machine.poll_outcome() {
                    results.insert(*id, outcome.unwrap());
                }
            }
        }
        assert_eq!(results.into_values().collect::<Vec<_>>(), vec![1, 1, 1]);
        let machine = machines.get_mut(&party("a")).unwrap();
        let rounds: Vec<_> = std::iter::from_fn(|| machine.poll_round()).collect();
        let names: Vec<_> = rounds.iter().map(|round| round.round.as_str()).collect();
        assert_eq!(names, ["Round 1", "Round 1 (echo)"]);
        // Two peers each way in each round; each round ends at the next step.
        for round in &rounds {
            let sent = (round.messages_sent, round.bytes_sent > 0);
            assert_eq!(sent, (2, true), "{round:?}");
            let received = (round.messages_received, round.bytes_received > 0);
            assert_eq!(received, (2, true), "{round:?}");
            assert_eq!(round.wall, Duration::from_secs(1), "{round:?}");
            assert_eq!(round.waiting, Duration::from_millis(500), "{round:?}");
        }
    }

    #[test]
    fn a_round_that_hears_nothing_times_out_hears_out_the_silent_and_names_them() {
        let now = Instant::now();
        let a = party("a");
        let mut sessions = sessions(1, 2);
        let mut machine = machine(a, sessions.remove(&a).unwrap(), now);
        let (sent, _) = work(&mut machine, a, now);
        assert_eq!(sent.len(), 2);
        let wait = machine.wait(now);
        assert_eq!(
            (wait.deadline, wait.listen),
            (Some(now + ROUND_TIMEOUT), true)
        );

        let timed_out = now + ROUND_TIMEOUT;
        machine.handle_timeout(timed_out);
        let silent = BTreeSet::from([party("b").0, party("c").0]);
        let (_, notices) = work(&mut machine, a, timed_out);
        let [named] = notices.as_slice() else {
            panic!("no single abort notice");
        };
        assert_eq!(
            named
                .iter()
                .map(|(party, _)| *party)
                .collect::<BTreeSet<_>>(),
            silent
        );
        assert!(
            named
                .iter()
                .all(|(_, kind)| *kind == FaultKind::Unresponsive)
        );
        // Not yet: b and c get the abort grace to say they stopped too.
        assert!(machine.poll_outcome().is_none());
        assert_eq!(
            machine.wait(timed_out).deadline,
            Some(timed_out + ABORT_GRACE)
        );

        // b says it stopped because c sent it nothing: b is excused, c stays named.
        let notice = Notice {
            faults: vec![(party("c").0, FaultKind::Unresponsive)],
            exhibits: vec![],
        };
        let b_stopped = Incoming::Abort(party("b").0, notice);
        machine.handle_incoming(timed_out, b_stopped, 1);
        assert!(machine.poll_outcome().is_none(), "still waiting for c");
        machine.handle_timeout(timed_out + ABORT_GRACE);
        let failure = failure(machine.poll_outcome());
        assert_eq!(failure.reason, FailureReason::TimedOut);
        assert_eq!(failure.round, "Round 1");
        assert_eq!(failure.accused(), vec![party("c").0]);
    }

    #[test]
    fn a_closed_channel_ends_a_round_that_still_needs_messages() {
        let now = Instant::now();
        let a = party("a");
        let mut sessions = sessions(1, 2);
        let mut machine = machine(a, sessions.remove(&a).unwrap(), now);
        work(&mut machine, a, now);
        machine.handle_closed(now);
        let failure = failure(machine.poll_outcome());
        assert_eq!(failure.reason, FailureReason::ChannelClosed);
        assert!(!machine.wait(now).listen);
    }
}
