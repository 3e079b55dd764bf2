//! The request envelope's cost per payload size: sealing (sign, then HPKE-encrypt) is what a
//! client and a relayer pay per request, opening (decrypt, then verify) what every node pays.
//!
//! `cargo bench -p sigil-crypto --bench envelope`

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sigil_crypto::envelope::{OpenPolicy, SealParams, now_ms, open, seal};
use sigil_crypto::{AccountKeypair, X25519StaticKey};
use sigil_primitives::RequestId;

/// A request's payload at the low end, a typical transaction batch, and the 1 MiB message limit.
const SIZES: [(usize, &str); 3] = [(256, "256B"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];

fn envelope(c: &mut Criterion) {
    let sender = AccountKeypair::from_secret([7; 32]);
    let node = X25519StaticKey::from_secret([9; 32]);
    let request_id = RequestId::from_bytes([3; 32]).expect("any 32 bytes are a request id");
    // Timestamps are checked on opening; a day of allowed age covers any bench run.
    let policy = OpenPolicy::fresh_within(24 * 3600 * 1000).from_sender(sender.account_id());

    let mut group = c.benchmark_group("envelope");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (size, label) in SIZES {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
        let params = SealParams {
            recipient: node.public_key(),
            request_id,
            timestamp_ms: now_ms(),
            reply_to: None,
            payload: &payload,
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| seal(&sender, black_box(&params)).expect("seals"))
        });
        let sealed = seal(&sender, &params).expect("seals");
        group.bench_function(BenchmarkId::new("open", label), |b| {
            b.iter(|| {
                let opened = open(black_box(&sealed), &node, &policy).expect("opens");
                debug_assert_eq!(opened.payload.len(), size);
                opened
            })
        });
    }
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
