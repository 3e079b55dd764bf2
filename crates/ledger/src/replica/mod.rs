//! The replicated ledger: every validator runs a replica of the same deterministic state
//! machine, and Commonware's Simplex consensus (with `marshal` for finality and backfill)
//! orders its blocks. This module is the only place that knows Commonware; the ledger sees it
//! as a [`crate::producer::BlockSource`] of finalized blocks.
//!
//! A consensus block carries transactions and a checkpoint: the height and state digest of
//! the last ledger block its proposer had executed. Voters vote for a block only if the
//! checkpoint matches what they stored at that height, and every replica checks it again when
//! it executes the finalized block, so a replica whose state diverged stops with
//! [`crate::chain::ChainError::Diverged`] instead of serving wrong state.

pub mod app;
pub mod block;
pub mod engine;
mod epochs;
pub mod evidence;
mod gossip;
pub mod network;
pub mod source;

#[cfg(test)]
mod tests;

/// The consensus signing scheme: ed25519 votes, attributable, so conflicting votes are
/// evidence against their signer.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
