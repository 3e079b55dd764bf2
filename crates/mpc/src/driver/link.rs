//! One party's end of an operation's channel: the wire encoding, phases, and one sending task
//! per peer.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use manul::session::Message;
use serde::Serialize;
use sigil_primitives::AccountId;
use tokio::sync::mpsc;

use super::{
    RoundProfile, SessionStats,
    machine::{Incoming, Notice},
    sabotage::Sabotage,
};
use crate::{
    channel::{Channel, ChannelSender},
    evidence::Wire,
    party::Party,
};

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
    /// One queue and sending task per peer: order is kept per peer, and a peer that is slow to
    /// connect delays nobody else. The tasks flush and end when the link is dropped.
    outboxes: BTreeMap<AccountId, mpsc::UnboundedSender<Vec<u8>>>,
    /// The last phase this party told the others it stopped.
    stopped: Option<u8>,
    /// The misbehaviour this party commits on the way out (fault injection).
    sabotage: Sabotage,
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
            outboxes: BTreeMap::new(),
            stopped: None,
            sabotage: Sabotage::default(),
        }
    }

    /// Sends `message` to `to` in the current phase; the bytes handed to the channel, if any.
    pub(super) fn send(&mut self, to: &Party, message: Message<Party>) -> Option<usize> {
        let wire = Wire::Protocol {
            phase: self.phase,
            message: self.sabotage.substitute(to, message),
        };
        self.push(to.0, &wire)
    }

    /// Tells every peer, once per phase, that this party stopped the phase and whom it named,
    /// so that they stop waiting for it and do not take its silence for its own fault.
    pub(super) fn abort(&mut self, notice: Notice) {
        if self.stopped == Some(self.phase) {
            return;
        }
        self.stopped = Some(self.phase);
        let wire: Wire<Message<Party>> = Wire::Abort {
            phase: self.phase,
            faults: notice.faults,
            exhibits: notice.exhibits,
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

    fn push<M: Serialize>(&mut self, to: AccountId, wire: &Wire<M>) -> Option<usize> {
        if self.sabotage.withheld(&to) {
            return None;
        }
        let bytes = match postcard::to_allocvec(wire) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "cannot encode a protocol message");
                return None;
            }
        };
        let len = bytes.len();
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += len as u64;
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
        Some(len)
    }

    /// The next message for the current phase, with its size. Cancel-safe: early messages are
    /// stashed before any await point.
    pub(super) async fn recv(&mut self) -> Option<(Incoming, usize)> {
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
            self.sabotage.overhear(from, &bytes);
            let (phase, incoming) = match self.decode(from, bytes) {
                Ok(decoded) => decoded,
                // It names no phase: the current one deals with it.
                Err(undecodable) => return Some((undecodable, len)),
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

impl<C> Link<'_, C> {
    pub(crate) fn stats(&self) -> SessionStats {
        let mut stats = self.stats.clone();
        stats.cpu = Duration::from_nanos(self.cpu_nanos.load(std::sync::atomic::Ordering::Relaxed));
        #[cfg(feature = "fault-injection")]
        {
            stats.heard = self.sabotage.heard();
        }
        stats
    }

    /// Moves to the next phase; messages for it that arrived early are served first.
    pub(crate) fn next_phase(&mut self) {
        self.phase += 1;
    }

    pub(crate) fn cpu_counter(&self) -> &Arc<AtomicU64> {
        &self.cpu_nanos
    }

    pub(super) fn me(&self) -> AccountId {
        self.me
    }

    /// When the last phase ended (or the operation started).
    pub(super) fn idle_since(&self) -> Instant {
        self.idle_since
    }

    pub(super) fn sabotage(&mut self) -> &mut Sabotage {
        &mut self.sabotage
    }

    /// Counts a completed round.
    pub(super) fn record_round(&mut self, profile: RoundProfile) {
        self.stats.rounds += 1;
        self.stats.rounds_profile.push(profile);
    }

    /// Marks the end of a phase: the operation's wall time so far counts from its start, so
    /// that creating sessions (Paillier keys in aux-data generation) counts too.
    pub(super) fn phase_ended(&mut self) {
        self.idle_since = Instant::now();
        self.stats.wall = self.idle_since.saturating_duration_since(self.opened);
    }

    /// What `bytes` from `from` hold, with its phase; what does not decode as a message for
    /// this party names no phase.
    fn decode(&self, from: AccountId, bytes: Vec<u8>) -> Result<(u8, Incoming), Incoming> {
        match postcard::from_bytes::<Wire<Message<Party>>>(&bytes) {
            Err(error) => Err(Incoming::Undecodable(from, error.to_string())),
            Ok(Wire::Protocol { phase, message }) => {
                if message.destination().0 != self.me {
                    let reason = "message addressed to another party".into();
                    return Err(Incoming::Undecodable(from, reason));
                }
                let message = Box::new(message);
                Ok((
                    phase,
                    Incoming::Message {
                        from,
                        message,
                        bytes,
                    },
                ))
            }
            Ok(Wire::Abort {
                phase,
                faults,
                exhibits,
            }) => Ok((phase, Incoming::Abort(from, Notice { faults, exhibits }))),
        }
    }
}
