//! Balances, deposits and `transfer`.

use sigil_primitives::AccountId;

use super::{State, TxError};
use crate::types::{Account, Balance, Event};

impl State {
    /// The spendable balance of `account` (zero if it has none).
    pub fn balance(&self, account: &AccountId) -> Balance {
        self.accounts.get(account).map(|a| a.balance).unwrap_or(0)
    }

    /// Sets the balance of `account`, keeping its nonce.
    pub(super) fn set_balance(&mut self, account: AccountId, balance: Balance) {
        let current = self.accounts.get(&account).cloned().unwrap_or_default();
        self.accounts
            .insert(account, Account { balance, ..current });
    }

    /// Fails unless `account` can spend `need`.
    pub(super) fn require_balance(
        &self,
        account: &AccountId,
        need: Balance,
    ) -> Result<(), TxError> {
        let have = self.balance(account);
        if have < need {
            return Err(TxError::InsufficientBalance { need, have });
        }
        Ok(())
    }

    /// Moves `deposit` from `account`'s balance to its reserve (checked by the caller).
    pub(super) fn reserve(&mut self, account: AccountId, deposit: Balance) {
        let current = self.accounts.get(&account).cloned().unwrap_or_default();
        self.accounts.insert(
            account,
            Account {
                balance: current.balance - deposit,
                reserved: current.reserved.saturating_add(deposit),
                ..current
            },
        );
    }

    /// Returns `deposit` from `account`'s reserve to its balance.
    pub(super) fn release(&mut self, account: AccountId, deposit: Balance) {
        let current = self.accounts.get(&account).cloned().unwrap_or_default();
        self.accounts.insert(
            account,
            Account {
                balance: current.balance.saturating_add(deposit),
                reserved: current.reserved.saturating_sub(deposit),
                ..current
            },
        );
    }

    /// Moves a deposit held for `from` to `to`'s reserve, with the item it is held for.
    pub(super) fn hand_over(&mut self, from: AccountId, to: AccountId, deposit: Balance) {
        if from == to {
            return;
        }
        let giver = self.accounts.get(&from).cloned().unwrap_or_default();
        self.accounts.insert(
            from,
            Account {
                reserved: giver.reserved.saturating_sub(deposit),
                ..giver
            },
        );
        let taker = self.accounts.get(&to).cloned().unwrap_or_default();
        self.accounts.insert(
            to,
            Account {
                reserved: taker.reserved.saturating_add(deposit),
                ..taker
            },
        );
    }

    /// `transfer`: moves `amount` from the sender to `to`.
    pub(super) fn transfer(
        &mut self,
        sender: AccountId,
        to: AccountId,
        amount: Balance,
    ) -> Result<Vec<Event>, TxError> {
        self.require_balance(&sender, amount)?;
        if to != sender {
            let have = self.balance(&sender);
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
