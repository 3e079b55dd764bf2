//! What a validator connection costs: messages per second over one established Noise
//! connection, the handshake that opens one, and a whole session with and without
//! persistent connections. Two transports on 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Node, by_id_desc, network, record, sid, start};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sigil_crypto::keys::NodeSeed;
use sigil_transport::{Session, Transport, TransportConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The two nodes by account id, largest (the dialler) first.
fn pair_names() -> Vec<String> {
    by_id_desc(&["alice", "bob"])
}

/// Sender to receiver, one session, one connection: a batch of messages sent and received.
fn one_connection(c: &mut Criterion) {
    let rt = runtime();
    let names = pair_names();
    let (nodes, sender, mut receiver) = rt.block_on(async {
        let nodes = network(
            &[names[0].as_str(), names[1].as_str()],
            TransportConfig::default(),
        )
        .await;
        let members = [nodes[0].id(), nodes[1].id()];
        let sender = nodes[0]
            .transport
            .open_session(sid(1), &members)
            .expect("open");
        let mut receiver = nodes[1]
            .transport
            .open_session(sid(1), &members)
            .expect("open");
        // Connect before measuring.
        sender.send(&members[1], vec![0]).await.expect("send");
        receiver.recv().await.expect("open");
        (nodes, sender, receiver)
    });
    let to = nodes[1].id();

    let mut group = c.benchmark_group("one-connection");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, size, batch) in [
        ("64B", 64, 2000u64),
        ("4KiB", 4 << 10, 1000),
        ("64KiB", 64 << 10, 200),
        ("1MiB", 1 << 20, 16),
    ] {
        let payload = vec![0xa5u8; size];
        group.throughput(Throughput::Elements(batch));
        group.bench_function(BenchmarkId::new("send+recv", label), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..batch {
                        sender.send(&to, payload.clone()).await.expect("send");
                    }
                    for _ in 0..batch {
                        black_box(receiver.recv().await.expect("open"));
                    }
                })
            })
        });
    }
    group.finish();
    drop((sender, receiver));
    stop(&rt, nodes);
}

/// A fresh dialler connecting to a running listener: TCP, websocket upgrade, Noise XK and
/// the signed hello with its verdict. Building and stopping the dialler are not timed.
fn handshake(c: &mut Criterion) {
    let rt = runtime();
    let names = pair_names();
    let listener = rt.block_on(start(&names[1], TransportConfig::default()));
    // The listener never dials, so the dialler's endpoint is not used.
    let directory = vec![listener.record(), record(&names[0], listener.addr)];
    listener.transport.set_peers(directory.clone());
    let seed = NodeSeed::dev(&names[0]);
    let to = listener.id();

    let mut group = c.benchmark_group("handshake");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("tcp+websocket+noise-xk+hello", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let dialler = Transport::new(
                        seed.account_keypair(),
                        seed.x25519_key(),
                        TransportConfig::default(),
                    );
                    dialler.set_peers(directory.clone());
                    let started = Instant::now();
                    dialler.connect(&to).await.expect("connect");
                    timed += started.elapsed();
                    dialler.shutdown();
                }
                timed
            })
        })
    });
    group.finish();
    stop(&rt, vec![listener]);
}

/// One session end to end: both ends open it, each sends the other 64 bytes and receives
/// them, both drop it. Without persistent connections every session pays a handshake and a
/// close.
fn session(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, persistent) in [("persistent", true), ("per-session-connection", false)] {
        let rt = runtime();
        let names = pair_names();
        let config = TransportConfig {
            persistent_connections: persistent,
            ..TransportConfig::default()
        };
        let nodes = rt.block_on(network(&[names[0].as_str(), names[1].as_str()], config));
        let members = [nodes[0].id(), nodes[1].id()];
        let mut next = 0u32;
        group.bench_function(BenchmarkId::new("open+exchange+drop", label), |b| {
            b.iter(|| {
                next += 1;
                rt.block_on(async {
                    let mut ends: Vec<Session> = nodes
                        .iter()
                        .map(|n| n.transport.open_session(sid(next), &members).expect("open"))
                        .collect();
                    ends[0].send(&members[1], vec![1; 64]).await.expect("send");
                    ends[1].send(&members[0], vec![2; 64]).await.expect("send");
                    for end in &mut ends {
                        black_box(end.recv().await.expect("open"));
                    }
                })
            })
        });
        stop(&rt, nodes);
    }
    group.finish();
}

fn stop(rt: &tokio::runtime::Runtime, nodes: Vec<Node>) {
    rt.block_on(async {
        for node in nodes {
            node.stop().await;
        }
    });
}

criterion_group!(benches, one_connection, handshake, session);
criterion_main!(benches);
