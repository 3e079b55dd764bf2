//! Registrations: `register`, `change_programs`, `change_owner` and who may use a key
//! (`authorise`, `deauthorise`, `set_public`).

use sha2::Digest as _;
use sigil_crypto::{derive_schnorr_child, derive_user_key};
use sigil_primitives::{
    AccountId, BlockNumber, DerivationPath, KeyScheme, MAX_PROGRAMS_PER_KEY, ProgramList,
    VerifyingKey,
};

use super::{State, TxError};
use crate::types::{Event, JumpStartStatus, MAX_AUTHORISED, Registration};

/// A change of who may request signatures with a key.
pub(super) enum Access {
    /// Let the account in.
    Authorise(AccountId),
    /// Take the account out.
    Deauthorise(AccountId),
    /// Open the key to everyone, or close it.
    Public(bool),
}

impl State {
    /// Whether a key of a scheme other than ECDSA (a FROST key: Ed25519, BIP-340) is
    /// registered. One lookup: keys are ordered by their bytes, and the FROST tags (`0x54`
    /// BIP-340, `0xed` Ed25519) sort after ECDSA's `0x02`/`0x03`, so such a key exists iff the
    /// greatest registered key is one.
    pub(super) fn has_frost_registrations(&self) -> bool {
        self.registrations
            .last()
            .is_some_and(|(key, _)| key.scheme() != KeyScheme::EcdsaSecp256k1)
    }

    /// `register`: derives a new key from the network key at a fresh path and attaches programs.
    pub(super) fn register(
        &mut self,
        sender: AccountId,
        nonce: u64,
        programs: &ProgramList,
        public: bool,
        scheme: KeyScheme,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        let set = &self.globals.signer_set;
        let network_key = match (&set.jump_start, set.network_key_of(scheme)) {
            (JumpStartStatus::Done, Some(key)) => key,
            _ => {
                return Err(TxError::WrongState(format!(
                    "the {scheme} network key does not exist yet: jump start first"
                )));
            }
        };
        // A FROST key keeps its threshold: a threshold change remakes these network keys, so
        // no key may be registered under the ones about to go.
        let threshold_changing = self.globals.parameters.threshold != set.threshold
            || set
                .pending_reshare
                .as_ref()
                .is_some_and(|r| r.new_threshold != set.threshold);
        if scheme != KeyScheme::EcdsaSecp256k1 && threshold_changing {
            return Err(TxError::WrongState(format!(
                "the {scheme} network key is being remade for a new threshold; register after the reshare"
            )));
        }
        self.require_programs(programs)?;
        let deposit = self.globals.parameters.registration_deposit;
        self.require_balance(&sender, deposit)?;
        let path = registration_path(&self.globals.chain_id, &sender, nonce);
        let derived = match scheme {
            KeyScheme::EcdsaSecp256k1 => derive_user_key(&network_key, &path),
            _ => derive_schnorr_child(&network_key, &path).map(|child| child.key),
        };
        let verifying_key =
            derived.map_err(|e| TxError::Invalid(format!("derivation failed: {e}")))?;
        if self.registrations.contains(&verifying_key) {
            return Err(TxError::AlreadyExists(format!(
                "registration {verifying_key}"
            )));
        }
        self.adjust_ref_counts(programs, true);
        self.reserve(sender, deposit);
        self.registrations.insert(
            verifying_key,
            Registration {
                owner: sender,
                programs: programs.clone(),
                derivation_path: path.clone(),
                registered: height,
                public,
                authorised: vec![],
                deposit,
            },
        );
        Ok(vec![Event::Registered {
            owner: sender,
            verifying_key,
            derivation_path: path,
        }])
    }

    /// `change_programs`: the owner replaces a key's programs.
    pub(super) fn change_programs(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
        programs: &ProgramList,
    ) -> Result<Vec<Event>, TxError> {
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

    /// `authorise`, `deauthorise`, `set_public`: the owner changes who may use a key.
    pub(super) fn change_access(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
        change: Access,
    ) -> Result<Vec<Event>, TxError> {
        let mut reg = self.owned_registration(&sender, verifying_key)?;
        match change {
            Access::Authorise(account) => {
                if account == reg.owner {
                    return Err(TxError::Invalid("the owner is always authorised".into()));
                }
                let Err(at) = reg.authorised.binary_search(&account) else {
                    return Err(TxError::AlreadyExists(format!("{account} is authorised")));
                };
                if reg.authorised.len() >= MAX_AUTHORISED {
                    return Err(TxError::Invalid(format!(
                        "at most {MAX_AUTHORISED} authorised accounts per key"
                    )));
                }
                reg.authorised.insert(at, account);
            }
            Access::Deauthorise(account) => {
                let Ok(at) = reg.authorised.binary_search(&account) else {
                    return Err(TxError::NotFound(format!("{account} is not authorised")));
                };
                reg.authorised.remove(at);
            }
            Access::Public(public) => reg.public = public,
        }
        let event = Event::AccessChanged {
            verifying_key: *verifying_key,
            public: reg.public,
            authorised: reg.authorised.clone(),
        };
        self.registrations.insert(*verifying_key, reg);
        Ok(vec![event])
    }

    /// `change_owner`: the owner hands a key to another account; the accounts it authorised
    /// are the old owner's choice and are dropped.
    pub(super) fn change_owner(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
        new_owner: AccountId,
    ) -> Result<Vec<Event>, TxError> {
        let reg = self.owned_registration(&sender, verifying_key)?;
        self.hand_over(sender, new_owner, reg.deposit);
        if let Some(r) = self.registrations.get_mut(verifying_key) {
            r.owner = new_owner;
            r.authorised.clear();
        }
        Ok(vec![Event::OwnerChanged {
            verifying_key: *verifying_key,
            new_owner,
        }])
    }

    /// `unregister`: the owner deletes a key's registration and gets its deposit back.
    pub(super) fn unregister(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
    ) -> Result<Vec<Event>, TxError> {
        let reg = self.owned_registration(&sender, verifying_key)?;
        self.adjust_ref_counts(&reg.programs, false);
        self.registrations.remove(verifying_key);
        self.release(sender, reg.deposit);
        Ok(vec![Event::Unregistered {
            verifying_key: *verifying_key,
            owner: sender,
            refund: reg.deposit,
        }])
    }

    /// Fails unless `programs` is short enough and every program in it is stored.
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

    /// Counts a use of each program in `programs` (`add`) or drops one.
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

    /// The registration of `key`, if `sender` owns it.
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
