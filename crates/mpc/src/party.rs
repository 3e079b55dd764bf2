//! How validators appear to the engine: party ids are account ids, and every protocol message
//! part is signed with the validator's ed25519 account key.

use std::fmt;

use manul::{
    protocol::LocalError,
    session::{SessionParameters, WireFormat},
    signature::{self, DigestVerifier, Keypair, RandomizedDigestSigner},
};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use serde_persistent_deserializer::{AsTransientDeserializer, PersistentDeserializer};
use sha2_v010::{Digest as _, Sha256};
use sigil_crypto::{AccountKeypair, verify_signature};
use sigil_primitives::{AccountId, Ed25519Signature};

/// Domain separation for message-part signatures, so they cannot be replayed as other statements.
const MESSAGE_SIGNATURE_DOMAIN: &[u8] = b"sigil/v1/mpc-message";

/// A protocol party: a validator's account id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Party(pub(crate) AccountId);

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The ed25519 signature on one message part.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) struct PartySignature(Ed25519Signature);

/// Signs message parts with the validator's account key.
#[derive(Clone, Debug)]
pub(crate) struct PartySigner(pub(crate) AccountKeypair);

/// The bytes an account key signs for a message part: the domain, then manul's digest.
pub(crate) fn signed_bytes(digest: Sha256) -> Vec<u8> {
    let mut bytes = MESSAGE_SIGNATURE_DOMAIN.to_vec();
    bytes.extend_from_slice(&digest.finalize());
    bytes
}

impl RandomizedDigestSigner<Sha256, PartySignature> for PartySigner {
    fn try_sign_digest_with_rng(
        &self,
        _rng: &mut impl CryptoRngCore,
        digest: Sha256,
    ) -> Result<PartySignature, signature::Error> {
        // ed25519 is deterministic; the rng is not needed.
        Ok(PartySignature(self.0.sign(&signed_bytes(digest))))
    }
}

impl Keypair for PartySigner {
    type VerifyingKey = Party;

    fn verifying_key(&self) -> Party {
        Party(self.0.account_id())
    }
}

impl DigestVerifier<Sha256, PartySignature> for Party {
    fn verify_digest(
        &self,
        digest: Sha256,
        signature: &PartySignature,
    ) -> Result<(), signature::Error> {
        verify_signature(&self.0, &signed_bytes(digest), &signature.0)
            .map_err(|_| signature::Error::new())
    }
}

/// postcard, the encoding of every internal message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Postcard;

/// Owns a postcard deserializer so manul can deserialize through it more than once.
pub(crate) struct PostcardDeserializer<'de>(
    postcard::Deserializer<'de, postcard::de_flavors::Slice<'de>>,
);

impl<'de> AsTransientDeserializer<'de> for PostcardDeserializer<'de> {
    type Error = postcard::Error;

    fn as_transient_deserializer<'a>(
        &'a mut self,
    ) -> impl serde::Deserializer<'de, Error = Self::Error> {
        &mut self.0
    }
}

impl WireFormat for Postcard {
    fn serialize<T: Serialize>(value: T) -> Result<Box<[u8]>, LocalError> {
        #[allow(unused_mut)]
        let mut bytes =
            postcard::to_allocvec(&value).map_err(|err| LocalError::new(err.to_string()))?;
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_corrupt::<T>(&mut bytes);
        Ok(bytes.into())
    }

    type Deserializer<'de> = PersistentDeserializer<PostcardDeserializer<'de>>;

    fn deserializer(bytes: &[u8]) -> Self::Deserializer<'_> {
        let flavor = postcard::de_flavors::Slice::new(bytes);
        PersistentDeserializer::new(PostcardDeserializer(postcard::Deserializer::from_flavor(
            flavor,
        )))
    }
}

/// Sigil's choice of signer, verifier, digest and encoding for manul sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SigilSession;

impl SessionParameters for SigilSession {
    type Signer = PartySigner;
    type Verifier = Party;
    type Signature = PartySignature;
    type Digest = Sha256;
    type WireFormat = Postcard;
}
