//! Validators: `validate`, `change_endpoint`, `change_keys` and `leave`.

use sigil_primitives::{AccountId, BlockNumber, Endpoint, X25519PublicKey};

use super::{State, TxError};
use crate::types::{Balance, Event, ValidatorRecord, ValidatorStatus};

fn not_a_validator(account: AccountId) -> TxError {
    TxError::NotFound(format!("validator {account}"))
}

impl State {
    /// `validate`: the sender stakes `stake` and joins as an active validator.
    pub(super) fn validate(
        &mut self,
        sender: AccountId,
        x25519: X25519PublicKey,
        endpoint: &Endpoint,
        stake: Balance,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        if self.validators.contains(&sender) {
            return Err(TxError::AlreadyExists(format!("validator {sender}")));
        }
        let min_stake = self.globals.parameters.min_stake;
        if stake < min_stake {
            return Err(TxError::Invalid(format!(
                "stake {stake} is below the minimum {min_stake}"
            )));
        }
        let have = self.balance(&sender);
        if have < stake {
            return Err(TxError::InsufficientBalance { need: stake, have });
        }
        self.set_balance(sender, have - stake);
        let info = ValidatorRecord {
            account: sender,
            x25519,
            endpoint: endpoint.clone(),
            stake,
            status: ValidatorStatus::Active,
            joined: height,
        };
        self.validators.insert(sender, info.clone());
        let mut events = vec![Event::ValidatorJoined { info }];
        events.extend(self.rotate(height));
        Ok(events)
    }

    /// `change_endpoint`: a validator moves.
    pub(super) fn change_endpoint(
        &mut self,
        sender: AccountId,
        endpoint: &Endpoint,
    ) -> Result<Vec<Event>, TxError> {
        let info = self
            .validators
            .get_mut(&sender)
            .ok_or_else(|| not_a_validator(sender))?;
        info.endpoint = endpoint.clone();
        Ok(vec![Event::ValidatorChanged { info: info.clone() }])
    }

    /// `change_keys`: a validator replaces its X25519 key.
    pub(super) fn change_keys(
        &mut self,
        sender: AccountId,
        x25519: X25519PublicKey,
    ) -> Result<Vec<Event>, TxError> {
        let info = self
            .validators
            .get_mut(&sender)
            .ok_or_else(|| not_a_validator(sender))?;
        info.x25519 = x25519;
        Ok(vec![Event::ValidatorChanged { info: info.clone() }])
    }

    /// `leave`: a validator outside the signer set leaves at once with its stake; a signer
    /// leaves through a reshare that rotates it out. Either way its replica leaves the
    /// consensus set from the next epoch.
    pub(super) fn leave(
        &mut self,
        sender: AccountId,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        let Some(info) = self.validators.get(&sender).cloned() else {
            // A genesis replica that never validated leaves consensus only.
            let events = self.drop_replica(sender);
            return match events.is_empty() {
                true => Err(not_a_validator(sender)),
                false => Ok(events),
            };
        };
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
            let mut events = self.leave_signer_set(info, height)?;
            events.extend(self.drop_replica(sender));
            return Ok(events);
        }
        self.validators.remove(&sender);
        let have = self.balance(&sender);
        self.set_balance(sender, have.saturating_add(info.stake));
        let mut events = vec![Event::ValidatorLeft { account: sender }];
        events.extend(self.drop_replica(sender));
        Ok(events)
    }

    /// A signer is marked leaving only if a reshare without it can start now, or one is running
    /// and the next rotation after it will drop the signer.
    fn leave_signer_set(
        &mut self,
        info: ValidatorRecord,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        let sender = info.account;
        if info.status == ValidatorStatus::Leaving {
            return Err(TxError::AlreadyExists(format!(
                "{sender} is already leaving"
            )));
        }
        let running = self.globals.signer_set.pending_reshare.is_some();
        let reshare = self.plan_rotation(height, Some(&sender));
        if reshare.is_none() && !running {
            return Err(TxError::WrongState(
                "no validator can replace this signer; it cannot leave yet".into(),
            ));
        }
        let info = ValidatorRecord {
            status: ValidatorStatus::Leaving,
            ..info
        };
        self.validators.insert(sender, info.clone());
        let mut events = vec![Event::ValidatorChanged { info }];
        events.extend(reshare.map(|r| self.start_reshare(r)));
        Ok(events)
    }
}
