//! What the node knows of the ledger, refreshed at every new head.

use std::collections::BTreeMap;

use sigil_ledger_api::types::{BlockHeader, Parameters, SignerSet, ValidatorRecord};
use sigil_primitives::AccountId;

use crate::checks::BlockFacts;

/// How many recent blocks' hashes and timestamps are kept (requests name a recent block).
const KEPT_BLOCKS: usize = 512;

/// The ledger state the request paths read: one consistent snapshot per head.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The latest head seen, 0 before the first.
    pub head: u64,
    /// Whether a head was seen at all.
    pub synced: bool,
    /// The head's timestamp, in ms.
    pub head_timestamp_ms: u64,
    /// Hashes and timestamps of recent blocks by height.
    pub blocks: BTreeMap<u64, BlockFacts>,
    /// Every validator by account.
    pub validators: BTreeMap<AccountId, ValidatorRecord>,
    /// The signer set and jump-start state.
    pub signer_set: SignerSet,
    /// The ledger parameters.
    pub params: Parameters,
}

impl View {
    /// Records a block's hash and timestamp, forgetting the oldest beyond the kept window.
    pub fn remember_block(&mut self, header: &BlockHeader) {
        self.blocks.insert(header.height.0, BlockFacts::of(header));
        while self.blocks.len() > KEPT_BLOCKS {
            self.blocks.pop_first();
        }
    }

    /// What the view holds of block `height`.
    pub fn block(&self, height: u64) -> Option<BlockFacts> {
        self.blocks.get(&height).copied()
    }

    /// Whether `account` is a validator.
    pub fn is_validator(&self, account: &AccountId) -> bool {
        self.validators.contains_key(account)
    }

    /// Whether `account` is in the signer set.
    pub fn is_signer(&self, account: &AccountId) -> bool {
        self.signer_set.signers.contains(account)
    }
}
