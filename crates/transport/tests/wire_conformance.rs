//! A peer written from docs/PROTOCOL.md §5 alone (snow and raw bytes, no crate internals)
//! talks to a real transport: pins the wire format.

mod common;

use common::*;
use futures::{SinkExt as _, StreamExt as _};
use sigil_crypto::keys::NodeSeed;
use sigil_transport::{Kind, SessionId};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match within(ws.next()).await.expect("open").expect("ok") {
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Runs §5.2–§5.4 as `name` against `node`; returns the transport state and the verdict.
async fn handshake(name: &str, node: &Node) -> (Ws, snow::TransportState, Vec<u8>) {
    let seed = NodeSeed::dev(name);
    let (account, static_key) = (seed.account_keypair(), seed.x25519_key());
    let url = format!("ws://{}/v1/ws", node.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let secret = static_key.secret_bytes();
    let responder_static = node.record().x25519;
    let mut hs = snow::Builder::new("Noise_XK_25519_ChaChaPoly_BLAKE2s".parse().expect("params"))
        .local_private_key(secret.as_ref())
        .and_then(|b| b.remote_public_key(responder_static.as_bytes()))
        .and_then(|b| b.prologue(b"sigil/v1"))
        .and_then(|b| b.build_initiator())
        .expect("builder");
    let mut buf = vec![0u8; 65_535];

    let n = hs.write_message(&[], &mut buf).expect("msg1");
    assert_eq!(n, 48);
    ws.send(Message::binary(buf[..n].to_vec()))
        .await
        .expect("send");
    let msg2 = next_binary(&mut ws).await;
    assert_eq!(msg2.len(), 48);
    assert_eq!(hs.read_message(&msg2, &mut buf).expect("msg2"), 0);
    let h2 = hs.get_handshake_hash().to_vec();

    let mut signed = b"sigil/v1/transport-hello".to_vec();
    signed.push(0x01);
    signed.extend_from_slice(account.account_id().as_bytes());
    signed.extend_from_slice(static_key.public_key().as_bytes());
    signed.extend_from_slice(responder_static.as_bytes());
    signed.extend_from_slice(&h2);
    assert_eq!(signed.len(), 153);
    let mut hello = vec![0x01];
    hello.extend_from_slice(account.account_id().as_bytes());
    hello.extend_from_slice(account.sign(&signed).as_bytes());
    let n = hs.write_message(&hello, &mut buf).expect("msg3");
    assert_eq!(n, 161);
    ws.send(Message::binary(buf[..n].to_vec()))
        .await
        .expect("send");

    let mut noise = hs.into_transport_mode().expect("split");
    let verdict = next_binary(&mut ws).await;
    let n = noise.read_message(&verdict, &mut buf).expect("verdict");
    (ws, noise, buf[..n].to_vec())
}

fn frame(kind: u8, session: &SessionId, total: u32, offset: u32, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, kind];
    f.extend_from_slice(session.as_bytes());
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&offset.to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_built_from_the_spec_interoperates() {
    let names = by_id_desc(&["alice", "bob"]);
    let (raw, node_name) = (&names[0], &names[1]);
    let node = start(node_name, config()).await;
    node.transport
        .set_peers(vec![record(raw, node.addr), node.record()]);

    let (mut ws, mut noise, verdict) = handshake(raw, &node).await;
    assert_eq!(verdict, vec![0x00], "accepted");

    let session = sid(42);
    let raw_id = account(raw);
    let mut s = node
        .transport
        .open_session(session, &[raw_id, node.id()])
        .expect("open");

    // A 70,000-byte direct message in two chunks (65,477 + 4,523).
    let message: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; 65_535];
    for (offset, chunk) in [(0usize, &message[..65_477]), (65_477, &message[65_477..])] {
        let f = frame(0x02, &session, 70_000, offset as u32, chunk);
        assert!(f.len() <= 65_519);
        let n = noise.write_message(&f, &mut buf).expect("encrypt");
        ws.send(Message::binary(buf[..n].to_vec()))
            .await
            .expect("send");
    }
    let got = within(s.recv()).await.expect("open");
    assert_eq!((got.from, got.kind), (raw_id, Kind::Direct));
    assert!(got.payload == message);

    // The transport's reply, decoded by hand.
    within(s.broadcast(b"reply".to_vec())).await.expect("send");
    let ct = next_binary(&mut ws).await;
    let n = noise.read_message(&ct, &mut buf).expect("decrypt");
    assert_eq!(buf[..n].to_vec(), frame(0x01, &session, 5, 0, b"reply"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_has_the_documented_layout() {
    let names = by_id_desc(&["alice", "bob"]);
    // The smaller id dials: refused with wrong_direction.
    let (node_name, raw) = (&names[0], &names[1]);
    let node = start(node_name, config()).await;
    node.transport
        .set_peers(vec![record(raw, node.addr), node.record()]);
    let (_ws, _noise, verdict) = handshake(raw, &node).await;
    assert_eq!(verdict[0], 0x01);
    assert_eq!(verdict[1] as usize, "wrong_direction".len());
    assert_eq!(&verdict[2..17], b"wrong_direction");
    let text_len = u16::from_be_bytes([verdict[17], verdict[18]]) as usize;
    assert_eq!(verdict.len(), 19 + text_len);
    assert!(std::str::from_utf8(&verdict[19..]).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_replaces_a_stale_one() {
    let names = by_id_desc(&["alice", "bob"]);
    let (dialler_name, node_name) = (&names[0], &names[1]);
    let node = start(node_name, config()).await;
    // The stale connection: the dialler's identity, connected by hand, then silent.
    node.transport
        .set_peers(vec![record(dialler_name, node.addr), node.record()]);
    let (mut stale, _noise, verdict) = handshake(dialler_name, &node).await;
    assert_eq!(verdict, vec![0x00]);
    eventually("the stale connection to register", || {
        node.transport.connected_peers().len() == 1
    })
    .await;

    // The dialler "restarts" as a real transport and dials again.
    let dialler = start(dialler_name, config()).await;
    let records = vec![dialler.record(), node.record()];
    dialler.transport.set_peers(records.clone());
    node.transport.set_peers(records);
    let members = [dialler.id(), node.id()];
    let mut s_dialler = dialler
        .transport
        .open_session(sid(1), &members)
        .expect("open");
    let mut s_node = node.transport.open_session(sid(1), &members).expect("open");
    within(s_dialler.send(&node.id(), b"fresh".to_vec()))
        .await
        .expect("send");
    assert_eq!(within(s_node.recv()).await.expect("open").payload, b"fresh");

    // The node closed the older connection.
    let closed = within(async {
        loop {
            match stale.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed);
    assert_eq!(node.transport.connected_peers(), vec![dialler.id()]);
    assert_eq!(node.transport.stats().handshakes_ok, 2);
    within(s_node.send(&dialler.id(), b"back".to_vec()))
        .await
        .expect("send");
    assert_eq!(
        within(s_dialler.recv()).await.expect("open").payload,
        b"back"
    );
}
