//! Jump start: when the ledger chose this node as a signer, run the network DKG with the other
//! chosen signers over the transport, store the share, and confirm the key on the ledger.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use sigil_client::types::{Call, JumpStartStatus};
use sigil_mpc::{AuxData, KeyShare};
use sigil_primitives::AccountId;
use sigil_transport::SessionId;

use crate::node::{HeldKey, Inner};
use sigil_mpc::TransportChannel;

/// The DKG session id of the jump start chosen at `block` on `chain_id`.
fn dkg_session_id(chain_id: &str, block: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"sigil/v1/jump-start")
        .chain_update((chain_id.len() as u32).to_be_bytes())
        .chain_update(chain_id.as_bytes())
        .chain_update(block.to_be_bytes())
        .finalize()
        .into()
}

impl Inner {
    /// Starts whatever the latest view asks of this node: its part of a jump start and of the
    /// other schemes' key generation.
    pub(crate) fn act_on_ledger(self: Arc<Self>) {
        let view = self.view();
        let me = self.me();
        self.make_scheme_keys(&view);
        self.refill_nonces(&view);
        let JumpStartStatus::InProgress {
            block,
            confirmations,
        } = &view.signer_set.jump_start
        else {
            return;
        };
        if !view.is_signer(&me) || confirmations.iter().any(|(a, _)| *a == me) {
            return;
        }
        {
            let mut running = self
                .key_work
                .jump_start_running
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *running {
                return;
            }
            *running = true;
        }
        let block = block.0;
        let signers: BTreeSet<AccountId> = view.signer_set.signers.iter().copied().collect();
        let threshold = usize::from(view.signer_set.threshold);
        tokio::spawn(async move {
            if let Err(error) = self.jump_start(block, &signers, threshold).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "jump start failed; will retry at the next block"
                );
            }
            *self
                .key_work
                .jump_start_running
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = false;
        });
    }

    async fn jump_start(
        &self,
        block: u64,
        signers: &BTreeSet<AccountId>,
        threshold: usize,
    ) -> anyhow::Result<()> {
        let held = match self.held_key() {
            Some(key) if key.share.holders() == signers && key.share.threshold() == threshold => {
                tracing::info!("already holding a share for this signer set; confirming it");
                key
            }
            _ => {
                let (share, aux) = match self.fixture_share(signers, threshold)? {
                    Some(pair) => pair,
                    None => self.run_dkg(block, signers, threshold).await?,
                };
                self.keys.identity.store_key_share(&share, &aux)?;
                let key = Arc::new(HeldKey { share, aux });
                *self.keys.held.write().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
                key
            }
        };
        let verifying_key = held.share.verifying_key();
        // Through the node's one transaction queue: the other schemes' confirmations run too.
        self.submit(Call::ConfirmJumpStart { verifying_key })
            .await
            .context("confirm_jump_start was refused")?;
        tracing::info!(%verifying_key, "jump start confirmed");
        Ok(())
    }

    /// The fixture share for this dev identity, if fixtures were given and match the set.
    fn fixture_share(
        &self,
        signers: &BTreeSet<AccountId>,
        threshold: usize,
    ) -> anyhow::Result<Option<(KeyShare, AuxData)>> {
        let (Some(dir), Some(name)) = (&self.config.dev_key_shares, &self.config.dev_name) else {
            return Ok(None);
        };
        let read = |ext: &str| {
            let path = dir.join(format!("{name}.{ext}"));
            std::fs::read(&path).with_context(|| format!("cannot read fixture {}", path.display()))
        };
        let share = KeyShare::from_bytes(&read("share")?).context("fixture key share")?;
        let aux = AuxData::from_bytes(&read("aux")?).context("fixture aux data")?;
        if share.owner() != self.me()
            || share.holders() != signers
            || share.threshold() != threshold
        {
            anyhow::bail!(
                "the fixture share in {} is for another signer set or threshold than the ledger chose",
                dir.display()
            );
        }
        tracing::warn!("using a pre-generated fixture key share: for tests only, not secure");
        Ok(Some((share, aux)))
    }

    async fn run_dkg(
        &self,
        block: u64,
        signers: &BTreeSet<AccountId>,
        threshold: usize,
    ) -> anyhow::Result<(KeyShare, AuxData)> {
        let ledger = self.ledger();
        let session_id = dkg_session_id(ledger.chain_id(), block);
        let members: Vec<AccountId> = signers.iter().copied().collect();
        let session = self
            .transport
            .open_session(SessionId::new(session_id), &members)
            .context("cannot open the DKG session")?;
        tracing::info!(
            signers = members.len(),
            threshold,
            "running the network DKG (production parameters; this takes a while)"
        );
        let started = Instant::now();
        let mut channel = TransportChannel(session);
        let (share, aux, stats) = self
            .engine
            .generate_network_key(&session_id, signers, threshold, &mut channel)
            .await
            .context("the DKG failed")?;
        tracing::info!(
            network_key = %share.verifying_key(),
            seconds = started.elapsed().as_secs_f64(),
            rounds = stats.rounds,
            "DKG done"
        );
        Ok((share, aux))
    }
}
