//! The signer set: `jump_start`, `confirm_jump_start`, `confirm_reshare`, and the rotation that
//! starts reshares.

use std::collections::BTreeSet;

use sigil_primitives::{AccountId, BlockNumber, KeyScheme, VerifyingKey};

use super::{State, TxError};
use crate::types::{Event, JumpStartStatus, PendingReshare, ValidatorRecord, ValidatorStatus};

impl State {
    /// `jump_start`: governance chooses the first `signer_count` validators as signers.
    pub(super) fn jump_start(
        &mut self,
        sender: AccountId,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        self.require_governance(&sender)?;
        if self.globals.signer_set.jump_start != JumpStartStatus::Ready {
            return Err(TxError::WrongState(
                "the network was already jump-started".into(),
            ));
        }
        let params = &self.globals.parameters;
        let n = usize::from(params.signer_count);
        if self.validators.len() < n {
            return Err(TxError::WrongState(format!(
                "jump start needs {n} validators, there are {}",
                self.validators.len()
            )));
        }
        // "First n": by joining block, then account id, so every replica agrees.
        let mut candidates: Vec<&ValidatorRecord> =
            self.validators.iter().map(|(_, v)| v).collect();
        candidates.sort_by_key(|v| (v.joined, v.account));
        let signers: Vec<AccountId> = candidates.iter().take(n).map(|v| v.account).collect();
        let threshold = params.threshold;
        let set = &mut self.globals.signer_set;
        set.signers = signers.clone();
        set.threshold = threshold;
        set.jump_start = JumpStartStatus::InProgress {
            block: height,
            confirmations: vec![],
        };
        Ok(vec![Event::JumpStartStarted { signers, threshold }])
    }

    /// `confirm_jump_start`: a chosen signer reports the network key; once every signer reported
    /// the same key, it is the network key. A key of another scheme goes to
    /// [`State::confirm_scheme_key`].
    pub(super) fn confirm_jump_start(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        if verifying_key.scheme() != KeyScheme::EcdsaSecp256k1 {
            return self.confirm_scheme_key(sender, verifying_key);
        }
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
            // A signer proven to have spoiled a FROST key generation meanwhile leaves now.
            events.extend(self.rotate(height));
        } else {
            set.jump_start = JumpStartStatus::InProgress {
                block,
                confirmations,
            };
        }
        Ok(events)
    }

    /// A signer reports the network key of a scheme other than ECDSA, which its own DKG made
    /// once the jump start began; once every signer reported the same key, it is that scheme's
    /// network key. Refused while a reshare runs: the new signer set makes the key after it.
    fn confirm_scheme_key(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
    ) -> Result<Vec<Event>, TxError> {
        let scheme = verifying_key.scheme();
        let set = &self.globals.signer_set;
        if set.jump_start == JumpStartStatus::Ready {
            return Err(TxError::WrongState("no jump start in progress".into()));
        }
        if let Some(key) = set.network_key_of(scheme) {
            return Err(TxError::AlreadyExists(format!(
                "the {scheme} network key, {key}"
            )));
        }
        if set.pending_reshare.is_some() {
            return Err(TxError::WrongState(
                "a reshare is running; the new signer set makes this key after it".into(),
            ));
        }
        if !set.signers.contains(&sender) {
            return Err(TxError::Unauthorised(
                "only a signer may confirm a network key".into(),
            ));
        }
        // Only the current signers' reports count: a reshare clears the rest.
        let same_scheme: Vec<&(AccountId, VerifyingKey)> = set
            .scheme_confirmations
            .iter()
            .filter(|(a, k)| k.scheme() == scheme && set.signers.contains(a))
            .collect();
        if same_scheme.iter().any(|(a, _)| *a == sender) {
            return Err(TxError::AlreadyExists(format!(
                "{scheme} confirmation from {sender}"
            )));
        }
        if let Some((_, first)) = same_scheme.first()
            && first != verifying_key
        {
            return Err(TxError::Invalid(format!(
                "mismatched confirmation: {verifying_key} differs from the {scheme} key already confirmed, {first}"
            )));
        }
        let complete = same_scheme.len() + 1 == set.signers.len();
        let set = &mut self.globals.signer_set;
        let mut events = vec![Event::JumpStartConfirmed { signer: sender }];
        if complete {
            set.scheme_confirmations
                .retain(|(_, k)| k.scheme() != scheme);
            set.scheme_keys.push(*verifying_key);
            set.scheme_keys.sort_by_key(|k| k.scheme());
            events.push(Event::NetworkKeyCreated {
                network_key: *verifying_key,
            });
        } else {
            set.scheme_confirmations.push((sender, *verifying_key));
        }
        Ok(events)
    }

    /// `confirm_reshare`: a new signer reports it holds a share of a network key that follows
    /// the reshare unchanged: the ECDSA key, or one of the reshare's `scheme_keys` (the tag says
    /// which). The reshare completes when every new signer confirmed the ECDSA key and every
    /// one of `scheme_keys`, whichever confirmation comes last.
    pub(super) fn confirm_reshare(
        &mut self,
        sender: AccountId,
        verifying_key: &VerifyingKey,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        let network_key = self.globals.signer_set.network_key;
        let Some(reshare) = self.globals.signer_set.pending_reshare.as_mut() else {
            return Err(TxError::WrongState("no reshare in progress".into()));
        };
        if !reshare.new_signers.contains(&sender) {
            return Err(TxError::Unauthorised(
                "only a new signer may confirm the reshare".into(),
            ));
        }
        let scheme = verifying_key.scheme();
        if scheme == KeyScheme::EcdsaSecp256k1 {
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
        } else {
            if reshare
                .scheme_confirmations
                .iter()
                .any(|(a, k)| *a == sender && k.scheme() == scheme)
            {
                return Err(TxError::AlreadyExists(format!(
                    "{scheme} confirmation from {sender}"
                )));
            }
            if !reshare.scheme_keys.iter().any(|k| k.scheme() == scheme) {
                return Err(TxError::Invalid(format!(
                    "no {scheme} network key follows this reshare; the new signer set makes one after it"
                )));
            }
            if !reshare.scheme_keys.contains(verifying_key) {
                return Err(TxError::Invalid(format!(
                    "mismatched confirmation: the {scheme} network key must not change"
                )));
            }
            reshare.scheme_confirmations.push((sender, *verifying_key));
        }
        let signers = reshare.new_signers.len();
        let complete = reshare.confirmations.len() == signers
            && reshare.scheme_keys.iter().all(|key| {
                reshare
                    .scheme_confirmations
                    .iter()
                    .filter(|(_, k)| k == key)
                    .count()
                    == signers
            });
        let mut events = vec![Event::ReshareConfirmed { signer: sender }];
        if complete {
            events.extend(self.complete_reshare(height));
        }
        Ok(events)
    }

    /// Installs the pending reshare's signer set, lets the signers that asked to leave go, and
    /// starts the next reshare if changes waited for this one. A changed threshold drops the
    /// other schemes' network keys (FROST keys keep their threshold, and no key is registered
    /// under them while it changes): the new set makes fresh ones (`confirm_jump_start`).
    fn complete_reshare(&mut self, height: BlockNumber) -> Vec<Event> {
        let Some(done) = self.globals.signer_set.pending_reshare.take() else {
            return vec![];
        };
        let set = &mut self.globals.signer_set;
        if done.new_threshold != set.threshold {
            set.scheme_keys.clear();
        }
        set.signers = done.new_signers.clone();
        set.threshold = done.new_threshold;
        // Half-confirmed keys of other schemes were made by the old set; the new set makes its own.
        set.scheme_confirmations.clear();
        let mut events = vec![Event::SignerSetChanged {
            signers: done.new_signers.clone(),
            threshold: done.new_threshold,
        }];
        // Signers that asked to leave go now that they hold no share.
        let leaving: Vec<ValidatorRecord> = self
            .validators
            .iter()
            .filter(|(account, v)| {
                v.status == ValidatorStatus::Leaving && !done.new_signers.contains(account)
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
        events.extend(self.rotate(height));
        events
    }

    /// Proven offences of `account` within the offence window ending at `height`.
    fn recent_offences(&self, account: &AccountId, height: BlockNumber) -> usize {
        let window = self.globals.parameters.offence_window;
        self.offences
            .iter()
            .filter(|(_, o)| {
                o.offender == *account
                    && o.proven
                    && o.recorded
                        .is_some_and(|at| height.0.saturating_sub(at.0) < window)
            })
            .count()
    }

    /// The distinct signers that reported `account` within the accusation window ending at
    /// `height`.
    fn recent_accusers(&self, account: &AccountId, height: BlockNumber) -> usize {
        let window = self.globals.parameters.accusation_window;
        let accusers: BTreeSet<&AccountId> = self
            .offences
            .iter()
            .filter(|(_, o)| {
                o.offender == *account && height.0.saturating_sub(o.reported.0) < window
            })
            .flat_map(|(_, o)| &o.reporters)
            .collect();
        accusers.len()
    }

    /// Starts a reshare when the signer set the ledger wants differs from the current one (see
    /// [`State::plan_rotation`]).
    pub(super) fn rotate(&mut self, height: BlockNumber) -> Vec<Event> {
        self.plan_rotation(height, None)
            .map(|reshare| self.start_reshare(reshare))
            .into_iter()
            .collect()
    }

    /// Makes `reshare` the pending one.
    pub(super) fn start_reshare(&mut self, reshare: PendingReshare) -> Event {
        let event = Event::ReshareStarted {
            new_signers: reshare.new_signers.clone(),
            new_threshold: reshare.new_threshold,
        };
        self.globals.signer_set.pending_reshare = Some(reshare);
        event
    }

    /// The reshare to start when the signer set the ledger wants differs from the current one,
    /// counting `leaving` as leaving already: signers leaving, slashed below the minimum stake,
    /// with too many recent proven offences or accused by `threshold` distinct signers go; eligible validators (by joining block, then
    /// account) fill up to `signer_count`; the threshold follows the parameters, unless FROST
    /// keys (Ed25519, BIP-340) are registered, which keep theirs. The other schemes' network
    /// keys follow the reshare when the threshold stays. None during a jump start or another
    /// reshare; the next change after it picks up what waited.
    pub(super) fn plan_rotation(
        &self,
        height: BlockNumber,
        leaving: Option<&AccountId>,
    ) -> Option<PendingReshare> {
        let set = &self.globals.signer_set;
        if set.jump_start != JumpStartStatus::Done || set.pending_reshare.is_some() {
            return None;
        }
        let params = &self.globals.parameters;
        let keygen_offenders = self.keygen_offenders();
        let must_go = |account: &AccountId| match self.validators.get(account) {
            None => true,
            Some(v) => {
                v.status == ValidatorStatus::Leaving
                    || leaving == Some(account)
                    || keygen_offenders.contains(account)
                    || v.stake < params.min_stake
                    || self.recent_offences(account, height) >= params.max_offences as usize
                    || self.recent_accusers(account, height) >= usize::from(set.threshold)
            }
        };
        let mut new_signers: Vec<AccountId> = set
            .signers
            .iter()
            .copied()
            .filter(|s| !must_go(s))
            .collect();
        let excluded = set.excluded_at(height.0);
        let mut candidates: Vec<&ValidatorRecord> = self
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
        // `set_parameters` refuses a threshold change while FROST keys are registered; this
        // holds even if the parameters disagree.
        let new_threshold = match self.has_frost_registrations() {
            true => set.threshold,
            false => params.threshold,
        };
        let unchanged = new_signers.len() == set.signers.len()
            && new_signers.iter().all(|s| set.signers.contains(s))
            && new_threshold == set.threshold;
        if unchanged || new_signers.len() < usize::from(new_threshold) {
            return None;
        }
        Some(PendingReshare {
            started: height,
            old_signers: set.signers.clone(),
            new_signers,
            new_threshold,
            confirmations: vec![],
            scheme_keys: match new_threshold == set.threshold {
                true => set.scheme_keys.clone(),
                false => vec![],
            },
            scheme_confirmations: vec![],
        })
    }
}
