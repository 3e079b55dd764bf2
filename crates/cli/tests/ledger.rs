//! `sigil ledger` as a real process: every transaction through the client over real sockets,
//! subscriptions, malformed JSON-RPC, and durability under SIGKILL.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use sigil_client::LedgerClient;
use sigil_client::rpc::{EventFilter, LedgerApiClient as _};
use sigil_client::types::*;
use sigil_crypto::{AccountKeypair, NodeSeed, derive_user_key};
use sigil_ledger::chain::Chain;
use sigil_ledger::node::component_header_check;
use sigil_primitives::{
    Endpoint, KeyScheme, ProgramId, ProgramInstance, ProgramList, VerifyingKey, X25519PublicKey,
};

const MESSAGE_SIZE: &[u8] = include_bytes!("../../../programs/dist/message-size.wasm");
const CUSTOM_HASH: &[u8] = include_bytes!("../../../programs/dist/custom-hash.wasm");
const DEVICE_KEY: &[u8] = include_bytes!("../../../programs/dist/device-key.wasm");

struct LedgerProcess {
    child: Child,
    addr: SocketAddr,
    /// The validators' listener, when started with `--validator-rpc`.
    validator_addr: Option<SocketAddr>,
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sigil ledger --dev` on a free port and waits for its ready line.
fn start_ledger(dir: &Path) -> (LedgerProcess, Duration) {
    start_ledger_with(dir, &[])
}

/// Like [`start_ledger`], with extra command-line arguments.
fn start_ledger_with(dir: &Path, extra: &[&str]) -> (LedgerProcess, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args([
            "ledger",
            "--dev",
            "--rpc",
            "127.0.0.1:0",
            "--block-time",
            "100ms",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|a| a.parse::<SocketAddr>().expect("address"))
    };
    let addr = field("rpc=").unwrap_or_else(|| panic!("no rpc address in {line:?}"));
    let validator_addr = field("validator_rpc=");
    (
        LedgerProcess {
            child,
            addr,
            validator_addr,
        },
        started.elapsed(),
    )
}

fn key(name: &str) -> AccountKeypair {
    NodeSeed::dev(name).account_keypair()
}

/// Raw JSON-RPC over HTTP, to send what a typed client cannot.
fn raw_post(addr: SocketAddr, body: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let body = response.split("\r\n\r\n").nth(1).expect("body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn network_key() -> VerifyingKey {
    let sk = k256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("scalar");
    VerifyingKey::from_k256(&(*sk.verifying_key()).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transaction_over_real_sockets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, startup) = start_ledger(&dir.path().join("ledger"));
    eprintln!("sigil ledger --dev ready in {startup:?} on an empty directory");
    let url = format!("ws://{}", ledger.addr);
    let client = LedgerClient::connect(&url).await.expect("connects");
    assert_eq!(client.chain_id(), "sigil-dev");

    let (alice, bob, charlie, dave, eve, ferdie) = (
        key("alice"),
        key("bob"),
        key("charlie"),
        key("dave"),
        key("eve"),
        key("ferdie"),
    );
    let mut events = client
        .events(EventFilter {
            accounts: vec![ferdie.account_id()],
            names: vec![],
        })
        .await
        .expect("subscribes");

    // transfer
    let sent = client
        .submit(
            &alice,
            Call::Transfer {
                to: ferdie.account_id(),
                amount: 50_000_000,
            },
            true,
        )
        .await
        .expect("transfer");
    assert!(sent.included.is_some());
    let note = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event in time");
    let note = note.expect("subscription open").expect("decodes");
    assert_eq!(
        note.event,
        Event::Transferred {
            from: alice.account_id(),
            to: ferdie.account_id(),
            amount: 50_000_000
        }
    );
    assert_eq!(Some(note.block), sent.included);
    assert_eq!(
        client
            .rpc()
            .account(ferdie.account_id())
            .await
            .expect("account")
            .balance,
        50_000_000
    );

    // validate, change_endpoint, change_keys
    for (i, who) in [&bob, &charlie, &dave, &eve].into_iter().enumerate() {
        let call = Call::Validate {
            x25519: X25519PublicKey::from_bytes([i as u8 + 1; 32]).expect("key"),
            endpoint: Endpoint::new(format!("127.0.0.1:{}", 3001 + i)).expect("endpoint"),
            stake: 5_000,
        };
        client.submit(who, call, true).await.expect("validate");
    }
    let endpoint = Endpoint::new("127.0.0.1:4004").expect("endpoint");
    client
        .submit(
            &eve,
            Call::ChangeEndpoint {
                endpoint: endpoint.clone(),
            },
            true,
        )
        .await
        .expect("change endpoint");
    let new_key = X25519PublicKey::from_bytes([99; 32]).expect("key");
    client
        .submit(&eve, Call::ChangeKeys { x25519: new_key }, true)
        .await
        .expect("change keys");
    let info = client
        .rpc()
        .validator(eve.account_id())
        .await
        .expect("rpc")
        .expect("validator");
    assert_eq!((info.endpoint, info.x25519), (endpoint, new_key));
    assert_eq!(client.rpc().validators().await.expect("rpc").len(), 4);

    // a rejected transaction comes back as a JSON-RPC error with its reason
    let err = client
        .submit(&bob, Call::JumpStart, true)
        .await
        .expect_err("not governance");
    assert!(err.to_string().contains("unauthorised"), "{err}");

    // jump_start, confirm_jump_start
    client
        .submit(&alice, Call::JumpStart, true)
        .await
        .expect("jump start");
    let set = client.rpc().signer_set().await.expect("rpc");
    assert_eq!(
        set.signers,
        vec![bob.account_id(), charlie.account_id(), dave.account_id()]
    );
    for who in [&bob, &charlie, &dave] {
        client
            .submit(
                who,
                Call::ConfirmJumpStart {
                    verifying_key: network_key(),
                },
                true,
            )
            .await
            .expect("confirm");
    }
    assert_eq!(
        client.rpc().signer_set().await.expect("rpc").network_key,
        Some(network_key())
    );

    // leave (a non-signer validator)
    client.submit(&eve, Call::Leave, true).await.expect("leave");
    assert!(
        client
            .rpc()
            .validator(eve.account_id())
            .await
            .expect("rpc")
            .is_none()
    );

    // store_program
    let store = |bytecode: &[u8]| Call::StoreProgram {
        bytecode: bytecode.to_vec(),
        config_schema: b"{\"type\":\"object\"}".to_vec(),
        aux_schema: vec![],
        oracle_keys: vec!["block_number".into()],
        version: 1,
    };
    // Broken programs never reach the ledger: the real WebAssembly host validates them.
    let err = client
        .submit(&ferdie, store(b"\0asm\x01\x00\x00\x00"), true)
        .await
        .expect_err("core module");
    assert!(err.to_string().contains("invalid program"), "{err}");
    let stored = client
        .submit(&ferdie, store(MESSAGE_SIZE), true)
        .await
        .expect("store");
    let Event::ProgramStored { program: pa, .. } = stored.events[0].clone() else {
        panic!("{:?}", stored.events)
    };
    let stored = client
        .submit(&ferdie, store(CUSTOM_HASH), true)
        .await
        .expect("store");
    let Event::ProgramStored { program: pb, .. } = stored.events[0].clone() else {
        panic!()
    };
    assert_eq!(client.rpc().programs().await.expect("rpc").len(), 2);
    assert!(client.rpc().program(pa).await.expect("rpc").is_some());

    // register, change_programs, change_owner
    let list = |p| {
        ProgramList::new(vec![ProgramInstance {
            program: p,
            config: b"{}".to_vec(),
        }])
        .expect("list")
    };
    let registered = client
        .submit(
            &ferdie,
            Call::Register {
                programs: list(pa),
                public: false,
                scheme: KeyScheme::EcdsaSecp256k1,
            },
            true,
        )
        .await
        .expect("register");
    let Event::Registered {
        verifying_key,
        derivation_path,
        ..
    } = registered.events[0].clone()
    else {
        panic!()
    };
    assert_eq!(
        verifying_key,
        derive_user_key(&network_key(), &derivation_path).expect("derives")
    );
    let reg = client
        .rpc()
        .registration(verifying_key)
        .await
        .expect("rpc")
        .expect("registered");
    assert_eq!(reg.owner, ferdie.account_id());
    client
        .submit(
            &ferdie,
            Call::ChangePrograms {
                verifying_key,
                programs: list(pb),
            },
            true,
        )
        .await
        .expect("change programs");
    // remove_program (now unused)
    client
        .submit(&ferdie, Call::RemoveProgram { program: pa }, true)
        .await
        .expect("remove");
    let err = client
        .submit(&ferdie, Call::RemoveProgram { program: pb }, true)
        .await
        .expect_err("in use");
    assert!(err.to_string().contains("in use"), "{err}");
    client
        .submit(
            &ferdie,
            Call::ChangeOwner {
                verifying_key,
                new_owner: alice.account_id(),
            },
            true,
        )
        .await
        .expect("change owner");
    let owned = client
        .rpc()
        .registrations(Some(alice.account_id()))
        .await
        .expect("rpc");
    assert_eq!(owned.len(), 1);

    // report_offence, with a session ticket from a relayer (ferdie becomes one)
    client
        .submit(
            &ferdie,
            Call::Validate {
                x25519: X25519PublicKey::from_bytes([9; 32]).expect("key"),
                endpoint: Endpoint::new("127.0.0.1:3009").expect("endpoint"),
                stake: 5_000,
            },
            true,
        )
        .await
        .expect("ferdie validates");
    let head = client.rpc().head().await.expect("head").height;
    let mut committee = vec![bob.account_id(), dave.account_id()];
    committee.sort();
    let ticket = sigil_ledger::tx::sign_ticket(
        &ferdie,
        client.chain_id(),
        sigil_primitives::SessionId::new([1; 32]),
        head,
        0,
        committee,
    );
    let report = Call::ReportOffence {
        ticket,
        offender: dave.account_id(),
        kind: FaultKind::Unresponsive,
        evidence: vec![],
    };
    client.submit(&bob, report, true).await.expect("report");
    let offences = client.rpc().offences().await.expect("rpc");
    assert_eq!(offences.len(), 1);
    assert!(
        offences[0].recorded.is_some(),
        "the other member reported: recorded"
    );

    // confirm_reshare: no reshare is in progress, so it is refused with the reason.
    let err = client
        .submit(
            &bob,
            Call::ConfirmReshare {
                verifying_key: network_key(),
            },
            true,
        )
        .await
        .expect_err("no reshare");
    assert!(err.to_string().contains("no reshare"), "{err}");

    // set_parameters
    let mut params = client.rpc().parameters().await.expect("rpc");
    params.request_limit = 3;
    client
        .submit(
            &alice,
            Call::SetParameters {
                parameters: params.clone(),
            },
            true,
        )
        .await
        .expect("set params");
    assert_eq!(client.rpc().parameters().await.expect("rpc"), params);

    // oracle data and blocks
    let head = client.rpc().head().await.expect("head");
    let oracle = client
        .rpc()
        .oracle(head.height.0)
        .await
        .expect("rpc")
        .expect("oracle");
    assert_eq!(
        (oracle.block_number, oracle.timestamp_ms),
        (head.height.0, head.timestamp_ms)
    );
    let block = client
        .rpc()
        .block(sent.included.expect("height"))
        .await
        .expect("rpc")
        .expect("block");
    assert!(
        block
            .transactions
            .iter()
            .any(|t| t.tx.sender == alice.account_id())
    );

    // Malformed JSON-RPC gets JSON-RPC errors, not a crash.
    let parse = raw_post(ledger.addr, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
    assert_eq!(parse["error"]["code"], -32700);
    let unknown = raw_post(
        ledger.addr,
        r#"{"jsonrpc":"2.0","id":2,"method":"ledger_nope","params":[]}"#,
    );
    assert_eq!(unknown["error"]["code"], -32601);
    let bad_params = raw_post(
        ledger.addr,
        r#"{"jsonrpc":"2.0","id":3,"method":"ledger_account","params":["0x12"]}"#,
    );
    assert_eq!(bad_params["error"]["code"], -32602);
    let bad_tx = raw_post(
        ledger.addr,
        r#"{"jsonrpc":"2.0","id":4,"method":"ledger_submit","params":[{"tx":1},true]}"#,
    );
    assert_eq!(bad_tx["error"]["code"], -32602);
    // Still serving.
    client.rpc().head().await.expect("alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_included_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ledger");
    let alice = Arc::new(key("alice"));
    let bob = key("bob").account_id();
    let mut included: Vec<(String, u64)> = Vec::new();
    let rounds = 6;
    for round in 0..rounds {
        let (mut ledger, _) = start_ledger(&data);
        let client = Arc::new(
            LedgerClient::connect(&format!("ws://{}", ledger.addr))
                .await
                .expect("connects"),
        );
        // After a restart, every block recorded before the kill is there with the same digest.
        for (hash, height) in &included {
            assert_eq!(
                client.rpc().tx_block(hash.clone()).await.expect("rpc"),
                Some(*height),
                "lost {hash}"
            );
        }
        let submitter = {
            let (client, alice) = (client.clone(), alice.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    match client
                        .submit(&alice, Call::Transfer { to: bob, amount: 1 }, true)
                        .await
                    {
                        Ok(r) => done.push((r.hash, r.included.expect("included"))),
                        Err(_) => return done,
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(400 + 150 * round)).await;
        ledger.child.kill().expect("SIGKILL");
        ledger.child.wait().expect("reaped");
        included.extend(submitter.await.expect("submitter"));

        let validate = Arc::new(|b: &[u8]| component_header_check(b));
        let (replayed, recorded) = Chain::replay_digest(&data, validate, None).expect("replays");
        assert_eq!(
            replayed.to_vec(),
            recorded,
            "round {round}: replaying the blocks gives the stored digest"
        );
    }
    assert!(
        included.len() >= rounds as usize,
        "transactions were included: {}",
        included.len()
    );
    let (ledger, _) = start_ledger(&data);
    let client = LedgerClient::connect(&format!("ws://{}", ledger.addr))
        .await
        .expect("connects");
    let nonce = client
        .rpc()
        .account(alice.account_id())
        .await
        .expect("rpc")
        .nonce;
    assert!(
        nonce >= included.len() as u64,
        "nonce {nonce} < {} included",
        included.len()
    );
    eprintln!(
        "{} transactions included across {rounds} SIGKILLs; none lost",
        included.len()
    );
}

#[test]
fn prometheus_metrics_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = sigil::ports::reserve(1, &[]).expect("a free port");
    let port = reserved[0].port();
    let metrics = format!("127.0.0.1:{port}");
    let (ledger, _) = start_ledger_with(dir.path(), &["--metrics", &metrics]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let mut stream = TcpStream::connect(addr).expect("metrics port open");
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        if response.contains("ledger_blocks_total") || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(ledger);
    assert!(text.contains("ledger_blocks_total"), "{text}");
    assert!(text.contains("ledger_head_height"), "{text}");
}

/// Asserts that the listener closed `stream` without a word (within 5 s).
fn assert_closed(stream: &mut TcpStream, what: &str) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let read = stream.read(&mut [0u8; 1]);
    let closed = match &read {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    };
    assert!(closed, "{what}: {read:?}");
}

/// Asserts that the RPC at `addr` answers `ledger_head` over HTTP.
async fn assert_serves(addr: SocketAddr) {
    let head = tokio::task::spawn_blocking(move || {
        raw_post(
            addr,
            r#"{"jsonrpc":"2.0","id":1,"method":"ledger_head","params":[]}"#,
        )
    })
    .await
    .expect("joined");
    assert!(head["result"]["height"].is_u64(), "{head}");
}

/// A TCP connection to `to` from the loopback address `ip`.
async fn connect_from(ip: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((ip, 0))).expect("bind");
    let stream = socket.connect(to).await.expect("connect");
    let stream = stream.into_std().expect("std");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// One client cannot lock others out of the RPC: connections beyond its address's share are
/// closed at once while another address is served, and a batch over the limit is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_caps_connections_per_address_and_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _) = start_ledger(dir.path());
    let defaults = sigil_ledger::rpc::RpcLimits::default();
    // Hold the address's whole share from 127.0.0.2 (never sending a request).
    let mut held = Vec::new();
    for _ in 0..defaults.max_connections_per_address {
        held.push(connect_from([127, 0, 0, 2], ledger.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = connect_from([127, 0, 0, 2], ledger.addr).await;
    assert_closed(&mut over, "the connection over the share is closed");
    // Another address is still served.
    let addr = ledger.addr;
    assert_serves(addr).await;
    drop(held);
    // A batch over the limit is one error.
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"ledger_chainId","params":[]}"#;
    let batch = format!(
        "[{}]",
        vec![call; defaults.max_batch as usize + 1].join(",")
    );
    let answer = tokio::task::spawn_blocking(move || raw_post(addr, &batch))
        .await
        .expect("joined");
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    // A body over the limit still gets jsonrpsee's 413 answer, not a parse error.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ledger_head","params":["{}"]}}"#,
        "x".repeat(4 << 20)
    );
    let status = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let _ = write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{huge}",
            huge.len()
        );
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.get(9..12).unwrap_or_default().to_string()
    })
    .await
    .expect("joined");
    assert_eq!(status, "413");
    // What jsonrpsee left loose: an object id, a subscription over HTTP, extra parameters.
    for (body, code) in [
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ledger_head","params":[]}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ledger_subscribeHeads","params":[]}"#,
            1005,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ledger_block","params":[1,2]}"#,
            -32602,
        ),
    ] {
        let answer = tokio::task::spawn_blocking(move || raw_post(addr, body))
            .await
            .expect("joined");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
}

/// The fee and deposits over the wire: an unfunded sender is refused at admission, a funded
/// one whose call fails pays the fee and uses its nonce, and error 1000 has one data shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_and_deposits_over_real_sockets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _) = start_ledger(dir.path());
    let client = LedgerClient::connect(&format!("ws://{}", ledger.addr))
        .await
        .expect("connects");
    let user = AccountKeypair::generate();
    let missing = ProgramId::from_bytes([7; 32]).expect("id");
    let remove = Call::RemoveProgram { program: missing };

    // Unfunded: refused before the pool, nothing charged, the nonce unused.
    let unpaid = sigil_ledger::tx::sign(&user, client.chain_id(), 0, remove.clone());
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ledger_submit",
        "params": [unpaid, true]});
    let answer = raw_post(ledger.addr, &body.to_string());
    assert_eq!(answer["error"]["code"], 1000, "{answer}");
    assert_eq!(
        answer["error"]["data"],
        serde_json::json!({"code": "insufficient_balance",
            "message": "insufficient balance: need 1000, have 0"}),
    );

    client
        .submit(
            &key(sigil_ledger::node::DEV_FAUCET),
            Call::Transfer {
                to: user.account_id(),
                amount: 10_000,
            },
            true,
        )
        .await
        .expect("the faucet funds the user");

    // Funded, a failing call goes into a block: fee paid, nonce used, 1000 with `included`.
    let answer = raw_post(ledger.addr, &body.to_string());
    let included = answer["error"]["data"]["included"].as_u64();
    assert!(included.is_some(), "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "not_found", "{answer}");
    let account = client.rpc().account(user.account_id()).await.expect("read");
    assert_eq!(
        (account.balance, account.nonce, account.reserved),
        (9_000, 1, 0)
    );
    let block = client
        .rpc()
        .block(included.expect("height"))
        .await
        .expect("read")
        .expect("stored");
    assert!(block.events.iter().any(|e| matches!(e,
        Event::CallFailed { sender, nonce: 0, code, .. } if *sender == user.account_id() && code == "not_found")));

    // A program whose deposit the balance does not cover is refused at admission.
    let store = Call::StoreProgram {
        bytecode: MESSAGE_SIZE.to_vec(),
        config_schema: vec![],
        aux_schema: vec![],
        oracle_keys: vec![],
        version: 1,
    };
    let refused = client
        .submit(&user, store, true)
        .await
        .expect_err("cannot pay");
    assert!(
        refused.to_string().contains("insufficient balance"),
        "{refused}"
    );
    let account = client.rpc().account(user.account_id()).await.expect("read");
    assert_eq!(
        (account.balance, account.nonce),
        (9_000, 1),
        "refused whole"
    );
}

/// `bytecode` with a custom section named `spam` holding `tag`, so every copy has its own id
/// and is compiled afresh at admission.
fn tagged_component(bytecode: &[u8], tag: u64) -> Vec<u8> {
    let mut payload = vec![4];
    payload.extend_from_slice(b"spam");
    payload.extend_from_slice(&tag.to_le_bytes());
    let mut out = bytecode.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).expect("a short section"));
    out.extend_from_slice(&payload);
    out
}

fn spam_call(tag: u64) -> Call {
    Call::StoreProgram {
        bytecode: tagged_component(DEVICE_KEY, tag),
        config_schema: vec![],
        aux_schema: vec![],
        oracle_keys: vec![],
        version: 1,
    }
}

/// Percentile `p` (0–100) of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    let at = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Resident and peak memory of a process, from /proc, in MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The spam figures of the hardening issue: 300 `store_program` transactions of the 227 KB
/// `device-key` component, each a distinct program, from unfunded accounts and then from funded
/// ones, while a reader measures `ledger_account` latency. Prints the figures; run with
/// `cargo test -p sigil --test ledger -- --ignored --nocapture store_program_spam`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spam figures, about a minute"]
async fn store_program_spam() {
    const SPAM: u64 = 300;
    const SENDERS: u64 = 30;
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _) = start_ledger(dir.path());
    let pid = ledger.child.id();
    let url = format!("ws://{}", ledger.addr);
    let client = LedgerClient::connect(&url).await.expect("connects");

    // Unfunded senders: each refused at admission.
    let unfunded = futures::stream::iter(0..SPAM)
        .map(|tag| {
            let client = &client;
            async move {
                let spammer = AccountKeypair::generate();
                client.submit(&spammer, spam_call(tag), false).await.is_ok()
            }
        })
        .buffer_unordered(8)
        .filter(|admitted| std::future::ready(*admitted))
        .count()
        .await;

    // Funded senders, ten programs each, deposit and fees covered.
    let senders: Vec<AccountKeypair> = (0..SENDERS).map(|_| AccountKeypair::generate()).collect();
    let faucet = key(sigil_ledger::node::DEV_FAUCET);
    for (i, sender) in senders.iter().enumerate() {
        let call = Call::Transfer {
            to: sender.account_id(),
            amount: 50_000_000,
        };
        let wait = i + 1 == senders.len();
        client.submit(&faucet, call, wait).await.expect("funded");
    }
    let (rss_before, _) = memory_mib(pid);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, reader_client) = (
            stop.clone(),
            LedgerClient::connect(&url).await.expect("reader"),
        );
        let probe = senders[0].account_id();
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                reader_client
                    .rpc()
                    .account(probe)
                    .await
                    .expect("a read during spam");
                reads.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        })
    };
    let started = Instant::now();
    let per_sender = SPAM / SENDERS;
    let funded = futures::stream::iter(senders.iter().enumerate())
        .map(|(i, sender)| {
            let client = &client;
            async move {
                let mut admitted = 0;
                for n in 0..per_sender {
                    let tag = SPAM + i as u64 * per_sender + n;
                    let wait = n + 1 == per_sender;
                    match client.submit(sender, spam_call(tag), wait).await {
                        Ok(_) => admitted += 1,
                        Err(e) => eprintln!("refused: {e}"),
                    }
                }
                admitted
            }
        })
        .buffer_unordered(8)
        .fold(0, |sum, n| std::future::ready(sum + n))
        .await;
    let included_after = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut reads = reader.await.expect("reader");
    reads.sort();
    let (rss_after, peak) = memory_mib(pid);
    let stored = client.rpc().programs().await.expect("programs").len();
    eprintln!(
        "store_program spam: unfunded {unfunded}/{SPAM} admitted; funded {funded}/{SPAM} admitted, \
         {stored} stored in {included_after:.1?}; {} reads during the spam: p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; ledger RSS {rss_before} MiB before, {rss_after} MiB after, peak {peak} MiB",
        reads.len(),
        percentile_ms(&reads, 50),
        percentile_ms(&reads, 99),
        percentile_ms(&reads, 100),
    );
    assert_eq!(unfunded, 0, "no unfunded spam is admitted");
    assert_eq!(funded as u64, SPAM, "paid-for programs are all admitted");
    assert_eq!(stored as u64, SPAM);
}

/// Nodes keep a listener of their own: with every public connection held (64 from each of
/// eight addresses), the public listener closes new connections and the validators' listener
/// still answers, from any address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validators_listener_serves_when_the_public_one_is_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _) = start_ledger_with(dir.path(), &["--validator-rpc", "127.0.0.1:0"]);
    let validators = ledger
        .validator_addr
        .expect("validator_rpc in the ready line");
    let defaults = sigil_ledger::rpc::RpcLimits::default();
    let mut held = Vec::new();
    for ip in 2..=9 {
        for _ in 0..defaults.max_connections_per_address {
            held.push(connect_from([127, 0, 0, ip], ledger.addr).await);
        }
    }
    assert_eq!(held.len(), defaults.max_connections);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = connect_from([127, 0, 0, 10], ledger.addr).await;
    assert_closed(&mut over, "the public listener is full");
    assert_serves(validators).await;
    let client = LedgerClient::connect(&format!("ws://{validators}"))
        .await
        .expect("a node connects while the public listener is full");
    assert_eq!(client.chain_id(), "sigil-dev");
    drop(held);
}

#[test]
fn a_node_writes_the_replica_key_its_ledger_replica_runs_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("node.key");
    std::fs::write(&key_file, "11".repeat(32)).expect("writes");
    let mut permissions = std::fs::metadata(&key_file).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&key_file, permissions).expect("chmod");
    let replica_key = dir.path().join("replica.key");
    let write = || {
        Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["node", "--key-file"])
            .arg(&key_file)
            .arg("--data-dir")
            .arg(dir.path().join("node"))
            .arg("--write-replica-key")
            .arg(&replica_key)
            .output()
            .expect("runs")
    };
    let written = write();
    assert!(written.status.success(), "{written:?}");
    let mode = std::fs::metadata(&replica_key)
        .expect("written")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let printed = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["ledger", "--dev", "--print-consensus-key", "--data-dir"])
        .arg(dir.path().join("ledger"))
        .arg("--replica-key-file")
        .arg(&replica_key)
        .output()
        .expect("runs");
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(printed.stdout, written.stdout, "the same consensus key");
    assert_eq!(written.stdout.len(), 65, "64 hex digits and a newline");
    let again = write();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("must not exist"), "{stderr}");
}
