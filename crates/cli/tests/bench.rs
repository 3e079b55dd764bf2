//! `sigil bench` as a user runs it: a real devnet (the committed 2-of-4 production key shares,
//! so no DKG), real signatures on both paths, one JSON object whose figures must hang
//! together, and the SVG plot. Loads are small so the test takes about a minute.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mpc/fixtures/2-of-4")
}

fn f(json: &serde_json::Value, pointer: &str) -> f64 {
    json.pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a number"))
}

/// Checks one path's runs: every request signed, percentiles ordered, throughput positive.
fn check_path(json: &serde_json::Value, path: &str, sweep: &[u64]) {
    let run = json
        .pointer(path)
        .unwrap_or_else(|| panic!("{path} missing"));
    let latency = &run["latency"];
    assert_eq!(latency["requests"], 3, "{path}");
    assert_eq!(latency["signed"], 3, "{path}: {latency}");
    assert_eq!(latency["errors"], 0, "{path}: {latency}");
    let l = &latency["latency"];
    let (min, p50, p90, p99, max) = (
        f(l, "/min_ms"),
        f(l, "/p50_ms"),
        f(l, "/p90_ms"),
        f(l, "/p99_ms"),
        f(l, "/max_ms"),
    );
    assert!(
        min > 0.0 && min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "{path}: {l}"
    );
    let levels = run["throughput"].as_array().expect("sweep");
    let ran: Vec<u64> = levels
        .iter()
        .map(|l| l["concurrency"].as_u64().unwrap())
        .collect();
    assert!(
        !ran.is_empty() && sweep.starts_with(&ran),
        "{path}: levels {ran:?}"
    );
    for level in levels {
        assert_eq!(level["errors"], 0, "{path}: {level}");
        assert_eq!(level["signed"], level["requests"], "{path}: {level}");
        assert!(f(level, "/signatures_per_second") > 0.0, "{path}: {level}");
    }
    let peak = f(run, "/peak_signatures_per_second");
    assert!(
        levels
            .iter()
            .all(|l| f(l, "/signatures_per_second") <= peak),
        "{path}"
    );
}

#[test]
fn bench_with_baseline_reports_both_paths_ratios_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("bench.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .arg("bench")
        .args(["--validators", "5", "--signers", "4", "--threshold", "2"])
        .arg("--dev-key-shares")
        .arg(fixtures())
        .args(["--requests", "3", "--sweep", "1,2", "--sweep-requests", "3"])
        .args(["--ledger-samples", "5", "--ledger-burst", "80"])
        .args([
            "--engine-signatures",
            "1",
            "--baseline",
            "--no-reshare",
            "--json",
        ])
        .arg("--plot")
        .arg(&plot)
        .arg("--dir")
        .arg(dir.path().join("devnet"))
        .output()
        .expect("runs sigil bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sigil bench failed:\n{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    eprintln!("{}", serde_json::to_string_pretty(&json).unwrap());

    // What the figures are of.
    assert_eq!(json["parameters"], "production");
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(json["topology"]["validators"], 5);
    assert_eq!(json["topology"]["signers"], 4);
    assert_eq!(json["topology"]["threshold"], 2);
    assert_eq!(json["topology"]["relayer_name"], "eve");
    assert!(json["setup"]["dkg_seconds"].is_null(), "fixtures: no DKG");
    assert!(f(&json, "/figures/register/p50_ms") > 0.0);
    assert_eq!(json["figures"]["register"]["samples"], 2);
    let program = &json["figures"]["program"];
    assert!(f(program, "/fuel_used") > 0.0);
    assert!(f(program, "/uncached_p50_ms") * 1000.0 > f(program, "/cached_p50_us"));

    // The ledger's figures, on the devnet's replicated ledger.
    assert_eq!(json["ledger"]["mode"], "replicated");
    assert_eq!(json["ledger"]["replicas"], 5);
    assert_eq!(json["ledger"]["submit_to_final"]["samples"], 5);
    assert!(f(&json, "/ledger/submit_to_final/p50_ms") > 0.0);
    assert_eq!(json["ledger"]["burst_transactions"], 80);
    assert!(f(&json, "/ledger/transactions_per_second") > 0.0);

    // Both paths ran with the configuration they claim, and signed everything.
    check_path(&json, "/ours", &[1, 2]);
    check_path(&json, "/baseline", &[1, 2]);
    assert_eq!(
        json["ours"]["settings"],
        serde_json::json!({"connections": "persistent", "program_fuel": "per-program", "program_cache": 256})
    );
    assert_eq!(
        json["baseline"]["settings"],
        serde_json::json!({"connections": "per-session", "program_fuel": "shared", "program_cache": 0})
    );
    // Kept connections: each pair of the 4 signers connects at most once, ever (the warm-up
    // may have opened some). Per-session: a handshake for every session that ran alone.
    assert!(f(&json, "/ours/handshakes") <= 6.0, "{}", json["ours"]);
    // (Concurrent sessions between the same two peers share a connection, so only the
    // sequential ones are sure to handshake: the latency run and the sweep's first level.)
    let sequential =
        f(&json, "/baseline/latency/signed") + f(&json, "/baseline/throughput/0/signed");
    assert!(
        f(&json, "/baseline/handshakes") >= sequential,
        "{}",
        json["baseline"]
    );

    // Ratios are ours over the baseline's figures.
    let ratio = f(&json, "/ratios/latency_p50");
    let expected =
        f(&json, "/ours/latency/latency/p50_ms") / f(&json, "/baseline/latency/latency/p50_ms");
    assert!((ratio - expected).abs() < 0.01, "{ratio} vs {expected}");
    assert!(f(&json, "/ratios/throughput_peak") > 0.0);

    // The engine alone signed with the devnet's own shares, and the overhead adds up.
    let engine = &json["engine"];
    assert_eq!(engine["wall"]["samples"], 1);
    assert_eq!(engine["committee"].as_array().unwrap().len(), 2);
    assert!(f(engine, "/rounds") >= 3.0);
    let overhead = &json["network_overhead"];
    let sum = f(overhead, "/engine_p50_ms") + f(overhead, "/overhead_ms");
    assert!(
        (sum - f(overhead, "/end_to_end_p50_ms")).abs() < 0.1,
        "{overhead}"
    );

    // Where the time goes: the signers' per-round profile of the latency run (from their
    // metrics) and the engine's own, round for round.
    let net = json["ours"]["profile"]["rounds"]
        .as_array()
        .expect("network profile");
    let alone = engine["profile"].as_array().expect("engine profile");
    assert_eq!(net.len() as f64, f(engine, "/rounds"), "{net:?}");
    assert_eq!(alone.len(), net.len(), "{alone:?}");
    assert!(net.iter().all(|r| f(r, "/wall_ms") >= f(r, "/wait_ms")));
    assert!(f(&net[0], "/cpu_ms") > 1.0, "round 1 makes proofs: {net:?}");
    assert!(f(&json, "/ours/profile/session_ms") > 0.0);
    assert!(f(&json, "/ours/profile/checks_ms") > 0.0);

    let svg = std::fs::read_to_string(&plot).expect("the plot exists");
    assert!(svg.starts_with("<svg"), "an SVG");
    assert!(svg.contains("end-to-end signature latency"));
    assert!(svg.contains("throughput against concurrency"));
    assert!(svg.contains("baseline"));
}

#[test]
fn bad_options_are_one_readable_line() {
    for (args, expected) in [
        (vec!["--sweep", "4,2"], "--sweep levels must increase"),
        (vec!["--sweep", "0"], "at least 1"),
        (vec!["--plot", "out.png"], "ending in .svg"),
        (
            vec!["--ledger", "ws://127.0.0.1:1", "--baseline"],
            "--baseline restarts the nodes",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
            .arg("bench")
            .args(&args)
            .output()
            .expect("runs sigil bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `sigil bench --chaos`, small: a signer is killed and restarted while requests run, and every
/// request ends in a verified signature or an error with a stable code; none is lost, none
/// invalid.
#[test]
fn a_chaos_run_ends_every_request_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .arg("bench")
        .args(["--validators", "5", "--signers", "4", "--threshold", "2"])
        .arg("--dev-key-shares")
        .arg(fixtures())
        .args(["--chaos", "--requests", "8", "--concurrency", "2"])
        .args(["--kill-every", "2s", "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let chaos = &json["chaos"];
    assert_eq!(chaos["requests"], 8, "{chaos}");
    assert_eq!(
        (chaos["lost"].as_u64(), chaos["invalid"].as_u64()),
        (Some(0), Some(0)),
        "{chaos}"
    );
    assert!(f(chaos, "/kills") >= 1.0, "a signer was killed: {chaos}");
    let errors: u64 = chaos["errors"]
        .as_object()
        .expect("errors by code")
        .values()
        .map(|n| n.as_u64().expect("a count"))
        .sum();
    assert_eq!(
        chaos["signed"].as_u64().expect("signed") + errors,
        8,
        "{chaos}"
    );
    assert!(json["ours"].is_null(), "a chaos run measures nothing else");
}
