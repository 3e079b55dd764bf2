//! Where fault injection (feature `fault-injection`) touches the driver: how sessions are
//! created, which payloads are corrupted, and what leaves on the wire. Without the feature every
//! hook is the honest identity, so the round machine never sees a misbehaviour of its own.

use std::collections::BTreeMap;

use manul::{
    protocol::{EntryPoint, LocalError},
    session::{Message, Session, SessionId},
};
use rand_core::OsRng;

use super::SessionConfig;
use crate::party::{Party, PartySigner, SigilSession};

/// This party's own misbehaviour on the way out: messages withheld or replaced.
#[derive(Default)]
pub(crate) struct Sabotage {
    #[cfg(feature = "fault-injection")]
    fault: Option<crate::fault::InjectedFault>,
    /// Messages that replace this party's own to some peers (equivocation).
    #[cfg(feature = "fault-injection")]
    substitutes: BTreeMap<Party, Message<Party>>,
    /// Protocol messages received, by sender, as wire bytes (what a framer forges from).
    #[cfg(feature = "fault-injection")]
    heard: Vec<(sigil_primitives::AccountId, Vec<u8>)>,
}

/// The second, independent run of a session whose first-round messages go to some peers
/// instead of the real ones (equivocation); nothing without the feature.
#[cfg(feature = "fault-injection")]
pub(crate) type Shadow<P> = Option<Session<P, SigilSession>>;
/// The second, independent run of a session whose first-round messages go to some peers
/// instead of the real ones (equivocation); nothing without the feature.
#[cfg(not(feature = "fault-injection"))]
pub(crate) type Shadow<P> = std::marker::PhantomData<P>;

/// A created session and its shadow run.
pub(crate) type Created<P> = (Session<P, SigilSession>, Shadow<P>);

/// Messages by destination that replace this party's own.
pub(crate) type Substitutes = BTreeMap<Party, Message<Party>>;

#[cfg(feature = "fault-injection")]
mod injected {
    use super::*;
    use manul::protocol::Protocol;

    use crate::fault::{InjectedFault, Misbound};

    impl Sabotage {
        /// Takes up `config`'s misbehaviour for a phase, sending `substitutes` in its messages'
        /// stead.
        pub(crate) fn arm(&mut self, config: &SessionConfig, substitutes: Substitutes) {
            self.fault = config.fault.clone();
            self.substitutes = substitutes;
        }

        /// Whether this party keeps from sending to `to`.
        pub(crate) fn withheld(&self, to: &sigil_primitives::AccountId) -> bool {
            match &self.fault {
                Some(InjectedFault::Silent) => true,
                Some(InjectedFault::DropTo(peer)) => peer == to,
                _ => false,
            }
        }

        /// What this party sends to `to` instead of `message`.
        pub(crate) fn substitute(&mut self, to: &Party, message: Message<Party>) -> Message<Party> {
            self.substitutes.remove(to).unwrap_or(message)
        }

        /// Keeps a received message's bytes.
        pub(crate) fn overhear(&mut self, from: sigil_primitives::AccountId, bytes: &[u8]) {
            self.heard.push((from, bytes.to_vec()));
        }

        /// The messages received so far, by sender.
        pub(crate) fn heard(&self) -> Vec<(sigil_primitives::AccountId, Vec<u8>)> {
            self.heard.clone()
        }
    }

    /// Whether this party corrupts its payloads.
    pub(crate) fn corrupting(config: &SessionConfig) -> bool {
        config.fault == Some(InjectedFault::Corrupt)
    }

    /// Runs `f` with payload corruption on this thread when `corrupt` is set.
    pub(crate) fn with_fault<R>(corrupt: bool, f: impl FnOnce() -> R) -> R {
        crate::fault::with_corruption(corrupt, f)
    }

    /// Creates the session `config` asks for: with proofs bound to the wrong session
    /// (bad proofs), and with a shadow run (equivocation).
    pub(crate) fn create<EP>(
        config: &SessionConfig,
        session_id: SessionId,
        signer: PartySigner,
        entry_point: EP,
    ) -> impl FnOnce() -> Result<Created<EP::Protocol>, LocalError> + Send + 'static
    where
        EP: EntryPoint<Party> + Clone + Send + 'static,
    {
        let fault = config.fault.clone();
        move || {
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
            Ok((session, shadow))
        }
    }

    /// The work that makes the shadow run's first-round messages for the second half of the
    /// peers (the first half gets the real ones), so the two halves receive different
    /// broadcasts; `None` without a shadow run.
    pub(crate) fn shadow_messages<P>(
        shadow: Shadow<P>,
    ) -> Option<impl FnOnce() -> Result<Substitutes, LocalError> + Send + 'static>
    where
        P: Protocol<Party> + Send + Sync,
        P::ProtocolError: Send + Sync,
    {
        let shadow = shadow?;
        Some(move || {
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
                .collect()
        })
    }
}

#[cfg(not(feature = "fault-injection"))]
mod honest {
    use super::*;

    impl Sabotage {
        /// Nothing to take up: this build cannot misbehave.
        pub(crate) fn arm(&mut self, _config: &SessionConfig, _substitutes: Substitutes) {}

        /// Never: this build cannot misbehave.
        pub(crate) fn withheld(&self, _to: &sigil_primitives::AccountId) -> bool {
            false
        }

        /// `message` itself.
        pub(crate) fn substitute(
            &mut self,
            _to: &Party,
            message: Message<Party>,
        ) -> Message<Party> {
            message
        }

        /// Nothing: an honest build keeps no transcript.
        pub(crate) fn overhear(&mut self, _from: sigil_primitives::AccountId, _bytes: &[u8]) {}
    }

    /// Never: this build cannot misbehave.
    pub(crate) fn corrupting(_config: &SessionConfig) -> bool {
        false
    }

    /// Runs `f`.
    pub(crate) fn with_fault<R>(_corrupt: bool, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Creates the session.
    pub(crate) fn create<EP>(
        _config: &SessionConfig,
        session_id: SessionId,
        signer: PartySigner,
        entry_point: EP,
    ) -> impl FnOnce() -> Result<Created<EP::Protocol>, LocalError> + Send + 'static
    where
        EP: EntryPoint<Party> + Clone + Send + 'static,
    {
        move || {
            let session = Session::new(&mut OsRng, session_id, signer, entry_point)?;
            Ok((session, std::marker::PhantomData))
        }
    }

    /// `None`: there is no shadow run.
    pub(crate) fn shadow_messages<P>(
        _shadow: Shadow<P>,
    ) -> Option<fn() -> Result<Substitutes, LocalError>> {
        None
    }
}

#[cfg(feature = "fault-injection")]
pub(crate) use injected::{corrupting, create, shadow_messages, with_fault};

#[cfg(not(feature = "fault-injection"))]
pub(crate) use honest::{corrupting, create, shadow_messages, with_fault};
