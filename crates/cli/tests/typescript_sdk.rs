//! The TypeScript SDK (`sdk/typescript`): its `npm test` (unit tests, and tests against a real
//! devnet of this build's `sigil`), and the envelope example of `docs/PROTOCOL.md` §3.6 that
//! its unit tests reproduce, opened here by the Rust code.

use std::path::{Path, PathBuf};
use std::process::Command;

use sigil_crypto::envelope::{Envelope, OpenPolicy, open};
use sigil_crypto::{NodeSeed, X25519StaticKey};

const DOC: &str = include_str!("../../../docs/PROTOCOL.md");

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/typescript")
}

/// What `program --version` prints, if it runs.
fn version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `npm ARGS` in the SDK's directory; fails the test with npm's output if it fails.
fn npm(args: &[&str]) -> String {
    let out = Command::new("npm")
        .args(args)
        .current_dir(sdk_dir())
        .env("SIGIL_BIN", env!("CARGO_BIN_EXE_sigil"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm {}: {e}", args.join(" ")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "npm {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        out.status
    );
    stdout.into_owned()
}

#[test]
fn npm_test_passes_against_a_devnet() {
    let node = version("node");
    let major = node.as_deref().and_then(|v| {
        v.trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    assert!(
        major.is_some_and(|m| m >= 20) && version("npm").is_some(),
        "the TypeScript SDK tests need Node.js 20 or later and npm (found node {}): install them (Debian: apt-get install nodejs npm)",
        node.as_deref().unwrap_or("none")
    );
    if !sdk_dir().join("node_modules").is_dir() {
        npm(&["ci", "--no-audit", "--no-fund"]);
    }
    let out = npm(&["test"]);
    // The runner's summary (`# tests N`, `# pass N`, …), shown with --nocapture.
    for line in out
        .lines()
        .filter(|l| l.starts_with("# ") && !l.starts_with("# Subtest"))
    {
        println!("{line}");
    }
}

/// The hex in the fenced block that follows `marker` in the doc, lines joined.
fn fenced_after(marker: &str) -> String {
    let rest = DOC
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no {marker:?}"));
    let block = rest
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("no fenced block after {marker:?}"));
    block.lines().skip(1).collect::<Vec<_>>().concat()
}

#[test]
fn the_envelope_example_opens_with_the_rust_code() {
    let plaintext =
        hex::decode(fenced_after("The\nsigned plaintext (§3.1, 176 bytes) is")).expect("hex");
    assert_eq!(plaintext.len(), 176);
    let json = fenced_after("DeriveKeyPair(ikmE = 32 × 0x07)");
    let envelope: Envelope = serde_json::from_str(&json).expect("the example envelope parses");
    let recipient = X25519StaticKey::from_secret([0x42; 32]);
    let alice = NodeSeed::dev("alice").account_keypair().account_id();
    let policy = OpenPolicy {
        now_ms: 1_700_000_000_000,
        ..OpenPolicy::fresh_within(120_000).from_sender(alice)
    };
    let opened = open(&envelope, &recipient, &policy).expect("the example opens");
    assert_eq!(opened.payload, b"hi");
    assert_eq!(opened.timestamp_ms, 1_700_000_000_000);
    assert_eq!(opened.request_id.as_bytes(), &[9; 32]);
    assert_eq!(opened.reply_to, None);
    assert_eq!(opened.signed_plaintext, plaintext);
    assert!(DOC.contains(&format!("`alice` is account `{alice}`")));
}
