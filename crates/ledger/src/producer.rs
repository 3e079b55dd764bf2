//! Ordering transactions into blocks: the [`BlockSource`] trait, the solo producer, and the
//! service loop that executes proposals and tells waiters and subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sigil_primitives::AccountId;
use tokio::sync::{broadcast, oneshot};

use crate::chain::{Chain, ChainError, Proposal, TxOutcome};
use crate::state::TxError;
use crate::types::{Block, BlockHeader, Event, SignedTransaction};

/// Where the next batch of transactions comes from. The solo producer is one implementation; a
/// replicated ledger plugs in a BFT engine's ordered output as another.
pub trait BlockSource: Send + 'static {
    /// Waits for the next proposal to execute; `Ok(None)` stops the ledger, an error stops it
    /// with that error (a replica that finds its state diverged, say).
    fn next_proposal(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Proposal>, ChainError>> + Send;

    /// Told once the last proposal is executed and stored, with the block it made.
    fn executed(&mut self, _block: &Block) {}
}

/// Most transactions one block takes.
pub const MAX_BLOCK_TRANSACTIONS: usize = 1_000;
/// Most bytes of transactions (postcard-encoded) one block takes: a few programs at the
/// 1,000,000-byte limit, so one block stays quick to execute and to send.
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Most transactions waiting in the pool.
pub const MAX_POOL: usize = 10_000;
/// Most transactions one sender may have waiting, so that one account cannot fill the pool.
pub const MAX_PENDING_PER_SENDER: usize = 256;

/// Why a submission was refused before inclusion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is invalid now.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The pool is full, or holds as many of the sender's transactions as it takes.
    #[error("transaction pool is full; retry later")]
    PoolFull,
    /// Already in the pool.
    #[error("transaction is already pending")]
    Duplicate,
    /// The ledger stopped before including it.
    #[error("ledger is shutting down")]
    ShuttingDown,
}

#[derive(Default)]
struct PoolInner {
    /// Where admitted transactions go to reach the other replicas, if any.
    gossip: Option<tokio::sync::mpsc::UnboundedSender<SignedTransaction>>,
    /// Pending transactions with their hashes, in arrival order.
    queue: Vec<([u8; 32], SignedTransaction)>,
    /// Transactions taken into the block being executed: still counted for their senders'
    /// nonces and costs until the block is stored, so no submission sees a gap.
    executing: Vec<([u8; 32], SignedTransaction)>,
    waiters: HashMap<[u8; 32], Vec<oneshot::Sender<TxOutcome>>>,
}

impl PoolInner {
    /// Whether the pool takes `stx` (signature already checked): room, no duplicate, the
    /// sender's next nonce, and a balance that covers it and the sender's waiting ones.
    fn admits(
        &self,
        chain: &Chain,
        stx: &SignedTransaction,
        hash: &[u8; 32],
    ) -> Result<(), SubmitError> {
        if self.queue.len() >= MAX_POOL {
            return Err(SubmitError::PoolFull);
        }
        if self.queue.iter().any(|(h, _)| h == hash) {
            return Err(SubmitError::Duplicate);
        }
        if let crate::types::Call::ReportConsensusFault { evidence } = &stx.tx.call {
            // Free, so only evidence that holds gets in.
            chain
                .consensus_fault(evidence)
                .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))?;
        }
        let sender = &stx.tx.sender;
        let state = chain.state();
        let (pending, committed) = self
            .pending_of(sender)
            .fold((0usize, 0u64), |(n, cost), t| {
                (n + 1, cost.saturating_add(state.cost(sender, &t.tx.call)))
            });
        if pending >= MAX_PENDING_PER_SENDER {
            return Err(SubmitError::PoolFull);
        }
        let expected = state.nonce(sender) + pending as u64;
        if stx.tx.nonce != expected {
            return Err(TxError::BadNonce {
                expected,
                got: stx.tx.nonce,
            }
            .into());
        }
        let need = committed.saturating_add(state.cost(sender, &stx.tx.call));
        let have = state.balance(sender);
        if need > have {
            return Err(TxError::InsufficientBalance { need, have }.into());
        }
        Ok(())
    }

    /// `account`'s transactions not yet in a stored block, in order.
    fn pending_of<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> impl Iterator<Item = &'a SignedTransaction> + 'a {
        self.executing
            .iter()
            .chain(&self.queue)
            .map(|(_, t)| t)
            .filter(move |t| t.tx.sender == *account)
    }
}

/// Pending transactions, shared by the RPC server and the producer.
#[derive(Clone, Default)]
pub struct Mempool {
    inner: Arc<Mutex<PoolInner>>,
}

impl Mempool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The nonce `account`'s next transaction needs, counting pending ones.
    pub fn next_nonce(&self, chain: &Chain, account: &AccountId) -> u64 {
        let pending = self.lock().pending_of(account).count() as u64;
        chain.state().nonce(account) + pending
    }

    /// Forgets the transactions of the block just stored (`executed`: the hashes of every
    /// transaction it was proposed with, included or not) and any that the chain's nonces
    /// have made stale; call it before the chain's write lock is released, so that readers
    /// never count them twice.
    pub fn settle(&self, chain: &Chain, executed: &[[u8; 32]]) {
        let mut pool = self.lock();
        pool.executing.clear();
        if pool.queue.is_empty() {
            return;
        }
        let executed: std::collections::HashSet<&[u8; 32]> = executed.iter().collect();
        let state = chain.state();
        pool.queue.retain(|(hash, stx)| {
            !executed.contains(hash) && stx.tx.nonce >= state.nonce(&stx.tx.sender)
        });
    }

    /// Sends every transaction this pool admits from now on (not those it takes from
    /// `admit_gossiped`) to `gossip`, for the other replicas.
    pub fn set_gossip(&self, gossip: tokio::sync::mpsc::UnboundedSender<SignedTransaction>) {
        self.lock().gossip = Some(gossip);
    }

    /// Admits a transaction another replica gossiped, with the checks of
    /// [`Mempool::submit`]; nobody waits for it here, and it is not gossiped again.
    pub fn admit_gossiped(&self, chain: &Chain, stx: SignedTransaction) -> Result<(), SubmitError> {
        if !crate::tx::verify(chain.chain_id(), &stx) {
            return Err(TxError::BadSignature.into());
        }
        let hash = crate::tx::hash(&stx);
        let mut pool = self.lock();
        pool.admits(chain, &stx, &hash)?;
        pool.queue.push((hash, stx));
        Ok(())
    }

    /// Transactions in arrival order, leaving them in the pool, up to `max` of them and
    /// `max_bytes` encoded (at least one, whatever its size), skipping those in `skip` (already
    /// in blocks on the way to finality): what a replica proposes.
    pub fn select(
        &self,
        max: usize,
        max_bytes: usize,
        skip: &std::collections::HashSet<[u8; 32]>,
    ) -> Vec<SignedTransaction> {
        let pool = self.lock();
        let mut bytes = 0;
        let mut chosen = Vec::new();
        for (_, stx) in pool.queue.iter().filter(|(h, _)| !skip.contains(h)) {
            bytes += crate::tx::encode(stx).len();
            if chosen.len() == max || (bytes > max_bytes && !chosen.is_empty()) {
                break;
            }
            chosen.push(stx.clone());
        }
        chosen
    }

    /// Checks signature, nonce and that the sender can pay for this transaction with those it
    /// has waiting, and queues it. The receiver yields its outcome once a block has been
    /// executed with it.
    pub fn submit(
        &self,
        chain: &Chain,
        stx: SignedTransaction,
    ) -> Result<oneshot::Receiver<TxOutcome>, SubmitError> {
        if !crate::tx::verify(chain.chain_id(), &stx) {
            return Err(TxError::BadSignature.into());
        }
        let hash = crate::tx::hash(&stx);
        let mut pool = self.lock();
        pool.admits(chain, &stx, &hash)?;
        let (tx, rx) = oneshot::channel();
        pool.waiters.entry(hash).or_default().push(tx);
        if let Some(gossip) = &pool.gossip {
            let _ = gossip.send(stx.clone());
        }
        pool.queue.push((hash, stx));
        Ok(rx)
    }

    /// The checks of [`Mempool::submit`] without queuing: run them before costly work on a
    /// transaction (compiling its program), so that one the pool would refuse costs nothing.
    pub fn precheck(&self, chain: &Chain, stx: &SignedTransaction) -> Result<(), SubmitError> {
        if !crate::tx::verify(chain.chain_id(), stx) {
            return Err(TxError::BadSignature.into());
        }
        self.lock().admits(chain, stx, &crate::tx::hash(stx))
    }

    /// Takes transactions in arrival order, up to `max` of them and `max_bytes` encoded (at
    /// least one, whatever its size, so none is stuck).
    pub fn take(&self, max: usize, max_bytes: usize) -> Vec<SignedTransaction> {
        let mut pool = self.lock();
        let mut bytes = 0;
        let n = pool
            .queue
            .iter()
            .take(max)
            .take_while(|(_, stx)| {
                bytes += crate::tx::encode(stx).len();
                bytes <= max_bytes
            })
            .count()
            .max(usize::from(!pool.queue.is_empty() && max > 0));
        let taken: Vec<_> = pool.queue.drain(..n).collect();
        pool.executing.extend(taken.iter().cloned());
        taken.into_iter().map(|(_, stx)| stx).collect()
    }

    fn resolve(&self, outcomes: Vec<TxOutcome>) {
        let mut pool = self.lock();
        for outcome in outcomes {
            for waiter in pool.waiters.remove(&outcome.hash).unwrap_or_default() {
                let _ = waiter.send(outcome.clone());
            }
        }
    }
}

/// The solo block producer: one block per `block_time` from the local pool.
pub struct SoloProducer {
    pool: Mempool,
    interval: tokio::time::Interval,
}

impl SoloProducer {
    /// Produces a block every `block_time` from `pool`.
    pub fn new(pool: Mempool, block_time: Duration) -> Self {
        let mut interval = tokio::time::interval(block_time);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { pool, interval }
    }
}

impl BlockSource for SoloProducer {
    async fn next_proposal(&mut self) -> Result<Option<Proposal>, ChainError> {
        self.interval.tick().await;
        Ok(Some(Proposal {
            timestamp_ms: sigil_crypto::envelope::now_ms(),
            transactions: self.pool.take(MAX_BLOCK_TRANSACTIONS, MAX_BLOCK_BYTES),
        }))
    }
}

/// What subscribers learn of a new block: its header and events. The broadcast keeps its last
/// messages, so it carries no transactions, which can be megabytes of programs.
#[derive(Debug)]
pub struct NewBlock {
    /// The header.
    pub header: BlockHeader,
    /// The events.
    pub events: Vec<Event>,
}

/// The running ledger: the chain behind a lock, its pool and the block broadcast.
#[derive(Clone)]
pub struct Ledger {
    /// The chain.
    pub chain: Arc<RwLock<Chain>>,
    /// Pending transactions.
    pub pool: Mempool,
    /// New blocks, for subscribers.
    pub blocks: broadcast::Sender<Arc<NewBlock>>,
    /// The chain's program check, usable without its lock (see [`Chain::program_check`]).
    pub program_check: Arc<crate::state::ProgramValidator>,
    /// This process's replica, when it is one.
    pub local_replica: Arc<std::sync::OnceLock<sigil_ledger_api::rpc::LocalReplica>>,
}

impl Ledger {
    /// Wraps an opened chain.
    pub fn new(chain: Chain) -> Self {
        let (blocks, _) = broadcast::channel(256);
        Self {
            program_check: chain.program_check(),
            chain: Arc::new(RwLock::new(chain)),
            pool: Mempool::default(),
            blocks,
            local_replica: Arc::default(),
        }
    }

    /// Reads the chain.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Chain> {
        self.chain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Executes proposals from `source` until it ends, storage fails or the source stops
    /// with an error. Inside a tokio runtime blocks execute on its blocking pool; elsewhere
    /// (a deterministic test runtime) in place.
    pub async fn run(self, mut source: impl BlockSource) -> Result<(), ChainError> {
        while let Some(proposal) = source.next_proposal().await? {
            let this = self.clone();
            let block = match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::task::spawn_blocking(move || this.execute(proposal))
                    .await
                    .map_err(|e| ChainError::Storage(format!("block task failed: {e}")))??,
                Err(_) => this.execute(proposal)?,
            };
            source.executed(&block);
        }
        Ok(())
    }

    /// Executes and stores one proposal, settles the pool, tells waiters and subscribers.
    pub fn execute(&self, proposal: Proposal) -> Result<Block, ChainError> {
        metrics::gauge!("ledger_pool_transactions").set(proposal.transactions.len() as f64);
        let started = std::time::Instant::now();
        let (block, outcomes) = {
            let mut chain = self
                .chain
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let executed = chain.execute(proposal)?;
            let hashes: Vec<[u8; 32]> = executed.1.iter().map(|o| o.hash).collect();
            self.pool.settle(&chain, &hashes);
            executed
        };
        let rejected = outcomes.iter().filter(|o| !o.included).count();
        let failed = outcomes
            .iter()
            .filter(|o| o.included && o.result.is_err())
            .count();
        metrics::counter!("ledger_calls_failed_total").increment(failed as u64);
        metrics::counter!("ledger_blocks_total").increment(1);
        metrics::counter!("ledger_transactions_included_total")
            .increment(block.transactions.len() as u64);
        metrics::counter!("ledger_transactions_rejected_total").increment(rejected as u64);
        metrics::gauge!("ledger_head_height").set(block.header.height.0 as f64);
        tracing::debug!(
            height = block.header.height.0,
            txs = block.transactions.len(),
            rejected,
            failed,
            events = block.events.len(),
            "block"
        );
        metrics::histogram!("ledger_block_execute_seconds").record(started.elapsed().as_secs_f64());
        self.pool.resolve(outcomes);
        let _ = self.blocks.send(Arc::new(NewBlock {
            header: block.header.clone(),
            events: block.events.clone(),
        }));
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Call;

    #[test]
    fn a_block_takes_transactions_up_to_its_count_and_byte_limits_and_at_least_one() {
        let pool = Mempool::default();
        let key = sigil_crypto::NodeSeed::dev("alice").account_keypair();
        let to = sigil_crypto::NodeSeed::dev("bob")
            .account_keypair()
            .account_id();
        let txs: Vec<SignedTransaction> = (0..5)
            .map(|nonce| crate::tx::sign(&key, "test", nonce, Call::Transfer { to, amount: 1 }))
            .collect();
        let size = crate::tx::encode(&txs[0]).len();
        for stx in &txs {
            pool.lock().queue.push((crate::tx::hash(stx), stx.clone()));
        }
        assert_eq!(pool.take(2, usize::MAX).len(), 2, "the count limit");
        assert_eq!(pool.take(10, 2 * size).len(), 2, "the byte limit");
        assert_eq!(pool.take(10, 1).len(), 1, "at least one, whatever its size");
        assert!(pool.take(10, usize::MAX).is_empty(), "all five taken");
    }

    #[test]
    fn the_pool_admits_only_what_the_sender_can_pay_for_with_what_it_has_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let check = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
        let mut genesis = crate::node::dev_genesis();
        let poor = sigil_crypto::NodeSeed::dev("ferdie").account_keypair();
        genesis.balances.push((poor.account_id(), 2_500));
        let chain = Chain::open(dir.path(), Some(&genesis), check, None).expect("chain");
        let pool = Mempool::default();
        let to = sigil_crypto::NodeSeed::dev("bob")
            .account_keypair()
            .account_id();
        let send = |nonce, amount| {
            let call = Call::Transfer { to, amount };
            pool.submit(
                &chain,
                crate::tx::sign(&poor, chain.chain_id(), nonce, call),
            )
        };
        // 2,500: two fees of 1,000 and a transfer of 400 fit; 501 more do not.
        assert!(send(0, 100).is_ok());
        assert_eq!(
            send(1, 501).err(),
            Some(SubmitError::Rejected(TxError::InsufficientBalance {
                need: 2_601,
                have: 2_500
            }))
        );
        assert!(send(1, 400).is_ok());
        assert!(matches!(
            send(2, 0),
            Err(SubmitError::Rejected(TxError::InsufficientBalance { .. }))
        ));
        let unfunded = sigil_crypto::NodeSeed::dev("nobody").account_keypair();
        let call = Call::Transfer { to, amount: 0 };
        assert!(matches!(
            pool.submit(
                &chain,
                crate::tx::sign(&unfunded, chain.chain_id(), 0, call)
            ),
            Err(SubmitError::Rejected(TxError::InsufficientBalance {
                need: 1_000,
                have: 0
            }))
        ));
    }

    #[test]
    fn transactions_taken_into_a_block_count_for_nonces_until_it_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let check = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
        let genesis = crate::node::dev_genesis();
        let mut chain = Chain::open(dir.path(), Some(&genesis), check, None).expect("chain");
        let pool = Mempool::default();
        let alice = sigil_crypto::NodeSeed::dev("alice").account_keypair();
        let id = alice.account_id();
        for nonce in 0..2 {
            let call = Call::Transfer { to: id, amount: 1 };
            pool.submit(
                &chain,
                crate::tx::sign(&alice, chain.chain_id(), nonce, call),
            )
            .expect("admitted");
        }
        let transactions = pool.take(1, usize::MAX);
        assert_eq!(
            pool.next_nonce(&chain, &id),
            2,
            "the one taken still counts"
        );
        let proposal = Proposal {
            timestamp_ms: 1,
            transactions,
        };
        let (_, outcomes) = chain.execute(proposal).expect("executes");
        let hashes: Vec<[u8; 32]> = outcomes.iter().map(|o| o.hash).collect();
        pool.settle(&chain, &hashes);
        assert_eq!(pool.next_nonce(&chain, &id), 2, "now the chain counts it");
    }

    #[test]
    fn one_sender_cannot_fill_the_pool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let check = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
        let genesis = crate::node::dev_genesis();
        let chain = Chain::open(dir.path(), Some(&genesis), check, None).expect("chain");
        let pool = Mempool::default();
        let alice = sigil_crypto::NodeSeed::dev("alice").account_keypair();
        let to = alice.account_id();
        for nonce in 0..MAX_PENDING_PER_SENDER as u64 {
            let call = Call::Transfer { to, amount: 1 };
            pool.submit(
                &chain,
                crate::tx::sign(&alice, chain.chain_id(), nonce, call),
            )
            .expect("admitted");
        }
        let call = Call::Transfer { to, amount: 1 };
        let nonce = MAX_PENDING_PER_SENDER as u64;
        let refused = pool.submit(
            &chain,
            crate::tx::sign(&alice, chain.chain_id(), nonce, call),
        );
        assert_eq!(refused.err(), Some(SubmitError::PoolFull));
    }
}
