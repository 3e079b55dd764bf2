//! The replicated [`BlockSource`]: finalized blocks from marshal, checked against this
//! replica's own state, executed by the ledger, then acknowledged.

use commonware_utils::Acknowledgement as _;
use commonware_utils::acknowledgement::Exact;
use tokio::sync::{mpsc, watch};

use super::app::Finalized;
use super::block::ConsensusBlock;
use crate::chain::{ChainError, Proposal};
use crate::producer::{BlockSource, Ledger};
use crate::types::Block;

/// Finalized blocks in height order, for [`Ledger::run`].
pub struct ReplicaSource {
    ledger: Ledger,
    finalized: mpsc::UnboundedReceiver<Finalized>,
    executed: watch::Sender<u64>,
    /// The acknowledgement of the block being executed.
    pending: Option<(u64, Exact)>,
}

impl ReplicaSource {
    pub(super) fn new(
        ledger: Ledger,
        finalized: mpsc::UnboundedReceiver<Finalized>,
        executed: watch::Sender<u64>,
    ) -> Self {
        Self {
            ledger,
            finalized,
            executed,
            pending: None,
        }
    }

    /// Whether `block` continues this replica's chain, and its checkpoint names the state this
    /// replica stored at that height. Voters checked the checkpoint against theirs, so a
    /// difference here means this replica's state is not the network's.
    fn check(&self, block: &ConsensusBlock) -> Result<(), ChainError> {
        let chain = self.ledger.read();
        let head = chain.head().height.0;
        if block.height.get() != head + 1 {
            return Err(ChainError::Corrupted(format!(
                "consensus finalized block {} but the ledger's head is {head}",
                block.height.get()
            )));
        }
        let checkpoint = &block.checkpoint;
        let ours = chain
            .header(checkpoint.height)?
            .ok_or_else(|| {
                ChainError::Corrupted(format!("block {} is missing", checkpoint.height))
            })?
            .state_digest;
        if ours.as_slice() != checkpoint.state_digest {
            return Err(ChainError::Diverged {
                height: checkpoint.height,
                ours: hex::encode(ours),
                network: hex::encode(checkpoint.state_digest),
            });
        }
        Ok(())
    }
}

impl BlockSource for ReplicaSource {
    async fn next_proposal(&mut self) -> Result<Option<Proposal>, ChainError> {
        loop {
            let Some((block, ack)) = self.finalized.recv().await else {
                return Ok(None);
            };
            let head = self.ledger.read().head().height.0;
            // Genesis, or a block stored before a restart that marshal delivers again.
            if block.height.get() <= head {
                ack.acknowledge();
                continue;
            }
            self.check(&block)?;
            self.pending = Some((block.height.get(), ack));
            return Ok(Some(Proposal {
                timestamp_ms: block.timestamp_ms,
                transactions: block.transactions,
            }));
        }
    }

    fn executed(&mut self, block: &Block) {
        if let Some((height, ack)) = self.pending.take() {
            debug_assert_eq!(height, block.header.height.0);
            ack.acknowledge();
        }
        self.executed.send_replace(block.header.height.0);
    }
}
