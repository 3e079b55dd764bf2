//! Evaluation latency with a warm cache: what every relayer and signer pays per program on each
//! signing request.

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{FUEL, ONE_ETH, eip1559_payload, host, program};
use sigil_programs::Request;

fn eth_allowlist(c: &mut Criterion) {
    let host = host();
    let p = program("eth-allowlist");
    host.prepare(p.id, &p.bytecode).expect("valid program");
    // A plain transfer of 0.1 ETH to the second of five allow-listed addresses.
    let message = eip1559_payload(1, &[0x35; 20], ONE_ETH / 10);
    let config = br#"{"allow":["0x1111111111111111111111111111111111111111","0x3535353535353535353535353535353535353535","0x2222222222222222222222222222222222222222","0x3333333333333333333333333333333333333333","0x4444444444444444444444444444444444444444"],"max_value":"1000000000000000000","chain_id":1}"#;
    let request = Request {
        message: &message,
        aux_data: b"",
    };
    let outcome = host
        .evaluate(p.id, &p.bytecode, &request, config, &[], FUEL)
        .expect("allowed");
    eprintln!(
        "eth-allowlist uses {} fuel per evaluation",
        outcome.fuel_used
    );
    c.bench_function("eth-allowlist/eip1559-transfer/warm", |b| {
        b.iter(|| {
            host.evaluate(p.id, &p.bytecode, &request, config, &[], FUEL)
                .expect("allowed")
        })
    });
}

fn message_size(c: &mut Criterion) {
    let host = host();
    let p = program("message-size");
    host.prepare(p.id, &p.bytecode).expect("valid program");
    let message = [0u8; 32];
    let request = Request {
        message: &message,
        aux_data: b"",
    };
    c.bench_function("message-size/32-bytes/warm", |b| {
        b.iter(|| {
            host.evaluate(
                p.id,
                &p.bytecode,
                &request,
                br#"{"max_length":64}"#,
                &[],
                FUEL,
            )
            .expect("allowed")
        })
    });
}

criterion_group!(benches, eth_allowlist, message_size);
criterion_main!(benches);
