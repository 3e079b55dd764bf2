//! Keystore creation is crash-safe: a `sigil node` killed with SIGKILL at any moment of its
//! first start leaves a data directory that the next start opens (or creates afresh, if the
//! keystore never appeared), and an identity once written is never replaced.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::SIGIL;

/// First starts killed.
const KILLS: u32 = 100;

/// A node start for `data`: it gets past its keystore, then fails to reach a ledger that is not
/// there (port 9, discard).
fn node(data: &Path, key_file: &Path) -> Command {
    let mut command = Command::new(SIGIL);
    command
        .arg("node")
        .arg("--data-dir")
        .arg(data)
        .arg("--key-file")
        .arg(key_file)
        .args(["--ledger", "ws://127.0.0.1:9", "--listen", "127.0.0.1:1"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// The account the node's start reported (its identity), from its log.
fn identity(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains("identity loaded"))?;
    let start = line.find("account=")? + "account=".len();
    Some(line[start..].split_whitespace().next()?.to_string())
}

#[test]
fn a_node_killed_at_any_moment_of_its_first_start_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keystore.key");
    std::fs::write(&key_file, hex::encode([7u8; 32])).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut cannot_restart = Vec::new();
    let mut had_keystore = 0;
    for i in 0..KILLS {
        let data = dir.path().join(format!("node-{i}"));
        let mut first = node(&data, &key_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the start, keystore creation included.
        std::thread::sleep(Duration::from_micros(u64::from(i) * 400));
        first.kill().unwrap();
        first.wait().unwrap();
        if data.join("keystore.redb").exists() {
            had_keystore += 1;
        }
        let again = node(&data, &key_file).output().unwrap();
        let stderr = String::from_utf8_lossy(&again.stderr);
        if !stderr.contains("cannot reach the ledger") || identity(&stderr).is_none() {
            cannot_restart.push((i, stderr.lines().last().unwrap_or("").to_string()));
            continue;
        }
        // The identity is kept from then on.
        let third = node(&data, &key_file).output().unwrap();
        assert_eq!(
            identity(&String::from_utf8_lossy(&third.stderr)),
            identity(&stderr),
            "kill {i}: the identity changed"
        );
    }
    eprintln!(
        "keystore creation: {KILLS} SIGKILLs during a first start ({had_keystore} after the \
         keystore appeared), {} nodes that cannot restart",
        cannot_restart.len()
    );
    assert!(cannot_restart.is_empty(), "{cannot_restart:?}");
}
