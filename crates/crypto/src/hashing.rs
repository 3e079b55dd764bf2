//! The message-hash functions behind every [`HashingAlgorithm`].

use sha2::Digest as _;
use sigil_primitives::HashingAlgorithm;

/// Why a message could not be hashed here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// `identity` takes the message as the prehash, so it must be exactly 32 bytes.
    #[error("the identity hash needs a 32-byte message, got {0} bytes")]
    IdentityLength(usize),
    /// A custom hash is computed by a program, not by this crate.
    #[error("custom hash {0} is computed by the key's program, not built in")]
    CustomNeedsProgram(u8),
}

/// Hashes `message` with a built-in algorithm into the 32-byte prehash that gets signed. For
/// `none` (Ed25519 signs the message itself) it is the SHA-256 of the message, the digest that
/// records and attestations name.
pub fn message_hash(algorithm: HashingAlgorithm, message: &[u8]) -> Result<[u8; 32], HashError> {
    Ok(match algorithm {
        HashingAlgorithm::Keccak256 => keccak256(message),
        HashingAlgorithm::Sha256 | HashingAlgorithm::None => sha2::Sha256::digest(message).into(),
        HashingAlgorithm::Sha3_256 => sha3::Sha3_256::digest(message).into(),
        HashingAlgorithm::Blake2b256 => blake2::Blake2b256::digest(message).into(),
        HashingAlgorithm::Identity => {
            <[u8; 32]>::try_from(message).map_err(|_| HashError::IdentityLength(message.len()))?
        }
        HashingAlgorithm::Custom(index) => return Err(HashError::CustomNeedsProgram(index)),
    })
}

/// Keccak-256 (the pre-standard SHA-3 that Ethereum uses).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    sha3::Keccak256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(alg: HashingAlgorithm, msg: &[u8]) -> String {
        hex::encode(message_hash(alg, msg).expect("hashes"))
    }

    #[test]
    fn known_vectors() {
        // Empty-input and "abc" vectors from the algorithms' specifications.
        assert_eq!(
            h(HashingAlgorithm::Keccak256, b""),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            h(HashingAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            h(HashingAlgorithm::Sha3_256, b"abc"),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        assert_eq!(
            h(HashingAlgorithm::Blake2b256, b"abc"),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
        let prehash = [0x5a; 32];
        assert_eq!(
            message_hash(HashingAlgorithm::Identity, &prehash),
            Ok(prehash)
        );
    }

    #[test]
    fn identity_rejects_wrong_lengths() {
        assert_eq!(
            message_hash(HashingAlgorithm::Identity, &[0; 31]),
            Err(HashError::IdentityLength(31))
        );
        assert_eq!(
            message_hash(HashingAlgorithm::Identity, &[0; 33]),
            Err(HashError::IdentityLength(33))
        );
        assert_eq!(
            message_hash(HashingAlgorithm::Identity, b""),
            Err(HashError::IdentityLength(0))
        );
    }

    #[test]
    fn custom_is_not_built_in() {
        assert_eq!(
            message_hash(HashingAlgorithm::Custom(2), b"x"),
            Err(HashError::CustomNeedsProgram(2))
        );
    }
}
