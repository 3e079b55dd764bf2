//! The public, secp256k1-only face of the engine: key shares and aux data as opaque values
//! that serialise for the keystore, and the [`Engine`] that runs operations.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sigil_crypto::{AccountKeypair, SecretBytes, derive_user_key, verify_ecdsa};
use sigil_primitives::{AccountId, DerivationPath, EcdsaSignature, VerifyingKey};
use synedrion::k256::ProductionParams112;

use crate::{
    channel::Channel,
    driver::{SessionConfig, SessionStats},
    engine::{self, Ctx, Held, HeldAux, Resharing},
    error::MpcError,
};

/// Production parameters: secp256k1, 112-bit security.
type Production = ProductionParams112;

/// The parameter set every key and signature of this engine uses, as nodes report it:
/// `production` (synedrion's `ProductionParams112` on secp256k1), never a test set.
pub const SECURITY_PARAMETERS: &str = "production";

/// Version byte in front of every serialised share and aux-data value.
const FORMAT_VERSION: u8 = 1;

/// The stored form of a share or of aux data: format version, owner, engine value.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    version: u8,
    owner: AccountId,
    held: T,
}

pub(crate) fn encode<T: Serialize>(owner: AccountId, held: &T) -> SecretBytes {
    let stored = Stored {
        version: FORMAT_VERSION,
        owner,
        held,
    };
    SecretBytes::new(
        postcard::to_allocvec(&stored).unwrap_or_else(|_| unreachable!("in-memory encoding")),
    )
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<(AccountId, T), MpcError> {
    let stored: Stored<T> =
        postcard::from_bytes(bytes).map_err(|error| decode_error(what, error))?;
    if stored.version != FORMAT_VERSION {
        return Err(decode_error(
            what,
            format!("unsupported version {}", stored.version),
        ));
    }
    Ok((stored.owner, stored.held))
}

pub(crate) fn decode_error(what: &'static str, reason: impl ToString) -> MpcError {
    MpcError::Decode {
        what,
        reason: reason.to_string(),
    }
}

fn to_sigil_key(key: &k256::ecdsa::VerifyingKey) -> VerifyingKey {
    VerifyingKey::from_k256(&k256::PublicKey::from(key))
}

/// One signer's share of a threshold secp256k1 key. Secret: never logged, zeroized by the
/// engine on drop; `Debug` shows only public facts.
#[derive(Clone)]
pub struct KeyShare {
    owner: AccountId,
    held: Held<Production>,
}

impl KeyShare {
    /// The signer holding this share.
    pub fn owner(&self) -> AccountId {
        self.owner
    }

    /// How many holders must take part in signing.
    pub fn threshold(&self) -> usize {
        self.held.share.threshold()
    }

    /// Every holder of a share of this key.
    pub fn holders(&self) -> &BTreeSet<AccountId> {
        &self.held.holders
    }

    /// The (network) verifying key the shares add up to.
    pub fn verifying_key(&self) -> VerifyingKey {
        let key = self
            .held
            .share
            .verifying_key()
            .unwrap_or_else(|_| unreachable!("checked when the share was created or decoded"));
        to_sigil_key(&key)
    }

    /// The key derived at `path`, computed by the engine's own BIP-32 derivation.
    pub fn derive_verifying_key(&self, path: &DerivationPath) -> Result<VerifyingKey, MpcError> {
        use synedrion::DeriveChildKey;
        let key = self
            .held
            .share
            .derive_verifying_key_bip32(&engine::bip32_path(path)?)
            .map_err(|error| MpcError::InvalidInput(format!("cannot derive at {path}: {error}")))?;
        Ok(to_sigil_key(&key))
    }

    /// Serialises the share for the keystore.
    pub fn to_bytes(&self) -> SecretBytes {
        encode(self.owner, &self.held)
    }

    /// Reads a share written by [`KeyShare::to_bytes`], checking it is self-consistent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpcError> {
        const WHAT: &str = "key share";
        let (owner, held): (AccountId, Held<Production>) = decode(WHAT, bytes)?;
        if !held.holders.contains(&owner) {
            return Err(decode_error(WHAT, "the owner is not a holder"));
        }
        if held.share.threshold() > held.holders.len() || held.share.threshold() == 0 {
            return Err(decode_error(WHAT, "threshold exceeds the holders"));
        }
        held.share
            .verifying_key()
            .map_err(|error| decode_error(WHAT, error))?;
        Ok(Self { owner, held })
    }
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("owner", &self.owner)
            .field("threshold", &self.threshold())
            .field("holders", &self.held.holders.len())
            .field("verifying_key", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

/// One party's auxiliary data for signing (its Paillier secret key and everyone's public
/// parameters). Secret; `Debug` shows only public facts.
#[derive(Clone)]
pub struct AuxData {
    owner: AccountId,
    held: HeldAux<Production>,
}

impl AuxData {
    /// The party whose secret this is.
    pub fn owner(&self) -> AccountId {
        self.owner
    }

    /// Every party the data covers; a signing committee must be a subset.
    pub fn parties(&self) -> &BTreeSet<AccountId> {
        &self.held.parties
    }

    /// Serialises the aux data for the keystore.
    pub fn to_bytes(&self) -> SecretBytes {
        encode(self.owner, &self.held)
    }

    /// Reads aux data written by [`AuxData::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpcError> {
        const WHAT: &str = "aux data";
        let (owner, held): (AccountId, HeldAux<Production>) = decode(WHAT, bytes)?;
        if !held.parties.contains(&owner) || held.aux.owner().0 != owner {
            return Err(decode_error(WHAT, "the owner is not covered"));
        }
        Ok(Self { owner, held })
    }
}

impl std::fmt::Debug for AuxData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuxData")
            .field("owner", &self.owner)
            .field("parties", &self.held.parties.len())
            .finish_non_exhaustive()
    }
}

/// A resharing: who holds the key now and who will hold it afterwards.
#[derive(Debug, Clone)]
pub struct ResharePlan {
    /// The key being reshared; it stays the same.
    pub verifying_key: VerifyingKey,
    /// The old holders taking part (at least `old_threshold` of them).
    pub old_holders: BTreeSet<AccountId>,
    /// The old threshold.
    pub old_threshold: usize,
    /// The new holders.
    pub new_holders: BTreeSet<AccountId>,
    /// The new threshold.
    pub new_threshold: usize,
}

/// What to sign, with which share, and with whom.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// This signer's share of the network key.
    pub share: &'a KeyShare,
    /// This signer's aux data; must cover the committee.
    pub aux: &'a AuxData,
    /// The signers taking part, this one included: exactly `threshold` holders.
    pub committee: &'a BTreeSet<AccountId>,
    /// Where the user's key sits below the network key.
    pub path: &'a DerivationPath,
    /// The 32-byte message hash to sign.
    pub prehash: &'a [u8; 32],
}

/// A verified signature and what it cost.
#[derive(Debug, Clone)]
pub struct Signed {
    /// r‖s‖v, low-s, checked against `verifying_key`.
    pub signature: EcdsaSignature,
    /// The derived key that signed.
    pub verifying_key: VerifyingKey,
    /// This party's cost.
    pub stats: SessionStats,
}

/// One validator's handle on the engine: its account key and session settings.
#[derive(Debug, Clone)]
pub struct Engine {
    signer: AccountKeypair,
    config: SessionConfig,
}

impl Engine {
    /// An engine signing protocol messages with `signer`.
    pub fn new(signer: AccountKeypair, config: SessionConfig) -> Self {
        Self { signer, config }
    }

    /// This party's account.
    pub fn account(&self) -> AccountId {
        self.signer.account_id()
    }

    /// The session settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn ctx<'a>(&'a self, session_id: &'a [u8; 32]) -> Ctx<'a> {
        Ctx {
            signer: &self.signer,
            session_id,
            config: &self.config,
        }
    }

    /// The network DKG among `signers`: every signer gets a `threshold`-of-n share of a fresh
    /// key, and aux data for all of them. All signers must call this with the same session id,
    /// signer set and threshold.
    pub async fn generate_network_key<C: Channel>(
        &self,
        session_id: &[u8; 32],
        signers: &BTreeSet<AccountId>,
        threshold: usize,
        channel: &mut C,
    ) -> Result<(KeyShare, AuxData, SessionStats), MpcError> {
        let (share, aux, stats) = engine::generate_key::<Production, C>(
            &self.ctx(session_id),
            signers,
            threshold,
            channel,
        )
        .await?;
        let owner = self.account();
        Ok((
            KeyShare { owner, held: share },
            AuxData { owner, held: aux },
            stats,
        ))
    }

    /// Aux data for `parties` (needed after the signer set changes).
    pub async fn generate_aux_data<C: Channel>(
        &self,
        session_id: &[u8; 32],
        parties: &BTreeSet<AccountId>,
        channel: &mut C,
    ) -> Result<(AuxData, SessionStats), MpcError> {
        let (held, stats) =
            engine::generate_aux::<Production, C>(&self.ctx(session_id), parties, channel).await?;
        Ok((
            AuxData {
                owner: self.account(),
                held,
            },
            stats,
        ))
    }

    /// Signs `request.prehash` with the key derived at `request.path`, together with the rest
    /// of `request.committee` (exactly `threshold` holders). The signature is verified against
    /// the derived key, as `sigil-crypto` derives it from the network key, before it is returned.
    pub async fn sign<C: Channel>(
        &self,
        session_id: &[u8; 32],
        request: &SignRequest<'_>,
        channel: &mut C,
    ) -> Result<Signed, MpcError> {
        let SignRequest {
            share,
            aux,
            committee,
            path,
            prehash,
        } = *request;
        if share.owner != self.account() || aux.owner != self.account() {
            return Err(MpcError::InvalidInput(
                "the share or aux data belongs to another party".into(),
            ));
        }
        let message = k256::FieldBytes::from(*prehash);
        let (signature, engine_key, stats) = engine::sign::<Production, C>(
            &self.ctx(session_id),
            &share.held,
            &aux.held,
            committee,
            path,
            &message,
            channel,
        )
        .await?;
        let (signature, recovery_id) = signature.to_backend();
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = recovery_id.to_byte();
        let signature = EcdsaSignature::from_bytes(bytes)
            .map_err(|error| MpcError::BadSignature(format!("unusable recovery id: {error}")))?;
        let expected = derive_user_key(&share.verifying_key(), path)
            .map_err(|error| MpcError::InvalidInput(format!("cannot derive at {path}: {error}")))?;
        if to_sigil_key(&engine_key) != expected {
            return Err(MpcError::BadSignature(
                "the engine and sigil-crypto derive different keys".into(),
            ));
        }
        verify_ecdsa(&expected, prehash, &signature)
            .map_err(|error| MpcError::BadSignature(error.to_string()))?;
        Ok(Signed {
            signature,
            verifying_key: expected,
            stats,
        })
    }

    /// Reshares the key to `plan.new_holders`. Old holders pass their share; parties that are
    /// only new holders pass `None`. Returns this party's new share if it is a new holder.
    pub async fn reshare<C: Channel>(
        &self,
        session_id: &[u8; 32],
        old_share: Option<&KeyShare>,
        plan: &ResharePlan,
        channel: &mut C,
    ) -> Result<(Option<KeyShare>, SessionStats), MpcError> {
        if old_share.is_some_and(|share| share.owner != self.account()) {
            return Err(MpcError::InvalidInput(
                "the old share belongs to another party".into(),
            ));
        }
        let verifying_key = k256::ecdsa::VerifyingKey::from(&plan.verifying_key.to_k256());
        let resharing = Resharing::<Production> {
            verifying_key,
            old_holders: &plan.old_holders,
            old_threshold: plan.old_threshold,
            new_holders: &plan.new_holders,
            new_threshold: plan.new_threshold,
        };
        let (held, stats) = engine::reshare::<Production, C>(
            &self.ctx(session_id),
            old_share.map(|share| &share.held),
            &resharing,
            channel,
        )
        .await?;
        let owner = self.account();
        Ok((held.map(|held| KeyShare { owner, held }), stats))
    }

    /// Proactive refresh: reshares the key to the same holders and threshold (new shares, same
    /// key; old shares become useless) and generates fresh aux data.
    pub async fn refresh<C: Channel>(
        &self,
        session_id: &[u8; 32],
        share: &KeyShare,
        channel: &mut C,
    ) -> Result<(KeyShare, AuxData, SessionStats), MpcError> {
        if share.owner != self.account() {
            return Err(MpcError::InvalidInput(
                "the share belongs to another party".into(),
            ));
        }
        let (new_share, aux, stats) =
            engine::refresh::<Production, C>(&self.ctx(session_id), &share.held, channel).await?;
        let owner = self.account();
        let new_share = KeyShare {
            owner,
            held: new_share,
        };
        let aux = AuxData { owner, held: aux };
        Ok((new_share, aux, stats))
    }
}
