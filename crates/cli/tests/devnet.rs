//! The CLI against a devnet of real processes (`sigil ledger` and `sigil node` children), with
//! fixture key shares so no DKG runs: `sigil status`, `sigil program deploy`, `sigil register`
//! and `sigil sign` (a message and an EIP-1559 transaction) through the binary, and the devnet's
//! own kill/restart/stop. Plus usage errors that need no network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718 as _;
use alloy_primitives::Address;
use sigil::devnet::{Devnet, DevnetConfig, dev_keypair};
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::JumpStartStatus;
use sigil_primitives::{EcdsaSignature, ProgramId, VerifyingKey};

const SIGIL: &str = env!("CARGO_BIN_EXE_sigil");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `sigil ARGS`.
fn sigil(args: &[&str]) -> Output {
    Command::new(SIGIL)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs sigil")
}

/// Runs `sigil ARGS`, expects success and one JSON object on stdout.
fn sigil_json(args: &[&str]) -> serde_json::Value {
    let out = sigil(args);
    assert!(
        out.status.success(),
        "sigil {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Runs `sigil ARGS`, expects failure with one `error:` line on stderr; returns it.
fn sigil_error(args: &[&str]) -> String {
    let out = sigil(args);
    assert!(!out.status.success(), "sigil {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("no error line in {stderr}"))
        .to_owned()
}

fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_on_a_fixture_devnet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = repo().join("crates/mpc/fixtures");
    // The fixtures are a 3-of-5 key of alice..eve; ferdie (funded by alice) is the relayer.
    let config = DevnetConfig {
        validators: 6,
        signers: 5,
        threshold: 3,
        key_share_fixtures: Some(fixtures.clone()),
        ..DevnetConfig::new(SIGIL, dir.path())
    };
    let mut devnet = Devnet::start(config).await.expect("the devnet starts");
    let url = devnet.ledger_url().to_owned();
    let client = devnet.client();

    // The jump start chose exactly the first five names, and they hold the fixture key.
    let set = client.rpc().signer_set().await.expect("signer set");
    assert_eq!(set.jump_start, JumpStartStatus::Done);
    let names: Vec<&str> = devnet.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "charlie", "dave", "eve", "ferdie"]);
    let mut expected_signers: Vec<_> = devnet.nodes()[..5].iter().map(|n| n.account).collect();
    let mut signers = devnet.signers().await.expect("signers");
    expected_signers.sort();
    signers.sort();
    assert_eq!(signers, expected_signers);
    assert_eq!(
        devnet.relayers().await.expect("relayers"),
        [devnet.node("ferdie").expect("ferdie").account]
    );
    let fixture = std::fs::read_to_string(fixtures.join("network-key.txt")).expect("key");
    let fixture_key = fixture
        .lines()
        .find_map(|l| l.strip_prefix("verifying_key="))
        .expect("verifying_key= line");
    assert_eq!(
        devnet.network_key().expect("network key").to_string(),
        fixture_key
    );

    // sigil status: JSON and table.
    let status = sigil_json(&["status", "--ledger", &url, "--json"]);
    assert_eq!(
        status["validators"].as_array().expect("validators").len(),
        6
    );
    assert_eq!(status["signer_set"]["threshold"], 3);
    assert_eq!(status["signer_set"]["jump_start"], "done");
    assert_eq!(status["signer_set"]["network_key"], fixture_key);
    let ferdie = status["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .find(|v| v["name"] == "ferdie")
        .expect("ferdie listed");
    assert_eq!(ferdie["signer"], false);
    assert_eq!(
        s(ferdie, "endpoint"),
        devnet.node("ferdie").expect("ferdie").endpoint
    );
    assert_eq!(status["consensus"]["mode"], "replicated");
    assert_eq!(
        status["consensus"]["replicas"]
            .as_array()
            .expect("replicas")
            .len(),
        6
    );
    // Every replica holds the same final block.
    let replicas: Vec<String> = devnet.ledgers().iter().map(|l| l.rpc_url.clone()).collect();
    let compared = sigil_json(&[
        "status",
        "--ledger",
        &url,
        "--replicas",
        &replicas.join(","),
        "--json",
    ]);
    assert_eq!(
        compared["consensus"]["agree"], true,
        "{}",
        compared["consensus"]
    );
    assert_eq!(
        compared["consensus"]["compared"]
            .as_array()
            .expect("compared")
            .len(),
        7
    );
    let table = sigil(&["status", "--ledger", &url]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).expect("utf-8");
    for needle in [
        "validators (6)",
        "signer",
        "relayer",
        "ferdie",
        "done",
        "offences (0)",
    ] {
        assert!(table.contains(needle), "{needle:?} missing in:\n{table}");
    }

    // sigil program deploy: the id is `sigil program hash`'s; deploying again is not an error.
    let wasm = repo().join("programs/dist/message-size.wasm");
    let wasm = wasm.to_str().expect("utf-8 path");
    let hash = sigil_json(&["program", "hash", wasm, "--json"]);
    let deploy_args = [
        "program",
        "deploy",
        wasm,
        "--ledger",
        &url,
        "--dev-account",
        "bob",
        "--json",
    ];
    let deployed = sigil_json(&deploy_args);
    assert_eq!(deployed["id"], hash["id"]);
    assert_eq!(deployed["stored"], true);
    assert!(deployed["block"].as_u64().is_some());
    let again = sigil_json(&deploy_args);
    assert_eq!(again["stored"], false);
    let message_size: ProgramId = s(&deployed, "id").parse().expect("program id");
    let record = client
        .rpc()
        .program(message_size)
        .await
        .expect("rpc")
        .expect("stored");
    assert_eq!(record.deployer, dev_keypair("bob").account_id());

    // sigil register: the config file's bytes become the config, as-is.
    let config_file = dir.path().join("message-size.json");
    std::fs::write(&config_file, br#"{"max_length": 64}"#).expect("write");
    let program_arg = format!("{}={}", s(&deployed, "id"), config_file.display());
    let registered = sigil_json(&[
        "register",
        "--program",
        &program_arg,
        "--ledger",
        &url,
        "--dev-account",
        "bob",
        "--json",
    ]);
    let key: VerifyingKey = s(&registered, "verifying_key").parse().expect("key");
    let address = Address::from(*sigil_crypto::eth_address(&key).as_bytes());
    assert_eq!(s(&registered, "eth_address"), address.to_checksum(None));
    let registration = client
        .rpc()
        .registration(key)
        .await
        .expect("rpc")
        .expect("registered");
    assert_eq!(registration.owner, dev_keypair("bob").account_id());
    assert_eq!(
        registration.programs.as_slice()[0].config,
        br#"{"max_length": 64}"#
    );

    // sigil sign --message: the signature recovers to the key over keccak256(message).
    let signed = sigil_json(&[
        "sign",
        "--key",
        &key.to_string(),
        "--message",
        "hello sigil",
        "--ledger",
        &url,
        "--dev-account",
        "bob",
        "--json",
    ]);
    let signature: EcdsaSignature = s(&signed, "signature").parse().expect("signature");
    let prehash = sigil_crypto::keccak256(b"hello sigil");
    assert_eq!(
        s(&signed, "message_hash"),
        format!("0x{}", hex::encode(prehash))
    );
    let (recovered, _) = sigil_crypto::recover_signer(&prehash, &signature).expect("recovers");
    assert_eq!(recovered, key);
    assert_eq!(
        s(&signed, "relayer"),
        devnet.node("ferdie").expect("ferdie").account.to_string()
    );
    assert_eq!(signed["committee"].as_array().expect("committee").len(), 3);

    // A message longer than the program allows is refused, with one error line.
    let long = "x".repeat(65);
    let refused = sigil_error(&[
        "sign",
        "--key",
        &key.to_string(),
        "--message",
        &long,
        "--ledger",
        &url,
        "--dev-account",
        "bob",
    ]);
    assert!(refused.contains("program"), "{refused}");

    // Only the owner may sign with its key, until it authorises another account.
    let dave = dev_keypair("dave").account_id().to_string();
    let sign_as_dave = [
        "sign",
        "--key",
        &key.to_string(),
        "--message",
        "from dave",
        "--ledger",
        &url,
        "--dev-account",
        "dave",
        "--json",
    ];
    let refused = sigil_error(&sign_as_dave[..sign_as_dave.len() - 1]);
    assert!(refused.contains("not_authorised"), "{refused}");
    let key_text = key.to_string();
    let access = |args: &[&str]| {
        let mut all = vec!["access"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--key", &key_text, "--ledger", &url]);
        sigil(&all)
    };
    let authorised = access(&["authorise", "--for", &dave, "--dev-account", "bob"]);
    assert!(authorised.status.success(), "{authorised:?}");
    let stranger_owner = access(&["authorise", "--for", &dave, "--dev-account", "dave"]);
    assert!(!stranger_owner.status.success());
    let stderr = String::from_utf8_lossy(&stranger_owner.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("only the owner"), "{stderr}");
    assert!(
        !stderr.contains("ErrorObject"),
        "one readable line: {stderr}"
    );
    let shown = String::from_utf8(access(&["show"]).stdout).expect("utf-8");
    assert!(
        shown.contains(&dave) && shown.contains("public:     no"),
        "{shown}"
    );
    let signed = sigil_json(&sign_as_dave);
    assert_eq!(s(&signed, "verifying_key"), key.to_string());

    // Balances and transfers.
    let balance_of = |who: &str| {
        let shown = sigil_json(&[
            "account", "balance", "--of", who, "--ledger", &url, "--json",
        ]);
        shown["balance"].as_u64().expect("balance")
    };
    let before = balance_of(&dave);
    let moved = sigil_json(&[
        "account",
        "transfer",
        "--to",
        &dave,
        "--amount",
        "100",
        "--ledger",
        &url,
        "--dev-account",
        "bob",
        "--json",
    ]);
    assert!(moved["block"].as_u64().is_some(), "{moved}");
    assert_eq!(balance_of(&dave), before + 100);
    let refused = sigil_error(&[
        "account",
        "transfer",
        "--to",
        &dave,
        "--amount",
        "18446744073709551615",
        "--ledger",
        &url,
        "--dev-account",
        "bob",
    ]);
    assert!(refused.contains("refused"), "{refused}");

    // `sigil program check` refuses what `store_program` refuses for its size.
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, vec![0u8; 1_000_001]).expect("write");
    let refused = sigil_error(&["program", "check", big.to_str().expect("utf-8")]);
    assert!(
        refused.contains("exceeds the 1000000-byte limit"),
        "{refused}"
    );

    // sigil sign --eth-tx under eth-allowlist: the raw transaction decodes and recovers to the
    // key's address.
    let allowlist = repo().join("programs/dist/eth-allowlist.wasm");
    let deployed = sigil_json(&[
        "program",
        "deploy",
        allowlist.to_str().expect("utf-8"),
        "--ledger",
        &url,
        "--dev-account",
        "charlie",
        "--json",
    ]);
    let to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let config_file = dir.path().join("allowlist.json");
    std::fs::write(
        &config_file,
        format!(r#"{{"allow": ["{to}"], "max_value": "1000000000000000000", "chain_id": 5}}"#),
    )
    .expect("write");
    let program_arg = format!("{}={}", s(&deployed, "id"), config_file.display());
    let registered = sigil_json(&[
        "register",
        "--program",
        &program_arg,
        "--ledger",
        &url,
        "--dev-account",
        "charlie",
        "--json",
    ]);
    let eth_key = s(&registered, "verifying_key").to_owned();
    let tx_file = dir.path().join("tx.json");
    std::fs::write(
        &tx_file,
        format!(
            r#"{{"chain_id": 5, "nonce": 7, "max_priority_fee_per_gas": "1000000000",
                "max_fee_per_gas": 30000000000, "gas_limit": 21000, "to": "{to}",
                "value": "0x2386f26fc10000", "input": "0x"}}"#
        ),
    )
    .expect("write");
    let signed = sigil_json(&[
        "sign",
        "--key",
        &eth_key,
        "--eth-tx",
        tx_file.to_str().expect("utf-8"),
        "--ledger",
        &url,
        "--dev-account",
        "charlie",
        "--json",
    ]);
    let raw = hex::decode(s(&signed, "tx_signed").trim_start_matches("0x")).expect("hex");
    let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("a raw transaction");
    let TxEnvelope::Eip1559(tx) = envelope else {
        panic!("not EIP-1559: {envelope:?}")
    };
    assert_eq!(tx.tx().nonce, 7);
    assert_eq!(tx.tx().chain_id, 5);
    let sender = tx.recover_signer().expect("recovers");
    assert_eq!(sender.to_checksum(None), s(&registered, "eth_address"));
    assert_eq!(s(&signed, "sender"), s(&registered, "eth_address"));

    // Deposits come back: charlie unregisters the key and removes the program it no longer
    // uses; a non-owner cannot unregister.
    let reserved_of = |who: &str| {
        let shown = sigil_json(&[
            "account", "balance", "--of", who, "--ledger", &url, "--json",
        ]);
        shown["reserved"].as_u64().expect("reserved")
    };
    let charlie = dev_keypair("charlie").account_id().to_string();
    let held = reserved_of(&charlie);
    let unregister = |who: &str| {
        sigil(&[
            "unregister",
            "--key",
            &eth_key,
            "--ledger",
            &url,
            "--dev-account",
            who,
        ])
    };
    let refused = unregister("dave");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only the owner"));
    let done = unregister("charlie");
    assert!(done.status.success(), "{done:?}");
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(said.contains("deposit returned: 1000000"), "{said}");
    let removed = sigil(&[
        "program",
        "remove",
        s(&deployed, "id"),
        "--ledger",
        &url,
        "--dev-account",
        "charlie",
    ]);
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(reserved_of(&charlie), 0, "both deposits ({held}) returned");
    let gone = sigil_error(&sign_after_unregister(&eth_key, &url));
    assert!(gone.contains("unregistered_key"), "{gone}");

    // kill, restart, stop.
    devnet.kill("ferdie").await.expect("kill");
    assert!(devnet.exited().contains(&"ferdie".to_owned()));
    devnet.restart("ferdie").await.expect("restart");
    assert!(devnet.exited().is_empty());
    let pids: Vec<u32> = devnet.nodes().iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 6);
    devnet.stop().await.expect("stop");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} outlived the devnet"
        );
    }
}

/// `sigil sign` arguments for a message with `key` as charlie.
fn sign_after_unregister<'a>(key: &'a str, url: &'a str) -> [&'a str; 9] {
    [
        "sign",
        "--key",
        key,
        "--message",
        "gone",
        "--ledger",
        url,
        "--dev-account",
        "charlie",
    ]
}

#[test]
fn usage_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unreachable = "ws://127.0.0.1:9";

    // No account.
    let line = sigil_error(&[
        "register",
        "--program",
        &format!("0x{}", "11".repeat(32)),
        "--ledger",
        unreachable,
    ]);
    assert!(line.contains("--phrase-file"), "{line}");

    // A bad program id.
    let line = sigil_error(&[
        "register",
        "--program",
        "0x1234",
        "--dev-account",
        "alice",
        "--ledger",
        unreachable,
    ]);
    assert!(line.contains("program id"), "{line}");

    // Fixture shares of another shape than the devnet's: refused before anything starts.
    let fixtures = repo().join("crates/mpc/fixtures/2-of-4");
    let line = sigil_error(&[
        "devnet",
        "--dev-key-shares",
        fixtures.to_str().expect("utf-8"),
        "--dir",
        dir.path().join("devnet").to_str().expect("utf-8"),
    ]);
    assert!(
        line.contains("2-of-4 key") && line.contains("--signers 4 --threshold 2"),
        "{line}"
    );

    // A malformed transaction file is refused before any network access.
    let tx = dir.path().join("tx.json");
    std::fs::write(&tx, r#"{"chain_id": 1, "nonce": 0}"#).expect("write");
    let key = VerifyingKey::from_k256(
        &(*k256::ecdsa::SigningKey::from_slice(&[7; 32])
            .expect("scalar")
            .verifying_key())
        .into(),
    );
    let line = sigil_error(&[
        "sign",
        "--key",
        &key.to_string(),
        "--eth-tx",
        tx.to_str().expect("utf-8"),
        "--dev-account",
        "alice",
        "--ledger",
        unreachable,
    ]);
    assert!(line.contains("not an EIP-1559 transaction"), "{line}");

    // No ledger.
    let line = sigil_error(&["status", "--ledger", unreachable]);
    assert!(line.contains("cannot connect"), "{line}");

    // Devnet configuration.
    let line = sigil_error(&["devnet", "--signers", "2", "--threshold", "3"]);
    assert!(line.contains("threshold"), "{line}");
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// A devnet killed with SIGKILL cannot clean up, so its children must stop by themselves.
#[cfg(target_os = "linux")]
#[test]
fn children_stop_when_the_devnet_is_killed() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args([
            "devnet",
            "--no-jump-start",
            "--validators",
            "2",
            "--signers",
            "2",
        ])
        .args(["--dir", &dir_text])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(devnet.stdout.take().unwrap());
    let lines: Vec<String> = stdout
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.contains("Ctrl-C"))
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("devnet ready")),
        "the devnet did not start: {lines:?}"
    );
    let children: Vec<u32> = processes_mentioning(&dir_text)
        .into_iter()
        .filter(|pid| *pid != devnet.id())
        .collect();
    assert_eq!(
        children.len(),
        4,
        "a replica per validator and two nodes run"
    );
    // `replica NAME URL pid PID`, one per validator, each a running child.
    let replicas: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("replica "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(replicas.len(), 2, "{lines:?}");
    for fields in replicas {
        assert_eq!(fields[3], "pid", "{fields:?}");
        assert!(fields[2].starts_with("ws://127.0.0.1:"), "{fields:?}");
        let pid: u32 = fields[4].parse().expect("pid");
        assert!(
            children.contains(&pid),
            "replica pid {pid} is not a running child"
        );
    }
    devnet.kill().unwrap();
    devnet.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !processes_mentioning(&dir_text).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "children outlived the killed devnet: {:?}",
            processes_mentioning(&dir_text)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
