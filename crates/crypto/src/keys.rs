//! Account keys (ed25519) and x25519 static keys, derived from one node seed or a BIP-39 phrase.

use ed25519_dalek::Signer as _;
use hkdf::Hkdf;
use sha2::Sha256;
use sigil_primitives::{AccountId, Ed25519Signature, X25519PublicKey};
use zeroize::Zeroizing;

use crate::secret::random_array;

/// HKDF salt shared by every key derived from a seed.
const KDF_SALT: &[u8] = b"sigil/v1/key-derivation";
/// HKDF label of the ed25519 account key.
const ACCOUNT_LABEL: &[u8] = b"sigil/v1/account/ed25519";
/// HKDF label of the x25519 static key.
const X25519_LABEL: &[u8] = b"sigil/v1/static/x25519";
const CONSENSUS_LABEL: &[u8] = b"sigil/v1/consensus/ed25519";
const CONSENSUS_REPORTER_LABEL: &[u8] = b"sigil/v1/consensus/reporter";
/// HKDF label turning a BIP-39 seed into a Sigil seed.
const MNEMONIC_LABEL: &[u8] = b"sigil/v1/mnemonic-seed";

/// Why a key could not be built or a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The BIP-39 phrase is malformed (unknown word, bad checksum or word count).
    #[error("invalid recovery phrase: {0}")]
    InvalidMnemonic(String),
    /// The signature does not verify for this account and message.
    #[error("signature does not verify for account {0}")]
    BadSignature(AccountId),
}

/// The 32-byte secret a node (or a user account) derives all its keys from.
#[derive(Clone)]
pub struct NodeSeed(Zeroizing<[u8; 32]>);

impl NodeSeed {
    /// A fresh random seed from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(Zeroizing::new(random_array()))
    }

    /// Wraps existing seed bytes (e.g. loaded from the keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The seed bytes, for storing in the keystore. Never log them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A seed everyone knows, for development accounts such as `alice`: never use it for value.
    pub fn dev(name: &str) -> Self {
        Self(Zeroizing::new(hkdf32(
            name.as_bytes(),
            b"sigil/v1/dev-account",
        )))
    }

    /// The ed25519 account key derived from this seed.
    pub fn account_keypair(&self) -> AccountKeypair {
        AccountKeypair::from_secret(hkdf32(self.0.as_ref(), ACCOUNT_LABEL))
    }

    /// The seed of the ed25519 key that signs this validator's consensus votes: a key of its
    /// own, so that votes and transactions never share one.
    pub fn consensus_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hkdf32(self.0.as_ref(), CONSENSUS_LABEL))
    }

    /// The x25519 static key derived from this seed.
    pub fn x25519_key(&self) -> X25519StaticKey {
        X25519StaticKey::from_secret(hkdf32(self.0.as_ref(), X25519_LABEL))
    }
}

impl std::fmt::Debug for NodeSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSeed([REDACTED])")
    }
}

fn hkdf32(ikm: &[u8], label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(KDF_SALT), ikm)
        .expand(label, &mut out)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
    out
}

/// An account's ed25519 signing key. The secret is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct AccountKeypair {
    signing: ed25519_dalek::SigningKey,
}

impl AccountKeypair {
    /// Builds the key pair from a 32-byte ed25519 secret key.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let secret = Zeroizing::new(secret);
        Self {
            signing: ed25519_dalek::SigningKey::from_bytes(&secret),
        }
    }

    /// The account a replica signs its reports of consensus faults with, derived from its
    /// consensus seed: such reports are free, so it needs no funds.
    pub fn consensus_reporter(consensus_seed: &[u8; 32]) -> Self {
        Self::from_secret(hkdf32(consensus_seed, CONSENSUS_REPORTER_LABEL))
    }

    /// A fresh random key pair.
    pub fn generate() -> Self {
        Self::from_secret(random_array())
    }

    /// The account id (ed25519 public key).
    pub fn account_id(&self) -> AccountId {
        AccountId::from_bytes(self.signing.verifying_key().to_bytes())
            .unwrap_or_else(|_| unreachable!("a derived ed25519 public key is a valid point"))
    }

    /// Signs `message` (ed25519, RFC 8032 pure mode).
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        Ed25519Signature::from_bytes(self.signing.sign(message).to_bytes())
            .unwrap_or_else(|_| unreachable!("any 64 bytes are an Ed25519Signature"))
    }
}

impl std::fmt::Debug for AccountKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKeypair")
            .field("account", &self.account_id())
            .finish_non_exhaustive()
    }
}

/// Verifies an ed25519 signature strictly (rejecting malleable and small-order encodings).
pub fn verify_signature(
    account: &AccountId,
    message: &[u8],
    signature: &Ed25519Signature,
) -> Result<(), KeyError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(account.as_bytes())
        .map_err(|_| KeyError::BadSignature(*account))?;
    let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
    key.verify_strict(message, &sig)
        .map_err(|_| KeyError::BadSignature(*account))
}

/// An x25519 static secret key (for HPKE envelopes and Noise). Zeroized on drop.
#[derive(Clone)]
pub struct X25519StaticKey {
    secret: x25519_dalek::StaticSecret,
}

impl X25519StaticKey {
    /// Builds the key from its 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let secret = Zeroizing::new(secret);
        Self {
            secret: x25519_dalek::StaticSecret::from(*secret),
        }
    }

    /// A fresh random key (e.g. the ephemeral key a request names for its reply).
    pub fn generate() -> Self {
        Self::from_secret(random_array())
    }

    /// The public key.
    pub fn public_key(&self) -> X25519PublicKey {
        X25519PublicKey::from_bytes(x25519_dalek::PublicKey::from(&self.secret).to_bytes())
            .unwrap_or_else(|_| unreachable!("a clamped scalar never yields the zero point"))
    }

    /// The secret bytes, for HPKE and Noise. Never log them.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }
}

impl std::fmt::Debug for X25519StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X25519StaticKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A user's BIP-39 recovery phrase (English, 24 words when generated).
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// A new 24-word phrase from 256 bits of OS randomness.
    pub fn generate() -> Self {
        let entropy = Zeroizing::new(random_array::<32>());
        Self(
            bip39::Mnemonic::from_entropy(entropy.as_ref())
                .unwrap_or_else(|_| unreachable!("32 bytes is a valid BIP-39 entropy length")),
        )
    }

    /// Parses a phrase (12–24 English words, checksum verified).
    pub fn parse(phrase: &str) -> Result<Self, KeyError> {
        bip39::Mnemonic::parse(phrase.trim())
            .map(Self)
            .map_err(|e| KeyError::InvalidMnemonic(e.to_string()))
    }

    /// The phrase, for showing to the user once. Never log it.
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.words().collect::<Vec<_>>().join(" "))
    }

    /// The Sigil seed: the BIP-39 seed (empty passphrase) run through HKDF.
    pub fn seed(&self) -> NodeSeed {
        let bip39_seed = Zeroizing::new(self.0.to_seed(""));
        NodeSeed::from_bytes(hkdf32(bip39_seed.as_ref(), MNEMONIC_LABEL))
    }

    /// The account key pair of this phrase.
    pub fn account_keypair(&self) -> AccountKeypair {
        self.seed().account_keypair()
    }
}

impl std::fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mnemonic([REDACTED; {} words])", self.0.word_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_derives_distinct_stable_keys() {
        let seed = NodeSeed::from_bytes([7; 32]);
        let a = seed.account_keypair();
        let x = seed.x25519_key();
        assert_eq!(
            a.account_id(),
            NodeSeed::from_bytes([7; 32]).account_keypair().account_id()
        );
        assert_eq!(
            x.public_key(),
            NodeSeed::from_bytes([7; 32]).x25519_key().public_key()
        );
        assert_ne!(a.account_id().as_bytes(), x.public_key().as_bytes());
        assert_ne!(
            a.account_id(),
            NodeSeed::from_bytes([8; 32]).account_keypair().account_id()
        );
    }

    #[test]
    fn sign_and_verify() {
        let k = AccountKeypair::generate();
        let sig = k.sign(b"hello");
        verify_signature(&k.account_id(), b"hello", &sig).expect("valid");
        assert_eq!(
            verify_signature(&k.account_id(), b"hellO", &sig),
            Err(KeyError::BadSignature(k.account_id()))
        );
    }

    #[test]
    fn mnemonic_round_trip() {
        let m = Mnemonic::generate();
        let phrase = m.phrase();
        assert_eq!(phrase.split(' ').count(), 24);
        let again = Mnemonic::parse(&phrase).expect("parses");
        assert_eq!(
            m.account_keypair().account_id(),
            again.account_keypair().account_id()
        );
    }

    #[test]
    fn mnemonic_known_phrase_is_stable() {
        // BIP-39 vector phrase; the account derived from it must never change.
        let m = Mnemonic::parse(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .expect("valid phrase");
        // Pinned when the derivation was defined: changing it would orphan every user account.
        assert_eq!(
            m.account_keypair().account_id().to_string(),
            "0xdb639c047df64a7b95412c1407d3e9c6a086827d83c7816bfa731f1a49335860"
        );
    }

    #[test]
    fn mnemonic_rejects_bad_checksum_and_words() {
        assert!(matches!(
            Mnemonic::parse(
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon"
            ),
            Err(KeyError::InvalidMnemonic(_))
        ));
        assert!(Mnemonic::parse("not a real phrase").is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let seed = NodeSeed::from_bytes([0xab; 32]);
        assert!(!format!("{seed:?}").contains("ab"));
        let k = seed.account_keypair();
        let secret_hex = hex::encode(k.signing.to_bytes());
        assert!(!format!("{k:?}").contains(&secret_hex));
        let x = seed.x25519_key();
        assert!(!format!("{x:?}").contains(&hex::encode(*x.secret_bytes())));
        let m = Mnemonic::generate();
        assert!(!format!("{m:?}").contains(m.phrase().split(' ').next().expect("word")));
    }
}
