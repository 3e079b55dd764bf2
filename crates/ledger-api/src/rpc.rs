//! The ledger's JSON-RPC 2.0 API (namespace `ledger`, `docs/PROTOCOL.md` §4.3): the method
//! trait, its answers and error codes. Feature `client` generates `LedgerApiClient`, feature
//! `server` generates `LedgerApiServer`; the shared types need neither.

use serde::{Deserialize, Serialize};
use sigil_primitives::{AccountId, ProgramId, SessionId, VerifyingKey};

use crate::types::*;

// Without `server`, the client's expansion rewrites the return types and leaves these unused.
#[cfg(any(feature = "client", feature = "server"))]
#[allow(unused_imports)]
use jsonrpsee::{
    core::{RpcResult, SubscriptionResult},
    proc_macros::rpc,
};

/// Largest JSON-RPC request: a 1 MB program, hex-encoded, plus room.
pub const MAX_REQUEST_BYTES: u32 = 3 * 1024 * 1024;

/// JSON-RPC error code: the transaction was rejected (data: the reason).
pub const CODE_REJECTED: i32 = 1000;
/// JSON-RPC error code: the pool is full.
pub const CODE_POOL_FULL: i32 = 1001;
/// JSON-RPC error code: the transaction is already pending.
pub const CODE_DUPLICATE: i32 = 1002;
/// JSON-RPC error code: storage failed.
pub const CODE_STORAGE: i32 = 1003;
/// JSON-RPC error code: the ledger is stopping.
pub const CODE_SHUTTING_DOWN: i32 = 1004;
/// A subscription was asked for over HTTP; subscriptions need a websocket.
pub const CODE_NEEDS_WEBSOCKET: i32 = 1005;

/// Every method with the most positional parameters it takes (the trait below, in order);
/// the server refuses more with -32602 instead of ignoring them.
pub const METHOD_PARAMS: &[(&str, usize)] = &[
    ("ledger_chainId", 0),
    ("ledger_submit", 2),
    ("ledger_head", 0),
    ("ledger_block", 1),
    ("ledger_txBlock", 1),
    ("ledger_account", 1),
    ("ledger_nextNonce", 1),
    ("ledger_validator", 1),
    ("ledger_validators", 0),
    ("ledger_signerSet", 0),
    ("ledger_program", 1),
    ("ledger_programs", 0),
    ("ledger_registration", 1),
    ("ledger_registrations", 1),
    ("ledger_parameters", 0),
    ("ledger_governance", 0),
    ("ledger_offences", 0),
    ("ledger_sessionOffences", 1),
    ("ledger_oracle", 1),
    ("ledger_stateDigest", 0),
    ("ledger_consensus", 0),
    ("ledger_subscribeHeads", 0),
    ("ledger_unsubscribeHeads", 1),
    ("ledger_subscribeEvents", 1),
    ("ledger_unsubscribeEvents", 1),
];

/// The methods that need a websocket.
pub const SUBSCRIPTION_METHODS: &[&str] = &[
    "ledger_subscribeHeads",
    "ledger_unsubscribeHeads",
    "ledger_subscribeEvents",
    "ledger_unsubscribeEvents",
];

/// Most sessions one `ledger_sessionOffences` call may ask about.
pub const MAX_SESSIONS_PER_QUERY: usize = 16;

/// The answer to `ledger_submit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// Transaction hash, 0x-hex.
    pub hash: String,
    /// The block that included it, when `wait` was set.
    pub included: Option<u64>,
    /// The events it emitted, when `wait` was set.
    pub events: Vec<Event>,
}

/// How a ledger is ordered (`ledger_consensus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusInfo {
    /// `solo` (one process orders blocks) or `replicated` (BFT consensus among replicas).
    pub mode: String,
    /// The consensus epoch of the next block: the set below orders blocks for all of it.
    pub epoch: u64,
    /// The consensus set of that epoch, by consensus key ascending (empty when solo).
    pub replicas: Vec<crate::types::Replica>,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The first block of the next epoch.
    pub next_epoch_at: u64,
    /// The replicas named now: the next epoch's set unless it changes before then.
    pub next_replicas: Vec<crate::types::Replica>,
    /// The replica that answers: its consensus key and p2p address (none when solo).
    pub local: Option<LocalReplica>,
    /// The last final block this replica executed: every block it serves is final.
    pub final_height: u64,
    /// Its header hash, 0x-hex: equal on replicas that agree.
    pub final_hash: String,
}

/// The replica that answers `ledger_consensus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalReplica {
    /// Its ed25519 consensus key (hex).
    #[serde(with = "sigil_primitives::bytes::hex_array")]
    pub consensus_key: [u8; 32],
    /// Where its consensus p2p listens, `host:port`.
    pub address: String,
}

/// A program without its bytecode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSummary {
    /// Its id.
    pub id: ProgramId,
    /// Deployer.
    pub deployer: AccountId,
    /// Registrations using it.
    pub ref_count: u64,
    /// Bytecode size.
    pub size: usize,
}

/// Per-block data programs may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleData {
    /// The block number.
    pub block_number: u64,
    /// The block's timestamp, ms.
    pub timestamp_ms: u64,
}

/// Which events a subscriber wants; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only events concerning these accounts.
    #[serde(default)]
    pub accounts: Vec<AccountId>,
    /// Only events with these names (the key of the event's JSON object, e.g. `registered`).
    #[serde(default)]
    pub names: Vec<String>,
}

impl EventFilter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        (self.names.is_empty() || self.names.contains(&event.name()))
            && (self.accounts.is_empty()
                || event.accounts().iter().any(|a| self.accounts.contains(a)))
    }
}

/// An event with the block that emitted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventNotification {
    /// Block height.
    pub block: u64,
    /// The event.
    pub event: Event,
}

/// The ledger API (with feature `client` or `server`: the trait exists only as jsonrpsee's
/// expansion).
#[cfg(any(feature = "client", feature = "server"))]
#[cfg_attr(
    all(feature = "client", feature = "server"),
    rpc(server, client, namespace = "ledger")
)]
#[cfg_attr(
    all(feature = "client", not(feature = "server")),
    rpc(client, namespace = "ledger")
)]
#[cfg_attr(
    all(feature = "server", not(feature = "client")),
    rpc(server, namespace = "ledger")
)]
pub trait LedgerApi {
    /// The chain id (transactions sign over it).
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<String>;
    /// Submits a transaction; with `wait`, answers once a block included or rejected it.
    #[method(name = "submit")]
    async fn submit(&self, tx: SignedTransaction, wait: bool) -> RpcResult<SubmitResult>;
    /// The latest block header.
    #[method(name = "head")]
    fn head(&self) -> RpcResult<BlockHeader>;
    /// A block by height.
    #[method(name = "block")]
    fn block(&self, height: u64) -> RpcResult<Option<Block>>;
    /// The block that included a transaction.
    #[method(name = "txBlock")]
    fn tx_block(&self, hash: String) -> RpcResult<Option<u64>>;
    /// An account's balance and nonce.
    #[method(name = "account")]
    fn account(&self, account: AccountId) -> RpcResult<Account>;
    /// The nonce the account's next transaction needs, counting pending ones.
    #[method(name = "nextNonce")]
    fn next_nonce(&self, account: AccountId) -> RpcResult<u64>;
    /// One validator.
    #[method(name = "validator")]
    fn validator(&self, account: AccountId) -> RpcResult<Option<ValidatorRecord>>;
    /// Every validator.
    #[method(name = "validators")]
    fn validators(&self) -> RpcResult<Vec<ValidatorRecord>>;
    /// Signers, threshold, network key, jump-start and reshare status.
    #[method(name = "signerSet")]
    fn signer_set(&self) -> RpcResult<SignerSet>;
    /// One program, with its bytecode.
    #[method(name = "program")]
    fn program(&self, id: ProgramId) -> RpcResult<Option<ProgramRecord>>;
    /// Every program, without bytecode.
    #[method(name = "programs")]
    fn programs(&self) -> RpcResult<Vec<ProgramSummary>>;
    /// One registration.
    #[method(name = "registration")]
    fn registration(&self, key: VerifyingKey) -> RpcResult<Option<Registration>>;
    /// Registrations, optionally only an owner's.
    #[method(name = "registrations")]
    fn registrations(
        &self,
        owner: Option<AccountId>,
    ) -> RpcResult<Vec<(VerifyingKey, Registration)>>;
    /// The parameters.
    #[method(name = "parameters")]
    fn parameters(&self) -> RpcResult<Parameters>;
    /// The governance account.
    #[method(name = "governance")]
    fn governance(&self) -> RpcResult<AccountId>;
    /// Recorded offences.
    #[method(name = "offences")]
    fn offences(&self) -> RpcResult<Vec<OffenceRecord>>;
    /// The offences of the given signing sessions (at most [`MAX_SESSIONS_PER_QUERY`]), in
    /// the order they were reported.
    #[method(name = "sessionOffences")]
    fn session_offences(&self, sessions: Vec<SessionId>) -> RpcResult<Vec<OffenceRecord>>;
    /// Oracle data of a block.
    #[method(name = "oracle")]
    fn oracle(&self, height: u64) -> RpcResult<Option<OracleData>>;
    /// The current state digest, 0x-hex.
    #[method(name = "stateDigest")]
    fn state_digest(&self) -> RpcResult<String>;
    /// How this ledger is ordered: solo or replicated, the consensus set, the epoch and the
    /// last final block.
    #[method(name = "consensus")]
    fn consensus(&self) -> RpcResult<ConsensusInfo>;
    /// New block headers.
    #[subscription(name = "subscribeHeads" => "newHead", unsubscribe = "unsubscribeHeads", item = BlockHeader)]
    async fn subscribe_heads(&self) -> SubscriptionResult;
    /// Events that pass the filter.
    #[subscription(name = "subscribeEvents" => "newEvent", unsubscribe = "unsubscribeEvents", item = EventNotification)]
    async fn subscribe_events(&self, filter: Option<EventFilter>) -> SubscriptionResult;
}
