//! The ledger as a consensus application: what a replica proposes, what it votes for, and how
//! finalized blocks reach the ledger.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use commonware_actor::Feedback;
use commonware_consensus::marshal::Update;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::types::Context as SimplexContext;
use commonware_consensus::{Application, Heightable as _, Reporter};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible as _, ed25519};
use commonware_runtime::Clock;
use commonware_utils::acknowledgement::Exact;
use futures::StreamExt as _;
use tokio::sync::{mpsc, watch};

use super::Scheme;
use super::block::{Checkpoint, ConsensusBlock};
use crate::producer::{Ledger, MAX_BLOCK_BYTES, MAX_BLOCK_TRANSACTIONS};

/// How far ahead of a voter's clock a block's timestamp may be before the voter waits.
pub const MAX_FUTURE_MS: u64 = 2_000;

/// A replica this many blocks behind the chain it is asked to build on does not propose: it
/// is still catching up, and its pool cannot know what those blocks hold.
const MAX_UNEXECUTED_ANCESTORS: u64 = 64;

/// The ledger side a replica's consensus talks to.
#[derive(Clone)]
pub struct LedgerApp {
    /// The replica's ledger.
    pub ledger: Ledger,
    /// The height of the last block executed and stored.
    pub executed: watch::Receiver<u64>,
    /// The least time between a block and its parent.
    pub block_time: Duration,
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl LedgerApp {
    /// The last executed block's height and state digest.
    fn head(&self) -> Checkpoint {
        let chain = self.ledger.read();
        let head = chain.head();
        Checkpoint {
            height: head.height.0,
            state_digest: head.state_digest.as_slice().try_into().unwrap_or([0; 32]),
        }
    }

    /// The state digest this replica stored at `height`, once it has executed that far.
    async fn digest_at(&self, height: u64) -> Option<[u8; 32]> {
        let mut executed = self.executed.clone();
        executed.wait_for(|h| *h >= height).await.ok()?;
        let chain = self.ledger.read();
        let header = chain.header(height).ok()??;
        header.state_digest.as_slice().try_into().ok()
    }

    /// Whether `checkpoint` in a block on `parent` names this replica's state: it never goes
    /// back, names an ancestor, and (unless it repeats the parent's) matches what this replica
    /// stored at that height. Waits while this replica has not executed that far.
    async fn checkpoint_holds(&self, checkpoint: &Checkpoint, parent: &ConsensusBlock) -> bool {
        if checkpoint.height < parent.checkpoint.height || checkpoint.height > parent.height.get() {
            return false;
        }
        if *checkpoint == parent.checkpoint {
            return true;
        }
        self.digest_at(checkpoint.height).await == Some(checkpoint.state_digest)
    }

    /// Hashes of the transactions in `parent` and its ancestors above this replica's executed
    /// head: proposing them again would only waste space. `None` when too far behind.
    async fn in_flight(
        parent: &Digested<ConsensusBlock>,
        ancestry: &mut impl Ancestry<ConsensusBlock>,
        head: u64,
    ) -> Option<HashSet<[u8; 32]>> {
        if parent.height().get() > head + MAX_UNEXECUTED_ANCESTORS {
            return None;
        }
        let mut hashes: HashSet<[u8; 32]> = parent.inner().transaction_hashes().collect();
        let mut height = parent.height().get();
        while height > head + 1 {
            let block = ancestry.next().await?;
            hashes.extend(block.inner().transaction_hashes());
            height = block.height().get();
        }
        Some(hashes)
    }
}

impl<E: Clock> Application<E> for LedgerApp {
    type SigningScheme = Scheme;
    type Context = SimplexContext<Digest, ed25519::PublicKey>;
    type Block = ConsensusBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, _context): (E, Self::Context),
        mut ancestry: impl Ancestry<ConsensusBlock>,
        _input: (),
    ) -> Option<Digested<ConsensusBlock>> {
        let parent = ancestry.next().await?;
        let parent_block = parent.inner();
        let earliest = parent_block.timestamp_ms + self.block_time.as_millis() as u64;
        let now = unix_ms(runtime.current());
        if now < earliest {
            runtime.sleep(Duration::from_millis(earliest - now)).await;
        }
        let head = self.head();
        let skip = Self::in_flight(&parent, &mut ancestry, head.height).await?;
        let checkpoint = if head.height >= parent_block.checkpoint.height {
            head
        } else {
            parent_block.checkpoint
        };
        let block = ConsensusBlock {
            parent: parent.digest(),
            height: parent.height().next(),
            timestamp_ms: unix_ms(runtime.current()).max(parent_block.timestamp_ms + 1),
            checkpoint,
            transactions: self
                .ledger
                .pool
                .select(MAX_BLOCK_TRANSACTIONS, MAX_BLOCK_BYTES, &skip),
        };
        let digest = block.digest();
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (runtime, _context): (E, Self::Context),
        mut ancestry: impl Ancestry<ConsensusBlock>,
    ) -> bool {
        let (Some(block), Some(parent)) = (ancestry.next().await, ancestry.next().await) else {
            return false;
        };
        let (block, parent) = (block.inner(), parent.inner());
        if block.timestamp_ms <= parent.timestamp_ms {
            return false;
        }
        // A block from a clock ahead of ours waits until ours catches up, without a vote.
        let now = unix_ms(runtime.current());
        if block.timestamp_ms > now + MAX_FUTURE_MS {
            runtime
                .sleep(Duration::from_millis(
                    block.timestamp_ms - now - MAX_FUTURE_MS,
                ))
                .await;
        }
        let chain_id = self.ledger.read().chain_id().to_owned();
        if !block
            .transactions
            .iter()
            .all(|stx| crate::tx::verify(&chain_id, stx))
        {
            return false;
        }
        self.checkpoint_holds(&block.checkpoint, parent).await
    }
}

/// A finalized block on its way to the ledger, with marshal's acknowledgement, which the
/// ledger gives once the block is stored.
pub type Finalized = (ConsensusBlock, Exact);

/// Hands marshal's finalized blocks, in height order, to the replica's block source.
#[derive(Clone)]
pub struct FinalizedReporter {
    /// Where finalized blocks go.
    pub blocks: mpsc::UnboundedSender<Finalized>,
}

impl Reporter for FinalizedReporter {
    type Activity = Update<ConsensusBlock>;

    fn report(&mut self, update: Self::Activity) -> Feedback {
        match update {
            Update::Tip(_, height, _) => {
                metrics::gauge!("ledger_consensus_final_height").set(height.get() as f64);
            }
            Update::Block(block, ack) => {
                // If the ledger has stopped, the dropped acknowledgement stops marshal too.
                let _ = self.blocks.send((block.inner().clone(), ack));
            }
        }
        Feedback::Ok
    }
}
