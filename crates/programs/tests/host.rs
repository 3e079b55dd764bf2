//! The host's guarantees: validation, fuel, the memory cap, the cache, and that the committed
//! programs are what `programs/build.sh` builds.

mod common;

use std::process::Command;

use common::{FUEL, dist_dir, host, program};
use sigil_primitives::{MAX_MESSAGE_SIZE, ProgramId, ProgramInstance};
use sigil_programs::{
    FuelPolicy, HostConfig, OracleEntry, ProgramCall, ProgramError, ProgramHost, Request,
    VALIDATION_FUEL, oracle,
};

fn request(message: &[u8]) -> Request<'_> {
    Request {
        message,
        aux_data: b"",
    }
}

fn component(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("valid wat")
}

#[test]
fn a_core_module_is_not_a_program() {
    let err = host()
        .validate(&component("(module (func (export \"evaluate\")))"))
        .expect_err("core module");
    let ProgramError::InvalidBytecode(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.contains("not a component"), "{text}");
}

#[test]
fn garbage_is_invalid_bytecode() {
    for bytes in [&b""[..], b"hello world", b"\0asm\x0d\0\x01\0garbage"] {
        let err = host().validate(bytes).expect_err("garbage");
        assert!(matches!(err, ProgramError::InvalidBytecode(_)), "{err}");
    }
}

#[test]
fn a_component_without_evaluate_is_rejected() {
    let wasm = component(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "something-else") (canon lift (core func $i "f"))))"#,
    );
    assert_eq!(
        host().validate(&wasm),
        Err(ProgramError::MissingExport("evaluate".into()))
    );
    // The empty component is a component, and still not a program.
    assert_eq!(
        host().validate(b"\0asm\x0d\0\x01\0"),
        Err(ProgramError::MissingExport("evaluate".into()))
    );
}

#[test]
fn an_evaluate_of_the_wrong_type_is_rejected() {
    let wasm = component(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "evaluate") (canon lift (core func $i "f"))))"#,
    );
    let err = host().validate(&wasm).expect_err("wrong type");
    assert!(
        matches!(&err, ProgramError::BadExportType { name, .. } if name == "evaluate"),
        "{err:?}"
    );
}

#[test]
fn a_component_that_imports_anything_is_rejected() {
    let wasm = component(r#"(component (import "wasi:clocks/wall-clock" (instance)))"#);
    assert_eq!(
        host().validate(&wasm),
        Err(ProgramError::ForbiddenImport(
            "wasi:clocks/wall-clock".into()
        ))
    );
}

#[test]
fn an_initial_memory_over_the_cap_fails_validation() {
    // 2000 pages = 125 MiB, over the 64 MiB default.
    let wasm = component(
        r#"(component
            (core module $m (memory 2000) (func (export "f")))
            (core instance $i (instantiate $m))
            (func (export "evaluate") (canon lift (core func $i "f"))))"#,
    );
    let err = host().validate(&wasm).expect_err("too much memory");
    assert!(matches!(err, ProgramError::MemoryLimit { .. }), "{err:?}");
}

#[test]
fn every_committed_program_validates() {
    let host = host();
    for name in [
        "message-size",
        "eth-allowlist",
        "solana-allowlist",
        "device-key",
        "custom-hash",
        "infinite-loop",
        "trap",
        "memory-hog",
        "fuel-burner",
        "echo-hash",
    ] {
        let p = program(name);
        host.validate(&p.bytecode)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            p.bytecode.len() < 1 << 20,
            "{name} is {} bytes, over the ledger's 1 MB",
            p.bytecode.len()
        );
    }
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let p = program("infinite-loop");
    assert_eq!(
        host().evaluate(p.id, &p.bytecode, &request(b""), b"", &[], FUEL),
        Err(ProgramError::OutOfFuel)
    );
}

#[test]
fn allocating_past_the_memory_cap_is_a_memory_limit_error() {
    let host = host();
    let p = program("memory-hog");
    // Well under the cap passes.
    host.evaluate(
        p.id,
        &p.bytecode,
        &request(b""),
        br#"{"mebibytes":16}"#,
        &[],
        500_000_000,
    )
    .expect("16 MiB fits");
    let err = host
        .evaluate(
            p.id,
            &p.bytecode,
            &request(b""),
            br#"{"mebibytes":100}"#,
            &[],
            500_000_000,
        )
        .expect_err("100 MiB does not fit in 64");
    assert_eq!(
        err,
        ProgramError::MemoryLimit {
            limit_bytes: 64 << 20
        }
    );

    // The cap is the host's setting.
    let small = ProgramHost::new(HostConfig {
        memory_limit_bytes: 8 << 20,
        ..HostConfig::default()
    })
    .expect("engine");
    let err = small
        .evaluate(
            p.id,
            &p.bytecode,
            &request(b""),
            br#"{"mebibytes":16}"#,
            &[],
            500_000_000,
        )
        .expect_err("16 MiB does not fit in 8");
    assert!(matches!(err, ProgramError::MemoryLimit { .. }), "{err}");
}

fn burner_config(iterations: u64) -> Vec<u8> {
    format!(r#"{{"iterations":{iterations}}}"#).into_bytes()
}

#[test]
fn fuel_is_per_program_not_shared() {
    let host = host();
    let p = program("fuel-burner");
    let config = burner_config(200_000);
    let used = host
        .evaluate(p.id, &p.bytecode, &request(b""), &config, &[], u64::MAX / 2)
        .expect("calibration")
        .fuel_used;
    // A budget each program uses 60% of; both together need 120% of it.
    let budget = used * 10 / 6;
    let call = ProgramCall {
        id: p.id,
        bytecode: &p.bytecode,
        config: &config,
        aux_data: b"",
    };
    let outcomes = host
        .evaluate_all(b"", &[call, call], &[], budget)
        .expect("each program has its own budget");
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o.fuel_used == used), "{outcomes:?}");
    assert!(outcomes.iter().map(|o| o.fuel_used).sum::<u64>() > budget);

    // Metering is exact: twice the work does not fit the budget.
    let double = burner_config(400_000);
    let err = host
        .evaluate(p.id, &p.bytecode, &request(b""), &double, &[], budget)
        .expect_err("120% of the budget");
    assert_eq!(err, ProgramError::OutOfFuel);

    // The same two programs under a shared budget: the second runs out.
    let shared = ProgramHost::new(HostConfig {
        fuel_policy: FuelPolicy::Shared,
        ..HostConfig::default()
    })
    .expect("host");
    let failure = shared
        .evaluate_all(b"", &[call, call], &[], budget)
        .expect_err("120% of one shared budget");
    assert_eq!(failure.index, 1);
    assert_eq!(failure.error, ProgramError::OutOfFuel);
    // One program alone still fits.
    shared
        .evaluate_all(b"", &[call], &[], budget)
        .expect("60% of the budget");
}

#[test]
fn a_zero_capacity_cache_compiles_every_time() {
    let host = ProgramHost::new(HostConfig {
        cache_capacity: 0,
        ..HostConfig::default()
    })
    .expect("host");
    let p = program("fuel-burner");
    let config = burner_config(10);
    for _ in 0..2 {
        host.evaluate(p.id, &p.bytecode, &request(b""), &config, &[], FUEL)
            .expect("evaluates");
        assert!(!host.is_cached(&p.id));
    }
    assert_eq!(host.cached_programs(), 0);
}

#[test]
fn evaluate_all_names_the_first_failing_program() {
    let host = host();
    let size = program("message-size");
    let burner = program("fuel-burner");
    let burner_config = burner_config(10);
    let size_instance = ProgramInstance {
        program: size.id,
        config: br#"{"max_length":2}"#.to_vec(),
    };
    let calls = [
        ProgramCall {
            id: burner.id,
            bytecode: &burner.bytecode,
            config: &burner_config,
            aux_data: b"",
        },
        ProgramCall::new(&size_instance, &size.bytecode, b""),
    ];
    let failure = host
        .evaluate_all(b"too long", &calls, &[], FUEL)
        .expect_err("second program denies");
    assert_eq!(failure.index, 1);
    assert_eq!(failure.program, size.id);
    assert!(matches!(failure.error, ProgramError::Denied(_)));
    let oracle: Vec<OracleEntry> = vec![
        (oracle::BLOCK_NUMBER.into(), 42u64.to_be_bytes().to_vec()),
        (
            oracle::TIMESTAMP.into(),
            1_700_000_000u64.to_be_bytes().to_vec(),
        ),
    ];
    assert_eq!(
        host.evaluate_all(b"ok", &calls, &oracle, FUEL)
            .expect("both pass")
            .len(),
        2
    );
}

#[test]
fn an_oversized_message_is_refused_before_running() {
    let host = host();
    let p = program("message-size");
    let config = br#"{"max_length":4294967295}"#;
    let message = vec![0; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        host.evaluate(p.id, &p.bytecode, &request(&message), config, &[], FUEL),
        Err(ProgramError::MessageTooLarge {
            len: MAX_MESSAGE_SIZE + 1
        })
    );
    host.evaluate(
        p.id,
        &p.bytecode,
        &request(&message[1..]),
        config,
        &[],
        FUEL,
    )
    .expect("exactly the limit is run");
}

#[test]
fn the_host_is_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ProgramHost>();
}

#[test]
fn compiled_programs_are_cached_by_id() {
    let host = host();
    let p = program("message-size");
    assert!(!host.is_cached(&p.id));
    let config = br#"{"max_length":8}"#;
    let first = host
        .evaluate(p.id, &p.bytecode, &request(b"hi"), config, &[], FUEL)
        .expect("passes");
    assert!(host.is_cached(&p.id));
    // A hit never looks at the bytes again: only instantiation remains.
    let second = host
        .evaluate(p.id, b"not even wasm", &request(b"hi"), config, &[], FUEL)
        .expect("cached");
    // Evaluation is deterministic, fuel included.
    assert_eq!(first, second);

    let small = ProgramHost::new(HostConfig {
        cache_capacity: 1,
        ..HostConfig::default()
    })
    .expect("engine");
    let other = program("custom-hash");
    small.prepare(p.id, &p.bytecode).expect("valid");
    small.prepare(other.id, &other.bytecode).expect("valid");
    assert_eq!(small.cached_programs(), 1);
    assert!(small.is_cached(&other.id) && !small.is_cached(&p.id));
}

#[test]
fn a_bad_program_is_not_cached() {
    let host = host();
    let id = ProgramId::from_bytes([9; 32]).expect("id");
    let err = host
        .evaluate(id, b"junk", &request(b""), b"", &[], FUEL)
        .expect_err("junk");
    assert!(matches!(err, ProgramError::InvalidBytecode(_)));
    assert!(!host.is_cached(&id));
}

#[test]
fn validation_fuel_is_enough_for_every_example() {
    // Instantiation of a Rust program runs no code; the trial instantiation costs ~nothing.
    let p = program("eth-allowlist");
    assert!(host().validate(&p.bytecode).is_ok());
    const { assert!(VALIDATION_FUEL >= 1_000_000) };
}

/// The programs `programs/build.sh` builds, compared byte for byte with `programs/dist`.
#[test]
fn committed_programs_match_a_rebuild() {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !std::path::Path::new(&sysroot)
        .join("lib/rustlib/wasm32-unknown-unknown")
        .is_dir()
    {
        println!("skipped: the wasm32-unknown-unknown target is not installed");
        return;
    }
    let dist = dist_dir();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc");
    let rustc = String::from_utf8_lossy(&rustc.stdout).trim().to_string();
    let committed = std::fs::read_to_string(dist.join("TOOLCHAIN")).expect("dist/TOOLCHAIN");
    if committed.trim() != rustc {
        println!(
            "skipped: dist/ was built with {}, this is {rustc}; byte-identical output needs \
             the same compiler",
            committed.trim()
        );
        return;
    }
    let out = std::env::temp_dir().join(format!("sigil-programs-rebuild-{}", std::process::id()));
    let status = Command::new("bash")
        .arg(dist.join("../build.sh"))
        .arg(&out)
        .status()
        .expect("run programs/build.sh");
    assert!(status.success(), "programs/build.sh failed");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dist).expect("dist") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let name = path.file_name().expect("name");
            let rebuilt = std::fs::read(out.join(name)).expect("rebuilt program");
            let committed = std::fs::read(&path).expect("committed program");
            assert!(
                rebuilt == committed,
                "{} differs from a rebuild; run programs/build.sh and commit",
                path.display()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 10, "every example program was compared");
    std::fs::remove_dir_all(&out).ok();
}
