//! Ledger records, transactions, events and blocks.

use serde::{Deserialize, Serialize};
use sigil_primitives::{
    AccountId, BlockNumber, DerivationPath, Ed25519Signature, Endpoint, KeyScheme, ProgramId,
    ProgramList, SessionId, ValidatorInfo, VerifyingKey, X25519PublicKey,
};

/// A balance or stake, in the ledger's smallest unit.
pub type Balance = u64;

/// An account's balance and the nonce its next transaction must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: Balance,
    /// Number of transactions this account has had included.
    pub nonce: u64,
    /// Deposits held for what the account stores (programs it deployed, keys it owns); each is
    /// returned when its item is removed.
    pub reserved: Balance,
}

/// Whether a validator is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorStatus {
    /// Serving and eligible to be a signer.
    Active,
    /// Asked to leave while a signer: leaves (stake returned) once a reshare rotates it out.
    Leaving,
}

/// What the ledger holds about a validator: how to reach it ([`ValidatorRecord::info`]) and
/// its stake and standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    /// The validator's account.
    pub account: AccountId,
    /// Its x25519 static key, for envelopes and Noise.
    pub x25519: X25519PublicKey,
    /// Where its TSS node listens.
    pub endpoint: Endpoint,
    /// Bonded stake.
    pub stake: Balance,
    /// Status.
    pub status: ValidatorStatus,
    /// Block at which it joined.
    pub joined: BlockNumber,
}

impl ValidatorRecord {
    /// How to reach and authenticate it: what the transport and envelopes need.
    pub fn info(&self) -> ValidatorInfo {
        ValidatorInfo {
            account: self.account,
            x25519: self.x25519,
            endpoint: self.endpoint.clone(),
        }
    }
}

/// Progress of bringing the network key into existence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JumpStartStatus {
    /// No jump start yet.
    Ready,
    /// Signers were chosen at `block` and run the DKG; some have confirmed.
    InProgress {
        /// The block that chose the signers.
        block: BlockNumber,
        /// Signers that confirmed, with the key each reported.
        confirmations: Vec<(AccountId, VerifyingKey)>,
    },
    /// Every chosen signer confirmed the same key.
    Done,
}

/// A signer-set change in progress: old and new holders reshare the network key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReshare {
    /// Block that started the reshare.
    pub started: BlockNumber,
    /// The set handing over.
    pub old_signers: Vec<AccountId>,
    /// The set taking over.
    pub new_signers: Vec<AccountId>,
    /// The threshold of the new set.
    pub new_threshold: u16,
    /// New signers that confirmed holding a share of the unchanged ECDSA network key.
    pub confirmations: Vec<AccountId>,
    /// The other schemes' network keys (Ed25519, BIP-340; tagged, in the signer set's order)
    /// that follow this reshare, set when it starts: the signer set's `scheme_keys` when
    /// `new_threshold` is the current threshold, else none (FROST keys keep their threshold;
    /// the new set makes fresh ones after the switch).
    #[serde(default)]
    pub scheme_keys: Vec<VerifyingKey>,
    /// New signers that confirmed holding a share of one of `scheme_keys`: (signer, key). The
    /// reshare completes once every new signer confirmed the ECDSA key and each of these.
    #[serde(default)]
    pub scheme_confirmations: Vec<(AccountId, VerifyingKey)>,
}

/// The signer set and the network key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerSet {
    /// Signers in ledger order.
    pub signers: Vec<AccountId>,
    /// Signatures need `threshold` signers.
    pub threshold: u16,
    /// The network verifying key (ECDSA), once the jump start is done.
    pub network_key: Option<VerifyingKey>,
    /// Jump-start progress.
    pub jump_start: JumpStartStatus,
    /// A reshare in progress, if any.
    pub pending_reshare: Option<PendingReshare>,
    /// Proven offenders kept out of committee selection, each until a block.
    #[serde(default)]
    pub excluded: Vec<Exclusion>,
    /// Unproven accusations: pairs of signers that committees keep apart, each until a block
    /// (see [`SignerSet::sidelined_at`]).
    #[serde(default)]
    pub disputes: Vec<Dispute>,
    /// The network keys of the other schemes (Ed25519, BIP-340), tagged, in
    /// [`KeyScheme::ALL`] order: each made by its own DKG once the jump start began, and
    /// confirmed by every signer.
    #[serde(default)]
    pub scheme_keys: Vec<VerifyingKey>,
    /// Confirmations of the other schemes' keys not yet complete: (signer, key reported).
    #[serde(default)]
    pub scheme_confirmations: Vec<(AccountId, VerifyingKey)>,
}

impl SignerSet {
    /// The confirmed network key of `scheme`, if the jump start made one.
    pub fn network_key_of(&self, scheme: KeyScheme) -> Option<VerifyingKey> {
        match scheme {
            KeyScheme::EcdsaSecp256k1 => self.network_key,
            other => self
                .scheme_keys
                .iter()
                .find(|k| k.scheme() == other)
                .copied(),
        }
    }
}

/// An unproven report: `accuser` said `accused` failed a session. Neither is punished; while
/// the head is below `until`, committees do not put the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// The reporter.
    pub accuser: AccountId,
    /// The signer it accused.
    pub accused: AccountId,
    /// First block at which the dispute no longer counts.
    pub until: BlockNumber,
}

/// An offender kept out of committees while the head is below `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The offender.
    pub account: AccountId,
    /// First block at which it may be selected again.
    pub until: BlockNumber,
}

/// A stored program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramRecord {
    /// The WebAssembly component.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub bytecode: Vec<u8>,
    /// JSON schema of its configuration.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub config_schema: Vec<u8>,
    /// JSON schema of its auxiliary data.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub aux_schema: Vec<u8>,
    /// Oracle keys it reads.
    pub oracle_keys: Vec<String>,
    /// Who stored it (the only account that may remove it).
    pub deployer: AccountId,
    /// How many registrations use it.
    pub ref_count: u64,
    /// The program interface version.
    pub version: u32,
    /// The deposit held while it is stored, returned to the deployer on removal.
    pub deposit: Balance,
}

/// A registered user key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The account that controls it.
    pub owner: AccountId,
    /// Programs evaluated on every request.
    pub programs: ProgramList,
    /// Path of the key below the network key.
    pub derivation_path: DerivationPath,
    /// Block of registration.
    pub registered: BlockNumber,
    /// Whether anyone may request signatures, programs being the only gate; otherwise only the
    /// owner and the accounts in `authorised`.
    #[serde(default)]
    pub public: bool,
    /// Accounts the owner lets request signatures besides itself, ascending.
    #[serde(default)]
    pub authorised: Vec<AccountId>,
    /// The deposit held while it is registered, returned to the owner of the day on
    /// `unregister`.
    #[serde(default)]
    pub deposit: Balance,
}

/// Accounts the owner may authorise on one key.
pub const MAX_AUTHORISED: usize = 64;

impl Registration {
    /// Whether `requester` may ask for signatures with this key.
    pub fn admits(&self, requester: &AccountId) -> bool {
        self.public || self.is_insider(requester)
    }

    /// Whether `requester` is the owner or one of the accounts it authorised.
    pub fn is_insider(&self, requester: &AccountId) -> bool {
        self.owner == *requester || self.authorised.binary_search(requester).is_ok()
    }
}

/// Tunable parameters, changed by governance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Parameters {
    /// Successful signatures allowed per key per block: that many for its owner and authorised
    /// accounts together, and as many again for everyone else when the key is public.
    pub request_limit: u32,
    /// Successful signatures allowed per requester per block, whatever the key.
    pub requester_limit: u32,
    /// Fuel each program gets per evaluation.
    pub fuel_per_program: u64,
    /// Largest program, bytecode and schemas together.
    pub max_program_size: u32,
    /// Largest message to sign.
    pub max_message_size: u32,
    /// Signers chosen at jump start.
    pub signer_count: u16,
    /// Signatures need this many signers.
    pub threshold: u16,
    /// Blocks a proven offender stays out of committees, and a dispute keeps its two signers
    /// apart.
    pub offence_window: u64,
    /// Least stake a validator must bond; a signer slashed below it is rotated out.
    pub min_stake: Balance,
    /// Stake slashed for a proven offence (evidence checked by the ledger), in thousandths.
    /// Unproven reports never slash.
    pub slash_misbehaviour_permille: u32,
    /// Proven offences within the offence window that remove a signer from the signer set.
    pub max_offences: u32,
    /// Blocks after a session's request block during which its offences may be reported.
    pub report_window: u64,
    /// Blocks over which the distinct signers accusing a signer are counted: `threshold` of
    /// them rotate it out.
    pub accusation_window: u64,
    /// Largest evidence a report may carry, in bytes.
    pub max_evidence_size: u32,
    /// What every transaction costs its sender, burnt whether its call succeeds or fails.
    /// Validators' signer duties (`confirm_jump_start`, `confirm_reshare`, `report_offence`)
    /// are free.
    pub transaction_fee: Balance,
    /// Deposit per byte of a stored program (bytecode, schemas and oracle keys).
    pub program_byte_deposit: Balance,
    /// Deposit per registered key.
    pub registration_deposit: Balance,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            request_limit: 10,
            requester_limit: 10,
            fuel_per_program: 10_000_000,
            max_program_size: 1_000_000,
            max_message_size: 1 << 20,
            signer_count: 3,
            threshold: 2,
            offence_window: 100,
            min_stake: 1_000,
            slash_misbehaviour_permille: 100,
            max_offences: 3,
            report_window: 1_000,
            accusation_window: 1_000,
            max_evidence_size: 1 << 16,
            transaction_fee: 1_000,
            program_byte_deposit: 10,
            registration_deposit: 1_000_000,
        }
    }
}

impl Parameters {
    /// The deposit a program with these contents holds while stored.
    pub fn program_deposit(&self, contents: &sigil_crypto::ProgramContents<'_>) -> Balance {
        let size = crate::programs::contents_size(contents) as Balance;
        self.program_byte_deposit.saturating_mul(size)
    }

    /// Checks the parameters are coherent.
    pub fn validate(&self) -> Result<(), String> {
        if self.threshold < 2 {
            return Err("threshold must be at least 2".into());
        }
        if self.threshold > self.signer_count {
            return Err("threshold must not exceed signer_count".into());
        }
        if self.request_limit == 0 || self.requester_limit == 0 || self.fuel_per_program == 0 {
            return Err(
                "request_limit, requester_limit and fuel_per_program must be positive".into(),
            );
        }
        if self.max_message_size == 0 || self.max_message_size > (1 << 20) {
            return Err("max_message_size must be between 1 and 1 MiB".into());
        }
        if self.slash_misbehaviour_permille > 1000 {
            return Err("slash fractions are thousandths: at most 1000".into());
        }
        if self.max_offences == 0 || self.report_window == 0 || self.accusation_window == 0 {
            return Err(
                "max_offences, report_window and accusation_window must be positive".into(),
            );
        }
        if self.max_evidence_size == 0 || self.max_evidence_size > (1 << 20) {
            return Err("max_evidence_size must be between 1 and 1 MiB".into());
        }
        if self.max_program_size == 0 || self.max_program_size > 1_000_000 {
            return Err("max_program_size must be between 1 and 1,000,000".into());
        }
        Ok(())
    }
}

pub use sigil_primitives::FaultKind;

/// A relayer's signed statement that it started signing session `session` (attempt `attempt`
/// of a request naming block `block`) with `committee`. Reports must carry one: it proves the
/// session existed and who was in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTicket {
    /// The session id (`docs/PROTOCOL.md` §7).
    pub session: SessionId,
    /// The block the user's request named.
    pub block: BlockNumber,
    /// Attempt number of the request.
    pub attempt: u32,
    /// The committee, in ledger order.
    pub committee: Vec<AccountId>,
    /// The relayer that started it.
    pub relayer: AccountId,
    /// The relayer's signature over [`crate::tx::ticket_payload`].
    pub signature: Ed25519Signature,
}

/// The reports against one signer in one session: accusations (each a dispute), or an offence
/// proven by evidence the ledger checked itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffenceRecord {
    /// The signing session it concerns.
    pub session: SessionId,
    /// Who reported, first reporter first.
    pub reporters: Vec<AccountId>,
    /// Who is accused.
    pub offender: AccountId,
    /// What kind of fault: the proven kind once proven, else the first report's.
    pub kind: FaultKind,
    /// Whether the ledger verified evidence of it.
    pub proven: bool,
    /// Size of the session's committee.
    pub committee_size: u16,
    /// SHA-256 of the proving evidence, or of the first report's (empty) evidence.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub evidence_hash: Vec<u8>,
    /// Block of the first report.
    pub reported: BlockNumber,
    /// Block of the first report that took effect (every accepted report does).
    pub recorded: Option<BlockNumber>,
    /// Stake slashed when it was proven (0 while unproven).
    pub slashed: Balance,
}

/// What a transaction asks the ledger to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Move `amount` to `to`.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount.
        amount: Balance,
    },
    /// Join as a validator, bonding `stake`.
    Validate {
        /// The node's x25519 key.
        x25519: X25519PublicKey,
        /// Where its node listens.
        endpoint: Endpoint,
        /// Stake to bond (at least the `min_stake` parameter).
        stake: Balance,
    },
    /// Move a validator's endpoint.
    ChangeEndpoint {
        /// The new endpoint.
        endpoint: Endpoint,
    },
    /// Rotate a validator's x25519 key.
    ChangeKeys {
        /// The new key.
        x25519: X25519PublicKey,
    },
    /// Stop being a validator and get the stake back (not while a signer).
    Leave,
    /// Governance: choose the first `signer_count` validators as signers and start the DKG.
    JumpStart,
    /// A chosen signer reports the network key its DKG produced.
    ConfirmJumpStart {
        /// The network verifying key.
        verifying_key: VerifyingKey,
    },
    /// Store a program.
    StoreProgram {
        /// The component.
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        bytecode: Vec<u8>,
        /// JSON schema of its configuration.
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        config_schema: Vec<u8>,
        /// JSON schema of its auxiliary data.
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        aux_schema: Vec<u8>,
        /// Oracle keys it reads.
        oracle_keys: Vec<String>,
        /// Interface version.
        version: u32,
    },
    /// Remove an unused program (deployer only).
    RemoveProgram {
        /// The program.
        program: ProgramId,
    },
    /// Register a new key with these programs.
    Register {
        /// Programs to attach.
        programs: ProgramList,
        /// Whether anyone may request signatures (see [`Registration::public`]).
        #[serde(default)]
        public: bool,
        /// The key's signature scheme; its network key is the derivation's parent.
        #[serde(default)]
        scheme: KeyScheme,
    },
    /// Replace a key's programs (owner only).
    ChangePrograms {
        /// The key.
        verifying_key: VerifyingKey,
        /// The new programs.
        programs: ProgramList,
    },
    /// Hand a key to another account (owner only).
    ChangeOwner {
        /// The key.
        verifying_key: VerifyingKey,
        /// The new owner.
        new_owner: AccountId,
    },
    /// A signer reports a faulty peer.
    ReportOffence {
        /// The relayer's ticket for the session.
        ticket: SessionTicket,
        /// The accused signer.
        offender: AccountId,
        /// Fault kind.
        kind: FaultKind,
        /// Evidence bytes (hashed into the record).
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        evidence: Vec<u8>,
    },
    /// A new signer confirms it holds a share after a reshare.
    ConfirmReshare {
        /// The network key it holds a share of (must be unchanged).
        verifying_key: VerifyingKey,
    },
    /// Governance: replace the parameters.
    SetParameters {
        /// The new parameters.
        parameters: Parameters,
    },
    /// Let `account` request signatures with a key (owner only).
    Authorise {
        /// The key.
        verifying_key: VerifyingKey,
        /// The account.
        account: AccountId,
    },
    /// Withdraw what [`Call::Authorise`] gave (owner only).
    Deauthorise {
        /// The key.
        verifying_key: VerifyingKey,
        /// The account.
        account: AccountId,
    },
    /// Open a key to everyone (programs the only gate) or close it to its owner and authorised
    /// accounts (owner only).
    SetPublic {
        /// The key.
        verifying_key: VerifyingKey,
        /// Whether anyone may request signatures.
        public: bool,
    },
    /// Delete a key's registration and get its deposit back (owner only). The key can never
    /// sign again: registration paths are never reused.
    Unregister {
        /// The key.
        verifying_key: VerifyingKey,
    },
    /// Proves that a replica signed two conflicting consensus votes (PROTOCOL §9.6). Anyone
    /// may send it, free; a report the ledger cannot verify, or of a fault already recorded, is
    /// refused.
    ReportConsensusFault {
        /// The encoded evidence: Commonware's conflicting-vote activity.
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        evidence: Vec<u8>,
    },
    /// Sets the validator's consensus replica (PROTOCOL §9.3): from the next epoch its key
    /// votes, until the validator leaves or is proven to have signed conflicting votes.
    ChangeReplica {
        /// The replica's ed25519 consensus key; no other validator's replica may use it.
        #[serde(with = "sigil_primitives::bytes::hex_array")]
        consensus_key: [u8; 32],
        /// Where its consensus p2p listens, `host:port`.
        address: String,
        /// The consensus key's signature of [`replica_proof_message`]: proof that the validator
        /// holds it.
        proof: Ed25519Signature,
    },
    /// A signer proves that another sent a bad package in the key generation of `scheme`'s
    /// network key among the current signers (PROTOCOL §8.3): the offender is slashed and
    /// leaves the signer set, so the next set can make the key. Evidence is required.
    ReportKeygenFault {
        /// The scheme whose key generation failed (Ed25519 or BIP-340).
        scheme: KeyScheme,
        /// The signer that sent the bad package.
        offender: AccountId,
        /// The encoded evidence (its signed packages).
        #[serde(with = "sigil_primitives::bytes::hex_vec")]
        evidence: Vec<u8>,
    },
}

/// The bytes a consensus key signs to prove, in `change_replica`, that `account` on `chain_id`
/// holds it: `"sigil/v1/replica-key" ‖ u32-be len ‖ chain_id ‖ account (32)`.
pub fn replica_proof_message(chain_id: &str, account: &AccountId) -> Vec<u8> {
    let mut message = b"sigil/v1/replica-key".to_vec();
    message.extend((chain_id.len() as u32).to_be_bytes());
    message.extend(chain_id.as_bytes());
    message.extend(account.as_bytes());
    message
}

impl Call {
    /// Whether this is a signer's duty to the network, free of the transaction fee when a
    /// validator sends it.
    pub fn is_signer_duty(&self) -> bool {
        matches!(
            self,
            Call::ConfirmJumpStart { .. }
                | Call::ConfirmReshare { .. }
                | Call::ReportOffence { .. }
                | Call::ReportKeygenFault { .. }
        )
    }
}

/// A transaction before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The signing account.
    pub sender: AccountId,
    /// Must equal the sender's current nonce.
    pub nonce: u64,
    /// What to do.
    pub call: Call,
}

/// A transaction with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// ed25519 signature over [`crate::tx::signing_payload`].
    pub signature: Ed25519Signature,
}

/// Something that happened, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Funds moved.
    Transferred {
        /// From.
        from: AccountId,
        /// To.
        to: AccountId,
        /// Amount.
        amount: Balance,
    },
    /// A validator joined.
    ValidatorJoined {
        /// Its record.
        info: ValidatorRecord,
    },
    /// A validator's endpoint or keys changed.
    ValidatorChanged {
        /// Its record.
        info: ValidatorRecord,
    },
    /// A validator left.
    ValidatorLeft {
        /// Its account.
        account: AccountId,
    },
    /// Signers were chosen and must run the DKG.
    JumpStartStarted {
        /// The chosen signers.
        signers: Vec<AccountId>,
        /// The threshold.
        threshold: u16,
    },
    /// A signer confirmed the network key.
    JumpStartConfirmed {
        /// The signer.
        signer: AccountId,
    },
    /// Every signer confirmed: the network is ready.
    JumpStartDone {
        /// The network key.
        network_key: VerifyingKey,
    },
    /// A program was stored.
    ProgramStored {
        /// Its id.
        program: ProgramId,
        /// Its deployer.
        deployer: AccountId,
    },
    /// A program was removed.
    ProgramRemoved {
        /// Its id.
        program: ProgramId,
    },
    /// A key was registered.
    Registered {
        /// The owner.
        owner: AccountId,
        /// The new key.
        verifying_key: VerifyingKey,
        /// Its path under the network key.
        derivation_path: DerivationPath,
    },
    /// A key's programs changed.
    ProgramsChanged {
        /// The key.
        verifying_key: VerifyingKey,
    },
    /// A key changed owner.
    OwnerChanged {
        /// The key.
        verifying_key: VerifyingKey,
        /// The new owner.
        new_owner: AccountId,
    },
    /// A committee member reported an offence that is not recorded yet.
    OffenceReportReceived {
        /// The reporter.
        reporter: AccountId,
        /// The accused.
        offender: AccountId,
        /// What it is accused of.
        kind: FaultKind,
    },
    /// An offence was recorded: the offender is excluded and slashed.
    OffenceReported {
        /// The record.
        offence: OffenceRecord,
    },
    /// A validator's stake was cut.
    Slashed {
        /// The validator.
        account: AccountId,
        /// Amount burned.
        amount: Balance,
        /// Stake left.
        stake: Balance,
    },
    /// The signer set is changing: old and new signers reshare the network key.
    ReshareStarted {
        /// The set taking over.
        new_signers: Vec<AccountId>,
        /// Its threshold.
        new_threshold: u16,
    },
    /// A new signer confirmed a reshare.
    ReshareConfirmed {
        /// The signer.
        signer: AccountId,
    },
    /// Every new signer confirmed: the new set is active.
    SignerSetChanged {
        /// The new set.
        signers: Vec<AccountId>,
        /// The new threshold.
        threshold: u16,
    },
    /// Parameters changed.
    ParametersChanged {
        /// The new parameters.
        parameters: Parameters,
    },
    /// Who may request signatures with a key changed.
    AccessChanged {
        /// The key.
        verifying_key: VerifyingKey,
        /// Whether anyone may.
        public: bool,
        /// The accounts authorised besides the owner, ascending.
        authorised: Vec<AccountId>,
    },
    /// A key's registration was deleted.
    Unregistered {
        /// The key.
        verifying_key: VerifyingKey,
        /// Its owner, who got the deposit back.
        owner: AccountId,
        /// The deposit returned.
        refund: Balance,
    },
    /// A transaction's call failed: the sender paid the fee and used the nonce, and nothing
    /// else changed.
    CallFailed {
        /// The sender.
        sender: AccountId,
        /// The transaction's nonce.
        nonce: u64,
        /// Why, as the stable code of a rejected submission (§4.3), e.g. `not_found`.
        code: String,
        /// Why, in words.
        message: String,
    },
    /// A validator's replica was set, or removed (`replica` absent) when it left or was
    /// proven to have signed conflicting votes; it counts from the next epoch.
    ReplicaChanged {
        /// The validator.
        account: AccountId,
        /// Its replica, if it has one.
        replica: Option<Replica>,
    },
    /// The last block of an epoch set the next epoch's consensus set, and it differs from
    /// this epoch's.
    ConsensusSetChanged {
        /// The epoch it is the set of.
        epoch: u64,
        /// The replicas, by consensus key ascending.
        replicas: Vec<Replica>,
    },
    /// A signer proven an offender in a session lost its accusations of that session: it is
    /// no longer among the record's reporters (a record left without reporters is gone) and
    /// its dispute with the accused ended.
    AccusationWithdrawn {
        /// The session.
        session: SessionId,
        /// The proven offender that had accused.
        reporter: AccountId,
        /// The signer it had accused.
        offender: AccountId,
    },
    /// Every signer confirmed the same network key of a scheme other than ECDSA (its tag says
    /// which); keys of that scheme can now be registered.
    NetworkKeyCreated {
        /// The scheme's network key.
        network_key: VerifyingKey,
    },
}

impl Event {
    /// Accounts this event concerns, for subscription filters.
    pub fn accounts(&self) -> Vec<AccountId> {
        match self {
            Event::Transferred { from, to, .. } => vec![*from, *to],
            Event::ValidatorJoined { info } | Event::ValidatorChanged { info } => {
                vec![info.account]
            }
            Event::ValidatorLeft { account } => vec![*account],
            Event::JumpStartStarted { signers, .. } | Event::SignerSetChanged { signers, .. } => {
                signers.clone()
            }
            Event::JumpStartConfirmed { signer } | Event::ReshareConfirmed { signer } => {
                vec![*signer]
            }
            Event::ProgramStored { deployer, .. } => vec![*deployer],
            Event::Registered { owner, .. } => vec![*owner],
            Event::OwnerChanged { new_owner, .. } => vec![*new_owner],
            Event::OffenceReported { offence } => {
                let mut accounts = offence.reporters.clone();
                accounts.push(offence.offender);
                accounts
            }
            Event::OffenceReportReceived {
                reporter, offender, ..
            }
            | Event::AccusationWithdrawn {
                reporter, offender, ..
            } => vec![*reporter, *offender],
            Event::Slashed { account, .. } => vec![*account],
            Event::Unregistered { owner, .. } => vec![*owner],
            Event::CallFailed { sender, .. } => vec![*sender],
            Event::ReplicaChanged { account, .. } => vec![*account],
            Event::ConsensusSetChanged { replicas, .. } => {
                replicas.iter().map(|r| r.account).collect()
            }
            Event::AccessChanged { authorised, .. } => authorised.clone(),
            Event::ReshareStarted { new_signers, .. } => new_signers.clone(),
            Event::ProgramRemoved { .. }
            | Event::ProgramsChanged { .. }
            | Event::JumpStartDone { .. }
            | Event::NetworkKeyCreated { .. }
            | Event::ParametersChanged { .. } => vec![],
        }
    }

    /// The event's name: the key of its JSON object, e.g. `registered`.
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
            Ok(serde_json::Value::String(name)) => name,
            _ => String::new(),
        }
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Height; genesis is 0.
    pub height: BlockNumber,
    /// Hash of the parent header (zero for genesis).
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub parent_hash: Vec<u8>,
    /// Producer's clock, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Hash of the transactions and events.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub body_hash: Vec<u8>,
    /// Digest of the state after this block.
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub state_digest: Vec<u8>,
}

/// A block: header, included transactions and the events they emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Included transactions, in order.
    pub transactions: Vec<SignedTransaction>,
    /// Events, in order.
    pub events: Vec<Event>,
}

/// The initial state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A name that makes this chain's transactions unusable on others.
    pub chain_id: String,
    /// Funded accounts.
    pub balances: Vec<(AccountId, Balance)>,
    /// The account allowed to jump-start and set parameters.
    pub governance: AccountId,
    /// Initial parameters.
    pub parameters: Parameters,
    /// Genesis timestamp.
    pub timestamp_ms: u64,
    /// The initial consensus set of a replicated ledger, in no particular order; empty for a
    /// solo ledger.
    #[serde(default)]
    pub replicas: Vec<Replica>,
    /// Blocks per consensus epoch: the set may change only between epochs.
    #[serde(default = "default_epoch_length")]
    pub epoch_length: u64,
}

/// Blocks per epoch unless the genesis says otherwise: about ten minutes at one block a
/// second, long enough that the set's change is rare, short enough that a new validator
/// does not wait long to vote.
pub const DEFAULT_EPOCH_LENGTH: u64 = 600;

fn default_epoch_length() -> u64 {
    DEFAULT_EPOCH_LENGTH
}

/// A replica of the consensus set: a validator's consensus key and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// The validator's account, answerable for the replica's consensus faults.
    pub account: AccountId,
    /// Its ed25519 consensus key (hex), which signs its votes; not its account key.
    #[serde(with = "sigil_primitives::bytes::hex_array")]
    pub consensus_key: [u8; 32],
    /// Where its consensus p2p listens, `host:port`.
    pub address: String,
}

#[cfg(test)]
mod tests {
    use sigil_crypto::NodeSeed;

    use super::*;
    use crate::tx::{decode, encode};

    /// A signer set of one (alice) with an Ed25519 network key, in a reshare that carries it and
    /// that alice confirmed: the sample `sdk/typescript`'s unit test reads byte by byte.
    fn resharing_set() -> (SignerSet, AccountId, VerifyingKey) {
        let alice = NodeSeed::dev("alice").account_keypair().account_id();
        let ed = VerifyingKey::tagged(KeyScheme::Ed25519, alice.as_bytes()).expect("key");
        let reshare = PendingReshare {
            started: BlockNumber(5),
            old_signers: vec![alice],
            new_signers: vec![alice],
            new_threshold: 2,
            confirmations: vec![alice],
            scheme_keys: vec![ed],
            scheme_confirmations: vec![(alice, ed)],
        };
        let set = SignerSet {
            signers: vec![alice],
            threshold: 2,
            network_key: None,
            jump_start: JumpStartStatus::Done,
            pending_reshare: Some(reshare),
            excluded: vec![],
            disputes: vec![],
            scheme_keys: vec![ed],
            scheme_confirmations: vec![],
        };
        (set, alice, ed)
    }

    #[test]
    fn a_pending_reshare_writes_its_scheme_keys_and_confirmations_last() {
        let (set, alice, ed) = resharing_set();
        let (alice, ed) = (alice.as_bytes().as_slice(), ed.as_bytes());
        let expected = [
            &[0x01, 0x20][..],
            alice,
            &[0x02, 0x00, 0x02, 0x01, 0x05, 0x01, 0x20],
            alice,
            &[0x01, 0x20],
            alice,
            &[0x02, 0x01, 0x20],
            alice,
            &[0x01, 0x21],
            ed,
            &[0x01, 0x20],
            alice,
            &[0x21],
            ed,
            &[0x00, 0x00, 0x01, 0x21],
            ed,
            &[0x00],
        ]
        .concat();
        assert_eq!(encode(&set), expected);
        assert_eq!(decode::<SignerSet>(&expected).expect("decodes"), set);
    }

    #[test]
    fn a_pending_reshare_without_its_scheme_fields_reads_them_empty() {
        let (set, _, _) = resharing_set();
        let text = serde_json::to_string(&set.pending_reshare).expect("json");
        let at = |field: &str| text.find(&format!("\"{field}\":")).expect(field);
        assert!(at("new_threshold") < at("confirmations"));
        assert!(at("confirmations") < at("scheme_keys"));
        assert!(at("scheme_keys") < at("scheme_confirmations"));
        let mut json = serde_json::to_value(&set).expect("json");
        let reshare = json["pending_reshare"].as_object_mut().expect("object");
        reshare.remove("scheme_keys");
        reshare.remove("scheme_confirmations");
        let read: SignerSet = serde_json::from_value(json).expect("reads");
        let reshare = read.pending_reshare.expect("reshare");
        assert_eq!(reshare.scheme_keys, vec![]);
        assert_eq!(reshare.scheme_confirmations, vec![]);
        assert_eq!(
            reshare.confirmations,
            set.pending_reshare.expect("reshare").confirmations
        );
    }
}
