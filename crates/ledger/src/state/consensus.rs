//! The consensus set: each validator's replica (`change_replica`), and the set of each epoch,
//! fixed by the last block of the epoch before it so that every replica computes it from the
//! same state.

use sigil_primitives::{AccountId, BlockNumber, Ed25519Signature, Endpoint};

use super::{State, TxError};
use crate::types::{Event, Replica, ValidatorStatus, replica_proof_message};

/// A genesis replica's or a validator's replica: keys and accounts unique, addresses valid.
pub(super) fn check_replicas(replicas: &[Replica]) -> Result<(), String> {
    let mut keys = std::collections::HashSet::new();
    let mut accounts = std::collections::HashSet::new();
    for replica in replicas {
        if !keys.insert(replica.consensus_key) || !accounts.insert(replica.account) {
            return Err(format!(
                "replica {} is named twice (account or consensus key)",
                replica.account
            ));
        }
        Endpoint::new(replica.address.clone()).map_err(|_| {
            format!(
                "replica {} has an invalid address {:?} (want host:port)",
                replica.account, replica.address
            )
        })?;
    }
    Ok(())
}

/// `replicas` by consensus key ascending: the order of the set's members in consensus.
pub(super) fn by_key(mut replicas: Vec<Replica>) -> Vec<Replica> {
    replicas.sort_by_key(|r| r.consensus_key);
    replicas
}

impl State {
    /// The epoch `height` belongs to.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.globals.epoch_length
    }

    /// The consensus set of `epoch`, by consensus key ascending, once the last block of the
    /// epoch before it has fixed it.
    pub fn consensus_set(&self, epoch: u64) -> Option<&[Replica]> {
        self.epochs.get(&epoch).map(Vec::as_slice)
    }

    /// The replicas that will make the next epoch's set if nothing changes before its start.
    pub fn next_consensus_set(&self) -> Vec<Replica> {
        by_key(self.replicas.iter().map(|(_, r)| r.clone()).collect())
    }

    /// `change_replica`: an active validator names its replica, proving it holds the key.
    pub(super) fn change_replica(
        &mut self,
        sender: AccountId,
        consensus_key: [u8; 32],
        address: &str,
        proof: &Ed25519Signature,
    ) -> Result<Vec<Event>, TxError> {
        let active = self
            .validators
            .get(&sender)
            .is_some_and(|v| v.status == ValidatorStatus::Active);
        if !active {
            return Err(TxError::Unauthorised(
                "only an active validator may run a replica".into(),
            ));
        }
        Endpoint::new(address).map_err(|_| {
            TxError::Invalid(format!("replica address {address:?} is not host:port"))
        })?;
        let key = AccountId::from_bytes(consensus_key)
            .map_err(|_| TxError::Invalid("the consensus key is not an ed25519 key".into()))?;
        let message = replica_proof_message(&self.globals.chain_id, &sender);
        sigil_crypto::verify_signature(&key, &message, proof).map_err(|_| {
            TxError::Invalid("the proof is not the consensus key's signature".into())
        })?;
        let taken = self
            .replicas
            .iter()
            .any(|(account, r)| *account != sender && r.consensus_key == consensus_key);
        if taken {
            return Err(TxError::AlreadyExists(
                "another validator's replica uses this consensus key".into(),
            ));
        }
        let replica = Replica {
            account: sender,
            consensus_key,
            address: address.to_owned(),
        };
        self.replicas.insert(sender, replica.clone());
        Ok(vec![Event::ReplicaChanged {
            account: sender,
            replica: Some(replica),
        }])
    }

    /// Takes `account`'s replica out of the next epoch's set (it left, or was proven to have
    /// signed conflicting votes).
    pub(super) fn drop_replica(&mut self, account: AccountId) -> Vec<Event> {
        match self.replicas.remove(&account) {
            Some(_) => vec![Event::ReplicaChanged {
                account,
                replica: None,
            }],
            None => vec![],
        }
    }

    /// After the last block of an epoch: fixes the next epoch's set from the replicas named
    /// now (the current set again if none are, so consensus never loses every member).
    pub fn end_block(&mut self, height: BlockNumber) -> Vec<Event> {
        let length = self.globals.epoch_length;
        if !(height.0 + 1).is_multiple_of(length) {
            return vec![];
        }
        let epoch = self.epoch_of(height.0);
        let current = self.epochs.get(&epoch).cloned().unwrap_or_default();
        let mut next = self.next_consensus_set();
        if next.is_empty() {
            next = current.clone();
        }
        let changed = next != current;
        self.epochs.insert(epoch + 1, next.clone());
        if changed {
            vec![Event::ConsensusSetChanged {
                epoch: epoch + 1,
                replicas: next,
            }]
        } else {
            vec![]
        }
    }
}
