//! The chain: the state, its redb storage, and deterministic execution of proposals into blocks.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sigil_primitives::{BlockNumber, ProgramId};

use crate::state::{
    ApplyContext, ConsensusFault, ConsensusVerifier, EvidenceVerifier, ProgramValidator, State,
    Tracked, TxError,
};
use crate::tx::{decode, encode, hash as tx_hash};
use crate::types::*;
pub use sigil_ledger_api::header::{body_hash, header_hash};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
const VALIDATORS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("validators");
const PROGRAMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("programs");
const PROGRAM_BODIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("program_bodies");
const REGISTRATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("registrations");
const OFFENCES: TableDefinition<u64, &[u8]> = TableDefinition::new("offences");
const TX_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("tx_index");
const REPLICAS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("replicas");
const EPOCHS: TableDefinition<u64, &[u8]> = TableDefinition::new("epochs");

/// Why the chain could not be opened or extended.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A storage operation failed.
    #[error("ledger storage: {0}")]
    Storage(String),
    /// Stored data does not decode or does not match its digest.
    #[error("ledger data is corrupted: {0}")]
    Corrupted(String),
    /// A new data directory needs a genesis.
    #[error("no ledger in {0} and no genesis given")]
    NoGenesis(String),
    /// The genesis is invalid.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// The data directory was written by a build with another record layout.
    #[error(
        "the ledger in {dir} has storage format {found}, this build reads format {STORAGE_FORMAT}: \
         start from a new data directory or use the build that wrote it"
    )]
    OtherFormat {
        /// The data directory.
        dir: String,
        /// The format found (1: written before formats were recorded).
        found: u32,
    },
    /// Consensus finalized a block whose proposer, and the replicas that voted for it, had
    /// another state at `height` than this replica: this replica stops rather than serve it.
    #[error(
        "this replica's state diverged from the network's at block {height}: ours is {ours}, \
         the network's {network}; stop it, and restore its data directory from a backup or \
         start it from a new one so that it syncs again"
    )]
    Diverged {
        /// The height of the checkpoint.
        height: u64,
        /// This replica's state digest there (hex).
        ours: String,
        /// The finalized block's (hex).
        network: String,
    },
    /// An imported block does not replay to the same result.
    #[error("invalid block {height}: {reason}")]
    InvalidBlock {
        /// Its height.
        height: u64,
        /// What differs.
        reason: String,
    },
}

/// The layout of stored records. Bump it whenever a stored type's encoding changes: postcard
/// does not describe itself, so older records would not decode. 2: disputes and the blame
/// parameters (accusation_window, max_evidence_size). 3: fees and deposits; program contents
/// in their own table. 4: the genesis names its replicas. 5: epochs, and validators'
/// replicas.
pub const STORAGE_FORMAT: u32 = 5;

/// redb's page cache: the state is in memory already, so the cache mostly holds blocks and
/// program contents, which are read rarely; redb's default (1 GiB) would let spam grow RAM.
const CACHE_BYTES: usize = 64 << 20;

fn storage<E: std::fmt::Display>(e: E) -> ChainError {
    ChainError::Storage(e.to_string())
}

/// An ordered batch of transactions to execute into the next block; what consensus agrees on.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// Proposer's clock (the block takes the later of this and its parent's time).
    pub timestamp_ms: u64,
    /// Transactions in order.
    pub transactions: Vec<SignedTransaction>,
}

/// What happened to one proposed transaction.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    /// Its hash.
    pub hash: [u8; 32],
    /// Whether the block holds it (its call may still have failed).
    pub included: bool,
    /// The events it emitted, or why it was rejected or its call failed.
    pub result: Result<Vec<Event>, TxError>,
}

/// The ledger state with its storage.
pub struct Chain {
    db: Database,
    state: State,
    head: BlockHeader,
    checks: Checks,
}

/// The node's checks that applying a transaction runs besides the state machine's own.
#[derive(Clone)]
struct Checks {
    validate_program: Arc<ProgramValidator>,
    verify_evidence: Option<Arc<EvidenceVerifier>>,
    /// From the genesis's consensus set; none for a solo chain.
    verify_consensus: Option<Arc<ConsensusVerifier>>,
}

impl Checks {
    fn context(&self, height: BlockNumber) -> ApplyContext<'_> {
        ApplyContext {
            height,
            validate_program: self.validate_program.as_ref(),
            verify_evidence: self.verify_evidence.as_deref(),
            verify_consensus: self.verify_consensus.as_deref(),
        }
    }
}

/// Program checks remembered, by bytecode hash.
const REMEMBERED_PROGRAMS: usize = 1024;

/// `validate`, remembering (by SHA-256) the bytecode that passed: a program checked when its
/// transaction was admitted, outside the chain's lock, is not compiled again while its block
/// executes under the write lock. The check is a function of the bytes, so this is exact.
fn remembering(validate: Arc<ProgramValidator>) -> Arc<ProgramValidator> {
    type Passed = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);
    let passed: Mutex<Passed> = Mutex::default();
    Arc::new(move |bytecode: &[u8]| {
        let key: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytecode).into();
        let lock = || {
            passed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if lock().0.contains(&key) {
            return Ok(());
        }
        validate(bytecode)?;
        let mut remembered = lock();
        if remembered.0.insert(key) {
            remembered.1.push_back(key);
            if remembered.1.len() > REMEMBERED_PROGRAMS
                && let Some(oldest) = remembered.1.pop_front()
            {
                remembered.0.remove(&oldest);
            }
        }
        Ok(())
    })
}

impl Chain {
    /// The program check this chain applies (remembering what passed): run it on a program
    /// before admitting its transaction, outside the chain's lock.
    pub fn program_check(&self) -> Arc<ProgramValidator> {
        self.checks.validate_program.clone()
    }

    /// Opens the ledger in `dir`, creating it from `genesis` if it is new. On reopen the stored
    /// state must match the head block's digest. Without `verify_evidence` no offence evidence
    /// holds.
    pub fn open(
        dir: &Path,
        genesis: Option<&Genesis>,
        validate_program: Arc<ProgramValidator>,
        verify_evidence: Option<Arc<EvidenceVerifier>>,
    ) -> Result<Self, ChainError> {
        let checks = Checks {
            validate_program: remembering(validate_program),
            verify_evidence,
            verify_consensus: None,
        };
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("ledger.redb");
        let existed = path.exists();
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(storage)?;
        let has_genesis = existed && {
            let read = db.begin_read().map_err(storage)?;
            match read.open_table(META) {
                Ok(t) => t.get("genesis").map_err(storage)?.is_some(),
                Err(redb::TableError::TableDoesNotExist(_)) => false,
                Err(e) => return Err(storage(e)),
            }
        };
        if has_genesis {
            check_format(&db, dir)?;
            let chain = Self::load(db, checks)?;
            if let Some(g) = genesis
                && g.chain_id != chain.state.globals.chain_id
            {
                return Err(ChainError::InvalidGenesis(format!(
                    "data directory holds chain {:?}, not {:?}",
                    chain.state.globals.chain_id, g.chain_id
                )));
            }
            return Ok(chain);
        }
        let genesis = genesis.ok_or_else(|| ChainError::NoGenesis(dir.display().to_string()))?;
        let mut state = State::genesis(genesis).map_err(ChainError::InvalidGenesis)?;
        let checks = Checks {
            verify_consensus: crate::replica::evidence::verifier(genesis),
            ..checks
        };
        let header = BlockHeader {
            height: BlockNumber(0),
            parent_hash: vec![0; 32],
            timestamp_ms: genesis.timestamp_ms,
            body_hash: body_hash(&[], &[]).to_vec(),
            state_digest: state.digest().to_vec(),
        };
        let block = Block {
            header: header.clone(),
            transactions: vec![],
            events: vec![],
        };
        let write = db.begin_write().map_err(storage)?;
        {
            let mut meta = write.open_table(META).map_err(storage)?;
            meta.insert("genesis", encode(genesis).as_slice())
                .map_err(storage)?;
            meta.insert("format", encode(&STORAGE_FORMAT).as_slice())
                .map_err(storage)?;
        }
        persist(&write, &mut state, &block)?;
        write.commit().map_err(storage)?;
        Ok(Self {
            db,
            state,
            head: header,
            checks,
        })
    }

    fn load(db: Database, checks: Checks) -> Result<Self, ChainError> {
        let read = db.begin_read().map_err(storage)?;
        let meta = read.open_table(META).map_err(storage)?;
        let globals: crate::state::Globals = decode_meta(&meta, "globals")?;
        let genesis: Genesis = decode_meta(&meta, "genesis")?;
        let checks = Checks {
            verify_consensus: crate::replica::evidence::verifier(&genesis),
            ..checks
        };
        let mut state = State::genesis(&genesis).map_err(ChainError::InvalidGenesis)?;
        state.globals = globals;
        state.accounts = Tracked::default();
        state.validators = Tracked::default();
        load_map(&read, ACCOUNTS, &mut state.accounts, |k| {
            sigil_primitives::AccountId::from_slice(k).ok()
        })?;
        load_map(&read, VALIDATORS, &mut state.validators, |k| {
            sigil_primitives::AccountId::from_slice(k).ok()
        })?;
        load_map(&read, PROGRAMS, &mut state.programs, |k| {
            sigil_primitives::ProgramId::from_slice(k).ok()
        })?;
        load_map(&read, REGISTRATIONS, &mut state.registrations, |k| {
            sigil_primitives::VerifyingKey::from_slice(k).ok()
        })?;
        load_indexed(&read, OFFENCES, &mut state.offences)?;
        state.replicas = Tracked::default();
        state.epochs = Tracked::default();
        load_map(&read, REPLICAS, &mut state.replicas, |k| {
            sigil_primitives::AccountId::from_slice(k).ok()
        })?;
        load_indexed(&read, EPOCHS, &mut state.epochs)?;
        let blocks = read.open_table(BLOCKS).map_err(storage)?;
        let height = state.globals.height.0;
        let head_bytes = blocks
            .get(height)
            .map_err(storage)?
            .ok_or_else(|| ChainError::Corrupted(format!("head block {height} is missing")))?;
        let head: Block = decode(head_bytes.value())
            .map_err(|e| ChainError::Corrupted(format!("head block: {e}")))?;
        if head.header.state_digest != state.digest() {
            return Err(ChainError::Corrupted(format!(
                "state does not match the digest of block {height}"
            )));
        }
        drop((meta, blocks, read));
        Ok(Self {
            db,
            state,
            head: head.header,
            checks,
        })
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The latest block header.
    pub fn head(&self) -> &BlockHeader {
        &self.head
    }

    /// The genesis this chain started from.
    pub fn genesis(&self) -> Result<Genesis, ChainError> {
        let read = self.db.begin_read().map_err(storage)?;
        let meta = read.open_table(META).map_err(storage)?;
        decode_meta(&meta, "genesis")
    }

    /// What consensus-fault `evidence` proves, checked against this chain's consensus set.
    pub fn consensus_fault(&self, evidence: &[u8]) -> Result<ConsensusFault, String> {
        let verify = self
            .checks
            .verify_consensus
            .as_deref()
            .ok_or("this ledger is solo: it has no consensus to fault")?;
        let set_of = |epoch| self.state.consensus_set(epoch).map(<[_]>::to_vec);
        verify(evidence, &set_of)
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.state.globals.chain_id
    }

    /// A stored block.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        let read = self.db.begin_read().map_err(storage)?;
        let blocks = read.open_table(BLOCKS).map_err(storage)?;
        let Some(bytes) = blocks.get(height).map_err(storage)? else {
            return Ok(None);
        };
        decode(bytes.value())
            .map(Some)
            .map_err(|e| ChainError::Corrupted(format!("block {height}: {e}")))
    }

    /// A stored block's header.
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, ChainError> {
        if height == self.head.height.0 {
            return Ok(Some(self.head.clone()));
        }
        Ok(self.block(height)?.map(|b| b.header))
    }

    /// A stored program with its contents, read from storage.
    pub fn program(&self, id: &ProgramId) -> Result<Option<ProgramRecord>, ChainError> {
        let Some(entry) = self.state.programs.get(id) else {
            return Ok(None);
        };
        let read = self.db.begin_read().map_err(storage)?;
        let bodies = read.open_table(PROGRAM_BODIES).map_err(storage)?;
        let bytes = bodies
            .get(id.as_ref())
            .map_err(storage)?
            .ok_or_else(|| ChainError::Corrupted(format!("program {id} has no contents")))?;
        let body = decode(bytes.value())
            .map_err(|e| ChainError::Corrupted(format!("program {id}: {e}")))?;
        Ok(Some(entry.record(body)))
    }

    /// The block that included a transaction, if any.
    pub fn tx_block(&self, hash: &[u8; 32]) -> Result<Option<u64>, ChainError> {
        let read = self.db.begin_read().map_err(storage)?;
        let index = read.open_table(TX_INDEX).map_err(storage)?;
        Ok(index
            .get(hash.as_slice())
            .map_err(storage)?
            .map(|v| v.value()))
    }

    /// Executes a proposal into the next block and stores it in one write transaction.
    /// Rejected transactions are left out of the block and reported in the outcomes.
    pub fn execute(&mut self, proposal: Proposal) -> Result<(Block, Vec<TxOutcome>), ChainError> {
        let height = BlockNumber(self.head.height.0 + 1);
        let checks = self.checks.clone();
        let ctx = checks.context(height);
        let mut included = Vec::new();
        let mut events = Vec::new();
        let mut outcomes = Vec::new();
        for stx in proposal.transactions {
            let hash = tx_hash(&stx);
            let outcome = match self.state.apply(&stx, &ctx) {
                Ok(applied) => {
                    events.extend(applied.events.iter().cloned());
                    included.push(stx);
                    TxOutcome {
                        hash,
                        included: true,
                        result: applied.failure.map_or(Ok(applied.events), Err),
                    }
                }
                Err(error) => TxOutcome {
                    hash,
                    included: false,
                    result: Err(error),
                },
            };
            outcomes.push(outcome);
        }
        events.extend(self.state.end_block(height));
        let block = self.seal_block(height, proposal.timestamp_ms, included, events);
        self.commit(&block)?;
        Ok((block, outcomes))
    }

    /// Imports a block made elsewhere: every transaction must apply and the result must match.
    pub fn import(&mut self, block: Block) -> Result<(), ChainError> {
        let height = BlockNumber(self.head.height.0 + 1);
        let invalid = |reason: String| ChainError::InvalidBlock {
            height: height.0,
            reason,
        };
        if block.header.height != height || block.header.parent_hash != header_hash(&self.head) {
            return Err(invalid("does not extend the head".into()));
        }
        let bytes: usize = block.transactions.iter().map(|t| encode(t).len()).sum();
        if block.transactions.len() > crate::producer::MAX_BLOCK_TRANSACTIONS
            || bytes > crate::producer::MAX_BLOCK_BYTES
        {
            return Err(invalid(format!(
                "{} transactions of {bytes} bytes exceed a block's limits",
                block.transactions.len()
            )));
        }
        let checks = self.checks.clone();
        let ctx = checks.context(height);
        let mut events = Vec::new();
        for stx in &block.transactions {
            // A failed import leaves memory ahead of disk; the caller must reopen the chain.
            let applied = self
                .state
                .apply(stx, &ctx)
                .map_err(|e| invalid(format!("transaction rejected: {e}")))?;
            events.extend(applied.events);
        }
        events.extend(self.state.end_block(height));
        let rebuilt = self.seal_block(
            height,
            block.header.timestamp_ms,
            block.transactions.clone(),
            events,
        );
        if rebuilt != block {
            return Err(invalid("replay gives a different block".into()));
        }
        self.commit(&block)
    }

    fn seal_block(
        &mut self,
        height: BlockNumber,
        timestamp_ms: u64,
        transactions: Vec<SignedTransaction>,
        events: Vec<Event>,
    ) -> Block {
        self.state.globals.height = height;
        let header = BlockHeader {
            height,
            parent_hash: header_hash(&self.head).to_vec(),
            timestamp_ms: timestamp_ms.max(self.head.timestamp_ms),
            body_hash: body_hash(&transactions, &events).to_vec(),
            state_digest: self.state.digest().to_vec(),
        };
        Block {
            header,
            transactions,
            events,
        }
    }

    fn commit(&mut self, block: &Block) -> Result<(), ChainError> {
        let write = self.db.begin_write().map_err(storage)?;
        persist(&write, &mut self.state, block)?;
        write.commit().map_err(storage)?;
        self.head = block.header.clone();
        Ok(())
    }

    /// Replays every stored block from genesis in memory and returns the final state digest,
    /// with the head block's recorded digest. They are equal when storage is consistent.
    pub fn replay_digest(
        dir: &Path,
        validate_program: Arc<ProgramValidator>,
        verify_evidence: Option<Arc<EvidenceVerifier>>,
    ) -> Result<([u8; 32], Vec<u8>), ChainError> {
        let checks = Checks {
            validate_program,
            verify_evidence,
            verify_consensus: None,
        };
        let db = Database::open(dir.join("ledger.redb")).map_err(storage)?;
        let read = db.begin_read().map_err(storage)?;
        let meta = read.open_table(META).map_err(storage)?;
        let genesis: Genesis = decode_meta(&meta, "genesis")?;
        let checks = Checks {
            verify_consensus: crate::replica::evidence::verifier(&genesis),
            ..checks
        };
        let mut state = State::genesis(&genesis).map_err(ChainError::InvalidGenesis)?;
        let blocks = read.open_table(BLOCKS).map_err(storage)?;
        let mut last = Vec::new();
        for entry in blocks.iter().map_err(storage)? {
            let (height, bytes) = entry.map_err(storage)?;
            let block: Block =
                decode(bytes.value()).map_err(|e| ChainError::Corrupted(e.to_string()))?;
            let ctx = checks.context(BlockNumber(height.value()));
            for stx in &block.transactions {
                state
                    .apply(stx, &ctx)
                    .map_err(|e| ChainError::InvalidBlock {
                        height: height.value(),
                        reason: e.to_string(),
                    })?;
            }
            state.end_block(BlockNumber(height.value()));
            state.globals.height = BlockNumber(height.value());
            state.unwritten_programs.clear();
            last = block.header.state_digest.clone();
        }
        Ok((state.digest(), last))
    }
}

/// Refuses a data directory written with another record layout, before decoding any record.
fn check_format(db: &Database, dir: &Path) -> Result<(), ChainError> {
    let read = db.begin_read().map_err(storage)?;
    let meta = read.open_table(META).map_err(storage)?;
    let found = match meta.get("format").map_err(storage)? {
        Some(bytes) => decode::<u32>(bytes.value())
            .map_err(|e| ChainError::Corrupted(format!("format: {e}")))?,
        None => 1,
    };
    if found == STORAGE_FORMAT {
        Ok(())
    } else {
        Err(ChainError::OtherFormat {
            dir: dir.display().to_string(),
            found,
        })
    }
}

fn decode_meta<T: serde::de::DeserializeOwned>(
    meta: &redb::ReadOnlyTable<&str, &[u8]>,
    key: &str,
) -> Result<T, ChainError> {
    let bytes = meta
        .get(key)
        .map_err(storage)?
        .ok_or_else(|| ChainError::Corrupted(format!("missing {key}")))?;
    decode(bytes.value()).map_err(|e| ChainError::Corrupted(format!("{key}: {e}")))
}

fn load_map<K: Ord + Clone, V: serde::de::DeserializeOwned>(
    read: &redb::ReadTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    into: &mut Tracked<K, V>,
    key: impl Fn(&[u8]) -> Option<K>,
) -> Result<(), ChainError> {
    let table = read.open_table(table).map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        let k = key(k.value()).ok_or_else(|| ChainError::Corrupted("bad key".into()))?;
        let v = decode(v.value()).map_err(|e| ChainError::Corrupted(e.to_string()))?;
        into.load(k, v);
    }
    Ok(())
}

/// Writes a block, the state it changed and the globals, inside `write`.
fn persist(
    write: &redb::WriteTransaction,
    state: &mut State,
    block: &Block,
) -> Result<(), ChainError> {
    write
        .open_table(BLOCKS)
        .map_err(storage)?
        .insert(block.header.height.0, encode(block).as_slice())
        .map_err(storage)?;
    {
        let mut index = write.open_table(TX_INDEX).map_err(storage)?;
        for stx in &block.transactions {
            index
                .insert(tx_hash(stx).as_slice(), block.header.height.0)
                .map_err(storage)?;
        }
    }
    write
        .open_table(META)
        .map_err(storage)?
        .insert("globals", encode(&state.globals).as_slice())
        .map_err(storage)?;
    write_changes(write, ACCOUNTS, &mut state.accounts)?;
    write_changes(write, VALIDATORS, &mut state.validators)?;
    write_changes(write, PROGRAMS, &mut state.programs)?;
    let mut bodies = write.open_table(PROGRAM_BODIES).map_err(storage)?;
    for (id, body) in std::mem::take(&mut state.unwritten_programs) {
        match body {
            Some(body) => bodies.insert(id.as_ref(), encode(&body).as_slice()),
            None => bodies.remove(id.as_ref()),
        }
        .map_err(storage)?;
    }
    write_changes(write, REGISTRATIONS, &mut state.registrations)?;
    write_indexed(write, OFFENCES, &mut state.offences)?;
    write_changes(write, REPLICAS, &mut state.replicas)?;
    write_indexed(write, EPOCHS, &mut state.epochs)
}

fn write_indexed<V: serde::Serialize>(
    write: &redb::WriteTransaction,
    table: TableDefinition<u64, &[u8]>,
    map: &mut Tracked<u64, V>,
) -> Result<(), ChainError> {
    let mut table = write.open_table(table).map_err(storage)?;
    for (k, v) in map.take_changes() {
        match v {
            Some(v) => table.insert(k, encode(v).as_slice()).map_err(storage)?,
            None => table.remove(k).map_err(storage)?,
        };
    }
    Ok(())
}

fn load_indexed<V: serde::de::DeserializeOwned>(
    read: &redb::ReadTransaction,
    table: TableDefinition<u64, &[u8]>,
    into: &mut Tracked<u64, V>,
) -> Result<(), ChainError> {
    let table = read.open_table(table).map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        let v = decode(v.value()).map_err(|e| ChainError::Corrupted(e.to_string()))?;
        into.load(k.value(), v);
    }
    Ok(())
}

fn write_changes<K: Ord + Clone + AsRef<[u8]>, V: serde::Serialize>(
    write: &redb::WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    map: &mut Tracked<K, V>,
) -> Result<(), ChainError> {
    let mut table = write.open_table(table).map_err(storage)?;
    for (k, v) in map.take_changes() {
        match v {
            Some(v) => table
                .insert(k.as_ref(), encode(v).as_slice())
                .map_err(storage)?,
            None => table.remove(k.as_ref()).map_err(storage)?,
        };
    }
    Ok(())
}
