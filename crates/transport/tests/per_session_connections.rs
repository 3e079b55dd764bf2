//! `persistent_connections`: with it off, a peer's connection closes once no open session
//! includes the peer, without losing a message; with it on (the default), one connection
//! serves every session. Real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use sigil_primitives::AccountId;
use sigil_transport::{Session, TransportConfig, TransportStats};

fn per_session() -> TransportConfig {
    TransportConfig {
        persistent_connections: false,
        ..config()
    }
}

/// Runs `count` sessions one after the other between a dialler and a listener (each sends
/// the other three messages), dropping the dialler's end first. Returns both sides' stats as
/// they stood once each session's messages had arrived, then the final ones.
async fn sequential_sessions(
    config: TransportConfig,
    count: u32,
) -> (Vec<(TransportStats, TransportStats)>, [Node; 2]) {
    let names = by_id_desc(&["alice", "bob"]);
    let nodes = network(&[names[0].as_str(), names[1].as_str()], config).await;
    let members = [nodes[0].id(), nodes[1].id()];
    let mut seen = Vec::new();
    for s in 0..count {
        let mut ends: Vec<Session> = nodes
            .iter()
            .map(|n| n.transport.open_session(sid(s), &members).expect("open"))
            .collect();
        for (from, to) in [(0, 1), (1, 0)] {
            for i in 0..3 {
                within(ends[from].send(&members[to], format!("{s}/{i}").into_bytes()))
                    .await
                    .expect("send");
            }
        }
        for (to, from) in [(0, 1), (1, 0)] {
            for i in 0..3 {
                let got = within(ends[to].recv()).await.expect("open");
                assert_eq!(got.from, members[from]);
                assert_eq!(got.payload, format!("{s}/{i}").into_bytes());
            }
        }
        seen.push((nodes[0].transport.stats(), nodes[1].transport.stats()));
        // The dialler's end first: a listener closing first would make the dialler redial for
        // its still-open session, which is correct but would blur the handshake count.
        drop(ends.remove(0));
        drop(ends);
    }
    (seen, nodes.try_into().unwrap_or_else(|_| unreachable!()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistent_connections_each_session_handshakes_anew() {
    const SESSIONS: u32 = 5;
    let (seen, nodes) = sequential_sessions(per_session(), SESSIONS).await;
    for (s, (dialler, listener)) in seen.iter().enumerate() {
        let expected = s as u64 + 1;
        assert_eq!(dialler.dials, expected, "session {s}: {dialler:?}");
        assert_eq!(dialler.handshakes_ok, expected, "session {s}: {dialler:?}");
        assert_eq!(listener.inbound, expected, "session {s}: {listener:?}");
        assert_eq!(
            listener.handshakes_ok, expected,
            "session {s}: {listener:?}"
        );
    }
    // Idle again: both sides close, and nobody redials.
    for node in &nodes {
        eventually("the idle connection to close", || {
            node.transport.connected_peers().is_empty()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (dialler, listener) = (nodes[0].transport.stats(), nodes[1].transport.stats());
    assert_eq!(dialler.dials, u64::from(SESSIONS), "{dialler:?}");
    assert_eq!(dialler.handshakes_ok, u64::from(SESSIONS), "{dialler:?}");
    assert_eq!(listener.handshakes_ok, u64::from(SESSIONS), "{listener:?}");
    assert_eq!(dialler.connected_peers + listener.connected_peers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_sessions_reuse_one_connection() {
    const SESSIONS: u32 = 5;
    let (seen, nodes) = sequential_sessions(config(), SESSIONS).await;
    assert!(
        config().persistent_connections,
        "the default keeps connections"
    );
    for (s, (dialler, listener)) in seen.iter().enumerate() {
        assert_eq!(dialler.dials, 1, "session {s}: {dialler:?}");
        assert_eq!(dialler.handshakes_ok, 1, "session {s}: {dialler:?}");
        assert_eq!(listener.handshakes_ok, 1, "session {s}: {listener:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in &nodes {
        let stats = node.transport.stats();
        assert_eq!(stats.connected_peers, 1, "{stats:?}");
        assert_eq!(stats.handshakes_ok, 1, "{stats:?}");
    }
}

/// Payload `i` of session `s` from side `me`: a header, then bytes derived from it. Every
/// seventh spans several Noise messages, so closes land in the middle of writes.
fn payload(s: u32, me: usize, i: usize) -> Vec<u8> {
    let mut p = format!("{s}/{me}/{i}/").into_bytes();
    let len = if i.is_multiple_of(7) {
        150_000
    } else {
        100 + i * 17
    };
    p.extend((0..len).map(|k| (k as u8) ^ (i as u8).wrapping_mul(13) ^ s as u8));
    p
}

/// One side of session `s`: sends `MESSAGES` to the peer while receiving the peer's, checks
/// them in order, then keeps the session open for `hold` before dropping it.
async fn one_side(mut session: Session, s: u32, me: usize, peer: AccountId, hold: Duration) {
    const MESSAGES: usize = 50;
    let sender = session.sender();
    let sends = async {
        for i in 0..MESSAGES {
            sender.send(&peer, payload(s, me, i)).await.expect("send");
        }
    };
    let receives = async {
        for i in 0..MESSAGES {
            let got = session.recv().await.expect("open");
            assert_eq!(got.from, peer);
            assert!(
                got.payload == payload(s, 1 - me, i),
                "session {s}, side {me}: message {i} missing, changed or out of order (got {:?})",
                String::from_utf8_lossy(&got.payload[..got.payload.len().min(16)])
            );
        }
    };
    within(futures::future::join(sends, receives)).await;
    tokio::time::sleep(hold).await;
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_idle_connections_loses_no_message() {
    const ROUNDS: u32 = 10;
    let names = by_id_desc(&["alice", "bob"]);
    let nodes = network(&[names[0].as_str(), names[1].as_str()], per_session()).await;
    let members = [nodes[0].id(), nodes[1].id()];
    let mut sides = Vec::new();
    for (me, node) in nodes.iter().enumerate() {
        let transport = node.transport.clone();
        sides.push(tokio::spawn(async move {
            // Rounds of two overlapping sessions. The two sides drop them at different times,
            // and each side starts the next round as soon as it has dropped both, so its
            // connection is being retired while the next session opens, and the peer may
            // still be writing on it.
            for round in 0..ROUNDS {
                let pair = (0..2).map(|k| {
                    let s = round * 2 + k;
                    let session = transport.open_session(sid(s), &members).expect("open");
                    let hold = if (s as usize + me).is_multiple_of(2) {
                        0
                    } else {
                        15
                    };
                    one_side(session, s, me, members[1 - me], Duration::from_millis(hold))
                });
                futures::future::join_all(pair).await;
            }
        }));
    }
    for side in sides {
        within(side).await.expect("side");
    }
    for node in &nodes {
        eventually("the idle connection to close", || {
            node.transport.connected_peers().is_empty()
        })
        .await;
    }
    // A message sent twice would be held for its closed session.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for node in &nodes {
        let stats = node.transport.stats();
        assert_eq!(stats.held_messages, 0, "{stats:?}");
        assert!(
            stats.handshakes_ok >= 2,
            "connections were retired between rounds: {stats:?}"
        );
    }
}
