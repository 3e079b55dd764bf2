//! The replicated ledger as real processes: four `sigil ledger` replicas on loopback order
//! transactions while one of them (not the one the client talks to) is SIGKILLed and
//! restarted; it catches up and every replica holds the same blocks. Then a devnet on the
//! replicated ledger signs while a replica is killed and restarted.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sigil_client::LedgerClient;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::Call;
use sigil_crypto::NodeSeed;
use sigil_primitives::AccountId;

const NAMES: [&str; 4] = ["alice", "bob", "charlie", "dave"];
const TRANSFERS: u64 = 60;

struct Replica {
    name: &'static str,
    rpc_port: u16,
    /// Arguments beyond the common ones (a joining replica's `--p2p`).
    extra: Vec<String>,
    child: Option<Child>,
}

/// Blocks per epoch of these tests' chains: short, so that every test crosses epochs.
const EPOCH_LENGTH: &str = "20";

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The tests of this file run one at a time: each starts many processes on fresh ports, and a
/// restarted replica takes its port back.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Replica {
    /// Replicas `names`, not started, with RPC on `rpc_ports` in order.
    fn named(names: impl Iterator<Item = &'static str>, rpc_ports: &[u16]) -> Vec<Self> {
        names
            .zip(rpc_ports)
            .map(|(name, &rpc_port)| Replica {
                name,
                rpc_port,
                extra: vec![],
                child: None,
            })
            .collect()
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    /// Starts (or restarts, on the same data directory) and waits for the ready line.
    fn start(&mut self, dir: &Path, replicas: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["ledger", "--dev", "--dev-replicas", replicas])
            .args(["--dev-replica", self.name, "--block-time", "100ms"])
            .args(["--leader-timeout", "1s", "--epoch-length", EPOCH_LENGTH])
            .args(&self.extra)
            .arg("--rpc")
            .arg(format!("127.0.0.1:{}", self.rpc_port))
            .arg("--data-dir")
            .arg(dir.join(self.name))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert!(line.starts_with("ledger ready"), "{line:?}");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
}

async fn connect(replica: &Replica) -> LedgerClient {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match LedgerClient::connect(&replica.url()).await {
            Ok(client) => return client,
            Err(e) if Instant::now() > deadline => panic!("{}: {e}", replica.name),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn head(client: &LedgerClient) -> u64 {
    client.rpc().head().await.expect("head").height.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_on_every_block_across_a_sigkill_and_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = sigil::ports::reserve(2 * NAMES.len(), &[]).expect("free ports");
    let ports: Vec<u16> = reserved.iter().map(|p| p.port()).collect();
    let p2p: Vec<String> = NAMES
        .iter()
        .zip(&ports)
        .map(|(n, port)| format!("{n}=127.0.0.1:{port}"))
        .collect();
    let p2p = p2p.join(",");
    let mut replicas = Replica::named(NAMES.iter().copied(), &ports[NAMES.len()..]);
    for replica in &mut replicas {
        replica.start(dir.path(), &p2p);
    }
    let client = connect(&replicas[0]).await;
    let faucet = NodeSeed::dev("faucet").account_keypair();
    let to = AccountId::from_bytes([0x11; 32]).expect("account");
    let started = Instant::now();
    for i in 0..TRANSFERS {
        if i == TRANSFERS / 3 {
            replicas[3].kill();
        }
        if i == 2 * TRANSFERS / 3 {
            replicas[3].start(dir.path(), &p2p);
        }
        let call = Call::Transfer { to, amount: 1 };
        let result = client.submit(&faucet, call, true).await.expect("submits");
        assert!(result.included.is_some(), "transfer {i}: {result:?}");
    }
    eprintln!(
        "{TRANSFERS} transfers final in {:.1}s across a SIGKILL and restart",
        started.elapsed().as_secs_f64()
    );
    let balance = client.rpc().account(to).await.expect("account");
    assert_eq!(balance.balance, TRANSFERS);

    let height = head(&client).await;
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    replicas_agree(&urls, height).await;
    eprintln!("4 replicas agree on all {height} blocks");
}

/// Waits until every replica at `urls` has executed `height`, then checks they hold the same
/// header at every height up to it.
async fn replicas_agree(urls: &[String], height: u64) {
    let mut clients = Vec::new();
    for url in urls {
        let client = LedgerClient::connect(url).await.expect("connects");
        let deadline = Instant::now() + Duration::from_secs(60);
        while head(&client).await < height {
            assert!(
                Instant::now() < deadline,
                "the replica at {url} did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        clients.push(client);
    }
    for h in 1..=height {
        let mut headers = Vec::new();
        for client in &clients {
            let block = client.rpc().block(h).await.expect("block").expect("stored");
            headers.push(block.header);
        }
        assert!(
            headers.windows(2).all(|w| w[0] == w[1]),
            "replicas differ at block {h}: {headers:?}"
        );
    }
}

/// Signs one request for `key` through `relayer` and checks the answer.
async fn sign_through(
    ledger: &LedgerClient,
    relayer: &sigil_client::types::ValidatorRecord,
    user: &sigil_crypto::AccountKeypair,
    key: sigil_primitives::VerifyingKey,
) {
    let request = sigil_primitives::request::SignatureRequest {
        verifying_key: key,
        block: head(ledger).await,
        hashing: sigil_primitives::HashingAlgorithm::Keccak256,
        aux_data: vec![vec![]],
        message: sigil_crypto::secret::random_array::<16>().to_vec(),
    };
    let sealed = sigil_client::seal_request(user, relayer, &request).expect("seals");
    let response = sigil_client::NodeClient::new(relayer.endpoint.as_str())
        .relay(&sealed.envelope)
        .await
        .expect("the user gets a signature");
    sigil_client::verify_response(&sealed, &request, &response).expect("a valid signature");
}

/// Six validators, each with its replica: alice…dave the 2-of-4 signers (fixture shares), eve
/// and ferdie relayers. The client reads alice's replica and sends to eve; ferdie's replica is
/// SIGKILLed and restarted meanwhile, which costs the network nothing: consensus goes on with
/// five of six, and no signer or relayer reads that replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_signs_every_request_while_a_replica_is_killed_and_restarted() {
    // A third before the kill, a third while the replica is down, a third after its restart.
    const REQUESTS: usize = 60;
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = sigil::devnet::DevnetConfig::new(common::SIGIL, dir.path());
    config.validators = 6;
    config.signers = 4;
    config.threshold = 2;
    config.block_time = Duration::from_millis(300);
    config.key_share_fixtures = Some(common::workspace().join("crates/mpc/fixtures/2-of-4"));
    let mut devnet = sigil::devnet::Devnet::start(config).await.expect("devnet");
    assert_eq!(devnet.ledgers().len(), 6, "a replica per validator");
    let ledger = LedgerClient::connect(devnet.ledger_url())
        .await
        .expect("connects");
    let program = common::deploy(&ledger, "message-size").await;
    let user = common::dev("bob");
    let key = common::register(&ledger, &user, &[(program, r#"{"max_length": 1024}"#)]).await;
    let eve = common::dev("eve").account_id();
    let relayer = ledger
        .rpc()
        .validator(eve)
        .await
        .expect("reads")
        .expect("eve validates");
    let victim = "ferdie";
    let started = Instant::now();
    for i in 0..REQUESTS {
        if i == REQUESTS / 3 {
            devnet.kill_ledger(victim).await.expect("killed");
        }
        if i == 2 * REQUESTS / 3 {
            devnet.restart_ledger(victim).await.expect("restarted");
        }
        sign_through(&ledger, &relayer, &user, key).await;
    }
    eprintln!(
        "{REQUESTS} requests signed in {:.1}s while replica {victim} was SIGKILLed and restarted",
        started.elapsed().as_secs_f64()
    );
    let height = head(&ledger).await;
    let urls: Vec<String> = devnet.ledgers().iter().map(|l| l.rpc_url.clone()).collect();
    replicas_agree(&urls, height).await;
    eprintln!("6 replicas agree on all {height} blocks");
    devnet.stop().await.expect("stops");
}

/// Waits, up to `limit`, until `done` holds for what `probe` returns.
async fn wait_for<T, F: std::future::Future<Output = T>>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = probe().await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joins_a_running_network_and_votes_from_the_next_epoch() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = sigil::ports::reserve(2 * (NAMES.len() + 1), &[]).expect("free ports");
    let ports: Vec<u16> = reserved.iter().map(|p| p.port()).collect();
    let (p2p_ports, rpc_ports) = ports.split_at(NAMES.len() + 1);
    let genesis: Vec<String> = NAMES
        .iter()
        .zip(p2p_ports)
        .map(|(n, port)| format!("{n}=127.0.0.1:{port}"))
        .collect();
    let genesis = genesis.join(",");
    let eve_p2p = format!("127.0.0.1:{}", p2p_ports[NAMES.len()]);
    let mut replicas = Replica::named(NAMES.iter().copied().chain(["eve"]), rpc_ports);
    replicas[NAMES.len()].extra = vec!["--p2p".into(), eve_p2p.clone()];
    for replica in &mut replicas[..NAMES.len()] {
        replica.start(dir.path(), &genesis);
    }
    let client = connect(&replicas[1]).await;

    // eve validates and names her replica, then starts it: it syncs from genesis.
    let eve = NodeSeed::dev("eve");
    let eve_account = eve.account_keypair().account_id();
    let stake = client
        .rpc()
        .parameters()
        .await
        .expect("parameters")
        .min_stake;
    let validate = Call::Validate {
        x25519: eve.x25519_key().public_key(),
        endpoint: sigil_primitives::Endpoint::new("127.0.0.1:1").expect("endpoint"),
        stake,
    };
    let name = sigil_ledger::replica::network::change_replica_call(
        &eve.consensus_seed(),
        client.chain_id(),
        &eve_account,
        &eve_p2p,
    );
    for call in [validate, name] {
        let result = client
            .submit(&eve.account_keypair(), call, true)
            .await
            .expect("submits");
        assert!(result.included.is_some(), "{result:?}");
    }
    replicas[NAMES.len()].start(dir.path(), &genesis);
    let info = wait_for(
        "eve's replica in the consensus set",
        Duration::from_secs(120),
        || async { client.rpc().consensus().await.expect("consensus") },
        |info| info.replicas.iter().any(|r| r.account == eve_account),
    )
    .await;
    assert_eq!(info.replicas.len(), NAMES.len() + 1);
    let eve_client = connect(&replicas[NAMES.len()]).await;
    let target = head(&client).await;
    wait_for(
        "eve caught up",
        Duration::from_secs(120),
        || head(&eve_client),
        |h| *h >= target,
    )
    .await;

    // Of five replicas, four must vote: with alice killed, blocks are final only if eve votes.
    replicas[0].kill();
    let from = head(&client).await;
    let faucet = NodeSeed::dev("faucet").account_keypair();
    let call = Call::Transfer {
        to: eve_account,
        amount: 1,
    };
    let result = client.submit(&faucet, call, true).await.expect("submits");
    assert!(result.included.is_some(), "{result:?}");
    let urls: Vec<String> = replicas[1..].iter().map(Replica::url).collect();
    replicas_agree(&urls, from + 10).await;
    eprintln!(
        "eve joined in epoch {} (from block {}); final to {} without alice",
        info.epoch,
        info.next_epoch_at - info.epoch_length,
        from + 10
    );
}

/// A node started with `--key-file` and `--dev NAME` on `ledger`, listening on `port`.
fn node(dir: &Path, name: &str, ledger: &str, port: u16, extra: &[&str]) -> Command {
    let key_file = dir.join(format!("{name}.key"));
    if !key_file.exists() {
        std::fs::write(&key_file, "22".repeat(32)).expect("key file");
        let mut permissions = std::fs::metadata(&key_file).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
        std::fs::set_permissions(&key_file, permissions).expect("chmod");
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_sigil"));
    command
        .args(["node", "--dev", name, "--ledger", ledger, "--key-file"])
        .arg(&key_file)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{name}")))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .env("RUST_LOG", "warn");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_replica_that_is_not_its_own_unless_told_to_trust_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reserved = sigil::ports::reserve(4, &[]).expect("free ports");
    let ports: Vec<u16> = reserved.iter().map(|p| p.port()).collect();
    let mut replicas = Replica::named(["alice"].into_iter(), &ports[1..2]);
    replicas[0].start(dir.path(), &format!("alice=127.0.0.1:{}", ports[0]));
    let url = replicas[0].url();
    connect(&replicas[0]).await;

    // bob's node on alice's replica: one line naming both keys, exit 1.
    let mut refusing = node(dir.path(), "bob", &url, ports[2], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while refusing.try_wait().expect("waits").is_none() {
        if Instant::now() > deadline {
            let _ = refusing.kill();
            panic!("bob's node runs on alice's replica");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refusing.wait_with_output().expect("output");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("is a replica with consensus key 0x")
            && last.contains("not this validator's")
            && last.contains("--trust-remote-ledger"),
        "{stderr}"
    );

    // Told to trust it, bob's node starts on it and serves.
    let trusting = node(
        dir.path(),
        "bob",
        &url,
        ports[2],
        &["--trust-remote-ledger"],
    );
    serves(trusting, ports[2], "bob").await;
    // alice's node reads her own replica without being told.
    serves(
        node(dir.path(), "alice", &url, ports[3], &[]),
        ports[3],
        "alice",
    )
    .await;
}

/// Spawns `command`, a node, waits until it answers `/v1/info` on `port`, and kills it.
async fn serves(mut command: Command, port: u16, who: &str) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let info = format!("http://127.0.0.1:{port}/v1/info");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            panic!("{who}'s node exited: {status}");
        }
        if reqwest::get(&info)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{who}'s node did not serve");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
