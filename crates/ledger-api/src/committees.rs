//! Who committees leave out: proven offenders, and one side of every live dispute.
//!
//! An unproven report is one signer's word against another's. Neither is punished; the ledger
//! records a dispute and committees keep the two apart. Which of them sits out is decided by
//! [`SignerSet::sidelined_at`]: the signer in the most disputes goes first, so a faulty signer
//! that several peers accuse is left out, while a signer that accuses peers to push them out
//! ends up left out itself.

use std::collections::{BTreeMap, BTreeSet};

use sigil_primitives::AccountId;

use crate::types::{Dispute, SignerSet};

impl SignerSet {
    /// The proven offenders excluded from committees at block `height`.
    pub fn excluded_at(&self, height: u64) -> BTreeSet<AccountId> {
        self.excluded
            .iter()
            .filter(|e| e.until.0 > height)
            .map(|e| e.account)
            .collect()
    }

    /// The disputes between current signers that still count at block `height`.
    pub fn disputes_at(&self, height: u64) -> impl Iterator<Item = &Dispute> {
        let signers: BTreeSet<&AccountId> = self.signers.iter().collect();
        self.disputes.iter().filter(move |d| {
            d.until.0 > height && signers.contains(&d.accuser) && signers.contains(&d.accused)
        })
    }

    /// Who a relayer may leave out of a committee at block `height` (what a committee member
    /// accepts): proven offenders and either side of a live dispute.
    pub fn excludable_at(&self, height: u64) -> BTreeSet<AccountId> {
        let mut excludable = self.excluded_at(height);
        for dispute in self.disputes_at(height) {
            excludable.extend([dispute.accuser, dispute.accused]);
        }
        excludable
    }

    /// Whom committees leave out at block `height`: the proven offenders, then, while a live
    /// dispute joins two signers still in, the signer with the most dispute partners (ties: the
    /// one that made more accusations, then the lower account id), as long as `threshold`
    /// signers remain.
    pub fn sidelined_at(&self, height: u64) -> BTreeSet<AccountId> {
        let mut out = self.excluded_at(height);
        let disputes: Vec<&Dispute> = self.disputes_at(height).collect();
        let floor = usize::from(self.threshold);
        loop {
            let live = disputes
                .iter()
                .filter(|d| !out.contains(&d.accuser) && !out.contains(&d.accused));
            let Some(next) = most_disputed(live) else {
                return out;
            };
            if self.signers.len().saturating_sub(out.len() + 1) < floor {
                return out;
            }
            out.insert(next);
        }
    }
}

/// The signer of `disputes` with the most distinct partners, then the most accusations made,
/// then the lowest account id.
fn most_disputed<'a>(disputes: impl Iterator<Item = &'a &'a Dispute>) -> Option<AccountId> {
    let mut partners: BTreeMap<AccountId, BTreeSet<AccountId>> = BTreeMap::new();
    let mut accusations: BTreeMap<AccountId, usize> = BTreeMap::new();
    for dispute in disputes {
        partners
            .entry(dispute.accuser)
            .or_default()
            .insert(dispute.accused);
        partners
            .entry(dispute.accused)
            .or_default()
            .insert(dispute.accuser);
        *accusations.entry(dispute.accuser).or_default() += 1;
    }
    partners
        .iter()
        .max_by(|(a, pa), (b, pb)| {
            let made = |x: &AccountId| accusations.get(x).copied().unwrap_or(0);
            (pa.len(), made(a))
                .cmp(&(pb.len(), made(b)))
                .then_with(|| b.cmp(a))
        })
        .map(|(account, _)| *account)
}

#[cfg(test)]
mod tests {
    use sigil_primitives::BlockNumber;

    use super::*;
    use crate::types::{Exclusion, JumpStartStatus};

    /// Dev accounts numbered in ascending account-id order.
    fn account(n: u8) -> AccountId {
        let mut accounts: Vec<AccountId> = (0..10)
            .map(|i| {
                sigil_crypto::NodeSeed::dev(&format!("committees-{i}"))
                    .account_keypair()
                    .account_id()
            })
            .collect();
        accounts.sort();
        accounts[usize::from(n)]
    }

    fn set(signers: u8, threshold: u16, disputes: &[(u8, u8)]) -> SignerSet {
        SignerSet {
            signers: (1..=signers).map(account).collect(),
            threshold,
            network_key: None,
            scheme_keys: vec![],
            scheme_confirmations: vec![],
            jump_start: JumpStartStatus::Done,
            pending_reshare: None,
            excluded: vec![],
            disputes: disputes
                .iter()
                .map(|(accuser, accused)| Dispute {
                    accuser: account(*accuser),
                    accused: account(*accused),
                    until: BlockNumber(10),
                })
                .collect(),
        }
    }

    fn ids(ns: &[u8]) -> BTreeSet<AccountId> {
        ns.iter().copied().map(account).collect()
    }

    #[test]
    fn a_lone_accusation_sidelines_the_accuser_not_the_accused() {
        let set = set(4, 2, &[(1, 2)]);
        assert_eq!(set.sidelined_at(0), ids(&[1]));
        assert_eq!(set.excludable_at(0), ids(&[1, 2]));
    }

    #[test]
    fn a_signer_accused_by_two_peers_is_sidelined_and_they_are_not() {
        let set = set(4, 2, &[(1, 3), (2, 3)]);
        assert_eq!(set.sidelined_at(0), ids(&[3]));
    }

    #[test]
    fn a_signer_accusing_many_peers_sidelines_only_itself() {
        let set = set(5, 3, &[(1, 2), (1, 3), (1, 4)]);
        assert_eq!(set.sidelined_at(0), ids(&[1]));
    }

    #[test]
    fn every_dispute_loses_one_side_while_the_threshold_remains() {
        // Mutual accusations: one of the two, deterministically.
        let mutual = set(3, 2, &[(1, 2), (2, 1)]);
        assert_eq!(mutual.sidelined_at(0), ids(&[1]));
        // Two disjoint disputes among four 2-of-4 signers: one side of each.
        let two = set(4, 2, &[(1, 2), (3, 4)]);
        assert_eq!(two.sidelined_at(0), ids(&[1, 3]));
        // In a 3-of-4 set only one can go; the second dispute stays.
        let tight = set(4, 3, &[(1, 2), (3, 4)]);
        assert_eq!(tight.sidelined_at(0), ids(&[1]));
    }

    #[test]
    fn expired_disputes_and_departed_signers_do_not_count() {
        let mut set = set(4, 2, &[(1, 2), (9, 3)]);
        assert_eq!(set.sidelined_at(0), ids(&[1]), "9 is no signer");
        assert!(set.sidelined_at(10).is_empty(), "expired at 10");
        set.excluded.push(Exclusion {
            account: account(4),
            until: BlockNumber(5),
        });
        assert_eq!(set.sidelined_at(0), ids(&[1, 4]));
        assert_eq!(set.excludable_at(0), ids(&[1, 2, 4]));
    }
}
