//! Tunables of the transport.

use std::time::Duration;

/// Limits and timings of a [`Transport`](crate::Transport). `Default` suits production.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest session message sent or accepted, in bytes (at most `u32::MAX`). Default 16 MiB.
    pub max_message_size: usize,
    /// Longest a handshake (TCP, websocket upgrade, Noise, verdict) may take. Default 5 s: a
    /// handshake is three short messages, and an unauthenticated one holds memory meanwhile.
    pub handshake_timeout: Duration,
    /// How long a message for a session not yet open is kept. Default 10 s.
    pub hold_unclaimed: Duration,
    /// Most messages held for unopened sessions, all sessions together. Default 1024.
    pub hold_max_messages: usize,
    /// Most bytes held for unopened sessions, all sessions together. Default 64 MiB.
    pub hold_max_bytes: usize,
    /// How long a send waits for a connection to the peer and room in its queue. Default 30 s.
    pub send_timeout: Duration,
    /// First redial delay after a failed dial. Default 100 ms.
    pub backoff_initial: Duration,
    /// Redial delays double up to this. Default 10 s.
    pub backoff_max: Duration,
    /// Interval of the websocket pings each side sends. Default 15 s.
    pub keepalive_interval: Duration,
    /// A connection with nothing received for this long is closed. Default 45 s.
    pub idle_timeout: Duration,
    /// Keep each peer's connection across sessions. Default `true`.
    ///
    /// `false` closes a peer's connection as soon as no open session includes that peer, so
    /// every new session after an idle period performs a fresh TCP + websocket + Noise
    /// handshake. The close is graceful: what was queued is written first, and what the peer
    /// could not write goes out on the next connection. Meant for benchmarking the
    /// per-session-connection design, not for production.
    pub persistent_connections: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            handshake_timeout: Duration::from_secs(5),
            hold_unclaimed: Duration::from_secs(10),
            hold_max_messages: 1024,
            hold_max_bytes: 64 << 20,
            send_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            persistent_connections: true,
        }
    }
}

impl TransportConfig {
    /// The message cap actually applied: the frame header's length field is a u32.
    pub(crate) fn message_cap(&self) -> usize {
        self.max_message_size.min(u32::MAX as usize)
    }
}
