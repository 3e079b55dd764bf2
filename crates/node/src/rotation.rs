//! Rotation: when the ledger changes the signer set, old and new signers move the FROST keys
//! and reshare the unchanged ECDSA network key, new signers generate aux data together and
//! confirm every key; once the ledger switches, new signers make the new shares current and
//! signers rotated out delete theirs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, JumpStartStatus, PendingReshare};
use sigil_mpc::{AuxData, KeyShare, ResharePlan, TransportChannel};
use sigil_primitives::AccountId;
use sigil_transport::SessionId;

use crate::node::{HeldKey, Inner};
use crate::scheme_keys::RotationParties;
use crate::view::View;

/// How long one reshare attempt may take: a failed attempt is tried again, with new session
/// ids, once the ledger's clock enters the next period of this length after the reshare began.
const RESHARE_ATTEMPT_MS: u64 = 10 * 60 * 1000;

/// This node's progress in the reshare started at block `started`.
#[derive(Debug, Default)]
pub(crate) struct ReshareState {
    started: u64,
    started_timestamp_ms: Option<u64>,
    running: bool,
    done: bool,
    tried: Option<u64>,
}

/// Session id of attempt `attempt` of the reshare the ledger started at `block` on
/// `chain_id`; `phase` separates the resharing from the new signers' aux-data generation.
fn reshare_session_id(chain_id: &str, block: u64, attempt: u64, phase: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"sigil/v1/reshare")
        .chain_update((chain_id.len() as u32).to_be_bytes())
        .chain_update(chain_id.as_bytes())
        .chain_update(block.to_be_bytes())
        .chain_update(attempt.to_be_bytes())
        .chain_update(phase)
        .finalize()
        .into()
}

impl Inner {
    /// Acts on the signer set in `view`: settles shares after a switch and takes part in a
    /// pending reshare that involves this node.
    pub(crate) fn act_on_rotation(self: Arc<Self>) {
        let view = self.view();
        if view.signer_set.jump_start != JumpStartStatus::Done {
            return;
        }
        if let Err(error) = self.settle_shares(&view) {
            tracing::error!(error = format!("{error:#}"), "cannot settle key shares");
        }
        let me = self.me();
        let Some(reshare) = view.signer_set.pending_reshare.clone() else {
            return;
        };
        let confirmed_all = reshare.confirmations.contains(&me)
            && reshare
                .scheme_keys
                .iter()
                .all(|k| reshare.scheme_confirmations.contains(&(me, *k)));
        if confirmed_all
            || !(reshare.old_signers.contains(&me) || reshare.new_signers.contains(&me))
        {
            return;
        }
        let started = reshare.started.0;
        {
            let mut state = self
                .key_work
                .reshare
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if state.started != started {
                *state = ReshareState {
                    started,
                    ..ReshareState::default()
                };
            }
            if state.running || state.done {
                return;
            }
            state.running = true;
        }
        tokio::spawn(async move {
            let outcome = match self.reshare_attempt(started, &view).await {
                Ok(None) => Ok(false),
                Ok(Some(attempt)) => self
                    .reshare(&reshare, &view, attempt)
                    .await
                    .map(|()| true)
                    .with_context(|| format!("reshare attempt {attempt}")),
                Err(error) => Err(error),
            };
            let mut state = self
                .key_work
                .reshare
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if state.started == started {
                state.running = false;
                match outcome {
                    Ok(done) => state.done = done,
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "reshare failed; trying again in the next attempt period"
                    ),
                }
            }
        });
    }

    /// The attempt due now (from the ledger's clock), or `None` if this node already tried it.
    async fn reshare_attempt(&self, started: u64, view: &View) -> anyhow::Result<Option<u64>> {
        let known = self
            .key_work
            .reshare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started_timestamp_ms;
        let started_ms = match known {
            Some(ms) => ms,
            None => {
                let block = self
                    .ledger()
                    .rpc()
                    .block(started)
                    .await?
                    .context("the reshare's block is missing")?;
                block.header.timestamp_ms
            }
        };
        let attempt = view.head_timestamp_ms.saturating_sub(started_ms) / RESHARE_ATTEMPT_MS;
        let mut state = self
            .key_work
            .reshare
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if state.started != started {
            return Ok(None);
        }
        state.started_timestamp_ms = Some(started_ms);
        if state.tried.is_some_and(|tried| tried >= attempt) {
            return Ok(None);
        }
        state.tried = Some(attempt);
        Ok(Some(attempt))
    }

    /// After a switch: a reshared share whose holders are the signer set becomes current; a
    /// node outside the set (and not joining it) deletes what it holds.
    fn settle_shares(&self, view: &View) -> anyhow::Result<()> {
        let me = self.me();
        let signers: BTreeSet<AccountId> = view.signer_set.signers.iter().copied().collect();
        self.settle_frost_shares(&signers)?;
        if let Some((share, aux)) = self.keys.identity.next_key_share()?
            && share.holders() == &signers
            && usize::from(view.signer_set.threshold) == share.threshold()
        {
            self.keys.identity.promote_next_key_share()?;
            *self.keys.held.write().unwrap_or_else(|e| e.into_inner()) =
                Some(Arc::new(HeldKey { share, aux }));
            tracing::info!(
                signers = signers.len(),
                "the reshared key share is now current"
            );
            return Ok(());
        }
        let joining = view
            .signer_set
            .pending_reshare
            .as_ref()
            .is_some_and(|r| r.new_signers.contains(&me));
        if !signers.contains(&me) && !joining && self.held_key().is_some() {
            self.keys.identity.delete_key_shares()?;
            *self.keys.held.write().unwrap_or_else(|e| e.into_inner()) = None;
            self.keys
                .frost
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.nonces
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            tracing::warn!("rotated out of the signer set: key shares and nonces deleted");
        }
        Ok(())
    }

    /// This node's part of a reshare: first the FROST keys' rotation (fast, so every party
    /// starts it together), then the ECDSA key's: hand over (old signer), receive (new
    /// signer), generate aux data with the other new signers, keep the new share and confirm.
    async fn reshare(
        &self,
        reshare: &PendingReshare,
        view: &View,
        attempt: u64,
    ) -> anyhow::Result<()> {
        let me = self.me();
        let old: BTreeSet<AccountId> = reshare.old_signers.iter().copied().collect();
        let new: BTreeSet<AccountId> = reshare.new_signers.iter().copied().collect();
        let old_threshold = usize::from(view.signer_set.threshold);
        // Signers leaving for an offence may be down: rely on the ones that stay when enough do.
        let staying: BTreeSet<AccountId> = old.intersection(&new).copied().collect();
        let old_holders = if staying.len() >= old_threshold {
            staying
        } else {
            old
        };
        let participants: BTreeSet<AccountId> = old_holders.union(&new).copied().collect();
        if !participants.contains(&me) {
            return Ok(());
        }
        let chain_id = self.ledger().chain_id().to_string();
        let block = reshare.started.0;
        let parties = RotationParties {
            helpers: &old_holders,
            new: &new,
            threshold: view.signer_set.threshold,
        };
        self.rotate_scheme_keys(reshare, &parties, |scheme| {
            let phase = format!("frost-{}", scheme.key_scheme());
            SessionId::new(reshare_session_id(
                &chain_id,
                block,
                attempt,
                phase.as_bytes(),
            ))
        })
        .await?;
        if reshare.confirmations.contains(&me) {
            return Ok(());
        }
        let network_key = view
            .signer_set
            .network_key
            .context("the ledger holds no network key")?;
        let new_share = match self.keys.identity.next_key_share()? {
            Some((share, aux)) if share.holders() == &new => Some((share, aux)),
            _ => None,
        };
        let (share, _) = match new_share {
            Some(pair) => {
                tracing::info!("already holding the reshared share; confirming it");
                pair
            }
            None => {
                let plan = ResharePlan {
                    verifying_key: network_key,
                    old_holders,
                    old_threshold,
                    new_holders: new,
                    new_threshold: usize::from(reshare.new_threshold),
                };
                let ids = (
                    reshare_session_id(&chain_id, block, attempt, b"share"),
                    reshare_session_id(&chain_id, block, attempt, b"aux"),
                );
                match self.run_reshare(&plan, &participants, ids).await? {
                    Some(pair) => pair,
                    // An old signer that holds no new share has handed its share over.
                    None => return Ok(()),
                }
            }
        };
        self.submit(Call::ConfirmReshare {
            verifying_key: share.verifying_key(),
        })
        .await
        .context("confirm_reshare was refused")?;
        tracing::info!("reshare confirmed");
        Ok(())
    }

    /// Runs the reshare sessions: hands this node's old share over and, for a new signer,
    /// receives a share of the same key and generates its aux data with the other new
    /// signers, storing both as the next key share. `None` for an old signer leaving.
    async fn run_reshare(
        &self,
        plan: &ResharePlan,
        participants: &BTreeSet<AccountId>,
        (share_id, aux_id): ([u8; 32], [u8; 32]),
    ) -> anyhow::Result<Option<(KeyShare, AuxData)>> {
        let old_share = if plan.old_holders.contains(&self.me()) {
            let held = self
                .held_key()
                .context("this old signer holds no key share")?;
            Some(held.share.clone())
        } else {
            None
        };
        let members: Vec<AccountId> = participants.iter().copied().collect();
        let session = self
            .transport
            .open_session(SessionId::new(share_id), &members)
            .context("cannot open the reshare session")?;
        tracing::info!(
            old = plan.old_holders.len(),
            new = plan.new_holders.len(),
            threshold = plan.new_threshold,
            "resharing the network key"
        );
        let started = Instant::now();
        let mut channel = TransportChannel(session);
        let (share, _) = self
            .engine
            .reshare(&share_id, old_share.as_ref(), plan, &mut channel)
            .await
            .context("the reshare failed")?;
        drop(channel);
        let Some(share) = share else {
            tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "handed over the key share"
            );
            return Ok(None);
        };
        let members: Vec<AccountId> = plan.new_holders.iter().copied().collect();
        let session = self
            .transport
            .open_session(SessionId::new(aux_id), &members)
            .context("cannot open the aux-data session")?;
        let mut channel = TransportChannel(session);
        let (aux, _) = self
            .engine
            .generate_aux_data(&aux_id, &plan.new_holders, &mut channel)
            .await
            .context("aux-data generation for the new signer set failed")?;
        if share.verifying_key() != plan.verifying_key {
            anyhow::bail!("the reshare produced a share of another key");
        }
        self.keys.identity.store_next_key_share(&share, &aux)?;
        metrics::histogram!("sigil_node_reshare_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "received a share of the unchanged network key"
        );
        Ok(Some((share, aux)))
    }
}
