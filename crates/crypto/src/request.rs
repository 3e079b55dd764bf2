//! Values derived from a signing request that every node must compute alike
//! (`docs/PROTOCOL.md` §7.4): the request digest, the signing session id and attestations.

use sha2::{Digest, Sha256};
use sigil_primitives::{AccountId, Ed25519Signature, SessionId, Signature, VerifyingKey};

use crate::keys::{AccountKeypair, KeyError, verify_signature};

/// Domain of the request digest.
pub const REQUEST_DIGEST_DOMAIN: &[u8] = b"sigil/v1/request-digest";
/// Domain of a signing session id.
pub const SIGN_SESSION_DOMAIN: &[u8] = b"sigil/v1/sign-session";
/// Domain of an attestation.
pub const ATTESTATION_DOMAIN: &[u8] = b"sigil/v1/attestation";

/// SHA-256 of the domain and the user's whole signed plaintext: identifies one request.
pub fn request_digest(user_signed_plaintext: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(REQUEST_DIGEST_DOMAIN)
        .chain_update(user_signed_plaintext)
        .finalize()
        .into()
}

/// The id of the threshold session that signs attempt `attempt` of a request.
pub fn sign_session_id(request_digest: &[u8; 32], attempt: u32) -> SessionId {
    SessionId::new(
        Sha256::new()
            .chain_update(SIGN_SESSION_DOMAIN)
            .chain_update(request_digest)
            .chain_update(attempt.to_be_bytes())
            .finalize()
            .into(),
    )
}

/// The bytes a committee member signs to attest a signature:
/// `domain ‖ request_digest ‖ verifying_key ‖ message_hash ‖ signature`.
pub fn attestation_bytes(
    request_digest: &[u8; 32],
    verifying_key: &VerifyingKey,
    message_hash: &[u8; 32],
    signature: &Signature,
) -> Vec<u8> {
    [
        ATTESTATION_DOMAIN,
        request_digest,
        verifying_key.as_bytes(),
        message_hash,
        signature.as_bytes(),
    ]
    .concat()
}

/// Signs an attestation with a member's account key.
pub fn attest(
    member: &AccountKeypair,
    request_digest: &[u8; 32],
    verifying_key: &VerifyingKey,
    message_hash: &[u8; 32],
    signature: &Signature,
) -> Ed25519Signature {
    member.sign(&attestation_bytes(
        request_digest,
        verifying_key,
        message_hash,
        signature,
    ))
}

/// Checks a member's attestation.
pub fn verify_attestation(
    member: &AccountId,
    attestation: &Ed25519Signature,
    request_digest: &[u8; 32],
    verifying_key: &VerifyingKey,
    message_hash: &[u8; 32],
    signature: &Signature,
) -> Result<(), KeyError> {
    verify_signature(
        member,
        &attestation_bytes(request_digest, verifying_key, message_hash, signature),
        attestation,
    )
}
