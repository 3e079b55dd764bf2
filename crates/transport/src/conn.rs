//! The driver of one authenticated connection: a writer that chunks and encrypts queued
//! messages, and a reader that decrypts, reassembles and hands messages to the transport.
//! Both run concurrently in one task so that two peers sending large messages to each other
//! never block on full socket buffers.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use sigil_primitives::AccountId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Bytes, Message},
};

use crate::handshake::Established;
use crate::transport::{Inner, shut_down};
use crate::wire::{self, NOISE_MAX_MESSAGE, NOISE_TAG_LEN, Reassembled, Reassembler};
use crate::{Kind, SessionId, TransportConfig, metrics as m};

/// How long a retired connection keeps reading after its Close for the peer's, and how long a
/// connection waits for its predecessor to the same peer to finish.
pub(crate) const RETIRE_GRACE: Duration = Duration::from_secs(5);

/// The reader's reason when the peer sent a websocket Close.
const CLOSED_BY_PEER: &str = "closed by peer";

/// A session message waiting for the writer.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub session: SessionId,
    pub kind: Kind,
    /// Shared so a broadcast is not copied once per peer.
    pub payload: Arc<Vec<u8>>,
}

/// Signals between the transport and one connection's driver.
pub(crate) struct Control {
    /// Stop now (replaced, peer record changed); what is not written is handed back.
    pub kill: Notify,
    /// The link holds messages an ended connection did not write: write them first.
    pub pending: Notify,
    /// Set before the transport drops the queue's sender: write what is queued, send Close,
    /// then keep reading until the peer closes too.
    pub retired: AtomicBool,
    /// Set once the driver has ended and its unwritten messages are back on the link.
    pub done: watch::Sender<bool>,
}

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            kill: Notify::new(),
            pending: Notify::new(),
            retired: AtomicBool::new(false),
            done: watch::Sender::new(false),
        }
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    async fn finished(&self) {
        // Same shape as `shut_down`: the read guard must not live across an await.
        let _ = self.done.subscribe().wait_for(|done| *done).await;
    }
}

/// How a connection ended.
pub(crate) struct Ended {
    /// Why, for the log.
    pub reason: String,
    /// Messages taken for this connection but not completely written, oldest first.
    pub unsent: Vec<Outgoing>,
}

enum WriterEnd {
    Closed(String),
    /// Everything queued was written and Close sent.
    Retired,
}

/// Runs the connection until it closes. With `after` (the previous connection to the same
/// peer), writes and deliveries wait until that one has finished, so a peer's messages stay
/// in order across connections.
pub(crate) async fn run<S>(
    inner: &Arc<Inner>,
    ws: WebSocketStream<S>,
    est: Established,
    mut queue: mpsc::Receiver<Outgoing>,
    control: &Control,
    after: Option<Arc<Control>>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let conn = Conn {
        inner,
        noise: &est.noise,
        peer: est.peer,
        config: inner.config(),
        control,
    };
    let shutdown = inner.shutdown_signal();
    let after = after.as_deref();
    let predecessor = move || async move {
        if let Some(prev) = after {
            let _ = tokio::time::timeout(RETIRE_GRACE, prev.finished()).await;
        }
    };
    // Outside the writer, so a message whose write is cut short is handed back, not lost.
    let mut backlog: VecDeque<Outgoing> = VecDeque::new();

    let writer = async {
        predecessor().await;
        conn.write(
            &mut sink,
            est.send_nonce,
            &mut queue,
            &mut backlog,
            shutdown,
        )
        .await
    };
    let reader = async {
        predecessor().await;
        conn.read(&mut stream, est.recv_nonce).await
    };
    let reason = first_end(inner, writer, std::pin::pin!(reader)).await;

    // Answer the peer's Close, unless a cut-short write may have left part of a message in
    // the websocket's buffer (flushing it could complete a message we are about to re-send).
    if reason == CLOSED_BY_PEER && backlog.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    }
    queue.close();
    while let Some(out) = queue.recv().await {
        backlog.push_back(out);
    }
    Ended {
        reason,
        unsent: backlog.into(),
    }
}

/// Why the connection ended: the first of the writer and the reader to stop says. A retired
/// writer lets the reader go on, for at most [`RETIRE_GRACE`], until the peer closes too.
async fn first_end(
    inner: &Inner,
    writer: impl Future<Output = WriterEnd>,
    mut reader: Pin<&mut impl Future<Output = String>>,
) -> String {
    let mut grace_shutdown = inner.shutdown_signal();
    tokio::select! {
        end = writer => match end {
            WriterEnd::Closed(reason) => reason,
            // Deliver what the peer wrote before it saw our Close.
            WriterEnd::Retired => tokio::select! {
                reason = &mut reader => format!("retired; {reason}"),
                _ = shut_down(&mut grace_shutdown) => "retired; transport shut down".to_owned(),
                _ = tokio::time::sleep(RETIRE_GRACE) => "retired; the peer did not close in time".to_owned(),
            },
        },
        reason = &mut reader => reason,
    }
}

/// What the writer and the reader of one connection share.
struct Conn<'a> {
    inner: &'a Inner,
    noise: &'a snow::StatelessTransportState,
    peer: AccountId,
    config: &'a TransportConfig,
    control: &'a Control,
}

impl Conn<'_> {
    /// Writes the backlog, then queued messages and pings, until the connection is killed,
    /// the transport shuts down, the queue closes or a write fails.
    async fn write<W>(
        &self,
        sink: &mut W,
        mut nonce: u64,
        queue: &mut mpsc::Receiver<Outgoing>,
        backlog: &mut VecDeque<Outgoing>,
        mut shutdown: watch::Receiver<bool>,
    ) -> WriterEnd
    where
        W: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
    {
        let control = self.control;
        let start = tokio::time::Instant::now() + self.config.keepalive_interval;
        let mut ping = tokio::time::interval_at(start, self.config.keepalive_interval);
        let reason = loop {
            if let Some(out) = backlog.front() {
                if let Err(e) = write_message(sink, self.noise, &mut nonce, out).await {
                    return WriterEnd::Closed(e);
                }
                backlog.pop_front();
                continue;
            }
            // Biased: handed-back messages are older than anything in the queue.
            tokio::select! {
                biased;
                _ = control.kill.notified() => break "closed locally (replaced or peer record changed)",
                _ = shut_down(&mut shutdown) => break "transport shut down",
                _ = control.pending.notified() => backlog.extend(self.inner.take_pending(&self.peer)),
                next = queue.recv() => match next {
                    Some(out) => backlog.push_back(out),
                    None if control.is_retired() => {
                        let _ = sink.send(Message::Close(None)).await;
                        return WriterEnd::Retired;
                    }
                    None => break "closed locally",
                },
                _ = ping.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Bytes::new())).await {
                        return WriterEnd::Closed(format!("websocket: {e}"));
                    }
                }
            }
        };
        let _ = sink.send(Message::Close(None)).await;
        WriterEnd::Closed(reason.to_owned())
    }

    /// Decrypts, reassembles and delivers messages until the connection ends; returns why.
    async fn read<R>(&self, stream: &mut R, mut nonce: u64) -> String
    where
        R: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        let mut reassembler = Reassembler::new(self.config.message_cap());
        let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
        loop {
            let bytes = match next_binary(stream, self.config.idle_timeout).await {
                Ok(bytes) => bytes,
                Err(reason) => return reason,
            };
            metrics::counter!(m::BYTES_RECEIVED).increment(bytes.len() as u64);
            let Ok(n) = self.noise.read_message(nonce, &bytes, &mut buf) else {
                return "protocol error: Noise message does not decrypt".to_owned();
            };
            nonce += 1;
            match reassembler.push(&buf[..n]) {
                Ok(None) => {}
                Ok(Some(reassembled)) => self.accept(reassembled),
                Err(e) => return format!("protocol error: {e}"),
            }
        }
    }

    /// Hands a reassembled message to the transport, or drops it if it is over the size cap.
    fn accept(&self, reassembled: Reassembled) {
        match reassembled {
            Reassembled::Message {
                kind,
                session,
                payload,
            } => {
                metrics::counter!(m::MESSAGES_RECEIVED).increment(1);
                self.inner.deliver(self.peer, kind, session, payload);
            }
            Reassembled::Oversized { session, size } => {
                m::dropped("too_large");
                tracing::warn!(
                    peer = %self.peer, %session, size, max = self.config.message_cap(),
                    "dropping incoming message over max_message_size"
                );
            }
        }
    }
}

/// The next binary websocket message, skipping pings and pongs; `Err` says why there is none.
async fn next_binary<R>(stream: &mut R, idle_timeout: Duration) -> Result<Bytes, String>
where
    R: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = match tokio::time::timeout(idle_timeout, stream.next()).await {
            Ok(next) => next,
            Err(_) => return Err(format!("nothing received for {idle_timeout:?}")),
        };
        match next {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => return Err(CLOSED_BY_PEER.to_owned()),
            Some(Ok(_)) => return Err("protocol error: non-binary websocket message".to_owned()),
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
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
