//! Deterministic committee selection: every signer recomputes the committee for a request from
//! public data, so a relayer cannot pick its own.
//!
//! Each eligible signer gets the score
//! `SHA-256("sigil/v1/committee" ‖ block_hash ‖ request_digest ‖ attempt (u32 BE) ‖ account id)`;
//! the `threshold` signers with the lowest scores (compared as big-endian integers, ties
//! impossible in practice and broken by account id) form the committee, returned sorted by
//! account id.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use sigil_primitives::AccountId;

/// Domain separation for committee scores.
const COMMITTEE_DOMAIN: &[u8] = b"sigil/v1/committee";

/// Why no committee can be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitteeError {
    /// Too few signers remain once excluded ones are skipped.
    #[error("only {eligible} eligible signers for a committee of {threshold}")]
    NotEnoughSigners {
        /// Signers left after exclusions.
        eligible: usize,
        /// The committee size needed.
        threshold: usize,
    },
    /// A threshold of zero.
    #[error("the threshold must be at least 1")]
    ZeroThreshold,
}

/// The public inputs of one committee choice.
#[derive(Debug, Clone, Copy)]
pub struct CommitteeSeed<'a> {
    /// Hash of the block the request names.
    pub block_hash: &'a [u8; 32],
    /// Digest identifying the request (the same at the relayer and every signer).
    pub request_digest: &'a [u8; 32],
    /// 0 for the first try; incremented when a retry needs a new committee.
    pub attempt: u32,
}

fn score(seed: &CommitteeSeed<'_>, account: &AccountId) -> [u8; 32] {
    Sha256::new()
        .chain_update(COMMITTEE_DOMAIN)
        .chain_update(seed.block_hash)
        .chain_update(seed.request_digest)
        .chain_update(seed.attempt.to_be_bytes())
        .chain_update(account.as_bytes())
        .finalize()
        .into()
}

/// Picks `threshold` signers from `signers`, skipping `excluded` (for example signers with
/// recent offences).
pub fn select_committee(
    signers: &BTreeSet<AccountId>,
    excluded: &BTreeSet<AccountId>,
    threshold: usize,
    seed: &CommitteeSeed<'_>,
) -> Result<BTreeSet<AccountId>, CommitteeError> {
    if threshold == 0 {
        return Err(CommitteeError::ZeroThreshold);
    }
    let mut scored: Vec<([u8; 32], AccountId)> = signers
        .difference(excluded)
        .map(|account| (score(seed, account), *account))
        .collect();
    if scored.len() < threshold {
        return Err(CommitteeError::NotEnoughSigners {
            eligible: scored.len(),
            threshold,
        });
    }
    scored.sort_unstable();
    Ok(scored
        .into_iter()
        .take(threshold)
        .map(|(_, account)| account)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeSeed;

    fn signers(n: usize) -> BTreeSet<AccountId> {
        (0..n)
            .map(|i| {
                NodeSeed::dev(&format!("signer-{i}"))
                    .account_keypair()
                    .account_id()
            })
            .collect()
    }

    fn seed(block: u8, request: u8, attempt: u32) -> ([u8; 32], [u8; 32], u32) {
        ([block; 32], [request; 32], attempt)
    }

    fn pick(
        set: &BTreeSet<AccountId>,
        excluded: &BTreeSet<AccountId>,
        t: usize,
        (block, request, attempt): ([u8; 32], [u8; 32], u32),
    ) -> Result<BTreeSet<AccountId>, CommitteeError> {
        let seed = CommitteeSeed {
            block_hash: &block,
            request_digest: &request,
            attempt,
        };
        select_committee(set, excluded, t, &seed)
    }

    #[test]
    fn the_same_inputs_give_the_same_committee_of_the_right_size() {
        let set = signers(7);
        let none = BTreeSet::new();
        let first = pick(&set, &none, 3, seed(1, 2, 0)).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.is_subset(&set));
        assert_eq!(first, pick(&set, &none, 3, seed(1, 2, 0)).unwrap());
    }

    #[test]
    fn block_request_and_attempt_each_change_the_choice_and_spread_the_load() {
        let set = signers(7);
        let none = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut committees = BTreeSet::new();
        for block in 0..8 {
            for request in 0..8 {
                for attempt in 0..2 {
                    let committee = pick(&set, &none, 3, seed(block, request, attempt)).unwrap();
                    seen.extend(committee.iter().copied());
                    committees.insert(committee);
                }
            }
        }
        // Every signer serves, and many different committees occur (35 are possible).
        assert_eq!(seen, set);
        assert!(committees.len() > 20, "{}", committees.len());
    }

    #[test]
    fn excluded_signers_are_skipped_and_too_few_is_an_error() {
        let set = signers(5);
        let full = pick(&set, &BTreeSet::new(), 3, seed(3, 4, 0)).unwrap();
        let offender = *full.iter().next().unwrap();
        let excluded = BTreeSet::from([offender]);
        let without = pick(&set, &excluded, 3, seed(3, 4, 0)).unwrap();
        assert!(!without.contains(&offender));
        assert_eq!(without.len(), 3);
        // The others keep their places: only the offender is replaced.
        assert_eq!(full.intersection(&without).count(), 2);

        let many: BTreeSet<_> = set.iter().take(3).copied().collect();
        assert_eq!(
            pick(&set, &many, 3, seed(3, 4, 0)),
            Err(CommitteeError::NotEnoughSigners {
                eligible: 2,
                threshold: 3
            })
        );
        assert_eq!(
            pick(&set, &BTreeSet::new(), 0, seed(3, 4, 0)),
            Err(CommitteeError::ZeroThreshold)
        );
    }
}
