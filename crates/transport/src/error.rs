//! Errors of the transport and the refusal codes of the handshake.

use std::time::Duration;

use sigil_primitives::AccountId;

use crate::SessionId;

/// Why a responder refused a handshake. Sent on the wire as a stable snake_case string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// The hello was not exactly the expected bytes.
    MalformedHello,
    /// The hello names a protocol version the responder does not speak.
    UnsupportedVersion,
    /// The account is not in the responder's peer directory.
    UnknownPeer,
    /// The Noise static key differs from the x25519 key in the account's record.
    KeyMismatch,
    /// The hello's signature does not verify for the account.
    BadSignature,
    /// The initiator's account id is not larger than the responder's: the other side must dial.
    WrongDirection,
    /// A code this version does not know (sent by a newer peer).
    Other(String),
}

impl RefusalCode {
    /// The wire string, e.g. `key_mismatch`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MalformedHello => "malformed_hello",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownPeer => "unknown_peer",
            Self::KeyMismatch => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::WrongDirection => "wrong_direction",
            Self::Other(code) => code,
        }
    }

    /// Parses a wire string; unknown codes become [`RefusalCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code {
            "malformed_hello" => Self::MalformedHello,
            "unsupported_version" => Self::UnsupportedVersion,
            "unknown_peer" => Self::UnknownPeer,
            "key_mismatch" => Self::KeyMismatch,
            "bad_signature" => Self::BadSignature,
            "wrong_direction" => Self::WrongDirection,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong when opening a session, connecting or sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// An outgoing message is over the configured `max_message_size`; nothing was sent.
    #[error(
        "message of {size} bytes exceeds the transport limit of {max} bytes; split it or raise max_message_size"
    )]
    MessageTooLarge {
        /// Size of the refused message.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A session with this id is already open on this node.
    #[error("session {0} is already open on this node")]
    SessionAlreadyOpen(SessionId),
    /// This node is not among the members given to `open_session`.
    #[error("this node ({0}) is not a member of the session it tried to open")]
    NotAMember(AccountId),
    /// The addressee is not a member of the session (or is this node itself).
    #[error("{peer} is not another member of session {session}")]
    NotSessionMember {
        /// The addressee.
        peer: AccountId,
        /// The session.
        session: SessionId,
    },
    /// The peer is not in the directory given to `set_peers`.
    #[error("{0} is not in the peer directory; is it a validator on the ledger?")]
    UnknownPeer(AccountId),
    /// The responder completed Noise but refused us.
    #[error("{peer} refused the connection: {code}: {message}")]
    Refused {
        /// The responder.
        peer: AccountId,
        /// The stable refusal code.
        code: RefusalCode,
        /// The responder's explanation.
        message: String,
    },
    /// The handshake failed before a verdict (connection error, bad key, timeout, garbage).
    #[error("handshake with {peer} failed: {reason}")]
    Handshake {
        /// The peer's account, or `inbound` for a connection whose initiator is not known yet.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// No connection to the peer came up in time.
    #[error("no connection to {peer} within {waited:?}{}", last_error.as_ref().map(|e| format!(" (last attempt: {e})")).unwrap_or_default())]
    Timeout {
        /// The peer.
        peer: AccountId,
        /// How long we waited.
        waited: Duration,
        /// The last dial error, if this node dials the peer.
        last_error: Option<String>,
    },
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Shutdown,
}
