//! The ledger's own figures: how long a transaction takes from submission to a final block,
//! and how many transactions per second the ledger (solo or its replicas) takes in a burst.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use sigil::progress::Step;
use sigil_client::LedgerClient;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::Call;
use sigil_crypto::AccountKeypair;
use sigil_primitives::AccountId;

use super::load::{Latency, round};

/// Transfers each sender of the burst sends (under the pool's limit of 256 per sender).
const PER_SENDER: usize = 250;

/// How much the ledger run does.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Transfers of the submit-to-final run, one after another.
    pub samples: usize,
    /// Transfers of the burst, split among the senders.
    pub burst: usize,
}
/// How long the burst may take to be final.
const BURST_TIMEOUT: Duration = Duration::from_secs(300);

/// The ledger's figures.
#[derive(Debug, Serialize)]
pub struct LedgerRun {
    /// `solo` or `replicated`.
    pub mode: String,
    /// Replicas ordering blocks (0 when solo).
    pub replicas: usize,
    /// From `ledger_submit` with `wait` to its answer: the block holding it is final.
    pub submit_to_final: Option<Latency>,
    /// Transactions in the burst.
    pub burst_transactions: usize,
    /// From the burst's first submission until its last transaction was final, in seconds.
    pub burst_seconds: f64,
    /// Final transactions per second in the burst.
    pub transactions_per_second: f64,
    /// Blocks the burst's transactions were final in.
    pub burst_blocks: u64,
    /// Mean time between blocks during the burst, in ms.
    pub block_interval_ms: f64,
}

/// Measures the ledger at `ledger` with fresh accounts funded from the dev faucet.
pub async fn run(ledger: &LedgerClient, sizes: Sizes) -> anyhow::Result<LedgerRun> {
    let consensus = ledger.rpc().consensus().await?;
    let senders: Vec<AccountKeypair> = (0..sizes.burst.div_ceil(PER_SENDER).max(1))
        .map(|_| AccountKeypair::generate())
        .collect();
    let accounts: Vec<AccountId> = senders.iter().map(AccountKeypair::account_id).collect();
    sigil::devnet::fund(ledger, &accounts, sigil::devnet::USER_FUNDING).await?;
    let to = AccountKeypair::generate().account_id();

    let step = Step::start(format!(
        "ledger: {} transfers, each waited for until final",
        sizes.samples
    ));
    let mut times = Vec::with_capacity(sizes.samples);
    for _ in 0..sizes.samples {
        let started = Instant::now();
        let result = ledger
            .submit(&senders[0], Call::Transfer { to, amount: 1 }, true)
            .await?;
        result.included.context("a transfer was not included")?;
        times.push(started.elapsed());
    }
    let submit_to_final = Latency::of(&times);
    step.finish("");

    let per_sender = sizes.burst.div_ceil(senders.len());
    let (seconds, blocks) = burst(ledger, &senders, to, per_sender).await?;
    let total = senders.len() * per_sender;
    Ok(LedgerRun {
        mode: consensus.mode,
        replicas: consensus.replicas.len(),
        submit_to_final,
        burst_transactions: total,
        burst_seconds: round(seconds),
        transactions_per_second: round(total as f64 / seconds),
        burst_blocks: blocks,
        block_interval_ms: round(seconds * 1e3 / blocks.max(1) as f64),
    })
}

/// Submits every sender's transfers without waiting, then waits until the last of each is
/// final; returns the seconds that took and the blocks it spanned.
async fn burst(
    ledger: &LedgerClient,
    senders: &[AccountKeypair],
    to: AccountId,
    per_sender: usize,
) -> anyhow::Result<(f64, u64)> {
    let total = senders.len() * per_sender;
    let step = Step::start(format!("ledger: a burst of {total} transfers"));
    let chain_id = ledger.chain_id().to_owned();
    let first_block = ledger.rpc().head().await?.height.0;
    let started = Instant::now();
    let mut last = Vec::with_capacity(senders.len());
    for sender in senders {
        let nonce = ledger.rpc().next_nonce(sender.account_id()).await?;
        let mut hash = String::new();
        for i in 0..per_sender as u64 {
            let call = Call::Transfer { to, amount: 1 };
            let tx = sigil_ledger::tx::sign(sender, &chain_id, nonce + i, call);
            hash = ledger.rpc().submit(tx, false).await?.hash;
        }
        last.push(hash);
    }
    let deadline = started + BURST_TIMEOUT;
    let mut last_block = first_block;
    for hash in last {
        loop {
            if let Some(block) = ledger.rpc().tx_block(hash.clone()).await? {
                last_block = last_block.max(block);
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the burst was not final within {BURST_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    step.finish(&format!("{:.0} transactions/s", total as f64 / seconds));
    Ok((seconds, last_block.saturating_sub(first_block)))
}
