//! A signer's nonces made ahead for one-round FROST signing (`docs/PROTOCOL.md` §7.8).
//!
//! A relayer asks a signer for commitments (`POST /v1/nonces`); the signer makes nonce pairs,
//! stores each in its encrypted keystore under the asking relayer, the scheme and the pool's
//! epoch, and answers with the commitments. When a forwarded request names one of them, the
//! signer deletes the nonce in one durable transaction before its signature share leaves: a
//! crash at any point never lets a nonce sign twice. A nonce named by another relayer, for
//! another scheme or of an older epoch (the signer set or the network key changed) is refused.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sigil_crypto::SecretBytes;
use sigil_mpc::frost::Scheme;
use sigil_primitives::request::{IssuedNonce, NamedCommitment, NonceBatch, NonceRequest};
use sigil_primitives::{AccountId, ErrorCode};

use crate::error::ApiError;
use crate::node::Inner;
use crate::view::View;

/// Keystore names of stored nonces start with this.
pub(crate) const PREFIX: &str = "frost-nonce/";
/// Most unused nonces one relayer may hold of one signer per scheme.
pub(crate) const MAX_PER_RELAYER: usize = 128;
/// Most nonces one request makes.
pub(crate) const MAX_BATCH: usize = 64;

/// A stored nonce.
#[derive(Serialize, Deserialize)]
struct Stored {
    epoch: [u8; 32],
    secret: Vec<u8>,
    commitments: Vec<u8>,
}

/// A nonce issued to a relayer: its id and commitments.
pub(crate) type Issued = ([u8; 16], Vec<u8>);

/// The unused nonces by scheme and relayer (ids, oldest first), kept beside the keystore.
pub(crate) type NonceIndex = BTreeMap<(Scheme, AccountId), VecDeque<[u8; 16]>>;

fn entry_name(scheme: Scheme, relayer: &AccountId, id: &[u8; 16]) -> String {
    format!(
        "{PREFIX}{}/{relayer}/{}",
        scheme.key_scheme(),
        hex::encode(id)
    )
}

/// The pool epoch of `scheme` in `view`: nonces of another epoch are never used, so every pool
/// is dropped when the signer set, its threshold or the scheme's network key changes.
pub(crate) fn epoch(view: &View, scheme: Scheme) -> Option<[u8; 32]> {
    let set = &view.signer_set;
    let key = set.network_key_of(scheme.key_scheme())?;
    let mut hash = Sha256::new()
        .chain_update(b"sigil/v1/nonce-epoch")
        .chain_update(key.as_bytes())
        .chain_update(set.threshold.to_be_bytes());
    for signer in &set.signers {
        hash.update(signer.as_bytes());
    }
    Some(hash.finalize().into())
}

/// Reads the index of the stored nonces.
pub(crate) fn load_index(identity: &crate::Identity) -> anyhow::Result<NonceIndex> {
    let mut index = NonceIndex::new();
    for name in identity.entry_names(PREFIX)? {
        let mut parts = name[PREFIX.len()..].split('/');
        let (Some(scheme), Some(relayer), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let scheme = scheme.parse().ok().and_then(Scheme::of);
        let relayer = relayer.parse::<AccountId>().ok();
        let id = hex::decode(id)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok());
        if let (Some(scheme), Some(relayer), Some(id)) = (scheme, relayer, id) {
            index.entry((scheme, relayer)).or_default().push_back(id);
        }
    }
    Ok(index)
}

impl Inner {
    /// `POST /v1/nonces`: a validator (a relayer) asks this signer for commitments.
    pub(crate) fn nonces_for(
        &self,
        envelope: sigil_crypto::Envelope,
    ) -> Result<NonceBatch, ApiError> {
        let opened = sigil_crypto::open(
            &envelope,
            &self.keys.x25519,
            &sigil_crypto::OpenPolicy::fresh_within(crate::relay::MAX_ENVELOPE_AGE_MS),
        )?;
        let view = self.view();
        if !view.is_validator(&opened.sender) {
            return Err(ApiError::new(
                ErrorCode::NotAValidator,
                format!(
                    "{} is not a validator; only relayers ask for nonces",
                    opened.sender
                ),
            ));
        }
        if !view.is_signer(&self.me()) {
            return Err(ApiError::new(
                ErrorCode::NotASigner,
                "this node is not a signer",
            ));
        }
        let request = NonceRequest::decode(&opened.payload)
            .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
        let scheme = Scheme::of(request.scheme).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MalformedRequest,
                "only ed25519 and bip340 keys use nonces",
            )
        })?;
        let (epoch, issued) =
            self.issue_nonces(opened.sender, scheme, usize::from(request.count))?;
        Ok(NonceBatch {
            scheme: request.scheme,
            epoch,
            nonces: issued
                .into_iter()
                .map(|(id, commitments)| IssuedNonce {
                    id: id.to_vec(),
                    commitments,
                })
                .collect(),
        })
    }

    /// Makes up to `count` nonces of `scheme` for `relayer` (at most [`MAX_BATCH`]; unused ones
    /// beyond [`MAX_PER_RELAYER`] are dropped) and returns their epoch, ids and commitments.
    pub(crate) fn issue_nonces(
        &self,
        relayer: AccountId,
        scheme: Scheme,
        count: usize,
    ) -> Result<([u8; 32], Vec<Issued>), ApiError> {
        let view = self.view();
        let epoch = epoch(&view, scheme).ok_or_else(|| {
            ApiError::not_ready(format!("no {} network key yet", scheme.key_scheme()))
        })?;
        let share = self
            .frost_share(scheme)
            .filter(|s| s.network_key().ok() == view.signer_set.network_key_of(scheme.key_scheme()))
            .ok_or_else(|| ApiError::not_ready("this signer holds no share of that network key"))?;
        let mut index = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let count = count.min(MAX_BATCH);
        // A relayer that restarted lost the commitments it held; their nonces never signed,
        // so dropping some keeps its pool fillable without ever passing the cap.
        self.evict_nonces(&mut index, scheme, &relayer, count)?;
        let made = sigil_mpc::frost::prepare_nonces(&share, count)
            .map_err(|e| ApiError::internal(format!("cannot make nonces: {e}")))?;
        let mut entries = Vec::with_capacity(made.len());
        let mut issued = Vec::with_capacity(made.len());
        for nonce in made {
            let id = sigil_crypto::secret::random_array::<16>();
            let stored = Stored {
                epoch,
                secret: nonce.secret.expose().to_vec(),
                commitments: nonce.commitments.clone(),
            };
            let bytes = postcard::to_stdvec(&stored)
                .map_err(|e| ApiError::internal(format!("cannot encode a nonce: {e}")))?;
            entries.push((entry_name(scheme, &relayer, &id), bytes));
            issued.push((id, nonce.commitments));
        }
        self.keys
            .identity
            .put_entries(&entries)
            .map_err(|e| ApiError::internal(format!("cannot store nonces: {e:#}")))?;
        index
            .entry((scheme, relayer))
            .or_default()
            .extend(issued.iter().map(|(id, _)| *id));
        metrics::gauge!("sigil_node_nonces_stored", "scheme" => scheme.key_scheme().name())
            .set(count_of(&index, scheme) as f64);
        Ok((epoch, issued))
    }

    /// Takes this signer's nonce that `relayer` named: checks it is its own, unused and of the
    /// current epoch, and deletes it durably before returning its secret.
    pub(crate) fn consume_nonce(
        &self,
        relayer: &AccountId,
        scheme: Scheme,
        named: &NamedCommitment,
        view: &View,
    ) -> Result<SecretBytes, ApiError> {
        let refused = |why: &str| ApiError::new(ErrorCode::NonceRefused, why.to_owned());
        let name = entry_name(scheme, relayer, &named.id);
        let mut index = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let stored = self
            .keys
            .identity
            .entry(&name)
            .map_err(|e| ApiError::internal(format!("cannot read a nonce: {e:#}")))?
            .ok_or_else(|| {
                refused("no unused nonce of this signer has that id for this relayer")
            })?;
        let stored: Stored = postcard::from_bytes(stored.expose())
            .map_err(|e| ApiError::internal(format!("a stored nonce is corrupt: {e}")))?;
        if Some(stored.epoch) != epoch(view, scheme) {
            self.forget_nonce(&mut index, scheme, relayer, &named.id, &name)?;
            return Err(refused(
                "the nonce is of an older signer set or network key",
            ));
        }
        if stored.commitments != named.commitments {
            return Err(refused(
                "the commitments named are not the ones this signer gave",
            ));
        }
        // Durable before any share made with it leaves this node.
        self.forget_nonce(&mut index, scheme, relayer, &named.id, &name)?;
        Ok(SecretBytes::new(stored.secret))
    }

    /// Deletes unused nonces of `relayer` until `room` more fit under [`MAX_PER_RELAYER`].
    fn evict_nonces(
        &self,
        index: &mut NonceIndex,
        scheme: Scheme,
        relayer: &AccountId,
        room: usize,
    ) -> Result<(), ApiError> {
        let held: Vec<[u8; 16]> = index
            .get(&(scheme, *relayer))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let excess = (held.len() + room).saturating_sub(MAX_PER_RELAYER);
        for id in held.iter().take(excess) {
            let name = entry_name(scheme, relayer, id);
            self.forget_nonce(index, scheme, relayer, id, &name)?;
        }
        Ok(())
    }

    fn forget_nonce(
        &self,
        index: &mut NonceIndex,
        scheme: Scheme,
        relayer: &AccountId,
        id: &[u8; 16],
        name: &str,
    ) -> Result<(), ApiError> {
        self.keys
            .identity
            .delete_entry(name)
            .map_err(|e| ApiError::internal(format!("cannot delete a nonce: {e:#}")))?;
        if let Some(ids) = index.get_mut(&(scheme, *relayer)) {
            ids.retain(|held| held != id);
        }
        metrics::gauge!("sigil_node_nonces_stored", "scheme" => scheme.key_scheme().name())
            .set(count_of(index, scheme) as f64);
        Ok(())
    }
}

fn count_of(index: &NonceIndex, scheme: Scheme) -> usize {
    index
        .iter()
        .filter(|((s, _), _)| *s == scheme)
        .map(|(_, ids)| ids.len())
        .sum()
}
