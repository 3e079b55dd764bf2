//! The abstract message channel a session runs over: in-memory in unit tests, the Noise
//! transport in the node.

use std::{collections::BTreeMap, future::Future, sync::Arc};

use sigil_primitives::AccountId;
use tokio::sync::mpsc;

/// Why a message could not be handed to the channel.
#[derive(Debug, thiserror::Error)]
#[error("cannot send to {peer}: {reason}")]
pub struct ChannelError {
    /// The intended recipient.
    pub peer: AccountId,
    /// What went wrong.
    pub reason: String,
}

/// Point-to-point delivery of opaque messages between the parties of one session.
///
/// The channel authenticates senders: `recv` must only report a sender whose identity the
/// channel has verified (the Noise transport binds every connection to an account). Protocol
/// messages are addressed to one party each (an engine "broadcast" is a signed part repeated in
/// every party's message, and echoed for consistency), so no broadcast primitive is needed here.
pub trait Channel: Send {
    /// The sending half.
    type Sender: ChannelSender;

    /// A handle for sending. The engine sends from separate tasks, one per peer, so a peer that
    /// is slow to connect never holds up messages to the others.
    fn sender(&self) -> Self::Sender;

    /// The next message for this session and its authenticated sender; `None` when the channel
    /// is closed. Must be cancel-safe: a message is never lost when the future is dropped.
    fn recv(&mut self) -> impl Future<Output = Option<(AccountId, Vec<u8>)>> + Send;
}

/// The sending half of a [`Channel`].
pub trait ChannelSender: Clone + Send + Sync + 'static {
    /// Sends `payload` to `to`. May wait (for a connection); returning means the channel
    /// accepted the message, not that it arrived.
    fn send(
        &self,
        to: AccountId,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send;
}

/// Every other party's inbox, by account.
type Inboxes = BTreeMap<AccountId, mpsc::UnboundedSender<(AccountId, Vec<u8>)>>;

/// An in-memory channel: every party of a local test network holds one.
#[derive(Debug)]
pub struct MemoryChannel {
    me: AccountId,
    peers: Arc<Inboxes>,
    inbox: mpsc::UnboundedReceiver<(AccountId, Vec<u8>)>,
}

impl MemoryChannel {
    /// Connects `parties` to each other; returns each party's end.
    pub fn network(parties: &[AccountId]) -> BTreeMap<AccountId, MemoryChannel> {
        let mut senders = BTreeMap::new();
        let mut inboxes = BTreeMap::new();
        for party in parties {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(*party, tx);
            inboxes.insert(*party, rx);
        }
        inboxes
            .into_iter()
            .map(|(me, inbox)| {
                let peers = senders
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .map(|(id, tx)| (*id, tx.clone()))
                    .collect();
                let peers = Arc::new(peers);
                (me, MemoryChannel { me, peers, inbox })
            })
            .collect()
    }
}

/// The sending half of a [`MemoryChannel`].
#[derive(Debug, Clone)]
pub struct MemorySender {
    me: AccountId,
    peers: Arc<Inboxes>,
}

impl ChannelSender for MemorySender {
    async fn send(&self, to: AccountId, payload: Vec<u8>) -> Result<(), ChannelError> {
        let peer = self.peers.get(&to).ok_or_else(|| ChannelError {
            peer: to,
            reason: "not connected".into(),
        })?;
        // A party that has finished and dropped its end simply no longer listens.
        let _ = peer.send((self.me, payload));
        Ok(())
    }
}

impl Channel for MemoryChannel {
    type Sender = MemorySender;

    fn sender(&self) -> MemorySender {
        MemorySender {
            me: self.me,
            peers: self.peers.clone(),
        }
    }

    async fn recv(&mut self) -> Option<(AccountId, Vec<u8>)> {
        self.inbox.recv().await
    }
}
