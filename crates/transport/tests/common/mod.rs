//! Helpers for the transport's network tests: real sockets on 127.0.0.1, dev identities.

#![allow(dead_code)] // not every test binary uses every helper

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sigil_crypto::keys::{NodeSeed, X25519StaticKey};
use sigil_primitives::{AccountId, Endpoint};
use sigil_transport::{SessionId, Transport, TransportConfig, ValidatorInfo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits for; never a pass condition.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Fast timings for tests.
pub fn config() -> TransportConfig {
    TransportConfig {
        handshake_timeout: Duration::from_secs(5),
        send_timeout: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..TransportConfig::default()
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// One running node.
pub struct Node {
    pub name: String,
    pub transport: Transport,
    pub addr: SocketAddr,
    pub serve: JoinHandle<std::io::Result<()>>,
}

impl Node {
    pub fn id(&self) -> AccountId {
        self.transport.account()
    }

    /// This node's record as honest peers know it.
    pub fn record(&self) -> ValidatorInfo {
        record(&self.name, self.addr)
    }

    /// Shuts the transport down and waits until its listener is closed.
    pub async fn stop(self) -> SocketAddr {
        self.transport.shutdown();
        within(self.serve).await.expect("join").expect("serve");
        self.addr
    }
}

pub fn account(name: &str) -> AccountId {
    NodeSeed::dev(name).account_keypair().account_id()
}

pub fn record(name: &str, addr: SocketAddr) -> ValidatorInfo {
    let seed = NodeSeed::dev(name);
    ValidatorInfo {
        account: seed.account_keypair().account_id(),
        x25519: seed.x25519_key().public_key(),
        endpoint: Endpoint::new(addr.to_string()).expect("endpoint"),
    }
}

/// Starts `name` listening on `addr` (port 0 for a free one).
pub async fn start_at(name: &str, addr: &str, config: TransportConfig) -> Node {
    let seed = NodeSeed::dev(name);
    start_with_key(name, addr, seed.x25519_key(), config).await
}

/// Starts `name` with the given Noise static key (which may not match its record).
pub async fn start_with_key(
    name: &str,
    addr: &str,
    static_key: X25519StaticKey,
    config: TransportConfig,
) -> Node {
    init_logs();
    let seed = NodeSeed::dev(name);
    let transport = Transport::new(seed.account_keypair(), static_key, config);
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serve = tokio::spawn({
        let t = transport.clone();
        async move { t.serve(listener).await }
    });
    Node {
        name: name.to_owned(),
        transport,
        addr,
        serve,
    }
}

pub async fn start(name: &str, config: TransportConfig) -> Node {
    start_at(name, "127.0.0.1:0", config).await
}

/// `names` sorted by account id, largest first (so element 0 dials everyone).
pub fn by_id_desc(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort_by_key(|n| std::cmp::Reverse(account(n).to_bytes()));
    v
}

/// Starts all `names` and gives each the full directory.
pub async fn network(names: &[&str], config: TransportConfig) -> Vec<Node> {
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(start(name, config.clone()).await);
    }
    let records: Vec<ValidatorInfo> = nodes.iter().map(Node::record).collect();
    for n in &nodes {
        n.transport.set_peers(records.clone());
    }
    nodes
}

pub fn sid(n: u32) -> SessionId {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    SessionId::new(id)
}

/// Awaits `f`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("timed out waiting")
}

/// Polls `cond` until it holds, failing the test after [`LIMIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
