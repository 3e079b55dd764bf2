//! The driver of one authenticated connection: a writer that chunks and encrypts queued
//! messages, and a reader that decrypts, reassembles and hands messages to the transport.
//! Both run concurrently in one task so that two peers sending large messages to each other
//! never block on full socket buffers.

use std::sync::Arc;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Bytes, Message},
};

use crate::handshake::Established;
use crate::transport::{Inner, shut_down};
use crate::wire::{self, NOISE_MAX_MESSAGE, NOISE_TAG_LEN, Reassembled, Reassembler};
use crate::{Kind, SessionId, metrics as m};

/// A session message waiting for the writer.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub session: SessionId,
    pub kind: Kind,
    /// Shared so a broadcast is not copied once per peer.
    pub payload: Arc<Vec<u8>>,
}

/// Runs the connection until it closes; returns why, for the log.
pub(crate) async fn run<S>(
    inner: &Arc<Inner>,
    ws: WebSocketStream<S>,
    est: Established,
    mut queue: mpsc::Receiver<Outgoing>,
    kill: Arc<Notify>,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let noise = &est.noise;
    let peer = est.peer;
    let config = inner.config();
    let mut shutdown = inner.shutdown_signal();

    let writer = async {
        let mut nonce = est.send_nonce;
        let start = tokio::time::Instant::now() + config.keepalive_interval;
        let mut ping = tokio::time::interval_at(start, config.keepalive_interval);
        let reason = loop {
            tokio::select! {
                _ = kill.notified() => break "closed locally (replaced or peer record changed)",
                _ = shut_down(&mut shutdown) => break "transport shut down",
                next = queue.recv() => {
                    let Some(out) = next else { break "closed locally" };
                    if let Err(e) = write_message(&mut sink, noise, &mut nonce, &out).await {
                        return e;
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Bytes::new())).await {
                        return format!("websocket: {e}");
                    }
                }
            }
        };
        let _ = sink.send(Message::Close(None)).await;
        reason.to_owned()
    };

    let reader = async {
        let mut nonce = est.recv_nonce;
        let mut reassembler = Reassembler::new(config.message_cap());
        let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
        loop {
            let next = match tokio::time::timeout(config.idle_timeout, stream.next()).await {
                Ok(next) => next,
                Err(_) => return format!("nothing received for {:?}", config.idle_timeout),
            };
            let bytes = match next {
                Some(Ok(Message::Binary(bytes))) => bytes,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => return "closed by peer".to_owned(),
                Some(Ok(_)) => return "protocol error: non-binary websocket message".to_owned(),
                Some(Err(e)) => return format!("websocket: {e}"),
            };
            metrics::counter!(m::BYTES_RECEIVED).increment(bytes.len() as u64);
            let Ok(n) = noise.read_message(nonce, &bytes, &mut buf) else {
                return "protocol error: Noise message does not decrypt".to_owned();
            };
            nonce += 1;
            match reassembler.push(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(Reassembled::Message {
                    kind,
                    session,
                    payload,
                })) => {
                    metrics::counter!(m::MESSAGES_RECEIVED).increment(1);
                    inner.deliver(peer, kind, session, payload);
                }
                Ok(Some(Reassembled::Oversized { session, size })) => {
                    m::dropped("too_large");
                    tracing::warn!(
                        %peer, %session, size, max = config.message_cap(),
                        "dropping incoming message over max_message_size"
                    );
                }
                Err(e) => return format!("protocol error: {e}"),
            }
        }
    };

    tokio::select! {
        reason = writer => reason,
        reason = reader => reason,
    }
}

/// Chunks, encrypts and writes one message, flushing once at the end.
async fn write_message<W>(
    sink: &mut W,
    noise: &snow::StatelessTransportState,
    nonce: &mut u64,
    out: &Outgoing,
) -> Result<(), String>
where
    W: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let mut wire_bytes = 0u64;
    for frame in wire::frames(out.kind, &out.session, &out.payload) {
        let mut ciphertext = vec![0u8; frame.len() + NOISE_TAG_LEN];
        noise
            .write_message(*nonce, &frame, &mut ciphertext)
            .map_err(|e| format!("noise: {e}"))?;
        *nonce += 1;
        wire_bytes += ciphertext.len() as u64;
        sink.feed(Message::Binary(ciphertext.into()))
            .await
            .map_err(|e| format!("websocket: {e}"))?;
    }
    sink.flush().await.map_err(|e| format!("websocket: {e}"))?;
    metrics::counter!(m::MESSAGES_SENT).increment(1);
    metrics::counter!(m::BYTES_SENT).increment(wire_bytes);
    Ok(())
}
