//! BIP-32 public derivation of users' keys from the network key, and ECDSA recovery.
//!
//! A DKG output has no chain code, so the network key's chain code is
//! `SHA-256("chain-code-derivation" ‖ compressed network key)`: the convention of synedrion's
//! `derive_verifying_key_bip32`. The ledger, this crate and the threshold engine all use it, so a
//! registered key and the key the committee signs with are the same.

use bip32::PublicKey as _;
use k256::ecdsa::{RecoveryId, Signature};
use sha2::Digest as _;
use sigil_primitives::{DerivationPath, EcdsaSignature, EthAddress, VerifyingKey};

use crate::hashing::keccak256;

/// Why a key could not be derived or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationError {
    /// The derivation step gave an invalid key (probability below 2^-127 per step).
    #[error(
        "BIP-32 derivation failed at step {step}: the tweak is out of range; choose another path"
    )]
    InvalidChild {
        /// Zero-based index of the failing step.
        step: usize,
    },
    /// The signature's `r` or `s` is zero or out of range, or `s` is not in the lower half.
    #[error("malformed ECDSA signature: {0}")]
    MalformedSignature(&'static str),
    /// The key is of another scheme than the operation needs.
    #[error("this operation does not apply to a {0} key")]
    WrongScheme(sigil_primitives::KeyScheme),
    /// The signature does not verify under the key.
    #[error("the {0} signature does not verify under the key")]
    BadSignature(sigil_primitives::KeyScheme),
    /// No public key can be recovered from the signature and hash.
    #[error("no public key can be recovered from this signature and message hash")]
    Unrecoverable,
    /// The signature is valid but for a different key.
    #[error("signature was made by {actual}, not by {expected}")]
    WrongSigner {
        /// The key the signature should verify under.
        expected: VerifyingKey,
        /// The key it actually recovers to.
        actual: VerifyingKey,
    },
}

/// The chain code of the network key (see the module docs for the convention).
pub fn network_chain_code(network_key: &VerifyingKey) -> [u8; 32] {
    sha2::Sha256::new()
        .chain_update(b"chain-code-derivation")
        .chain_update(network_key.as_bytes())
        .finalize()
        .into()
}

/// Derives the public child at `path` from a parent key and chain code (BIP-32 `CKDpub`).
/// Returns the child key and its chain code.
pub fn derive_public(
    parent: &VerifyingKey,
    chain_code: &[u8; 32],
    path: &DerivationPath,
) -> Result<(VerifyingKey, [u8; 32]), DerivationError> {
    let mut key = parent.to_k256();
    let mut chain_code = *chain_code;
    for (step, index) in path.indices().iter().enumerate() {
        let child = bip32::ChildNumber(*index);
        let (tweak, next_chain_code) = key
            .derive_tweak(&chain_code, child)
            .map_err(|_| DerivationError::InvalidChild { step })?;
        key = key
            .derive_child(tweak)
            .map_err(|_| DerivationError::InvalidChild { step })?;
        chain_code = next_chain_code;
    }
    Ok((VerifyingKey::from_k256(&key), chain_code))
}

/// A user's verifying key: the child of the network key at `path`.
pub fn derive_user_key(
    network_key: &VerifyingKey,
    path: &DerivationPath,
) -> Result<VerifyingKey, DerivationError> {
    derive_public(network_key, &network_chain_code(network_key), path).map(|(key, _)| key)
}

/// The Ethereum address of a key: the last 20 bytes of keccak256 of the uncompressed point.
pub fn eth_address(key: &VerifyingKey) -> EthAddress {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let uncompressed = key.to_k256().to_encoded_point(false);
    let digest = keccak256(&uncompressed.as_bytes()[1..]);
    EthAddress::from_slice(&digest[12..]).unwrap_or_else(|_| unreachable!("20 bytes"))
}

/// Recovers the signer of a 32-byte prehash from an `r ‖ s ‖ v` signature, with its Ethereum
/// address. High-`s` signatures are refused, as Ethereum does.
pub fn recover_signer(
    prehash: &[u8; 32],
    signature: &EcdsaSignature,
) -> Result<(VerifyingKey, EthAddress), DerivationError> {
    let bytes = signature.as_bytes();
    let sig = Signature::from_slice(&bytes[..64]).map_err(|_| {
        DerivationError::MalformedSignature("r or s is zero or not below the group order")
    })?;
    if sig.normalize_s().is_some() {
        return Err(DerivationError::MalformedSignature(
            "s is in the upper half of the group order",
        ));
    }
    let recovery_id = RecoveryId::from_byte(bytes[64]).ok_or(DerivationError::Unrecoverable)?;
    let key = k256::ecdsa::VerifyingKey::recover_from_prehash(prehash, &sig, recovery_id)
        .map_err(|_| DerivationError::Unrecoverable)?;
    let key = VerifyingKey::from_k256(&key.into());
    Ok((key, eth_address(&key)))
}

/// Checks that `signature` over `prehash` was made by `expected`.
pub fn verify_ecdsa(
    expected: &VerifyingKey,
    prehash: &[u8; 32],
    signature: &EcdsaSignature,
) -> Result<(), DerivationError> {
    let (actual, _) = recover_signer(prehash, signature)?;
    if actual != *expected {
        return Err(DerivationError::WrongSigner {
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn sign(key: &SigningKey, prehash: &[u8; 32]) -> EcdsaSignature {
        let (sig, rid) = key.sign_prehash_recoverable(prehash).expect("signs");
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = rid.to_byte();
        EcdsaSignature::from_bytes(out).expect("valid v")
    }

    #[test]
    fn known_ethereum_address() {
        // The account of the web3.js documentation's example private key.
        let secret =
            hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .expect("hex");
        let key = SigningKey::from_slice(&secret).expect("scalar");
        let vk = VerifyingKey::from_k256(&(*key.verifying_key()).into());
        assert_eq!(
            eth_address(&vk).to_string(),
            "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"
        );
    }

    #[test]
    fn recover_round_trip_and_wrong_signer() {
        let key = SigningKey::from_slice(&[0x11; 32]).expect("scalar");
        let vk = VerifyingKey::from_k256(&(*key.verifying_key()).into());
        let prehash = keccak256(b"sigil");
        let sig = sign(&key, &prehash);
        let (recovered, address) = recover_signer(&prehash, &sig).expect("recovers");
        assert_eq!(recovered, vk);
        assert_eq!(address, eth_address(&vk));
        verify_ecdsa(&vk, &prehash, &sig).expect("verifies");

        let other = keccak256(b"other");
        assert!(matches!(
            verify_ecdsa(&vk, &other, &sig),
            Err(DerivationError::WrongSigner { .. })
        ));
    }

    #[test]
    fn high_s_is_refused() {
        let key = SigningKey::from_slice(&[0x22; 32]).expect("scalar");
        let prehash = keccak256(b"x");
        let (sig, rid) = key.sign_prehash_recoverable(&prehash).expect("signs");
        // Negating s gives the same signature's malleable twin, which must be refused.
        let high = Signature::from_scalars(sig.r(), -*sig.s()).expect("valid scalars");
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&high.to_bytes());
        out[64] = rid.to_byte() ^ 1;
        let sig = EcdsaSignature::from_bytes(out).expect("v");
        assert!(matches!(
            recover_signer(&prehash, &sig),
            Err(DerivationError::MalformedSignature(_))
        ));
    }

    #[test]
    fn zero_signature_is_malformed() {
        let sig = EcdsaSignature::from_bytes([0; 65]).expect("v=0");
        assert!(matches!(
            recover_signer(&[1; 32], &sig),
            Err(DerivationError::MalformedSignature(_))
        ));
    }

    #[test]
    fn user_key_derivation_is_deterministic_and_path_dependent() {
        let key = SigningKey::from_slice(&[0x33; 32]).expect("scalar");
        let network = VerifyingKey::from_k256(&(*key.verifying_key()).into());
        let a: DerivationPath = "m/1/2/3".parse().expect("path");
        let b: DerivationPath = "m/1/2/4".parse().expect("path");
        let ka = derive_user_key(&network, &a).expect("derives");
        assert_eq!(ka, derive_user_key(&network, &a).expect("derives"));
        assert_ne!(ka, derive_user_key(&network, &b).expect("derives"));
        assert_eq!(
            derive_user_key(&network, &DerivationPath::default()).expect("root"),
            network
        );
    }
}
