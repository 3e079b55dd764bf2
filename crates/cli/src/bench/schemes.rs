//! Per-scheme signing latency: one Ed25519 and one BIP-340 key, each signing requests one at a
//! time through the relayer (client → relayer → committee → client, programs included).

use std::time::{Duration, Instant};

use serde::Serialize;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::ValidatorRecord;
use sigil_client::{LedgerClient, NodeClient, seal_request, verify_response};
use sigil_crypto::AccountKeypair;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{HashingAlgorithm, KeyScheme, ProgramInstance, ProgramList, VerifyingKey};

use super::load::{Latency, round};
use sigil::progress::Step;

/// Keys (and owners) per scheme the requests rotate over, so the per-key and per-requester
/// limits per block (10 each by default) never throttle the run.
const KEYS: usize = 8;

/// The `message-size` program: a light policy, so the figure is the signing path's.
const MESSAGE_SIZE: &[u8] = include_bytes!("../../../../programs/dist/message-size.wasm");

/// One scheme's run.
#[derive(Debug, Clone, Serialize)]
pub struct SchemeRun {
    /// The scheme.
    pub scheme: KeyScheme,
    /// Requests signed and verified.
    pub signed: usize,
    /// Requests that failed.
    pub errors: usize,
    /// Latency of the signed requests.
    pub latency: Option<Latency>,
    /// Signatures per second at concurrency 1.
    pub signatures_per_second: f64,
}

/// Registers a key of each FROST scheme and signs `requests` requests with each, one at a time.
pub async fn run(
    ledger: &LedgerClient,
    relayer: &ValidatorRecord,
    requests: usize,
) -> anyhow::Result<Vec<SchemeRun>> {
    let owners: Vec<AccountKeypair> = (0..KEYS).map(|_| AccountKeypair::generate()).collect();
    let accounts: Vec<_> = owners.iter().map(AccountKeypair::account_id).collect();
    sigil::devnet::fund(ledger, &accounts, sigil::devnet::USER_FUNDING).await?;
    let program =
        crate::demo::deploy_program(ledger, &owners[0], "message-size", MESSAGE_SIZE).await?;
    let programs = ProgramList::new(vec![ProgramInstance {
        program,
        config: br#"{"max_length": 1024}"#.to_vec(),
    }])?;
    let node = NodeClient::new(relayer.endpoint.as_str());
    let mut runs = Vec::new();
    for scheme in [KeyScheme::Ed25519, KeyScheme::Bip340] {
        let registrations = owners
            .iter()
            .map(|owner| crate::register::register(ledger, owner, programs.clone(), false, scheme));
        let keys = futures::future::try_join_all(registrations)
            .await?
            .into_iter()
            .map(|r| r.verifying_key)
            .collect();
        let target = Target {
            ledger,
            relayer,
            node: &node,
            owners: &owners,
            keys,
        };
        runs.push(target.measure(scheme, requests).await?);
    }
    Ok(runs)
}

/// Where one scheme's requests go.
struct Target<'a> {
    ledger: &'a LedgerClient,
    relayer: &'a ValidatorRecord,
    node: &'a NodeClient,
    owners: &'a [AccountKeypair],
    keys: Vec<VerifyingKey>,
}

impl Target<'_> {
    async fn measure(&self, scheme: KeyScheme, requests: usize) -> anyhow::Result<SchemeRun> {
        let mut step = Step::start(format!("{scheme}: {requests} signatures, one at a time"));
        let (mut samples, mut errors) = (Vec::with_capacity(requests), 0);
        let started = Instant::now();
        for i in 0..requests {
            match self.sign_one(i).await {
                Ok(took) => samples.push(took),
                Err(error) => {
                    errors += 1;
                    tracing::warn!(%scheme, error = format!("{error:#}"), "request failed");
                }
            }
            step.update(&format!("{}/{requests}", i + 1));
        }
        let seconds = started.elapsed().as_secs_f64();
        let latency = Latency::of(&samples);
        step.finish(&latency.as_ref().map_or_else(
            || "no request signed".to_owned(),
            |l| format!("p50 {} ms, p99 {} ms", l.p50_ms, l.p99_ms),
        ));
        Ok(SchemeRun {
            scheme,
            signed: samples.len(),
            errors,
            latency,
            signatures_per_second: round(samples.len() as f64 / seconds.max(1e-9)),
        })
    }

    /// One request, timed from the sealed envelope to a verified answer.
    async fn sign_one(&self, i: usize) -> anyhow::Result<Duration> {
        let (owner, key) = (&self.owners[i % KEYS], self.keys[i % KEYS]);
        let (hashing, message) = match key.scheme() {
            // A Solana-sized message, signed as it is.
            KeyScheme::Ed25519 => (HashingAlgorithm::None, vec![(i % 251) as u8; 200]),
            _ => (HashingAlgorithm::Identity, vec![(i % 251) as u8; 32]),
        };
        let request = SignatureRequest {
            verifying_key: key,
            block: self.ledger.rpc().head().await?.height.0,
            hashing,
            aux_data: vec![Vec::new()],
            message,
        };
        let sealed = seal_request(owner, self.relayer, &request)?;
        let started = Instant::now();
        let response = self.node.relay(&sealed.envelope).await?;
        verify_response(&sealed, &request, &response)?;
        Ok(started.elapsed())
    }
}
