//! Governance: `set_parameters`.

use sigil_primitives::{AccountId, BlockNumber};

use super::{State, TxError};
use crate::types::{Event, Parameters};

impl State {
    /// Fails unless `sender` is the governance account.
    pub(super) fn require_governance(&self, sender: &AccountId) -> Result<(), TxError> {
        if *sender != self.globals.governance {
            return Err(TxError::Unauthorised(
                "only the governance account may do this".into(),
            ));
        }
        Ok(())
    }

    /// `set_parameters`: governance replaces the parameters; a changed signer count or threshold
    /// starts a reshare. The threshold cannot change while FROST keys (Ed25519, BIP-340) are
    /// registered: their network keys keep their threshold when the signer set changes.
    pub(super) fn set_parameters(
        &mut self,
        sender: AccountId,
        parameters: &Parameters,
        height: BlockNumber,
    ) -> Result<Vec<Event>, TxError> {
        self.require_governance(&sender)?;
        parameters.validate().map_err(TxError::Invalid)?;
        if parameters.threshold != self.globals.parameters.threshold
            && self.has_frost_registrations()
        {
            return Err(TxError::Invalid(
                "the threshold cannot change while ed25519 or bip340 keys are registered: FROST keeps its threshold when the signer set changes".into(),
            ));
        }
        self.globals.parameters = parameters.clone();
        let mut events = vec![Event::ParametersChanged {
            parameters: parameters.clone(),
        }];
        events.extend(self.rotate(height));
        Ok(events)
    }
}
