//! Prometheus metric names (recorded through the `metrics` facade; the node installs the
//! exporter).

/// Gauge: open authenticated connections.
pub const CONNECTIONS: &str = "sigil_transport_connections";
/// Counter: handshakes by `role` (initiator/responder) and `result` (`ok`, a refusal code, or
/// `failed` when no verdict was reached).
pub const HANDSHAKES: &str = "sigil_transport_handshakes_total";
/// Counter: session messages written to a connection.
pub const MESSAGES_SENT: &str = "sigil_transport_messages_sent_total";
/// Counter: session messages reassembled from a connection.
pub const MESSAGES_RECEIVED: &str = "sigil_transport_messages_received_total";
/// Counter: websocket payload bytes (Noise ciphertext) written.
pub const BYTES_SENT: &str = "sigil_transport_bytes_sent_total";
/// Counter: websocket payload bytes (Noise ciphertext) read.
pub const BYTES_RECEIVED: &str = "sigil_transport_bytes_received_total";
/// Counter: messages dropped, by `reason`: incoming `too_large`, `not_member`, `hold_expired`,
/// `hold_full`; outgoing `send_timeout` (its connection closed before writing it and no new one
/// came within `send_timeout`).
pub const MESSAGES_DROPPED: &str = "sigil_transport_messages_dropped_total";

pub(crate) fn handshake(role: &'static str, result: &str) {
    metrics::counter!(HANDSHAKES, "role" => role, "result" => result.to_owned()).increment(1);
}

pub(crate) fn dropped(reason: &'static str) {
    metrics::counter!(MESSAGES_DROPPED, "reason" => reason).increment(1);
}
