//! Balances and `transfer`.

use sigil_primitives::AccountId;

use super::{State, TxError};
use crate::types::{Account, Balance, Event};

impl State {
    /// The balance of `account` (zero if it has none).
    pub(super) fn balance(&self, account: &AccountId) -> Balance {
        self.accounts.get(account).map(|a| a.balance).unwrap_or(0)
    }

    /// Sets the balance of `account`, keeping its nonce.
    pub(super) fn set_balance(&mut self, account: AccountId, balance: Balance) {
        let current = self.accounts.get(&account).cloned().unwrap_or_default();
        self.accounts
            .insert(account, Account { balance, ..current });
    }

    /// `transfer`: moves `amount` from the sender to `to`.
    pub(super) fn transfer(
        &mut self,
        sender: AccountId,
        to: AccountId,
        amount: Balance,
    ) -> Result<Vec<Event>, TxError> {
        let have = self.balance(&sender);
        if have < amount {
            return Err(TxError::InsufficientBalance { need: amount, have });
        }
        if to != sender {
            self.set_balance(sender, have - amount);
            let to_balance = self.balance(&to);
            self.set_balance(to, to_balance.saturating_add(amount));
        }
        Ok(vec![Event::Transferred {
            from: sender,
            to,
            amount,
        }])
    }
}
