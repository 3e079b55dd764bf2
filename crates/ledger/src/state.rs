//! The state machine: a pure function of (state, transaction) → (state, events).
//!
//! Each handler checks everything first and mutates only when the transaction will succeed, so a
//! rejected transaction leaves the state untouched. The handlers live in one submodule per group
//! of calls.

mod accounts;
mod consensus;
mod governance;
mod offences;
mod programs;
mod registrations;
mod signer_set;
mod validators;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sigil_crypto::ProgramContents;
use sigil_primitives::{AccountId, BlockNumber, ProgramId, VerifyingKey};

use crate::types::*;

pub use programs::{ProgramBody, ProgramEntry};
use registrations::Access;
pub use registrations::registration_path;

/// Why a transaction was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code", content = "message")]
pub enum TxError {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The nonce is not the sender's next one.
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The nonce the account needs next.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The sender may not do this.
    #[error("unauthorised: {0}")]
    Unauthorised(String),
    /// Not enough balance.
    #[error("insufficient balance: need {need}, have {have}")]
    InsufficientBalance {
        /// Needed.
        need: Balance,
        /// Available.
        have: Balance,
    },
    /// A referenced item does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Something that must be unique already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The ledger is not in a state that allows this.
    #[error("wrong state: {0}")]
    WrongState(String),
    /// An argument is invalid.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl TxError {
    /// The stable code of this error: the `code` of a rejected submission's error data and of
    /// a `call_failed` event.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature => "bad_signature",
            TxError::BadNonce { .. } => "bad_nonce",
            TxError::Unauthorised(_) => "unauthorised",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::NotFound(_) => "not_found",
            TxError::AlreadyExists(_) => "already_exists",
            TxError::WrongState(_) => "wrong_state",
            TxError::Invalid(_) => "invalid",
        }
    }
}

/// A transaction that goes into the block: its call's events, or, when the call failed, the
/// `call_failed` event with the failure (the fee is paid and the nonce used either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Included {
    /// The events it emitted.
    pub events: Vec<Event>,
    /// Why its call failed, if it did.
    pub failure: Option<TxError>,
}

/// A map that remembers which keys changed, so a block writes only what it touched.
#[derive(Debug, Clone)]
pub struct Tracked<K: Ord, V> {
    map: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
}

impl<K: Ord, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V> Tracked<K, V> {
    /// Reads a value.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
    /// Whether the key is present.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    /// Writes a value.
    pub fn insert(&mut self, key: K, value: V) {
        self.dirty.insert(key.clone());
        self.map.insert(key, value);
    }
    /// Removes a value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.dirty.insert(key.clone());
        self.map.remove(key)
    }
    /// Mutable access (marks the key changed).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let v = self.map.get_mut(key)?;
        self.dirty.insert(key.clone());
        Some(v)
    }
    /// Iterates in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }
    /// The entry with the greatest key.
    pub fn last(&self) -> Option<(&K, &V)> {
        self.map.last_key_value()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Takes the changed keys with their new values (`None` = removed).
    pub fn take_changes(&mut self) -> Vec<(K, Option<&V>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|k| {
                let v = self.map.get(&k);
                (k, v)
            })
            .collect()
    }
    /// Loads an entry without marking it changed (used when reading storage).
    pub fn load(&mut self, key: K, value: V) {
        self.map.insert(key, value);
    }
}

/// Small singleton values, stored together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Globals {
    /// Chain id, from genesis.
    pub chain_id: String,
    /// Governance account.
    pub governance: AccountId,
    /// Parameters.
    pub parameters: Parameters,
    /// Signers and network key.
    pub signer_set: SignerSet,
    /// Height of the last applied block.
    pub height: BlockNumber,
    /// Next offence record index.
    pub next_offence: u64,
    /// Blocks per consensus epoch, from genesis.
    pub epoch_length: u64,
}

/// The whole ledger state.
#[derive(Debug, Clone)]
pub struct State {
    /// Singletons.
    pub globals: Globals,
    /// Accounts.
    pub accounts: Tracked<AccountId, Account>,
    /// Validators.
    pub validators: Tracked<AccountId, ValidatorRecord>,
    /// Programs, without their contents.
    pub programs: Tracked<ProgramId, ProgramEntry>,
    /// Contents of programs stored (`Some`) or removed (`None`) since the last block was
    /// written: storage takes them, and they are not kept in memory.
    pub unwritten_programs: BTreeMap<ProgramId, Option<ProgramBody>>,
    /// Registrations.
    pub registrations: Tracked<VerifyingKey, Registration>,
    /// Offences, by index.
    pub offences: Tracked<u64, OffenceRecord>,
    /// Each validator's replica (and the genesis replicas): the next epoch's consensus set.
    pub replicas: Tracked<AccountId, Replica>,
    /// The consensus set of each epoch, by epoch.
    pub epochs: Tracked<u64, Vec<Replica>>,
}

/// Checks a program's bytecode before it is stored; the node plugs the WebAssembly host in.
pub type ProgramValidator = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync;

/// Checks that `evidence` proves the offence `kind` by `offender` in the session (of the given
/// kind) with id `session`; the node plugs the threshold engine's rules in, so the ledger does
/// not build them.
pub type EvidenceVerifier = dyn Fn(ReportedSession, &[u8; 32], &AccountId, FaultKind, &[u8]) -> Result<(), String>
    + Send
    + Sync;

/// The kind of session a report's evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedSession {
    /// A signing session (`report_offence`).
    Signing,
    /// A FROST key generation (`report_keygen_fault`).
    KeyGeneration,
}

/// The consensus set of an epoch, if the ledger has fixed it.
pub type SetOf<'a> = dyn Fn(u64) -> Option<Vec<Replica>> + 'a;

/// Checks evidence of a consensus fault against the consensus set of its epoch.
pub type ConsensusVerifier =
    dyn Fn(&[u8], &SetOf<'_>) -> Result<ConsensusFault, String> + Send + Sync;

/// A consensus fault the evidence proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusFault {
    /// The account of the replica that signed both votes.
    pub offender: AccountId,
    /// The epoch and view the votes were for.
    pub epoch: u64,
    /// The view.
    pub view: u64,
}

/// What applying a transaction needs besides the state.
pub struct ApplyContext<'a> {
    /// The block being built.
    pub height: BlockNumber,
    /// Validates program bytecode at store time.
    pub validate_program: &'a ProgramValidator,
    /// Checks offence evidence; without one no evidence holds, so no report counts as proven.
    pub verify_evidence: Option<&'a EvidenceVerifier>,
    /// Checks consensus-fault evidence; a solo ledger has none, and refuses such reports.
    pub verify_consensus: Option<&'a ConsensusVerifier>,
}

impl State {
    /// The state of a new chain.
    pub fn genesis(genesis: &Genesis) -> Result<Self, String> {
        genesis.parameters.validate()?;
        consensus::check_replicas(&genesis.replicas)?;
        if genesis.epoch_length < 2 {
            return Err(format!(
                "epoch_length {} is too short: an epoch needs at least 2 blocks",
                genesis.epoch_length
            ));
        }
        let mut replicas = Tracked::default();
        for replica in &genesis.replicas {
            replicas.insert(replica.account, replica.clone());
        }
        let mut epochs = Tracked::default();
        epochs.insert(0, consensus::by_key(genesis.replicas.clone()));
        let mut accounts = Tracked::default();
        for (id, balance) in &genesis.balances {
            accounts.insert(
                *id,
                Account {
                    balance: *balance,
                    ..Account::default()
                },
            );
        }
        Ok(Self {
            globals: Globals {
                chain_id: genesis.chain_id.clone(),
                governance: genesis.governance,
                parameters: genesis.parameters.clone(),
                signer_set: SignerSet {
                    signers: vec![],
                    threshold: genesis.parameters.threshold,
                    network_key: None,
                    scheme_keys: vec![],
                    scheme_confirmations: vec![],
                    jump_start: JumpStartStatus::Ready,
                    pending_reshare: None,
                    excluded: vec![],
                    disputes: vec![],
                },
                height: BlockNumber(0),
                next_offence: 0,
                epoch_length: genesis.epoch_length,
            },
            accounts,
            validators: Tracked::default(),
            programs: Tracked::default(),
            unwritten_programs: BTreeMap::new(),
            registrations: Tracked::default(),
            offences: Tracked::default(),
            replicas,
            epochs,
        })
    }

    /// A digest of the whole state; programs are represented by their ids (which hash their
    /// contents) and entries.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(b"sigil/v1/state");
        h.update(crate::tx::encode(&self.globals));
        for (k, v) in self.accounts.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.validators.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.programs.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.registrations.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.offences.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.replicas.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.epochs.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        h.finalize().into()
    }

    /// The nonce `account` must use next.
    pub fn nonce(&self, account: &AccountId) -> u64 {
        self.accounts.get(account).map(|a| a.nonce).unwrap_or(0)
    }

    /// Applies one signed transaction. A bad signature or nonce, or a sender that cannot pay
    /// the fee, is an error and stays out of the block. Otherwise the fee is burnt and the
    /// nonce used, and the call runs: if it fails, the transaction is still included, with a
    /// `call_failed` event, so a failing call costs as much as one that succeeds. A free
    /// signer duty that fails stays out of the block instead.
    pub fn apply(
        &mut self,
        stx: &SignedTransaction,
        ctx: &ApplyContext<'_>,
    ) -> Result<Included, TxError> {
        if !crate::tx::verify(&self.globals.chain_id, stx) {
            return Err(TxError::BadSignature);
        }
        let Transaction {
            sender,
            nonce,
            call,
        } = &stx.tx;
        let expected = self.nonce(sender);
        if *nonce != expected {
            return Err(TxError::BadNonce {
                expected,
                got: *nonce,
            });
        }
        let fee = self.fee(sender, call);
        let have = self.balance(sender);
        if have < fee {
            return Err(TxError::InsufficientBalance { need: fee, have });
        }
        // The fee goes first, so the call spends only what is left.
        if fee > 0 {
            self.set_balance(*sender, have - fee);
        }
        let result = self.dispatch(*sender, *nonce, call, ctx);
        if fee == 0 && result.is_err() {
            return result.map(|_| unreachable!("checked to be an error"));
        }
        let account = self.accounts.get(sender).cloned().unwrap_or_default();
        self.accounts.insert(
            *sender,
            Account {
                nonce: account.nonce + 1,
                ..account
            },
        );
        Ok(match result {
            Ok(events) => Included {
                events,
                failure: None,
            },
            Err(error) => Included {
                events: vec![Event::CallFailed {
                    sender: *sender,
                    nonce: *nonce,
                    code: error.code().into(),
                    message: error.to_string(),
                }],
                failure: Some(error),
            },
        })
    }

    /// The fee `sender` pays for `call`: the `transaction_fee` parameter, except for a
    /// validator's signer duties, which are free.
    pub fn fee(&self, sender: &AccountId, call: &Call) -> Balance {
        let duty = call.is_signer_duty() && self.validators.contains(sender);
        // Anyone may prove a consensus fault, free; a report that proves nothing is refused.
        if duty || matches!(call, Call::ReportConsensusFault { .. }) {
            0
        } else {
            self.globals.parameters.transaction_fee
        }
    }

    /// The most `call` can take from `sender`'s balance: its fee, and what it transfers,
    /// bonds or deposits. The pool admits a sender's transactions only while their costs
    /// together fit its balance.
    pub fn cost(&self, sender: &AccountId, call: &Call) -> Balance {
        let parameters = &self.globals.parameters;
        let spent = match call {
            Call::Transfer { amount, .. } => *amount,
            Call::Validate { stake, .. } => *stake,
            Call::StoreProgram { .. } => crate::programs::stored_contents(call)
                .map(|contents| parameters.program_deposit(&contents))
                .unwrap_or_default(),
            Call::Register { .. } => parameters.registration_deposit,
            _ => 0,
        };
        self.fee(sender, call).saturating_add(spent)
    }

    /// Runs the call with the handler for its kind.
    fn dispatch(
        &mut self,
        sender: AccountId,
        nonce: u64,
        call: &Call,
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        let height = ctx.height;
        match call {
            Call::Transfer { to, amount } => self.transfer(sender, *to, *amount),
            Call::Validate {
                x25519,
                endpoint,
                stake,
            } => self.validate(sender, *x25519, endpoint, *stake, height),
            Call::ChangeEndpoint { endpoint } => self.change_endpoint(sender, endpoint),
            Call::ChangeKeys { x25519 } => self.change_keys(sender, *x25519),
            Call::Leave => self.leave(sender, height),
            Call::JumpStart => self.jump_start(sender, height),
            Call::ConfirmJumpStart { verifying_key } => {
                self.confirm_jump_start(sender, verifying_key, height)
            }
            Call::StoreProgram {
                bytecode,
                config_schema,
                aux_schema,
                oracle_keys,
                version,
            } => {
                let contents = ProgramContents {
                    bytecode,
                    config_schema,
                    aux_schema,
                    oracle_keys,
                    version: *version,
                };
                self.store_program(sender, &contents, ctx.validate_program)
            }
            Call::RemoveProgram { program } => self.remove_program(sender, program),
            Call::Register {
                programs,
                public,
                scheme,
            } => self.register(sender, nonce, programs, *public, *scheme, height),
            Call::ChangePrograms {
                verifying_key,
                programs,
            } => self.change_programs(sender, verifying_key, programs),
            Call::ChangeOwner {
                verifying_key,
                new_owner,
            } => self.change_owner(sender, verifying_key, *new_owner),
            Call::ReportOffence {
                ticket,
                offender,
                kind,
                evidence,
            } => self.report_offence(sender, ticket, *offender, *kind, evidence, ctx),
            Call::ConfirmReshare { verifying_key } => {
                self.confirm_reshare(sender, verifying_key, height)
            }
            Call::SetParameters { parameters } => self.set_parameters(sender, parameters, height),
            Call::Authorise {
                verifying_key,
                account,
            } => self.change_access(sender, verifying_key, Access::Authorise(*account)),
            Call::Deauthorise {
                verifying_key,
                account,
            } => self.change_access(sender, verifying_key, Access::Deauthorise(*account)),
            Call::SetPublic {
                verifying_key,
                public,
            } => self.change_access(sender, verifying_key, Access::Public(*public)),
            Call::ReportConsensusFault { evidence } => {
                self.report_consensus_fault(sender, evidence, ctx)
            }
            Call::Unregister { verifying_key } => self.unregister(sender, verifying_key),
            Call::ChangeReplica {
                consensus_key,
                address,
                proof,
            } => self.change_replica(sender, *consensus_key, address, proof),
            Call::ReportKeygenFault {
                scheme,
                offender,
                evidence,
            } => self.report_keygen_fault(sender, *scheme, *offender, evidence, ctx),
        }
    }
}
