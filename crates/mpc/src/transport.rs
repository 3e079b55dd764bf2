//! The engine's [`Channel`] over a validator transport session (feature `transport`).
//!
//! The engine stays sans-IO: this adapter only moves opaque payloads between a session of
//! `sigil-transport` and the engine's channel, so the node and this crate's tests run the
//! same code.

use crate::channel::{Channel, ChannelError, ChannelSender};
use sigil_primitives::AccountId;
use sigil_transport::{Session, SessionSender};

/// The engine's channel over one transport session.
pub struct TransportChannel(pub Session);

/// Its sending half.
#[derive(Clone)]
pub struct TransportSender(SessionSender);

impl ChannelSender for TransportSender {
    async fn send(&self, to: AccountId, payload: Vec<u8>) -> Result<(), ChannelError> {
        self.0
            .send(&to, payload)
            .await
            .map_err(|error| ChannelError {
                peer: to,
                reason: error.to_string(),
            })
    }
}

impl Channel for TransportChannel {
    type Sender = TransportSender;

    fn sender(&self) -> TransportSender {
        TransportSender(self.0.sender())
    }

    async fn recv(&mut self) -> Option<(AccountId, Vec<u8>)> {
        self.0
            .recv()
            .await
            .map(|message| (message.from, message.payload))
    }
}
