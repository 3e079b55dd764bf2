//! The async shell around the round machine: channel I/O, the blocking pool, the clock.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use manul::{
    protocol::{EntryPoint, Protocol},
    session::{Session, SessionId},
};
use tokio::task::JoinSet;

use super::{
    CpuMeter, SessionConfig,
    link::Link,
    machine::{Done, Job, RoundMachine, Setup, Transmit},
    sabotage::{self, Shadow},
};
use crate::{
    channel::Channel,
    error::{MpcError, ProtocolKind},
    party::{Party, PartySigner, SigilSession},
};

/// A session ready to run.
pub(crate) struct Started<P: Protocol<Party>> {
    session: Session<P, SigilSession>,
    /// When creating the session began.
    created_at: Instant,
    /// CPU time creating it took (synedrion's entry round).
    setup_cpu: Duration,
    /// A second run of the session, for fault injection (equivocation).
    shadow: Shadow<P>,
}

/// Creates a session on the blocking pool (entry rounds can generate Paillier keys).
pub(crate) async fn new_session<EP>(
    link_cpu: &Arc<AtomicU64>,
    config: &SessionConfig,
    session_id: SessionId,
    signer: PartySigner,
    entry_point: EP,
) -> Result<Started<EP::Protocol>, MpcError>
where
    EP: EntryPoint<Party> + Clone + Send + 'static,
    EP::Protocol: Send + Sync,
    <EP::Protocol as Protocol<Party>>::ProtocolError: Send + Sync,
    <EP::Protocol as Protocol<Party>>::Result: Send,
{
    let created_at = Instant::now();
    let meter = CpuMeter::new(link_cpu);
    let create = sabotage::create(config, session_id, signer, entry_point);
    let (session, shadow) = blocking(&meter, sabotage::corrupting(config), create).await??;
    Ok(Started {
        session,
        created_at,
        setup_cpu: meter.part(),
        shadow,
    })
}

/// Runs `f` on the blocking pool, adding its thread CPU time to `meter`.
async fn blocking<R: Send + 'static>(
    meter: &CpuMeter,
    corrupt: bool,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, MpcError> {
    let meter = meter.clone();
    tokio::task::spawn_blocking(move || measured(&meter, corrupt, f))
        .await
        .map_err(lost)
}

/// Runs `f` here, adding its thread CPU time to `meter`.
fn measured<R>(meter: &CpuMeter, corrupt: bool, f: impl FnOnce() -> R) -> R {
    let start = cpu_time::ThreadTime::now();
    let result = sabotage::with_fault(corrupt, f);
    meter.add(start.elapsed());
    result
}

fn lost(error: tokio::task::JoinError) -> MpcError {
    MpcError::Local(format!("engine task failed: {error}"))
}

/// Runs `started` to completion over the link's current phase.
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
    let (setup, session) = prepare(link, protocol, config, started).await?;
    let machine = RoundMachine::new(setup, session, Instant::now());
    let result = drive(link, machine, sabotage::corrupting(config)).await;
    link.phase_ended();
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    metrics::counter!("sigil_mpc_sessions_total", "protocol" => protocol.as_str(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sigil_mpc_session_seconds", "protocol" => protocol.as_str())
        .record(started_at.elapsed().as_secs_f64());
    result
}

/// What the machine of a phase starts from. The first round carries the cost of preparing the
/// phase, fault injection included.
async fn prepare<P, C>(
    link: &mut Link<'_, C>,
    protocol: ProtocolKind,
    config: &SessionConfig,
    started: Started<P>,
) -> Result<(Setup, Session<P, SigilSession>), MpcError>
where
    P: Protocol<Party> + Send + Sync,
    P::ProtocolError: Send + Sync,
{
    let first_round_start = started.created_at.max(link.idle_since());
    let prepared = CpuMeter::new(link.cpu_counter());
    prepared.carry(started.setup_cpu);
    let substitutes = match sabotage::shadow_messages(started.shadow) {
        Some(work) => blocking(&prepared, false, work).await??,
        None => Default::default(),
    };
    link.sabotage().arm(config, substitutes);
    let setup = Setup {
        me: link.me(),
        protocol,
        round_timeout: config.round_timeout,
        abort_grace: config.abort_grace(),
        cpu_total: link.cpu_counter().clone(),
        first_round_start,
        prepared_cpu: prepared.part(),
    };
    Ok((setup, started.session))
}

/// Feeds the machine until it has an outcome: sends what it asks, runs its work on the
/// blocking pool, and wakes it on messages, finished work and its deadlines.
async fn drive<P, C>(
    link: &mut Link<'_, C>,
    mut machine: RoundMachine<P>,
    corrupt: bool,
) -> Result<P::Result, MpcError>
where
    P: Protocol<Party> + Send + Sync,
    P::Result: Send,
    P::ProtocolError: Send + Sync,
    C: Channel,
{
    let mut jobs = JoinSet::new();
    loop {
        while let Some(transmit) = machine.poll_transmit() {
            match transmit {
                Transmit::Message(to, message) => {
                    if let Some(len) = link.send(&to, *message) {
                        machine.note_sent(len);
                    }
                }
                Transmit::Abort(notice) => link.abort(notice),
            }
        }
        while let Some(profile) = machine.poll_round() {
            link.record_round(profile);
        }
        if let Some(outcome) = machine.poll_outcome() {
            return outcome;
        }
        while let Some(job) = machine.poll_job() {
            spawn(&mut jobs, job, corrupt);
        }
        let wait = machine.wait(Instant::now());
        let deadline = wait.deadline.map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(joined) = jobs.join_next() => {
                let done = joined.unwrap_or_else(|error| Done::Lost(lost(error)));
                machine.handle_done(Instant::now(), done);
            }
            incoming = link.recv(), if wait.listen => match incoming {
                Some((incoming, len)) => machine.handle_incoming(Instant::now(), incoming, len),
                None => machine.handle_closed(Instant::now()),
            },
            () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() => machine.handle_timeout(Instant::now()),
            else => return Err(MpcError::Local("the session has nothing left to wait for".into())),
        }
    }
}

/// Runs `job` on the blocking pool; payloads it makes are corrupted when `corrupt` is set
/// (fault injection).
fn spawn<P>(jobs: &mut JoinSet<Done<P>>, job: Job<P>, corrupt: bool)
where
    P: Protocol<Party> + Send + Sync,
    P::Result: Send,
    P::ProtocolError: Send + Sync,
{
    let Job {
        meter,
        outgoing,
        work,
    } = job;
    jobs.spawn_blocking(move || measured(&meter, corrupt && outgoing, work));
}
