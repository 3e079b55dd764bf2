//! Users' Ed25519 and BIP-340 keys: derivation from a scheme's network key by an additive tweak,
//! and signature verification (`docs/PROTOCOL.md` §2, "User keys").
//!
//! - **Ed25519:** `t = SHA-512("sigil/v1/derive/ed25519" ‖ A ‖ depth ‖ index*) mod ℓ` (the
//!   64-byte digest read little-endian, as RFC 8032 reads hashes), with `A` the network key's 32
//!   bytes, `depth` one byte and each index 4 bytes big-endian. The user key is `A + t·B`.
//! - **BIP-340:** BIP-32 `CKDpub` from the network key's even-y point, with the chain code of
//!   [`crate::derivation::network_chain_code`] over the 33-byte tagged network key; the tweak
//!   `t` is the sum of the steps' `IL`. The child `P` is the Taproot internal key; the user key
//!   is the BIP-341 output key `Q = lift_x(x(P)) + int(hash_TapTweak(x(P)))·G` (no script
//!   path, as BIP-86), and signatures verify under `x(Q)`.

use bip32::PublicKey as _;
use curve25519_dalek::{EdwardsPoint, Scalar as EdScalar, edwards::CompressedEdwardsY};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{ProjectivePoint, U256};
use sha2::Digest as _;
use sigil_primitives::{DerivationPath, HashingAlgorithm, KeyScheme, Signature, VerifyingKey};

use crate::derivation::{DerivationError, network_chain_code};

/// Domain separator of the Ed25519 derivation tweak.
const ED25519_DOMAIN: &[u8] = b"sigil/v1/derive/ed25519";

/// A derived user key of a Schnorr-family scheme, with what a signer adds to its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchnorrChild {
    /// The user key's identifier.
    pub key: VerifyingKey,
    /// The additive tweak in the scheme's scalar encoding (Ed25519: 32 bytes little-endian;
    /// secp256k1: 32 bytes big-endian).
    pub tweak: [u8; 32],
}

/// Derives the user key of an Ed25519 or BIP-340 network key at `path`.
pub fn derive_schnorr_child(
    network_key: &VerifyingKey,
    path: &DerivationPath,
) -> Result<SchnorrChild, DerivationError> {
    match network_key.scheme() {
        KeyScheme::Ed25519 => derive_ed25519(network_key, path),
        KeyScheme::Bip340 => derive_bip340(network_key, path),
        KeyScheme::EcdsaSecp256k1 => Err(DerivationError::WrongScheme(KeyScheme::EcdsaSecp256k1)),
    }
}

fn ed25519_point(key: &VerifyingKey) -> Result<EdwardsPoint, DerivationError> {
    let bytes: [u8; 32] = key
        .key_bytes()
        .try_into()
        .map_err(|_| DerivationError::InvalidChild { step: 0 })?;
    CompressedEdwardsY(bytes)
        .decompress()
        .ok_or(DerivationError::InvalidChild { step: 0 })
}

fn derive_ed25519(
    network_key: &VerifyingKey,
    path: &DerivationPath,
) -> Result<SchnorrChild, DerivationError> {
    let parent = ed25519_point(network_key)?;
    let mut hasher = sha2::Sha512::new();
    hasher.update(ED25519_DOMAIN);
    hasher.update(network_key.key_bytes());
    hasher.update([u8::try_from(path.indices().len()).unwrap_or(u8::MAX)]);
    for index in path.indices() {
        hasher.update(index.to_be_bytes());
    }
    let wide: [u8; 64] = hasher.finalize().into();
    let tweak = EdScalar::from_bytes_mod_order_wide(&wide);
    let child = parent + EdwardsPoint::mul_base(&tweak);
    let key = VerifyingKey::tagged(KeyScheme::Ed25519, &child.compress().to_bytes())
        .map_err(|_| DerivationError::InvalidChild { step: 0 })?;
    Ok(SchnorrChild {
        key,
        tweak: tweak.to_bytes(),
    })
}

fn derive_bip340(
    network_key: &VerifyingKey,
    path: &DerivationPath,
) -> Result<SchnorrChild, DerivationError> {
    let mut point = network_key.to_k256();
    let mut chain_code = network_chain_code(network_key);
    let mut tweak = k256::Scalar::ZERO;
    for (step, index) in path.indices().iter().enumerate() {
        let (il, next_chain_code) = point
            .derive_tweak(&chain_code, bip32::ChildNumber(*index))
            .map_err(|_| DerivationError::InvalidChild { step })?;
        point = point
            .derive_child(il)
            .map_err(|_| DerivationError::InvalidChild { step })?;
        tweak += <k256::Scalar as Reduce<U256>>::reduce_bytes(&il.into());
        chain_code = next_chain_code;
    }
    let output = taproot_output_key(&point);
    let key = VerifyingKey::tagged(KeyScheme::Bip340, &output).map_err(|_| {
        DerivationError::InvalidChild {
            step: path.indices().len(),
        }
    })?;
    Ok(SchnorrChild {
        key,
        tweak: tweak.to_bytes().into(),
    })
}

/// The x-only BIP-341 output key of internal key `internal` with no script path.
pub fn taproot_output_key(internal: &k256::PublicKey) -> [u8; 32] {
    let x = x_only(internal);
    let tag = sha2::Sha256::digest(b"TapTweak");
    let hash = sha2::Sha256::new()
        .chain_update(tag)
        .chain_update(tag)
        .chain_update(x)
        .finalize();
    let hash: [u8; 32] = hash.into();
    let t = <k256::Scalar as Reduce<U256>>::reduce_bytes(&hash.into());
    let even = {
        let mut sec1 = [0u8; 33];
        sec1[0] = 0x02;
        sec1[1..].copy_from_slice(&x);
        k256::PublicKey::from_sec1_bytes(&sec1).unwrap_or_else(|_| unreachable!("valid x"))
    };
    let q = (even.to_projective() + ProjectivePoint::GENERATOR * t).to_affine();
    x_only(&k256::PublicKey::from_affine(q).unwrap_or_else(|_| unreachable!("not identity")))
}

fn x_only(key: &k256::PublicKey) -> [u8; 32] {
    let point = key.to_encoded_point(true);
    point.as_bytes()[1..]
        .try_into()
        .unwrap_or_else(|_| unreachable!("33-byte point"))
}

/// The bytes a key signs for a request: the message itself for hashing `none`, otherwise
/// the 32-byte message hash.
pub fn signed_bytes<'a>(
    hashing: HashingAlgorithm,
    message: &'a [u8],
    message_hash: &'a [u8; 32],
) -> &'a [u8] {
    if hashing == HashingAlgorithm::None {
        message
    } else {
        message_hash
    }
}

/// Checks a user key's signature over `signed`, the bytes the scheme signs (for ECDSA the
/// 32-byte prehash).
pub fn verify_user_signature(
    key: &VerifyingKey,
    signed: &[u8],
    signature: &Signature,
) -> Result<(), DerivationError> {
    match (key.scheme(), signature) {
        (KeyScheme::EcdsaSecp256k1, Signature::Ecdsa(sig)) => {
            let prehash: [u8; 32] = signed.try_into().map_err(|_| {
                DerivationError::MalformedSignature("ECDSA signs a 32-byte prehash")
            })?;
            crate::derivation::verify_ecdsa(key, &prehash, sig)
        }
        (KeyScheme::Ed25519, Signature::Schnorr(bytes)) => {
            let vk_bytes: [u8; 32] = key
                .key_bytes()
                .try_into()
                .map_err(|_| DerivationError::Unrecoverable)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&vk_bytes)
                .map_err(|_| DerivationError::Unrecoverable)?;
            vk.verify_strict(signed, &ed25519_dalek::Signature::from_bytes(bytes))
                .map_err(|_| DerivationError::BadSignature(KeyScheme::Ed25519))
        }
        (KeyScheme::Bip340, Signature::Schnorr(bytes)) => {
            let vk = k256::schnorr::VerifyingKey::from_bytes(key.key_bytes())
                .map_err(|_| DerivationError::Unrecoverable)?;
            let sig = k256::schnorr::Signature::try_from(&bytes[..])
                .map_err(|_| DerivationError::MalformedSignature("not a BIP-340 signature"))?;
            // BIP-340 over the message itself (k256's `Verifier` would SHA-256 it first).
            vk.verify_raw(signed, &sig)
                .map_err(|_| DerivationError::BadSignature(KeyScheme::Bip340))
        }
        (scheme, _) => Err(DerivationError::WrongScheme(scheme)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> DerivationPath {
        text.parse().expect("path")
    }

    #[test]
    fn an_ed25519_child_signs_with_the_tweaked_secret() {
        // A one-party "network": the child secret is a + t, which ed25519-dalek's hazmat API
        // signs with; the derived public key must verify it.
        let a = EdScalar::from_bytes_mod_order([7; 32]);
        let network = VerifyingKey::tagged(
            KeyScheme::Ed25519,
            &EdwardsPoint::mul_base(&a).compress().to_bytes(),
        )
        .expect("key");
        let child = derive_schnorr_child(&network, &path("m/1/2")).expect("derives");
        let secret = a + EdScalar::from_canonical_bytes(child.tweak).expect("canonical");
        assert_eq!(
            &EdwardsPoint::mul_base(&secret).compress().to_bytes()[..],
            child.key.key_bytes()
        );
        assert_ne!(
            child.key,
            derive_schnorr_child(&network, &path("m/1/3"))
                .expect("derives")
                .key
        );
        assert_eq!(
            child,
            derive_schnorr_child(&network, &path("m/1/2")).expect("again")
        );
    }

    #[test]
    fn a_bip340_child_is_the_bip32_child_with_the_taproot_tweak() {
        let secret = k256::SecretKey::from_slice(&[9; 32]).expect("scalar");
        let even = if secret.public_key().to_encoded_point(true).as_bytes()[0] == 0x02 {
            *secret.to_nonzero_scalar()
        } else {
            -*secret.to_nonzero_scalar()
        };
        let x = x_only(&secret.public_key());
        let network = VerifyingKey::tagged(KeyScheme::Bip340, &x).expect("key");
        let child = derive_schnorr_child(&network, &path("m/44/0/5")).expect("derives");
        let t = <k256::Scalar as Reduce<U256>>::reduce_bytes(&child.tweak.into());
        let internal =
            k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * (even + t)).to_affine())
                .expect("point");
        // The same child through the bip32 crate's own extended-key API.
        let xpub = bip32::ExtendedKey {
            prefix: bip32::Prefix::XPUB,
            attrs: bip32::ExtendedKeyAttrs {
                depth: 0,
                parent_fingerprint: [0; 4],
                child_number: bip32::ChildNumber(0),
                chain_code: network_chain_code(&network),
            },
            key_bytes: network
                .to_k256()
                .to_encoded_point(true)
                .as_bytes()
                .try_into()
                .expect("33"),
        };
        let mut xpub = bip32::XPub::try_from(xpub).expect("xpub");
        for index in [44, 0, 5] {
            xpub = xpub.derive_child(bip32::ChildNumber(index)).expect("child");
        }
        assert_eq!(
            xpub.public_key().to_encoded_point(true),
            k256::ecdsa::VerifyingKey::from(&internal).to_encoded_point(true)
        );
        assert_eq!(child.key.key_bytes(), taproot_output_key(&internal));
    }

    #[test]
    fn the_taproot_tweak_matches_bip86() {
        // BIP-86's first receiving key of its test mnemonic: internal key and output key.
        let mut internal = [0x02u8; 33];
        internal[1..].copy_from_slice(
            &hex::decode("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115")
                .expect("hex"),
        );
        let internal = k256::PublicKey::from_sec1_bytes(&internal).expect("point");
        assert_eq!(
            hex::encode(taproot_output_key(&internal)),
            "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"
        );
    }

    #[test]
    fn bip340_signatures_verify_over_the_message_itself() {
        let signing = k256::schnorr::SigningKey::from_bytes(&[5; 32]).expect("key");
        let key = VerifyingKey::tagged(
            KeyScheme::Bip340,
            &signing.verifying_key().to_bytes().into(),
        )
        .expect("x-only key");
        let message = [0x42; 32];
        let sig = signing.sign_raw(&message, &[0; 32]).expect("signs");
        let sig = Signature::Schnorr(sig.to_bytes());
        verify_user_signature(&key, &message, &sig).expect("verifies");
        assert!(verify_user_signature(&key, &[0x43; 32], &sig).is_err());
    }

    #[test]
    fn signatures_of_the_wrong_scheme_or_key_are_refused() {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let key = VerifyingKey::tagged(KeyScheme::Ed25519, signing.verifying_key().as_bytes())
            .expect("key");
        use ed25519_dalek::Signer as _;
        let sig = Signature::Schnorr(signing.sign(b"hello").to_bytes());
        verify_user_signature(&key, b"hello", &sig).expect("verifies");
        assert!(matches!(
            verify_user_signature(&key, b"hellO", &sig),
            Err(DerivationError::BadSignature(_))
        ));
        let ecdsa =
            Signature::Ecdsa(sigil_primitives::EcdsaSignature::from_bytes([0; 65]).expect("sig"));
        assert!(matches!(
            verify_user_signature(&key, b"hello", &ecdsa),
            Err(DerivationError::WrongScheme(_))
        ));
    }
}
#[cfg(test)]
mod vectors {
    use super::*;

    /// The examples of `docs/PROTOCOL.md` §2 ("User keys"): (network key, path, user key).
    const VECTORS: [(&str, &str, &str); 4] = [
        (
            "0xedc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608",
            "m/1/2",
            "0xedc0b6c8acb99ade98e660b7b29197d79b95bb7ec983602778451f8b9a13cb32cf",
        ),
        (
            "0xedc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608",
            "m",
            "0xed5e91dcf5208c794f35b786f44d39ff96ad5900902c3f42c554479c21d4a75f24",
        ),
        (
            "0x5456b328b30c8bf5839e24058747879408bdb36241dc9c2e7c619faa12b2920967",
            "m/44/0/5",
            "0x543d616fb2c38e83b3bc654ae19d1c05ac65d59d6e186b47e2b2a3cfb74c6119d4",
        ),
        (
            "0x5456b328b30c8bf5839e24058747879408bdb36241dc9c2e7c619faa12b2920967",
            "m",
            "0x54483a336466d31e2be85892931ec6613ca19f9a6762329698b4c3e7151c01122b",
        ),
    ];

    #[test]
    fn the_protocols_examples_hold() {
        for (network, path, user) in VECTORS {
            let network: VerifyingKey = network.parse().expect("network key");
            let child =
                derive_schnorr_child(&network, &path.parse().expect("path")).expect("derives");
            assert_eq!(child.key.to_string(), user, "{network} {path}");
        }
    }
}

/// The id of the key generation that makes `scheme`'s network key among `signers` with
/// `threshold` on `chain_id` (`docs/PROTOCOL.md` §7.7): `SHA-256("sigil/v1/frost-keygen" ‖
/// len(chain_id) (u32 BE) ‖ chain_id ‖ scheme name ‖ threshold (u16 BE) ‖ each signer's
/// account id, ascending)`. Nodes run the session under it, and the ledger checks key
/// generation fault reports against it.
pub fn frost_keygen_session(
    chain_id: &str,
    scheme: KeyScheme,
    threshold: u16,
    signers: &[sigil_primitives::AccountId],
) -> [u8; 32] {
    let mut signers = signers.to_vec();
    signers.sort();
    signers.dedup();
    let mut hash = sha2::Sha256::new()
        .chain_update(b"sigil/v1/frost-keygen")
        .chain_update((chain_id.len() as u32).to_be_bytes())
        .chain_update(chain_id.as_bytes())
        .chain_update(scheme.name().as_bytes())
        .chain_update(threshold.to_be_bytes());
    for signer in &signers {
        hash.update(signer.as_bytes());
    }
    hash.finalize().into()
}
