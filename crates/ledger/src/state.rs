//! The state machine: a pure function of (state, transaction) → (state, events).
//!
//! Each handler checks everything first and mutates only when the transaction will succeed, so a
//! rejected transaction leaves the state untouched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sigil_crypto::{ProgramContents, derive_user_key};
use sigil_primitives::{
    AccountId, BlockNumber, DerivationPath, MAX_PROGRAMS_PER_KEY, ProgramId, ProgramList,
    VerifyingKey,
};

use crate::types::*;

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
}

/// The whole ledger state.
#[derive(Debug, Clone)]
pub struct State {
    /// Singletons.
    pub globals: Globals,
    /// Accounts.
    pub accounts: Tracked<AccountId, Account>,
    /// Validators.
    pub validators: Tracked<AccountId, ServerInfo>,
    /// Programs.
    pub programs: Tracked<ProgramId, ProgramRecord>,
    /// Registrations.
    pub registrations: Tracked<VerifyingKey, Registration>,
    /// Offences, by index.
    pub offences: Tracked<u64, OffenceRecord>,
}

/// Checks a program's bytecode before it is stored; the node plugs the WebAssembly host in.
pub type ProgramValidator = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync;

/// What applying a transaction needs besides the state.
pub struct ApplyContext<'a> {
    /// The block being built.
    pub height: BlockNumber,
    /// Validates program bytecode at store time.
    pub validate_program: &'a ProgramValidator,
}

impl State {
    /// The state of a new chain.
    pub fn genesis(genesis: &Genesis) -> Result<Self, String> {
        genesis.parameters.validate()?;
        let mut accounts = Tracked::default();
        for (id, balance) in &genesis.balances {
            accounts.insert(
                *id,
                Account {
                    balance: *balance,
                    nonce: 0,
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
                    jump_start: JumpStartStatus::Ready,
                    pending_reshare: None,
                    excluded: vec![],
                },
                height: BlockNumber(0),
                next_offence: 0,
            },
            accounts,
            validators: Tracked::default(),
            programs: Tracked::default(),
            registrations: Tracked::default(),
            offences: Tracked::default(),
        })
    }

    /// A digest of the whole state; programs are represented by their ids and counters.
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
            h.update(crate::tx::encode(&(k, &v.deployer, v.ref_count)));
        }
        for (k, v) in self.registrations.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        for (k, v) in self.offences.iter() {
            h.update(crate::tx::encode(&(k, v)));
        }
        h.finalize().into()
    }

    /// The nonce `account` must use next.
    pub fn nonce(&self, account: &AccountId) -> u64 {
        self.accounts.get(account).map(|a| a.nonce).unwrap_or(0)
    }

    /// Applies one signed transaction: checks signature and nonce, runs the call, bumps the nonce.
    pub fn apply(
        &mut self,
        stx: &SignedTransaction,
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        if !crate::tx::verify(&self.globals.chain_id, stx) {
            return Err(TxError::BadSignature);
        }
        let sender = stx.tx.sender;
        let expected = self.nonce(&sender);
        if stx.tx.nonce != expected {
            return Err(TxError::BadNonce {
                expected,
                got: stx.tx.nonce,
            });
        }
        let events = self.dispatch(sender, stx.tx.nonce, &stx.tx.call, ctx)?;
        let account = self.accounts.get(&sender).cloned().unwrap_or_default();
        self.accounts.insert(
            sender,
            Account {
                nonce: account.nonce + 1,
                ..account
            },
        );
        Ok(events)
    }

    fn balance(&self, account: &AccountId) -> Balance {
        self.accounts.get(account).map(|a| a.balance).unwrap_or(0)
    }

    fn set_balance(&mut self, account: AccountId, balance: Balance) {
        let current = self.accounts.get(&account).cloned().unwrap_or_default();
        self.accounts
            .insert(account, Account { balance, ..current });
    }

    fn require_governance(&self, sender: &AccountId) -> Result<(), TxError> {
        if *sender != self.globals.governance {
            return Err(TxError::Unauthorised(
                "only the governance account may do this".into(),
            ));
        }
        Ok(())
    }

    fn require_programs(&self, programs: &ProgramList) -> Result<(), TxError> {
        if programs.as_slice().len() > MAX_PROGRAMS_PER_KEY {
            return Err(TxError::Invalid(format!(
                "at most {MAX_PROGRAMS_PER_KEY} programs"
            )));
        }
        for p in programs.as_slice() {
            if !self.programs.contains(&p.program) {
                return Err(TxError::NotFound(format!("program {}", p.program)));
            }
        }
        Ok(())
    }

    fn adjust_ref_counts(&mut self, programs: &ProgramList, add: bool) {
        for p in programs.as_slice() {
            if let Some(record) = self.programs.get_mut(&p.program) {
                record.ref_count = if add {
                    record.ref_count + 1
                } else {
                    record.ref_count.saturating_sub(1)
                };
            }
        }
    }

    fn dispatch(
        &mut self,
        sender: AccountId,
        nonce: u64,
        call: &Call,
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        let params = self.globals.parameters.clone();
        match call {
            Call::Transfer { to, amount } => {
                let have = self.balance(&sender);
                if have < *amount {
                    return Err(TxError::InsufficientBalance {
                        need: *amount,
                        have,
                    });
                }
                if *to != sender {
                    self.set_balance(sender, have - amount);
                    let to_balance = self.balance(to);
                    self.set_balance(*to, to_balance.saturating_add(*amount));
                }
                Ok(vec![Event::Transferred {
                    from: sender,
                    to: *to,
                    amount: *amount,
                }])
            }
            Call::Validate {
                x25519,
                endpoint,
                stake,
            } => {
                if self.validators.contains(&sender) {
                    return Err(TxError::AlreadyExists(format!("validator {sender}")));
                }
                if *stake < params.min_stake {
                    return Err(TxError::Invalid(format!(
                        "stake {stake} is below the minimum {}",
                        params.min_stake
                    )));
                }
                let have = self.balance(&sender);
                if have < *stake {
                    return Err(TxError::InsufficientBalance { need: *stake, have });
                }
                self.set_balance(sender, have - stake);
                let info = ServerInfo {
                    account: sender,
                    x25519: *x25519,
                    endpoint: endpoint.clone(),
                    stake: *stake,
                    status: ValidatorStatus::Active,
                    joined: ctx.height,
                };
                self.validators.insert(sender, info.clone());
                let mut events = vec![Event::ValidatorJoined { info }];
                events.extend(self.rotate(ctx.height));
                Ok(events)
            }
            Call::ChangeEndpoint { endpoint } => {
                let info = self
                    .validators
                    .get_mut(&sender)
                    .ok_or_else(|| TxError::NotFound(format!("validator {sender}")))?;
                info.endpoint = endpoint.clone();
                Ok(vec![Event::ValidatorChanged { info: info.clone() }])
            }
            Call::ChangeKeys { x25519 } => {
                let info = self
                    .validators
                    .get_mut(&sender)
                    .ok_or_else(|| TxError::NotFound(format!("validator {sender}")))?;
                info.x25519 = *x25519;
                Ok(vec![Event::ValidatorChanged { info: info.clone() }])
            }
            Call::Leave => {
                let info = self
                    .validators
                    .get(&sender)
                    .cloned()
                    .ok_or_else(|| TxError::NotFound(format!("validator {sender}")))?;
                let set = &self.globals.signer_set;
                let incoming = set
                    .pending_reshare
                    .as_ref()
                    .is_some_and(|r| r.new_signers.contains(&sender));
                if incoming && !set.signers.contains(&sender) {
                    return Err(TxError::WrongState(
                        "this validator is joining the signer set in a running reshare; leave after it"
                            .into(),
                    ));
                }
                if set.signers.contains(&sender) {
                    if info.status == ValidatorStatus::Leaving {
                        return Err(TxError::AlreadyExists(format!(
                            "{sender} is already leaving"
                        )));
                    }
                    // A signer leaves through a reshare that rotates it out.
                    let before = self.clone();
                    if let Some(v) = self.validators.get_mut(&sender) {
                        v.status = ValidatorStatus::Leaving;
                    }
                    let mut events = vec![Event::ValidatorChanged {
                        info: ServerInfo {
                            status: ValidatorStatus::Leaving,
                            ..info
                        },
                    }];
                    let rotation = self.rotate(ctx.height);
                    if rotation.is_empty() && self.globals.signer_set.pending_reshare.is_none() {
                        *self = before;
                        return Err(TxError::WrongState(
                            "no validator can replace this signer; it cannot leave yet".into(),
                        ));
                    }
                    events.extend(rotation);
                    return Ok(events);
                }
                self.validators.remove(&sender);
                let have = self.balance(&sender);
                self.set_balance(sender, have.saturating_add(info.stake));
                Ok(vec![Event::ValidatorLeft { account: sender }])
            }
            Call::JumpStart => {
                self.require_governance(&sender)?;
                if self.globals.signer_set.jump_start != JumpStartStatus::Ready {
                    return Err(TxError::WrongState(
                        "the network was already jump-started".into(),
                    ));
                }
                let n = usize::from(params.signer_count);
                if self.validators.len() < n {
                    return Err(TxError::WrongState(format!(
                        "jump start needs {n} validators, there are {}",
                        self.validators.len()
                    )));
                }
                // "First n": by joining block, then account id, so every replica agrees.
                let mut candidates: Vec<&ServerInfo> =
                    self.validators.iter().map(|(_, v)| v).collect();
                candidates.sort_by_key(|v| (v.joined, v.account));
                let signers: Vec<AccountId> =
                    candidates.iter().take(n).map(|v| v.account).collect();
                let set = &mut self.globals.signer_set;
                set.signers = signers.clone();
                set.threshold = params.threshold;
                set.jump_start = JumpStartStatus::InProgress {
                    block: ctx.height,
                    confirmations: vec![],
                };
                Ok(vec![Event::JumpStartStarted {
                    signers,
                    threshold: params.threshold,
                }])
            }
            Call::ConfirmJumpStart { verifying_key } => {
                let set = &self.globals.signer_set;
                let JumpStartStatus::InProgress {
                    block,
                    confirmations,
                } = &set.jump_start
                else {
                    return Err(TxError::WrongState("no jump start in progress".into()));
                };
                if !set.signers.contains(&sender) {
                    return Err(TxError::Unauthorised(
                        "only a chosen signer may confirm the jump start".into(),
                    ));
                }
                if confirmations.iter().any(|(a, _)| *a == sender) {
                    return Err(TxError::AlreadyExists(format!(
                        "confirmation from {sender}"
                    )));
                }
                if let Some((_, first)) = confirmations.first()
                    && first != verifying_key
                {
                    return Err(TxError::Invalid(format!(
                        "mismatched confirmation: {verifying_key} differs from the key already confirmed, {first}"
                    )));
                }
                let mut confirmations = confirmations.clone();
                let block = *block;
                confirmations.push((sender, *verifying_key));
                let mut events = vec![Event::JumpStartConfirmed { signer: sender }];
                let set = &mut self.globals.signer_set;
                if confirmations.len() == set.signers.len() {
                    set.network_key = Some(*verifying_key);
                    set.jump_start = JumpStartStatus::Done;
                    events.push(Event::JumpStartDone {
                        network_key: *verifying_key,
                    });
                } else {
                    set.jump_start = JumpStartStatus::InProgress {
                        block,
                        confirmations,
                    };
                }
                Ok(events)
            }
            Call::StoreProgram {
                bytecode,
                config_schema,
                aux_schema,
                oracle_keys,
                version,
            } => {
                let size = bytecode.len()
                    + config_schema.len()
                    + aux_schema.len()
                    + oracle_keys.iter().map(String::len).sum::<usize>();
                if size > params.max_program_size as usize {
                    return Err(TxError::Invalid(format!(
                        "program of {size} bytes exceeds the {}-byte limit",
                        params.max_program_size
                    )));
                }
                for schema in [config_schema, aux_schema] {
                    if !schema.is_empty()
                        && serde_json::from_slice::<serde_json::Value>(schema).is_err()
                    {
                        return Err(TxError::Invalid("schemas must be JSON".into()));
                    }
                }
                let id = ProgramContents {
                    bytecode,
                    config_schema,
                    aux_schema,
                    oracle_keys,
                    version: *version,
                }
                .id();
                if self.programs.contains(&id) {
                    return Err(TxError::AlreadyExists(format!("program {id}")));
                }
                (ctx.validate_program)(bytecode)
                    .map_err(|e| TxError::Invalid(format!("invalid program: {e}")))?;
                self.programs.insert(
                    id,
                    ProgramRecord {
                        bytecode: bytecode.clone(),
                        config_schema: config_schema.clone(),
                        aux_schema: aux_schema.clone(),
                        oracle_keys: oracle_keys.clone(),
                        deployer: sender,
                        ref_count: 0,
                        version: *version,
                    },
                );
                Ok(vec![Event::ProgramStored {
                    program: id,
                    deployer: sender,
                }])
            }
            Call::RemoveProgram { program } => {
                let record = self
                    .programs
                    .get(program)
                    .ok_or_else(|| TxError::NotFound(format!("program {program}")))?;
                if record.deployer != sender {
                    return Err(TxError::Unauthorised(
                        "only the deployer may remove a program".into(),
                    ));
                }
                if record.ref_count > 0 {
                    return Err(TxError::WrongState(format!(
                        "program is in use by {} registrations",
                        record.ref_count
                    )));
                }
                self.programs.remove(program);
                Ok(vec![Event::ProgramRemoved { program: *program }])
            }
            Call::Register { programs } => {
                let network_key = match (
                    &self.globals.signer_set.jump_start,
                    self.globals.signer_set.network_key,
                ) {
                    (JumpStartStatus::Done, Some(key)) => key,
                    _ => {
                        return Err(TxError::WrongState(
                            "the network key does not exist yet: jump start first".into(),
                        ));
                    }
                };
                self.require_programs(programs)?;
                let path = registration_path(&self.globals.chain_id, &sender, nonce);
                let verifying_key = derive_user_key(&network_key, &path)
                    .map_err(|e| TxError::Invalid(format!("derivation failed: {e}")))?;
                if self.registrations.contains(&verifying_key) {
                    return Err(TxError::AlreadyExists(format!(
                        "registration {verifying_key}"
                    )));
                }
                self.adjust_ref_counts(programs, true);
                self.registrations.insert(
                    verifying_key,
                    Registration {
                        owner: sender,
                        programs: programs.clone(),
                        derivation_path: path.clone(),
                        registered: ctx.height,
                    },
                );
                Ok(vec![Event::Registered {
                    owner: sender,
                    verifying_key,
                    derivation_path: path,
                }])
            }
            Call::ChangePrograms {
                verifying_key,
                programs,
            } => {
                let reg = self.owned_registration(&sender, verifying_key)?;
                self.require_programs(programs)?;
                self.adjust_ref_counts(&reg.programs, false);
                self.adjust_ref_counts(programs, true);
                if let Some(r) = self.registrations.get_mut(verifying_key) {
                    r.programs = programs.clone();
                }
                Ok(vec![Event::ProgramsChanged {
                    verifying_key: *verifying_key,
                }])
            }
            Call::ChangeOwner {
                verifying_key,
                new_owner,
            } => {
                self.owned_registration(&sender, verifying_key)?;
                if let Some(r) = self.registrations.get_mut(verifying_key) {
                    r.owner = *new_owner;
                }
                Ok(vec![Event::OwnerChanged {
                    verifying_key: *verifying_key,
                    new_owner: *new_owner,
                }])
            }
            Call::ReportOffence {
                ticket,
                offender,
                kind,
                evidence,
            } => self.report_offence(sender, ticket, *offender, *kind, evidence, ctx),
            Call::ConfirmReshare { verifying_key } => {
                let network_key = self.globals.signer_set.network_key;
                let Some(reshare) = self.globals.signer_set.pending_reshare.as_mut() else {
                    return Err(TxError::WrongState("no reshare in progress".into()));
                };
                if !reshare.new_signers.contains(&sender) {
                    return Err(TxError::Unauthorised(
                        "only a new signer may confirm the reshare".into(),
                    ));
                }
                if reshare.confirmations.contains(&sender) {
                    return Err(TxError::AlreadyExists(format!(
                        "confirmation from {sender}"
                    )));
                }
                if network_key != Some(*verifying_key) {
                    return Err(TxError::Invalid(
                        "mismatched confirmation: the network key must not change".into(),
                    ));
                }
                reshare.confirmations.push(sender);
                let mut events = vec![Event::ReshareConfirmed { signer: sender }];
                if reshare.confirmations.len() == reshare.new_signers.len() {
                    let done = self
                        .globals
                        .signer_set
                        .pending_reshare
                        .take()
                        .unwrap_or_else(|| unreachable!());
                    self.globals.signer_set.signers = done.new_signers.clone();
                    self.globals.signer_set.threshold = done.new_threshold;
                    events.push(Event::SignerSetChanged {
                        signers: done.new_signers.clone(),
                        threshold: done.new_threshold,
                    });
                    // Signers that asked to leave go now that they hold no share.
                    let leaving: Vec<ServerInfo> = self
                        .validators
                        .iter()
                        .filter(|(account, v)| {
                            v.status == ValidatorStatus::Leaving
                                && !done.new_signers.contains(account)
                        })
                        .map(|(_, v)| v.clone())
                        .collect();
                    for info in leaving {
                        self.validators.remove(&info.account);
                        let have = self.balance(&info.account);
                        self.set_balance(info.account, have.saturating_add(info.stake));
                        events.push(Event::ValidatorLeft {
                            account: info.account,
                        });
                    }
                    // Changes that waited for this reshare start the next one.
                    events.extend(self.rotate(ctx.height));
                }
                Ok(events)
            }
            Call::SetParameters { parameters } => {
                self.require_governance(&sender)?;
                parameters.validate().map_err(TxError::Invalid)?;
                self.globals.parameters = parameters.clone();
                let mut events = vec![Event::ParametersChanged {
                    parameters: parameters.clone(),
                }];
                events.extend(self.rotate(ctx.height));
                Ok(events)
            }
        }
    }

    /// `report_offence`: checks the report against the relayer's ticket and the evidence, and
    /// records the offence once it is proven or every other committee member reported it.
    fn report_offence(
        &mut self,
        sender: AccountId,
        ticket: &SessionTicket,
        offender: AccountId,
        kind: OffenceKind,
        evidence: &[u8],
        ctx: &ApplyContext<'_>,
    ) -> Result<Vec<Event>, TxError> {
        let params = &self.globals.parameters;
        let signers = &self.globals.signer_set.signers;
        if !signers.contains(&sender) {
            return Err(TxError::Unauthorised(
                "only a signer may report an offence".into(),
            ));
        }
        if !signers.contains(&offender) {
            return Err(TxError::Invalid(format!("{offender} is not a signer")));
        }
        if offender == sender {
            return Err(TxError::Invalid("a signer cannot report itself".into()));
        }
        if !crate::tx::verify_ticket(&self.globals.chain_id, ticket) {
            return Err(TxError::Invalid(
                "the session ticket's signature does not verify".into(),
            ));
        }
        if !self.validators.contains(&ticket.relayer) || signers.contains(&ticket.relayer) {
            return Err(TxError::Invalid(
                "the session ticket must come from a relayer (a validator outside the signer set)"
                    .into(),
            ));
        }
        let committee: BTreeSet<AccountId> = ticket.committee.iter().copied().collect();
        if committee.len() != ticket.committee.len()
            || committee.len() < 2
            || !committee.iter().all(|m| signers.contains(m))
        {
            return Err(TxError::Invalid(
                "the ticket's committee is not a set of current signers".into(),
            ));
        }
        if !committee.contains(&sender) {
            return Err(TxError::Unauthorised(
                "the reporter was not in that session's committee".into(),
            ));
        }
        if !committee.contains(&offender) {
            return Err(TxError::Invalid(
                "the accused was not in that session's committee".into(),
            ));
        }
        if ticket.block > ctx.height
            || ctx.height.0.saturating_sub(ticket.block.0) > params.report_window
        {
            return Err(TxError::Invalid(format!(
                "session of block {} is outside the report window",
                ticket.block
            )));
        }
        let proven = match kind {
            OffenceKind::Unresponsive => {
                if !evidence.is_empty() {
                    return Err(TxError::Invalid(
                        "unresponsiveness carries no evidence".into(),
                    ));
                }
                false
            }
            OffenceKind::InvalidMessage if evidence.is_empty() => false,
            _ => {
                crate::evidence::verify(&ticket.session, &offender, kind, evidence)
                    .map_err(|e| TxError::Invalid(format!("the evidence does not hold: {e}")))?;
                true
            }
        };
        let session = ticket.session.to_vec();
        // An offender's unproven claims about its own session do not count.
        if !proven
            && self
                .offences
                .iter()
                .any(|(_, o)| o.session == session && o.offender == sender && o.recorded.is_some())
        {
            return Err(TxError::WrongState(
                "the reporter is a recorded offender in that session".into(),
            ));
        }
        let existing = self
            .offences
            .iter()
            .find(|(_, o)| o.session == session && o.offender == offender)
            .map(|(index, o)| (*index, o.clone()));
        let (index, mut record) = match existing {
            Some((index, record)) => {
                if record.reporters.contains(&sender) {
                    return Err(TxError::AlreadyExists("this report".into()));
                }
                (index, record)
            }
            None => {
                let index = self.globals.next_offence;
                self.globals.next_offence += 1;
                let record = OffenceRecord {
                    session,
                    reporters: vec![],
                    offender,
                    kind,
                    proven,
                    committee_size: u16::try_from(committee.len()).unwrap_or(u16::MAX),
                    evidence_hash: sha2::Sha256::digest(evidence).to_vec(),
                    reported: ctx.height,
                    recorded: None,
                    slashed: 0,
                };
                (index, record)
            }
        };
        record.reporters.push(sender);
        if proven && !record.proven {
            record.kind = kind;
            record.proven = true;
            record.evidence_hash = sha2::Sha256::digest(evidence).to_vec();
        }
        let mut events = vec![Event::OffenceReportReceived {
            reporter: sender,
            offender,
            kind,
        }];
        let agreed = record.reporters.len() + 1 >= usize::from(record.committee_size);
        let record_now = record.recorded.is_none() && (record.proven || agreed);
        self.offences.insert(index, record);
        if record_now {
            events.extend(self.record_offence(index, ctx.height));
        }
        Ok(events)
    }

    /// Applies a recorded offence: exclusion for the offence window, a slash, and removal from
    /// the signer set after repeated offences or when the stake falls below the minimum.
    fn record_offence(&mut self, index: u64, height: BlockNumber) -> Vec<Event> {
        let params = self.globals.parameters.clone();
        let Some(record) = self.offences.get_mut(&index) else {
            return vec![];
        };
        record.recorded = Some(height);
        let permille = if record.proven {
            params.slash_misbehaviour_permille
        } else {
            params.slash_unresponsive_permille
        };
        let offender = record.offender;
        let mut events = Vec::new();
        if let Some(info) = self.validators.get_mut(&offender) {
            let amount =
                u64::try_from(u128::from(info.stake) * u128::from(permille) / 1000).unwrap_or(0);
            info.stake -= amount;
            let stake = info.stake;
            if let Some(record) = self.offences.get_mut(&index) {
                record.slashed = amount;
            }
            if amount > 0 {
                events.push(Event::Slashed {
                    account: offender,
                    amount,
                    stake,
                });
            }
        }
        let until = BlockNumber(height.0.saturating_add(params.offence_window));
        let excluded = &mut self.globals.signer_set.excluded;
        excluded.retain(|e| e.until > height && e.account != offender);
        excluded.push(Exclusion {
            account: offender,
            until,
        });
        if let Some(record) = self.offences.get(&index) {
            events.insert(
                0,
                Event::OffenceReported {
                    offence: record.clone(),
                },
            );
        }
        events.extend(self.rotate(height));
        events
    }

    /// Offences recorded against `account` within the offence window ending at `height`.
    fn recent_offences(&self, account: &AccountId, height: BlockNumber) -> usize {
        let window = self.globals.parameters.offence_window;
        self.offences
            .iter()
            .filter(|(_, o)| {
                o.offender == *account
                    && o.recorded
                        .is_some_and(|at| height.0.saturating_sub(at.0) < window)
            })
            .count()
    }

    /// Starts a reshare when the signer set the ledger wants differs from the current one:
    /// signers leaving, slashed below the minimum stake or with too many recent offences go;
    /// eligible validators (by joining block, then account) fill up to `signer_count`; the
    /// threshold follows the parameters. Nothing happens during a jump start or another
    /// reshare; the next change after it picks up what waited.
    fn rotate(&mut self, height: BlockNumber) -> Vec<Event> {
        let set = &self.globals.signer_set;
        if set.jump_start != JumpStartStatus::Done || set.pending_reshare.is_some() {
            return vec![];
        }
        let params = &self.globals.parameters;
        let must_go = |account: &AccountId| match self.validators.get(account) {
            None => true,
            Some(v) => {
                v.status == ValidatorStatus::Leaving
                    || v.stake < params.min_stake
                    || self.recent_offences(account, height) >= params.max_offences as usize
            }
        };
        let mut new_signers: Vec<AccountId> = set
            .signers
            .iter()
            .copied()
            .filter(|s| !must_go(s))
            .collect();
        let excluded = set.excluded_at(height.0);
        let mut candidates: Vec<&ServerInfo> = self
            .validators
            .iter()
            .map(|(_, v)| v)
            .filter(|v| {
                v.status == ValidatorStatus::Active
                    && !set.signers.contains(&v.account)
                    && !excluded.contains(&v.account)
                    && !must_go(&v.account)
            })
            .collect();
        candidates.sort_by_key(|v| (v.joined, v.account));
        let wanted = usize::from(params.signer_count);
        new_signers.truncate(wanted);
        for candidate in candidates {
            if new_signers.len() >= wanted {
                break;
            }
            new_signers.push(candidate.account);
        }
        let new_threshold = params.threshold;
        let unchanged = new_signers.len() == set.signers.len()
            && new_signers.iter().all(|s| set.signers.contains(s))
            && new_threshold == set.threshold;
        if unchanged || new_signers.len() < usize::from(new_threshold) {
            return vec![];
        }
        let old_signers = set.signers.clone();
        self.globals.signer_set.pending_reshare = Some(PendingReshare {
            started: height,
            old_signers,
            new_signers: new_signers.clone(),
            new_threshold,
            confirmations: vec![],
        });
        vec![Event::ReshareStarted {
            new_signers,
            new_threshold,
        }]
    }

    fn owned_registration(
        &self,
        sender: &AccountId,
        key: &VerifyingKey,
    ) -> Result<Registration, TxError> {
        let reg = self
            .registrations
            .get(key)
            .ok_or_else(|| TxError::NotFound(format!("registration {key}")))?;
        if reg.owner != *sender {
            return Err(TxError::Unauthorised(
                "only the owner may change a registration".into(),
            ));
        }
        Ok(reg.clone())
    }
}

/// A fresh, unpredictable-before-submission path: eight 31-bit steps from
/// SHA-256(domain ‖ chain id ‖ owner ‖ nonce).
pub fn registration_path(chain_id: &str, owner: &AccountId, nonce: u64) -> DerivationPath {
    let digest: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"sigil/v1/registration-path")
        .chain_update(chain_id.as_bytes())
        .chain_update(owner.as_bytes())
        .chain_update(nonce.to_be_bytes())
        .finalize()
        .into();
    let indices = digest
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff)
        .collect();
    DerivationPath::new(indices).unwrap_or_else(|_| unreachable!("non-hardened, depth 8"))
}
