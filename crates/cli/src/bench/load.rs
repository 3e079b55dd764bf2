//! Signing load: `requests` signatures at a fixed concurrency through one relayer, each timed
//! from the sealed request to a verified answer (client → relayer → committee → client).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use futures::StreamExt as _;
use serde::Serialize;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::ValidatorRecord;
use sigil_client::{LedgerClient, NodeClient, SealedRequest, seal_request, verify_response};
use sigil_crypto::AccountKeypair;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{HashingAlgorithm, VerifyingKey};

use sigil::progress::Step;

use crate::demo::{ALLOWED, CHAIN_ID, VALUE_WEI};

/// A registered key and its owner; each concurrent worker signs with its own key, so the
/// per-key rate limit never throttles the benchmark.
#[derive(Clone)]
pub struct BenchKey {
    /// The owner, who signs requests.
    pub owner: AccountKeypair,
    /// The registered key.
    pub verifying_key: VerifyingKey,
}

/// Where requests go and with which keys.
pub struct Workload {
    /// The ledger, for the current block of each request.
    pub ledger: LedgerClient,
    /// The relayer every request is sent to.
    pub relayer: ValidatorRecord,
    /// Its HTTP client (one connection pool for the whole run).
    pub node: NodeClient,
    /// One key per worker.
    pub keys: Vec<BenchKey>,
    /// Distinct nonces, so no two requests carry the same transaction.
    pub next_nonce: AtomicUsize,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Signed requests the figures are over.
    pub samples: usize,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Fastest.
    pub min_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples`; `None` if there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[index.clamp(1, ms.len()) - 1]
        };
        Some(Self {
            samples: ms.len(),
            mean_ms: round(ms.iter().sum::<f64>() / ms.len() as f64),
            p50_ms: round(rank(50.0)),
            p90_ms: round(rank(90.0)),
            p99_ms: round(rank(99.0)),
            max_ms: round(ms[ms.len() - 1]),
            min_ms: round(ms[0]),
        })
    }
}

/// One load level's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests that got a verified signature.
    pub signed: usize,
    /// Requests that failed, with the first few errors.
    pub errors: usize,
    /// Up to three distinct error messages.
    pub error_samples: Vec<String>,
    /// Signed requests that needed more than one committee.
    pub retried: usize,
    /// Wall time of the whole level, in seconds.
    pub seconds: f64,
    /// Verified signatures per second over the level.
    pub signatures_per_second: f64,
    /// Latency of the signed requests.
    pub latency: Option<Latency>,
    /// Every signed request's latency in milliseconds, in completion order (for plots).
    #[serde(skip)]
    pub samples: Vec<Duration>,
}

impl Workload {
    /// A workload through `relayer` with `keys`, reading heads from the ledger at `ledger_url`.
    pub async fn new(
        ledger_url: &str,
        relayer: &ValidatorRecord,
        keys: Vec<BenchKey>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            ledger: LedgerClient::connect(ledger_url).await?,
            relayer: relayer.clone(),
            node: NodeClient::new(relayer.endpoint.as_str()),
            keys,
            next_nonce: AtomicUsize::new(0),
        })
    }

    /// Sends `requests` signing requests, `concurrency` at a time, and times each.
    pub async fn run(
        self: &Arc<Self>,
        requests: usize,
        concurrency: usize,
        progress: &mut Step,
    ) -> Level {
        let started = Instant::now();
        let mut outcomes = futures::stream::iter(0..requests)
            .map(|i| {
                let this = self.clone();
                let worker = i % concurrency;
                tokio::spawn(async move { this.sign_one(worker).await })
            })
            .buffer_unordered(concurrency);
        let mut samples = Vec::with_capacity(requests);
        let mut errors = Vec::new();
        let mut retried = 0;
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Ok(Ok((elapsed, attempts))) => {
                    samples.push(elapsed);
                    if attempts > 1 {
                        retried += 1;
                    }
                }
                Ok(Err(e)) => errors.push(format!("{e:#}")),
                Err(e) => errors.push(format!("request task failed: {e}")),
            }
            progress.update(&format!("{}/{requests}", samples.len() + errors.len()));
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut error_samples: Vec<String> = Vec::new();
        for e in &errors {
            if error_samples.len() < 3 && !error_samples.contains(e) {
                error_samples.push(e.clone());
            }
        }
        Level {
            concurrency,
            requests,
            signed: samples.len(),
            errors: errors.len(),
            error_samples,
            retried,
            seconds: round(seconds),
            signatures_per_second: round(samples.len() as f64 / seconds.max(1e-9)),
            latency: Latency::of(&samples),
            samples,
        }
    }

    /// A new request for worker `worker`'s key at the ledger's head, sealed to the relayer.
    pub async fn request(
        &self,
        worker: usize,
    ) -> anyhow::Result<(SignatureRequest, SealedRequest)> {
        self.request_via(worker, &self.relayer).await
    }

    /// Like [`Workload::request`], sealed to `relayer`.
    pub async fn request_via(
        &self,
        worker: usize,
        relayer: &ValidatorRecord,
    ) -> anyhow::Result<(SignatureRequest, SealedRequest)> {
        let key = &self.keys[worker % self.keys.len()];
        let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed) as u64;
        let tx = sigil::eth::transfer(CHAIN_ID, nonce, ALLOWED, U256::from(VALUE_WEI));
        let block = self.ledger.rpc().head().await?.height.0;
        let request = SignatureRequest {
            verifying_key: key.verifying_key,
            block,
            hashing: HashingAlgorithm::Keccak256,
            aux_data: vec![Vec::new()],
            message: sigil::eth::signing_payload(&tx),
        };
        let sealed = seal_request(&key.owner, relayer, &request)?;
        Ok((request, sealed))
    }

    /// One request with worker `worker`'s key: its latency and how many committees it took.
    async fn sign_one(&self, worker: usize) -> anyhow::Result<(Duration, usize)> {
        let (request, sealed) = self.request(worker).await?;
        let started = Instant::now();
        let response = self.node.relay(&sealed.envelope).await?;
        verify_response(&sealed, &request, &response)?;
        Ok((started.elapsed(), response.attempts.len().max(1)))
    }
}

/// Two decimals are plenty for milliseconds and rates.
pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&samples).unwrap();
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.min_ms),
            (50.0, 90.0, 99.0, 100.0, 1.0)
        );
        assert_eq!(l.mean_ms, 50.5);
        let one = Latency::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert!(Latency::of(&[]).is_none());
    }
}
