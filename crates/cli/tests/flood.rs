//! Floods against a relayer (a real `sigil node` process on a fixture-share devnet): slowloris
//! connections that never finish their headers, from one address, and websocket upgrades to
//! `/v1/ws` that never start their Noise handshake, from another. Meanwhile `/healthz` from a
//! third address keeps answering and a real signature goes through; the server closes the
//! slow connections at its header deadline and answers surplus upgrades `503 busy`.
//!
//! The default run floods with 300 of each; the tagged run with the figures of the hardening
//! issue (1,000 slowloris, 5,000 upgrades): `cargo test -p sigil --test flood -- --ignored`.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sigil::devnet::Devnet;
use sigil_client::NodeClient;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{HashingAlgorithm, VerifyingKey};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The header deadline the relayer runs with here.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

async fn start(dir: &std::path::Path) -> (Devnet, VerifyingKey) {
    fixture_devnet(dir, &["--http-header-timeout", "2s"], |_| {}).await
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.2, …).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// A slowloris connection: a request line and one header, then silence.
async fn slowloris(to: SocketAddr) -> Option<TcpStream> {
    let mut stream = connect_from([127, 0, 0, 2], to).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: relayer\r\n")
        .await
        .ok()?;
    Some(stream)
}

/// A websocket upgrade that never starts the Noise handshake; `true` if the node answered
/// `101`, `false` for `503 busy` (or a closed connection).
async fn idle_upgrade(to: SocketAddr) -> Option<(TcpStream, bool)> {
    let mut stream = connect_from([127, 0, 0, 3], to).await.ok()?;
    let request = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {to}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await;
    let upgraded = matches!(read, Ok(Ok(n)) if n >= 12 && &head[9..12] == b"101");
    Some((stream, upgraded))
}

/// Whether the server has closed `stream` (a read returns end of file or an error).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Sends `request` as is and reads the answer's status and body (up to 2 s).
async fn raw(to: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(to).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// HTTP edges a probe found: each gets its JSON error, before any body is read.
async fn edges(to: SocketAddr) {
    let (status, body) = raw(
        to,
        "POST /v1/relay HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("unsupported_media_type"), "{body}");
    let (status, body) = raw(
        to,
        "GET /v1/relay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert!(
        body.contains("\"method_not_allowed\""),
        "a JSON error: {body}"
    );
    let (status, body) = raw(
        to,
        "POST /v1/relay HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status, 413,
        "no 100 Continue for a body over the cap: {body}"
    );
    assert!(body.contains("payload_too_large"), "{body}");
    for (key, version) in [("", "13"), ("dGhlIHNhbXBsZSBub25jZQ==", "99")] {
        let (status, body) = raw(
            to,
            &format!(
                "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 400, "key {key:?}, version {version}: {body}");
        assert!(body.contains("not_a_websocket"), "{body}");
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn flood(slow: usize, upgrades: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, key) = start(dir.path()).await;
    let ledger = devnet.client();
    let relayer_record = ledger.relayers().await.unwrap()[0].clone();
    let relayer = devnet
        .nodes()
        .iter()
        .find(|n| n.account == relayer_record.account)
        .expect("a relayer");
    let to: SocketAddr = relayer.endpoint.parse().unwrap();
    let pid = relayer.pid().expect("relayer pid");
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut slow_streams: Vec<TcpStream> =
        futures::future::join_all((0..slow).map(|_| slowloris(to)))
            .await
            .into_iter()
            .flatten()
            .collect();
    let upgraded: Vec<(TcpStream, bool)> =
        futures::future::join_all((0..upgrades).map(|_| idle_upgrade(to)))
            .await
            .into_iter()
            .flatten()
            .collect();
    let accepted_upgrades = upgraded.iter().filter(|(_, ok)| *ok).count();
    let slow_count = slow_streams.len();
    let mut rss_peak = rss_kib(pid);

    // Service during the flood, from 127.0.0.1.
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..50 {
        let asked = Instant::now();
        let answer = http
            .get(format!("http://{to}/healthz"))
            .send()
            .await
            .expect("healthz answers during the flood");
        assert!(answer.status().is_success(), "{answer:?}");
        latencies.push(asked.elapsed());
        rss_peak = rss_peak.max(rss_kib(pid));
    }
    latencies.sort();
    let request = SignatureRequest {
        verifying_key: key,
        block: head(ledger).await,
        hashing: HashingAlgorithm::Keccak256,
        aux_data: vec![vec![]],
        message: b"signed during a flood".to_vec(),
    };
    let sealed = sigil_client::seal_request(&dev("bob"), &relayer_record, &request).unwrap();
    let asked = Instant::now();
    let signed = NodeClient::new(&relayer.endpoint)
        .relay(&sealed.envelope)
        .await
        .expect("a real signature during the flood");
    sigil_client::verify_response(&sealed, &request, &signed).expect("valid");
    let signature_latency = asked.elapsed();

    // The slow connections are cut at the header deadline.
    tokio::time::sleep(HEADER_TIMEOUT + Duration::from_secs(1)).await;
    let mut cut = 0;
    for stream in &mut slow_streams {
        if closed_by_server(stream).await {
            cut += 1;
        }
    }
    rss_peak = rss_peak.max(rss_kib(pid));
    drop(upgraded);
    drop(slow_streams);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let rss_after = rss_kib(pid);
    edges(to).await;
    eprintln!(
        "flood: {slow} slowloris connections ({cut} cut by the {HEADER_TIMEOUT:?} header \
         deadline), {upgrades} idle upgrades ({accepted_upgrades} upgraded, the rest 503 busy \
         or refused); /healthz p50 {:?} p99 {:?}; a signature in {signature_latency:?}; \
         relayer RSS {} MiB before, {} MiB peak, {} MiB after; flood lasted {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        rss_before / 1024,
        rss_peak / 1024,
        rss_after / 1024,
        started.elapsed(),
    );
    assert_eq!(cut, slow_count, "every slow connection was cut or refused");
    assert!(
        accepted_upgrades <= 8,
        "at most 8 handshakes in flight from one address: {accepted_upgrades}"
    );
    devnet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayer_keeps_serving_through_slowloris_and_handshake_floods() {
    flood(300, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the hardening issue's figures: 1,000 slowloris connections, 5,000 upgrades"]
async fn figures_for_1000_slowloris_and_5000_upgrades() {
    flood(1000, 5000).await;
}
