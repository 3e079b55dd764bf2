//! Noise-over-websocket peer channels between Sigil validators.
//!
//! Validators talk to each other over one authenticated, encrypted, persistent connection per
//! pair, which many protocol sessions (DKG, signing, resharing) share. The transport never looks
//! inside a message: a session sends and receives opaque bytes. It knows nothing about the
//! ledger either: the caller hands it the peer directory ([`Transport::set_peers`]) from the
//! validators' ledger records and replaces it whenever those change.
//!
//! # Model
//! - **Connections.** A websocket at [`WS_PATH`] carries a Noise
//!   `Noise_XK_25519_ChaChaPoly_BLAKE2s` session (prologue `sigil/v1`). The peer with the larger
//!   account id (bytewise) dials, knowing the responder's x25519 key from its record. The third
//!   handshake message carries a hello signed by the initiator's account key over the handshake
//!   hash and both static keys, so the account, the Noise key and the ledger record are bound.
//!   The responder checks it against its directory and answers accepted or a
//!   [`RefusalCode`]; the dialler surfaces a refusal as [`TransportError::Refused`]. The dialling
//!   side keeps a peer connected once any session needed it, redialling with exponential
//!   backoff; a newer connection for a pair replaces an older one. Messages a closing
//!   connection did not write go out first on the next one (waiting up to `send_timeout`).
//!   With [`TransportConfig::persistent_connections`] off (a benchmark baseline), a peer's
//!   connection is closed gracefully once no open session includes it.
//! - **Sessions.** [`Transport::open_session`] names a 32-byte [`SessionId`] and its members.
//!   [`Session::send`] (direct) and [`Session::broadcast`] queue a message on the peer's
//!   connection, waiting up to `send_timeout` for one; [`Session::recv`] yields messages from
//!   members only. Messages are chunked to Noise's 65,535-byte limit and reassembled.
//! - **Early messages.** A message for a session that is not open yet is held for
//!   `hold_unclaimed` (bounded in count and bytes) and delivered when it opens, else dropped
//!   with a log line.
//! - **Limits.** An outgoing message over `max_message_size` is refused with
//!   [`TransportError::MessageTooLarge`] before anything is sent. An incoming one over the
//!   local limit is skipped chunk by chunk and dropped with a warning; the connection stays up
//!   (the sender may have a larger limit, which is not a protocol violation).
//!
//! The wire format is specified in `docs/PROTOCOL.md` §5. Metrics (names in [`metrics`]) go
//! through the `metrics` facade; logs through `tracing`. Secrets never reach either.
//!
//! # Example
//! ```no_run
//! # async fn demo(peers: Vec<sigil_transport::ValidatorInfo>, members: Vec<sigil_primitives::AccountId>) -> Result<(), Box<dyn std::error::Error>> {
//! use sigil_crypto::keys::NodeSeed;
//! use sigil_transport::{SessionId, Transport, TransportConfig};
//!
//! let seed = NodeSeed::dev("alice");
//! let transport = Transport::new(seed.account_keypair(), seed.x25519_key(), TransportConfig::default());
//! transport.set_peers(peers);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7000").await?;
//! tokio::spawn({ let t = transport.clone(); async move { t.serve(listener).await } });
//!
//! let mut session = transport.open_session(SessionId::new([7; 32]), &members)?;
//! session.broadcast(b"round 1".to_vec()).await?;
//! while let Some(message) = session.recv().await {
//!     println!("{} sent {} bytes", message.from, message.payload.len());
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod config;
mod conn;
mod error;
mod handshake;
pub mod metrics;
mod transport;
mod wire;

use sigil_primitives::AccountId;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use config::TransportConfig;
pub use error::{RefusalCode, TransportError};
pub use transport::{Session, SessionSender, Transport, TransportStats};
pub use wire::PROTOCOL_VERSION;

/// The HTTP path of the validator websocket endpoint.
pub const WS_PATH: &str = "/v1/ws";

/// The websocket limits every transport connection uses: one websocket message is one Noise
/// message, so nothing larger than 65,535 bytes is accepted. Use it when upgrading a
/// connection yourself before [`Transport::accept`].
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(wire::NOISE_MAX_MESSAGE))
        .max_frame_size(Some(wire::NOISE_MAX_MESSAGE))
}

pub use backoff::Backoff;
pub use sigil_primitives::{SessionId, ValidatorInfo};

/// How a message was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sent to every other member of the session (`0x01` on the wire).
    Broadcast,
    /// Sent to this node only (`0x02` on the wire).
    Direct,
}

impl Kind {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::Broadcast => 0x01,
            Self::Direct => 0x02,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(Self::Broadcast),
            0x02 => Some(Self::Direct),
            _ => None,
        }
    }
}

/// A message received in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The member that sent it (authenticated by the connection).
    pub from: AccountId,
    /// Broadcast or direct.
    pub kind: Kind,
    /// The bytes, as sent.
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_cross_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Transport>();
        shareable::<Session>();
        shareable::<TransportError>();
    }

    #[test]
    fn session_id_shows_as_hex() {
        let id = SessionId::new([0xab; 32]);
        assert_eq!(id.to_string(), format!("0x{}", "ab".repeat(32)));
        assert_eq!(
            format!("{id:?}"),
            format!("SessionId(0x{})", "ab".repeat(32))
        );
    }
}
