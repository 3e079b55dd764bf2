//! Transport behaviour over real sockets on 127.0.0.1.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use sigil_crypto::keys::NodeSeed;
use sigil_primitives::AccountId;
use sigil_transport::{
    Incoming, Kind, RefusalCode, Session, TransportConfig, TransportError, WS_PATH,
};

/// Receives `count` messages, failing after the test limit.
async fn recv_n(session: &mut Session, count: usize) -> Vec<Incoming> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(within(session.recv()).await.expect("session open"));
    }
    out
}

/// Every node broadcasts once and sends one direct message to each other member; every node
/// must get exactly the n-1 broadcasts and n-1 direct messages meant for it.
async fn exchange(names: &[&str]) {
    let nodes = network(names, config()).await;
    let members: Vec<AccountId> = nodes.iter().map(Node::id).collect();
    let mut tasks = Vec::new();
    for node in &nodes {
        let mut session = node.transport.open_session(sid(1), &members).expect("open");
        let me = node.id();
        let members = members.clone();
        tasks.push(tokio::spawn(async move {
            let sends = async {
                session
                    .broadcast(format!("broadcast from {me}").into_bytes())
                    .await
                    .expect("broadcast");
                for peer in members.iter().filter(|p| **p != me) {
                    session
                        .send(peer, format!("direct {me} -> {peer}").into_bytes())
                        .await
                        .expect("send");
                }
            };
            sends.await;
            let got = recv_n(&mut session, 2 * (members.len() - 1)).await;
            let got: BTreeSet<(String, bool, String)> = got
                .into_iter()
                .map(|m| {
                    (
                        m.from.to_string(),
                        m.kind == Kind::Broadcast,
                        String::from_utf8(m.payload).expect("utf8"),
                    )
                })
                .collect();
            let mut expected = BTreeSet::new();
            for peer in members.iter().filter(|p| **p != me) {
                expected.insert((peer.to_string(), true, format!("broadcast from {peer}")));
                expected.insert((peer.to_string(), false, format!("direct {peer} -> {me}")));
            }
            assert_eq!(got, expected);
            assert!(session.try_recv().is_none(), "no extra messages");
        }));
    }
    for t in tasks {
        within(t).await.expect("node task");
    }
    for node in &nodes {
        assert_eq!(node.transport.connected_peers().len(), nodes.len() - 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_direct_and_broadcast() {
    exchange(&["alice", "bob"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_direct_and_broadcast() {
    exchange(&["alice", "bob", "charlie"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_exchange_direct_and_broadcast() {
    exchange(&["alice", "bob", "charlie", "dave", "eve"]).await;
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 16) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_megabyte_messages_arrive_intact_both_ways_at_once() {
    let nodes = network(&["alice", "bob", "charlie"], config()).await;
    let members: Vec<AccountId> = nodes.iter().map(Node::id).collect();
    let mut sessions: Vec<Session> = nodes
        .iter()
        .map(|n| n.transport.open_session(sid(7), &members).expect("open"))
        .collect();
    // Everyone broadcasts several MB at the same time, so large writes cross on every link.
    let sizes = [5_000_000usize, 3 * 65_477 + 1, 4_194_304];
    let sends = sessions
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(i, (s, size))| s.broadcast(pattern(size, i as u8)));
    for r in within(futures::future::join_all(sends)).await {
        r.expect("broadcast");
    }
    for (i, session) in sessions.iter_mut().enumerate() {
        let got = recv_n(session, 2).await;
        for m in got {
            let j = members.iter().position(|a| *a == m.from).expect("member");
            assert_ne!(i, j);
            assert_eq!(m.payload.len(), sizes[j]);
            assert!(m.payload == pattern(sizes[j], j as u8), "payload intact");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_key_not_matching_the_record_is_refused() {
    let names = by_id_desc(&["alice", "bob"]);
    // The dialler runs with a static key other than the one in its ledger record.
    let wrong = NodeSeed::dev("mallory").x25519_key();
    let dialler = start_with_key(&names[0], "127.0.0.1:0", wrong, config()).await;
    let listener = start(&names[1], config()).await;
    let records = vec![dialler.record(), listener.record()];
    dialler.transport.set_peers(records.clone());
    listener.transport.set_peers(records);

    let err = within(dialler.transport.connect(&listener.id()))
        .await
        .expect_err("refused");
    match err {
        TransportError::Refused { peer, code, .. } => {
            assert_eq!(peer, listener.id());
            assert_eq!(code, RefusalCode::KeyMismatch);
        }
        other => panic!("expected key_mismatch, got {other}"),
    }
    assert!(listener.transport.connected_peers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_not_in_the_directory_is_refused() {
    let names = by_id_desc(&["alice", "bob"]);
    let dialler = start(&names[0], config()).await;
    let listener = start(&names[1], config()).await;
    dialler
        .transport
        .set_peers(vec![dialler.record(), listener.record()]);
    listener.transport.set_peers(vec![listener.record()]);

    let err = within(dialler.transport.connect(&listener.id()))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            &err,
            TransportError::Refused {
                code: RefusalCode::UnknownPeer,
                ..
            }
        ),
        "{err}"
    );

    // Once the listener learns the dialler, the dial loop gets through.
    listener
        .transport
        .set_peers(vec![dialler.record(), listener.record()]);
    within(async {
        loop {
            match dialler.transport.connect(&listener.id()).await {
                Ok(()) => break,
                Err(TransportError::Refused { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_with_another_static_key_fails_the_handshake() {
    let names = by_id_desc(&["alice", "bob"]);
    let dialler = start(&names[0], config()).await;
    let listener = start_with_key(
        &names[1],
        "127.0.0.1:0",
        NodeSeed::dev("mallory").x25519_key(),
        config(),
    )
    .await;
    let records = vec![dialler.record(), listener.record()];
    dialler.transport.set_peers(records.clone());
    listener.transport.set_peers(records);

    let err = within(dialler.transport.connect(&listener.id()))
        .await
        .expect_err("fails");
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_cap_are_refused_and_dropped() {
    let names = by_id_desc(&["alice", "bob"]);
    let big = TransportConfig {
        max_message_size: 4 << 20,
        ..config()
    };
    let small = TransportConfig {
        max_message_size: 1 << 20,
        ..config()
    };
    let a = start(&names[0], big).await;
    let b = start(&names[1], small).await;
    let records = vec![a.record(), b.record()];
    a.transport.set_peers(records.clone());
    b.transport.set_peers(records);
    let members = [a.id(), b.id()];
    let sa = a.transport.open_session(sid(1), &members).expect("open");
    let mut sb = b.transport.open_session(sid(1), &members).expect("open");

    // Outgoing: refused before anything is sent.
    let err = sb
        .send(&a.id(), vec![0; (1 << 20) + 1])
        .await
        .expect_err("too large");
    assert_eq!(
        err,
        TransportError::MessageTooLarge {
            size: (1 << 20) + 1,
            max: 1 << 20
        }
    );
    assert!(matches!(
        sb.broadcast(vec![0; (1 << 20) + 1]).await,
        Err(TransportError::MessageTooLarge { .. })
    ));

    // Incoming over b's cap: dropped, the connection stays and the next message arrives.
    within(sa.send(&b.id(), vec![1; 2 << 20]))
        .await
        .expect("a may send 2 MiB");
    within(sa.send(&b.id(), b"small".to_vec()))
        .await
        .expect("send");
    let got = within(sb.recv()).await.expect("open");
    assert_eq!(got.payload, b"small");
    assert_eq!(a.transport.stats().handshakes_ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_share_one_connection_per_pair() {
    const SESSIONS: u32 = 50;
    let nodes = network(&["alice", "bob", "charlie", "dave"], config()).await;
    let members: Vec<AccountId> = nodes.iter().map(Node::id).collect();
    let mut tasks = Vec::new();
    for node in &nodes {
        for s in 0..SESSIONS {
            let mut session = node.transport.open_session(sid(s), &members).expect("open");
            let me = node.id();
            let n = members.len();
            let to = members[(members.iter().position(|m| *m == me).expect("me") + 1) % n];
            tasks.push(tokio::spawn(async move {
                let tag = format!("session {s} from {me}");
                session
                    .broadcast(tag.clone().into_bytes())
                    .await
                    .expect("broadcast");
                session
                    .send(&to, format!("direct {tag}").into_bytes())
                    .await
                    .expect("send");
                // n-1 broadcasts and exactly one direct message (from the predecessor).
                let got = recv_n(&mut session, n).await;
                let mut directs = 0;
                for m in got {
                    let text = String::from_utf8(m.payload).expect("utf8");
                    let expected = format!("session {s} from {}", m.from);
                    match m.kind {
                        Kind::Broadcast => assert_eq!(text, expected),
                        Kind::Direct => {
                            assert_eq!(text, format!("direct {expected}"));
                            directs += 1;
                        }
                    }
                }
                assert_eq!(directs, 1);
                session
            }));
        }
    }
    let mut open = Vec::new();
    for t in tasks {
        open.push(within(t).await.expect("session task"));
    }
    for mut s in open {
        assert!(s.try_recv().is_none(), "no foreign messages");
    }
    let pairs = (nodes.len() * (nodes.len() - 1) / 2) as u64;
    let stats: Vec<_> = nodes.iter().map(|n| n.transport.stats()).collect();
    for st in &stats {
        assert_eq!(st.connected_peers, nodes.len() - 1);
        assert_eq!(st.handshakes_ok, (nodes.len() - 1) as u64);
    }
    assert_eq!(stats.iter().map(|s| s.dials).sum::<u64>(), pairs);
    assert_eq!(stats.iter().map(|s| s.inbound).sum::<u64>(), pairs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_messages_wait_for_their_session() {
    // Sender and receiver in both roles: the receiver may be the dialler or the listener.
    let names = by_id_desc(&["alice", "bob"]);
    let nodes = network(&[names[0].as_str(), names[1].as_str()], config()).await;
    let members = [nodes[0].id(), nodes[1].id()];
    for (from, to) in [(0, 1), (1, 0)] {
        let id = sid(100 + from as u32);
        let sender = nodes[from]
            .transport
            .open_session(id, &members)
            .expect("open");
        if from == 1 {
            // Let the dialler connect first (warm-up from an earlier round) so the message
            // really arrives before the session exists.
            within(nodes[1].transport.connect(&members[0]))
                .await
                .expect("up");
        }
        within(sender.send(&members[to], b"early".to_vec()))
            .await
            .expect("send");
        let receiver = &nodes[to].transport;
        eventually("the message to be held", || {
            receiver.stats().held_messages == 1
        })
        .await;
        let mut session = receiver.open_session(id, &members).expect("open");
        let got = session.try_recv().expect("held message delivered on open");
        assert_eq!(got.payload, b"early");
        assert_eq!(got.from, members[from]);
        assert_eq!(receiver.stats().held_messages, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_expire() {
    let quick = TransportConfig {
        hold_unclaimed: Duration::from_millis(200),
        ..config()
    };
    // The sender dials, so its message goes out without the receiver's help.
    let names = by_id_desc(&["alice", "bob"]);
    let nodes = network(&[names[0].as_str(), names[1].as_str()], quick).await;
    let members = [nodes[0].id(), nodes[1].id()];
    let sender = nodes[0]
        .transport
        .open_session(sid(5), &members)
        .expect("open");
    within(sender.send(&members[1], b"too early".to_vec()))
        .await
        .expect("send");
    let receiver = &nodes[1].transport;
    eventually("the message to be held", || {
        receiver.stats().held_messages == 1
    })
    .await;
    eventually("the held message to expire", || {
        receiver.stats().held_messages == 0
    })
    .await;
    let mut session = receiver.open_session(sid(5), &members).expect("open");
    assert!(session.try_recv().is_none(), "expired message was dropped");
    within(sender.send(&members[1], b"in time".to_vec()))
        .await
        .expect("send");
    assert_eq!(
        within(session.recv()).await.expect("open").payload,
        b"in time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_non_members_are_dropped() {
    let nodes = network(&["alice", "bob", "charlie"], config()).await;
    let (a, b, c) = (nodes[0].id(), nodes[1].id(), nodes[2].id());
    // a and b run session 1 without c; c believes it is a member.
    let mut sa = nodes[0]
        .transport
        .open_session(sid(1), &[a, b])
        .expect("open");
    let _sb = nodes[1]
        .transport
        .open_session(sid(1), &[a, b])
        .expect("open");
    let sc = nodes[2]
        .transport
        .open_session(sid(1), &[a, b, c])
        .expect("open");
    let mut sa2 = nodes[0]
        .transport
        .open_session(sid(2), &[a, c])
        .expect("open");
    let sc2 = nodes[2]
        .transport
        .open_session(sid(2), &[a, c])
        .expect("open");
    within(sc.send(&a, b"intruder".to_vec()))
        .await
        .expect("send");
    // Same connection, so once this arrives the intruder's message has been handled.
    within(sc2.send(&a, b"marker".to_vec()))
        .await
        .expect("send");
    assert_eq!(within(sa2.recv()).await.expect("open").payload, b"marker");
    assert!(sa.try_recv().is_none(), "non-member message dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_bookkeeping_errors() {
    let nodes = network(&["alice", "bob"], config()).await;
    let (a, b) = (nodes[0].id(), nodes[1].id());
    let t = &nodes[0].transport;
    let s = t.open_session(sid(1), &[a, b]).expect("open");
    assert_eq!(
        t.open_session(sid(1), &[a, b]).expect_err("twice"),
        TransportError::SessionAlreadyOpen(sid(1))
    );
    assert_eq!(
        t.open_session(sid(2), &[b]).expect_err("not me"),
        TransportError::NotAMember(a)
    );
    let stranger = account("mallory");
    assert!(matches!(
        s.send(&stranger, vec![1]).await,
        Err(TransportError::NotSessionMember { .. })
    ));
    assert!(matches!(
        s.send(&a, vec![1]).await,
        Err(TransportError::NotSessionMember { .. })
    ));
    drop(s);
    let _again = t.open_session(sid(1), &[a, b]).expect("reopen after drop");
    let lone = t
        .open_session(sid(3), &[a, stranger])
        .expect("unknown members are allowed");
    assert_eq!(
        lone.send(&stranger, vec![1]).await,
        Err(TransportError::UnknownPeer(stranger))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_get_404() {
    let node = start("alice", config()).await;
    let stream = tokio::net::TcpStream::connect(node.addr)
        .await
        .expect("tcp");
    let err = tokio_tungstenite::client_async(format!("ws://{}/v1/other", node.addr), stream)
        .await
        .expect_err("not found");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 404),
        other => panic!("expected a 404, got {other}"),
    }
    let stream = tokio::net::TcpStream::connect(node.addr)
        .await
        .expect("tcp");
    tokio_tungstenite::client_async(format!("ws://{}{WS_PATH}", node.addr), stream)
        .await
        .expect("the transport path upgrades");
}

/// Restarts the node at `index` on the same port with a fresh transport, then checks that
/// messages flow both ways in a new session.
async fn restart_and_check(index: usize) {
    let names = by_id_desc(&["alice", "bob"]);
    let mut nodes = network(&[names[0].as_str(), names[1].as_str()], config()).await;
    let members = [nodes[0].id(), nodes[1].id()];
    {
        let s0 = nodes[0]
            .transport
            .open_session(sid(1), &members)
            .expect("open");
        let mut s1 = nodes[1]
            .transport
            .open_session(sid(1), &members)
            .expect("open");
        within(s0.send(&members[1], b"before".to_vec()))
            .await
            .expect("send");
        assert_eq!(within(s1.recv()).await.expect("open").payload, b"before");
    }

    let old = nodes.remove(index);
    let name = old.name.clone();
    let addr = old.stop().await;
    let fresh = start_at(&name, &addr.to_string(), config()).await;
    nodes.insert(index, fresh);
    let records: Vec<_> = nodes.iter().map(Node::record).collect();
    nodes[index].transport.set_peers(records);

    let mut sessions: HashMap<usize, Session> = (0..2)
        .map(|i| {
            (
                i,
                nodes[i]
                    .transport
                    .open_session(sid(2), &members)
                    .expect("open"),
            )
        })
        .collect();
    // Delivery is at-most-once: a message written into the dying connection may be lost, so
    // "later messages" are those sent once both sides hold the new connection.
    let (survivor, fresh) = (&nodes[1 - index].transport, &nodes[index].transport);
    eventually("the new connection on both sides", || {
        survivor.stats().handshakes_ok == 2 && fresh.stats().handshakes_ok == 1
    })
    .await;
    within(sessions[&0].send(&members[1], b"after 0->1".to_vec()))
        .await
        .expect("send");
    within(sessions[&1].send(&members[0], b"after 1->0".to_vec()))
        .await
        .expect("send");
    let s1 = sessions.get_mut(&1).expect("s1");
    assert_eq!(
        within(s1.recv()).await.expect("open").payload,
        b"after 0->1"
    );
    let s0 = sessions.get_mut(&0).expect("s0");
    assert_eq!(
        within(s0.recv()).await.expect("open").payload,
        b"after 1->0"
    );
    assert_eq!(nodes[0].transport.connected_peers(), vec![members[1]]);
    assert_eq!(nodes[1].transport.connected_peers(), vec![members[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialler_reconnects_after_the_listener_restarts() {
    restart_and_check(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_dialler_replaces_its_old_connection() {
    restart_and_check(0).await;
}
