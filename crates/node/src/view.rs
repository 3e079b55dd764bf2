//! What the node knows of the ledger, refreshed at every new head.

use std::collections::BTreeMap;

use sigil_ledger::types::{Parameters, ServerInfo, SignerSet};
use sigil_primitives::AccountId;

/// How many recent block hashes are kept (requests name a recent block).
const KEPT_HASHES: usize = 512;

/// The ledger state the request paths read: one consistent snapshot per head.
#[derive(Debug, Clone)]
pub struct View {
    /// The latest head seen, 0 before the first.
    pub head: u64,
    /// Whether a head was seen at all.
    pub synced: bool,
    /// The head's timestamp, in ms.
    pub head_timestamp_ms: u64,
    /// Hashes of recent blocks by height.
    pub hashes: BTreeMap<u64, [u8; 32]>,
    /// Every validator by account.
    pub validators: BTreeMap<AccountId, ServerInfo>,
    /// The signer set and jump-start state.
    pub signer_set: SignerSet,
    /// The ledger parameters.
    pub params: Parameters,
}

impl View {
    /// Records a block's hash, forgetting the oldest beyond the kept window.
    pub fn remember_hash(&mut self, height: u64, hash: [u8; 32]) {
        self.hashes.insert(height, hash);
        while self.hashes.len() > KEPT_HASHES {
            self.hashes.pop_first();
        }
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
