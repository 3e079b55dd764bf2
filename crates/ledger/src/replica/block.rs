//! The block consensus orders: a batch of transactions on a parent, with the proposer's clock
//! and a checkpoint of the proposer's executed state that lets replicas detect divergence.

use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, Read, ReadExt as _, Write, varint::UInt,
};
use commonware_consensus::types::Height;
use commonware_consensus::{Block, Heightable};
use commonware_cryptography::sha256::{Digest, Sha256};
use commonware_cryptography::{Digestible, Hasher as _};

use crate::producer::{MAX_BLOCK_BYTES, MAX_BLOCK_TRANSACTIONS};
use crate::types::SignedTransaction;

/// Most bytes a block's encoded transactions take on the wire, with the per-transaction
/// length prefixes.
pub const MAX_TRANSACTIONS_WIRE: usize = MAX_BLOCK_BYTES + 8 * MAX_BLOCK_TRANSACTIONS;

/// A ledger block's height and the state digest after it, as a replica executed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The ledger height.
    pub height: u64,
    /// The state digest after that height.
    pub state_digest: [u8; 32],
}

/// What consensus agrees on. Height `h` executes into ledger block `h`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusBlock {
    /// The parent's digest.
    pub parent: Digest,
    /// Height; the genesis block is 0.
    pub height: Height,
    /// The proposer's clock, ms since the Unix epoch; later than the parent's.
    pub timestamp_ms: u64,
    /// The last block the proposer had executed when it proposed, with its state digest:
    /// voters check it against their own, and every replica again when it executes this block.
    pub checkpoint: Checkpoint,
    /// Transactions, in order (postcard, as everywhere else in the ledger).
    pub transactions: Vec<SignedTransaction>,
}

impl ConsensusBlock {
    /// The genesis block of a chain: derived from its genesis (chain id, balances, replicas…)
    /// and the genesis state digest, so replicas of different chains never agree on it.
    pub fn genesis(genesis: &crate::types::Genesis, state_digest: [u8; 32]) -> Self {
        Self {
            parent: Sha256::hash(&[b"sigil-genesis/v1", &crate::tx::encode(genesis)]),
            height: Height::zero(),
            timestamp_ms: genesis.timestamp_ms,
            checkpoint: Checkpoint {
                height: 0,
                state_digest,
            },
            transactions: Vec::new(),
        }
    }

    /// The transactions' hashes, in order.
    pub fn transaction_hashes(&self) -> impl Iterator<Item = [u8; 32]> + '_ {
        self.transactions.iter().map(crate::tx::hash)
    }
}

impl Write for ConsensusBlock {
    fn write(&self, w: &mut impl BufMut) {
        self.parent.write(w);
        self.height.write(w);
        self.timestamp_ms.write(w);
        self.checkpoint.height.write(w);
        self.checkpoint.state_digest.write(w);
        UInt(self.transactions.len() as u64).write(w);
        for stx in &self.transactions {
            let bytes = crate::tx::encode(stx);
            UInt(bytes.len() as u64).write(w);
            w.put_slice(&bytes);
        }
    }
}

impl EncodeSize for ConsensusBlock {
    fn encode_size(&self) -> usize {
        let transactions: usize = self
            .transactions
            .iter()
            .map(|stx| {
                let n = crate::tx::encode(stx).len();
                UInt(n as u64).encode_size() + n
            })
            .sum();
        self.parent.encode_size()
            + self.height.encode_size()
            + self.timestamp_ms.encode_size()
            + self.checkpoint.height.encode_size()
            + 32
            + UInt(self.transactions.len() as u64).encode_size()
            + transactions
    }
}

impl Read for ConsensusBlock {
    type Cfg = ();

    fn read_cfg(r: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let parent = Digest::read(r)?;
        let height = Height::read(r)?;
        let timestamp_ms = u64::read(r)?;
        let checkpoint = Checkpoint {
            height: u64::read(r)?,
            state_digest: <[u8; 32]>::read(r)?,
        };
        let count: u64 = UInt::read(r)?.into();
        if count > MAX_BLOCK_TRANSACTIONS as u64 {
            return Err(CodecError::Invalid(
                "ConsensusBlock",
                "too many transactions",
            ));
        }
        let mut transactions = Vec::with_capacity(count as usize);
        let mut total = 0usize;
        for _ in 0..count {
            let len: u64 = UInt::read(r)?.into();
            total = total.saturating_add(len as usize);
            if total > MAX_TRANSACTIONS_WIRE || r.remaining() < len as usize {
                return Err(CodecError::Invalid(
                    "ConsensusBlock",
                    "transactions too large",
                ));
            }
            let mut bytes = vec![0u8; len as usize];
            r.copy_to_slice(&mut bytes);
            let stx = crate::tx::decode(&bytes)
                .map_err(|_| CodecError::Invalid("ConsensusBlock", "transaction"))?;
            transactions.push(stx);
        }
        Ok(Self {
            parent,
            height,
            timestamp_ms,
            checkpoint,
            transactions,
        })
    }
}

impl Digestible for ConsensusBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        use commonware_codec::Encode as _;
        Sha256::hash(&[&self.encode()])
    }
}

impl Heightable for ConsensusBlock {
    fn height(&self) -> Height {
        self.height
    }
}

impl Block for ConsensusBlock {
    fn parent(&self) -> Digest {
        self.parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt as _, Encode as _};

    #[test]
    fn a_block_round_trips_and_its_digest_covers_every_field() {
        let key = sigil_crypto::NodeSeed::dev("alice").account_keypair();
        let call = crate::types::Call::Transfer {
            to: key.account_id(),
            amount: 5,
        };
        let block = ConsensusBlock {
            parent: Sha256::hash(&[b"parent"]),
            height: Height::new(7),
            timestamp_ms: 1_700_000_000_000,
            checkpoint: Checkpoint {
                height: 5,
                state_digest: [9; 32],
            },
            transactions: vec![crate::tx::sign(&key, "c", 0, call)],
        };
        let bytes = block.encode();
        assert_eq!(bytes.len(), block.encode_size());
        assert_eq!(
            ConsensusBlock::decode(bytes.clone()).expect("decodes"),
            block
        );
        let mut other = block.clone();
        other.checkpoint.state_digest[0] ^= 1;
        assert_ne!(other.digest(), block.digest());
        let mut truncated = bytes.to_vec();
        truncated.pop();
        assert!(ConsensusBlock::decode(bytes::Bytes::from(truncated)).is_err());
    }
}
