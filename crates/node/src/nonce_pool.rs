//! A relayer's pool of the signers' commitments made ahead (`docs/PROTOCOL.md` §7.8): per
//! scheme and signer, a queue of (id, commitments) the signer issued to this relayer. A
//! request of an Ed25519 or BIP-340 key whose committee all have one takes one each and signs
//! in one round; otherwise it signs in two. Queues of an older epoch (another signer set or
//! network key) are dropped; a commitment taken is never handed out again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use sigil_client::NodeClient;
use sigil_crypto::SealParams;
use sigil_mpc::frost::Scheme;
use sigil_primitives::request::{NamedCommitment, NonceRequest};
use sigil_primitives::{AccountId, RequestId};

use crate::node::Inner;
use crate::nonces::epoch;
use crate::view::View;

/// One signer's commitments for one scheme.
struct Queue {
    epoch: [u8; 32],
    items: VecDeque<([u8; 16], Vec<u8>)>,
}

/// The relayer's queues, and which are being refilled.
#[derive(Default)]
pub(crate) struct NoncePool {
    queues: Mutex<BTreeMap<(Scheme, AccountId), Queue>>,
    refilling: Mutex<BTreeSet<(Scheme, AccountId)>>,
}

impl NoncePool {
    /// Takes one commitment of every member of `committee`, if each has one of `epoch`.
    fn take(
        &self,
        scheme: Scheme,
        committee: &BTreeSet<AccountId>,
        epoch: [u8; 32],
    ) -> Option<Vec<NamedCommitment>> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let ready = committee.iter().all(|m| {
            queues
                .get(&(scheme, *m))
                .is_some_and(|q| q.epoch == epoch && !q.items.is_empty())
        });
        if !ready {
            return None;
        }
        let named = committee
            .iter()
            .filter_map(|member| {
                let queue = queues.get_mut(&(scheme, *member))?;
                let (id, commitments) = queue.items.pop_front()?;
                Some(NamedCommitment {
                    member: *member,
                    id,
                    commitments,
                })
            })
            .collect();
        record(scheme, &queues);
        Some(named)
    }

    /// How many commitments of `member` this relayer holds for `epoch`.
    fn held(&self, scheme: Scheme, member: &AccountId, epoch: [u8; 32]) -> usize {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .get(&(scheme, *member))
            .filter(|q| q.epoch == epoch)
            .map_or(0, |q| q.items.len())
    }

    /// Adds commitments of `member`, dropping any of another epoch.
    fn add(
        &self,
        scheme: Scheme,
        member: AccountId,
        epoch: [u8; 32],
        items: Vec<([u8; 16], Vec<u8>)>,
    ) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let queue = queues.entry((scheme, member)).or_insert_with(|| Queue {
            epoch,
            items: VecDeque::new(),
        });
        if queue.epoch != epoch {
            *queue = Queue {
                epoch,
                items: VecDeque::new(),
            };
        }
        queue.items.extend(items);
        record(scheme, &queues);
    }
}

/// The pool size per scheme as a gauge.
fn record(scheme: Scheme, queues: &BTreeMap<(Scheme, AccountId), Queue>) {
    let total: usize = queues
        .iter()
        .filter(|((s, _), _)| *s == scheme)
        .map(|(_, q)| q.items.len())
        .sum();
    metrics::gauge!("sigil_node_nonce_pool", "scheme" => scheme.key_scheme().name())
        .set(total as f64);
}

impl Inner {
    /// One commitment per member of `committee` for a request of `scheme`, if the pool holds
    /// them all; refills what runs low either way.
    pub(crate) fn take_prepared(
        self: &Arc<Self>,
        scheme: Scheme,
        committee: &BTreeSet<AccountId>,
        view: &View,
    ) -> Option<Vec<NamedCommitment>> {
        if self.config.nonce_pool == 0 {
            return None;
        }
        let taken = self
            .nonce_pool
            .take(scheme, committee, epoch(view, scheme)?);
        self.refill_nonces(view);
        taken
    }

    /// Starts refilling every signer's queue that holds less than half the pool size (a
    /// relayer only; one fetch per queue at a time).
    pub(crate) fn refill_nonces(self: &Arc<Self>, view: &View) {
        let target = self.config.nonce_pool;
        let me = self.me();
        if target == 0 || view.is_signer(&me) || !view.is_validator(&me) {
            return;
        }
        for scheme in Scheme::ALL {
            let Some(epoch) = epoch(view, scheme) else {
                continue;
            };
            for signer in &view.signer_set.signers {
                let held = self.nonce_pool.held(scheme, signer, epoch);
                if held * 2 >= target {
                    continue;
                }
                let key = (scheme, *signer);
                if !self
                    .nonce_pool
                    .refilling
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key)
                {
                    continue;
                }
                let inner = self.clone();
                let (signer, wanted) = (*signer, target - held);
                let view = view.clone();
                tokio::spawn(async move {
                    if let Err(error) = inner
                        .fetch_nonces(&view, scheme, signer, epoch, wanted)
                        .await
                    {
                        tracing::debug!(%signer, error = format!("{error:#}"), "cannot fetch nonces");
                    }
                    inner
                        .nonce_pool
                        .refilling
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(scheme, signer));
                });
            }
        }
    }

    /// Asks `signer` for `count` commitments of `scheme` and adds them to the pool.
    async fn fetch_nonces(
        &self,
        view: &View,
        scheme: Scheme,
        signer: AccountId,
        epoch: [u8; 32],
        count: usize,
    ) -> anyhow::Result<()> {
        let info = view
            .validators
            .get(&signer)
            .ok_or_else(|| anyhow::anyhow!("{signer} is not a validator"))?;
        let request = NonceRequest {
            scheme: scheme.key_scheme(),
            count: u16::try_from(count).unwrap_or(u16::MAX),
        };
        let envelope = sigil_crypto::seal(
            &self.keys.account,
            &SealParams {
                recipient: info.x25519,
                request_id: RequestId::from_bytes(sigil_crypto::secret::random_array::<32>())?,
                timestamp_ms: sigil_crypto::envelope::now_ms(),
                reply_to: None,
                payload: &request.encode(),
            },
        )?;
        let batch = NodeClient::with_http(self.http.clone(), info.endpoint.as_str())
            .nonces(&envelope)
            .await?;
        if batch.epoch != epoch {
            // The signer saw another signer set or key than this relayer's view: its nonces
            // would be refused.
            tracing::debug!(%signer, "nonces of another epoch dropped");
            return Ok(());
        }
        let items = batch
            .nonces
            .into_iter()
            .filter_map(|n| Some((<[u8; 16]>::try_from(n.id.as_slice()).ok()?, n.commitments)))
            .collect();
        self.nonce_pool.add(scheme, signer, epoch, items);
        Ok(())
    }
}
