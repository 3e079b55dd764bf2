//! The node's HTTP server: hyper with a header-read deadline (which also ends idle keep-alive
//! connections), a body-read deadline, a cap on connections in total and per address, and a
//! cap on websocket handshakes in flight, so that slow or numerous clients cannot starve
//! legitimate requests of connections, file descriptors or memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sigil_primitives::throttle::{AddressCaps, Full, Slot};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// The server's limits (`sigil node --http-*`).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Longest a client may take to send a request's headers, and longest a kept-alive
    /// connection may sit idle.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body.
    pub body_read_timeout: Duration,
    /// Connections open at once, in total.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_address: usize,
    /// Websocket handshakes (upgrade to Noise done) in flight at once, in total.
    pub max_handshakes: usize,
    /// Websocket handshakes in flight at once from one IP address.
    pub max_handshakes_per_address: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 256,
            max_handshakes: 64,
            max_handshakes_per_address: 8,
        }
    }
}

static REFUSED_CONNECTIONS: sigil_primitives::throttle::RateLimitedLog =
    sigil_primitives::throttle::RateLimitedLog::new(Duration::from_secs(10));

/// Accepts connections on `listener` and serves `app` on each, within `limits`, until
/// `stop` turns true (then lets the connections in flight finish).
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let caps = AddressCaps::new(limits.max_connections, limits.max_connections_per_address);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder.http1_only());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopping);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        let Some(slot) = admit(&caps, peer) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handlers see the peer's address (the websocket route caps handshakes by it).
        let app =
            app.clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let service = TowerToHyperService::new(app);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "HTTP connection ended");
            }
        });
    }
    graceful.shutdown().await;
}

/// A connection slot for `peer`, or `None` (counted, and logged at most every 10 s).
fn admit(caps: &Arc<AddressCaps>, peer: SocketAddr) -> Option<Slot> {
    match caps.take(peer.ip()) {
        Ok(slot) => Some(slot),
        Err(full) => {
            let reason = match full {
                Full::Total => "total",
                Full::Address => "per_address",
            };
            metrics::counter!("sigil_node_http_connections_refused_total", "cap" => reason)
                .increment(1);
            if let Some(count) = REFUSED_CONNECTIONS.hit() {
                tracing::warn!(count, cap = reason, last = %peer.ip(), "refused connections over the cap");
            }
            None
        }
    }
}
