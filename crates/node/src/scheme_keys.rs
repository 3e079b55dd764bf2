//! The network keys of the Schnorr-family schemes (Ed25519, BIP-340): once the jump start
//! began, every signer runs one FROST key generation per scheme the ledger lacks, stores its
//! share and confirms the key (`docs/PROTOCOL.md` §7.7); in a reshare the keys follow the
//! signer set by FROST rotation (§8.4).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sigil_client::types::{Call, JumpStartStatus, PendingReshare};
use sigil_crypto::frost_keygen_session;
use sigil_mpc::frost::{self, FrostShare, Scheme};
use sigil_mpc::{MpcError, SessionFailure, TransportChannel};
use sigil_primitives::{AccountId, VerifyingKey};
use sigil_transport::SessionId;

use crate::node::Inner;
use crate::view::View;

/// Round timeout of a FROST key generation: every party must be up and connected.
const FROST_KEYGEN_ROUND_TIMEOUT: Duration = Duration::from_secs(60);

/// Loads the FROST shares in the keystore.
pub(crate) fn load_shares(
    identity: &crate::Identity,
) -> anyhow::Result<BTreeMap<Scheme, Arc<FrostShare>>> {
    let mut shares = BTreeMap::new();
    for scheme in Scheme::ALL {
        if let Some(share) = identity.frost_share(scheme)? {
            tracing::info!(scheme = %scheme.key_scheme(), threshold = share.threshold(), "FROST share loaded");
            shares.insert(scheme, Arc::new(share));
        }
    }
    Ok(shares)
}

impl Inner {
    /// This node's share of `scheme`'s network key, if it holds one.
    pub(crate) fn frost_share(&self, scheme: Scheme) -> Option<Arc<FrostShare>> {
        self.keys
            .frost
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&scheme)
            .cloned()
    }

    /// Starts key generation for the schemes whose network key the ledger still lacks and this
    /// signer has not confirmed.
    pub(crate) fn make_scheme_keys(self: &Arc<Self>, view: &View) {
        let me = self.me();
        let set = &view.signer_set;
        // During a reshare the new set makes missing keys after the switch.
        if set.jump_start == JumpStartStatus::Ready
            || set.pending_reshare.is_some()
            || !view.is_signer(&me)
        {
            return;
        }
        let missing: Vec<Scheme> = Scheme::ALL
            .into_iter()
            .filter(|s| set.network_key_of(s.key_scheme()).is_none())
            .filter(|s| {
                !set.scheme_confirmations
                    .iter()
                    .any(|(a, k)| *a == me && k.scheme() == s.key_scheme())
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        {
            let mut running = self
                .key_work
                .scheme_keys_running
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *running {
                return;
            }
            *running = true;
        }
        let signers = set.signers.clone();
        let threshold = set.threshold;
        let inner = self.clone();
        tokio::spawn(async move {
            for scheme in missing {
                if let Err(error) = inner.make_scheme_key(scheme, &signers, threshold).await {
                    tracing::error!(
                        scheme = %scheme.key_scheme(),
                        error = format!("{error:#}"),
                        "network key generation failed; will retry at the next block"
                    );
                }
            }
            *inner
                .key_work
                .scheme_keys_running
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = false;
        });
    }

    /// Generates (or reuses) this signer's share of `scheme`'s network key and confirms it.
    async fn make_scheme_key(
        &self,
        scheme: Scheme,
        signers: &[AccountId],
        threshold: u16,
    ) -> anyhow::Result<()> {
        let share = match self.frost_share(scheme) {
            Some(share) if share.parties() == signers && share.threshold() == threshold => share,
            _ => {
                let share = Arc::new(self.run_frost_keygen(scheme, signers, threshold).await?);
                self.keys.identity.store_frost_share(&share)?;
                self.keys
                    .frost
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(scheme, share.clone());
                share
            }
        };
        let verifying_key = share.network_key()?;
        self.submit(Call::ConfirmJumpStart { verifying_key })
            .await
            .with_context(|| {
                format!(
                    "confirming the {} network key was refused",
                    scheme.key_scheme()
                )
            })?;
        tracing::info!(%verifying_key, "network key confirmed");
        Ok(())
    }

    async fn run_frost_keygen(
        &self,
        scheme: Scheme,
        signers: &[AccountId],
        threshold: u16,
    ) -> anyhow::Result<FrostShare> {
        let chain_id = self.ledger().chain_id().to_string();
        let session_id = SessionId::new(frost_keygen_session(
            &chain_id,
            scheme.key_scheme(),
            threshold,
            signers,
        ));
        let session = self
            .transport
            .open_session(session_id, signers)
            .context("cannot open the key generation session")?;
        let started = Instant::now();
        let mut channel = TransportChannel(session);
        let target = frost::KeygenTarget {
            chain_id: &chain_id,
            parties: signers,
            threshold,
        };
        let account = &self.keys.account;
        let outcome = if self.corrupts_shares() {
            let mut corrupting = frost::CorruptShares {
                channel: &mut channel,
                signer: account.clone(),
            };
            frost::keygen(
                scheme,
                account,
                target,
                &mut corrupting,
                FROST_KEYGEN_ROUND_TIMEOUT,
            )
            .await
        } else {
            frost::keygen(
                scheme,
                account,
                target,
                &mut channel,
                FROST_KEYGEN_ROUND_TIMEOUT,
            )
            .await
        };
        let share = match outcome {
            Ok(share) => share,
            Err(error) => {
                if let MpcError::Failed(failure) = &error {
                    self.report_keygen_faults(scheme, signers, failure).await;
                }
                return Err(error).context("FROST key generation failed");
            }
        };
        tracing::info!(
            scheme = %scheme.key_scheme(),
            seconds = started.elapsed().as_secs_f64(),
            "FROST key generation done"
        );
        Ok(share)
    }

    /// Files `report_keygen_fault` for every other signer the failed key generation proves at
    /// fault; findings without evidence cannot be reported (a key generation has no ticket).
    async fn report_keygen_faults(
        &self,
        scheme: Scheme,
        signers: &[AccountId],
        failure: &SessionFailure,
    ) {
        if self.misbehaving() {
            return;
        }
        let me = self.me();
        for fault in &failure.faults {
            if fault.party == me || fault.reported_by.is_some() || !signers.contains(&fault.party) {
                continue;
            }
            let Some(evidence) = &fault.evidence else {
                tracing::warn!(
                    offender = %fault.party,
                    kind = fault.kind.as_str(),
                    "key generation fault without evidence; not reportable"
                );
                continue;
            };
            let call = Call::ReportKeygenFault {
                scheme: scheme.key_scheme(),
                offender: fault.party,
                evidence: evidence.clone(),
            };
            match self.submit(call).await {
                Ok(()) => {
                    metrics::counter!("sigil_node_offences_reported_total", "kind" => fault.kind.as_str())
                        .increment(1);
                    tracing::warn!(offender = %fault.party, scheme = %scheme.key_scheme(), "key generation fault reported");
                }
                Err(error) => tracing::warn!(
                    offender = %fault.party,
                    error = format!("{error:#}"),
                    "key generation fault report refused"
                ),
            }
        }
    }
}

/// Round timeout of a FROST rotation: parties start when they see the reshare, a few blocks
/// apart at most, but a restarted party may take longer to come back.
const FROST_ROTATION_ROUND_TIMEOUT: Duration = Duration::from_secs(300);

/// Who takes part in one key's rotation.
pub(crate) struct RotationParties<'a> {
    /// Old signers that enrol the joiners.
    pub(crate) helpers: &'a BTreeSet<AccountId>,
    /// The new signer set.
    pub(crate) new: &'a BTreeSet<AccountId>,
    /// The threshold, unchanged.
    pub(crate) threshold: u16,
}

impl Inner {
    /// This node's part in moving every FROST network key `reshare` names to the new signer
    /// set (`docs/PROTOCOL.md` §8.4): a new signer keeps its rotated share apart and confirms
    /// the unchanged key; a helper that leaves only helps.
    pub(crate) async fn rotate_scheme_keys(
        &self,
        reshare: &PendingReshare,
        parties: &RotationParties<'_>,
        session_id: impl Fn(Scheme) -> SessionId,
    ) -> anyhow::Result<()> {
        let me = self.me();
        for key in &reshare.scheme_keys {
            let Some(scheme) = Scheme::of(key.scheme()) else {
                continue;
            };
            if reshare.scheme_confirmations.contains(&(me, *key)) {
                continue;
            }
            let held = self.keys.identity.next_frost_share(scheme)?.filter(|s| {
                s.parties().iter().eq(parties.new.iter()) && s.network_key().ok() == Some(*key)
            });
            let share = match held {
                Some(share) => Some(share),
                None => {
                    self.run_frost_rotation(scheme, *key, parties, session_id(scheme))
                        .await?
                }
            };
            if share.is_some() {
                self.submit(Call::ConfirmReshare {
                    verifying_key: *key,
                })
                .await
                .with_context(|| format!("confirming the rotated {key} was refused"))?;
                tracing::info!(%key, "rotated network key confirmed");
            }
        }
        Ok(())
    }

    /// Runs one key's rotation; stores and returns this node's new share (none for a helper
    /// that leaves).
    async fn run_frost_rotation(
        &self,
        scheme: Scheme,
        network_key: VerifyingKey,
        parties: &RotationParties<'_>,
        session_id: SessionId,
    ) -> anyhow::Result<Option<FrostShare>> {
        let members: Vec<AccountId> = parties.helpers.union(parties.new).copied().collect();
        let session = self
            .transport
            .open_session(session_id, &members)
            .context("cannot open the rotation session")?;
        let started = Instant::now();
        let mut channel = TransportChannel(session);
        let old = self.frost_share(scheme);
        let plan = frost::Rotation {
            scheme,
            network_key,
            helpers: parties.helpers,
            new_parties: parties.new,
            threshold: parties.threshold,
        };
        let share = frost::rotate(
            old.as_deref(),
            self.me(),
            &plan,
            &mut channel,
            FROST_ROTATION_ROUND_TIMEOUT,
        )
        .await
        .with_context(|| format!("the rotation of the {} key failed", scheme.key_scheme()))?;
        if let Some(share) = &share {
            self.keys.identity.store_next_frost_share(share)?;
        }
        tracing::info!(
            scheme = %scheme.key_scheme(),
            seconds = started.elapsed().as_secs_f64(),
            kept = share.is_some(),
            "FROST key rotated"
        );
        Ok(share)
    }

    /// After a switch: a rotated FROST share whose parties are the signer set becomes current.
    pub(crate) fn settle_frost_shares(&self, signers: &BTreeSet<AccountId>) -> anyhow::Result<()> {
        for scheme in Scheme::ALL {
            let Some(next) = self.keys.identity.next_frost_share(scheme)? else {
                continue;
            };
            if !next.parties().iter().eq(signers.iter()) {
                continue;
            }
            self.keys.identity.promote_next_frost_share(scheme)?;
            self.keys
                .frost
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(scheme, Arc::new(next));
            tracing::info!(scheme = %scheme.key_scheme(), "the rotated FROST share is now current");
        }
        Ok(())
    }
}
