//! Signing requests and the node API's bodies (`docs/PROTOCOL.md` §7).
//!
//! The two binary payloads travel inside envelopes: [`SignatureRequest`] is what a user asks a
//! relayer, [`ForwardedRequest`] is what a relayer asks a committee member. Both have a fixed
//! big-endian layout so a client in any language can build them. The JSON bodies the nodes
//! answer with are plain serde types.

use serde::{Deserialize, Serialize};

use crate::{
    AccountId, Ed25519Signature, HashingAlgorithm, MAX_PROGRAMS_PER_KEY, PrimitiveError, RequestId,
    Signature, VerifyingKey, X25519PublicKey,
};

/// Version byte of the signature request and of a nonce request.
pub const REQUEST_VERSION: u8 = 1;
/// Version byte of the forwarded request (2: it names prepared commitments).
pub const FORWARD_VERSION: u8 = 2;

/// Commitments made ahead that the relayer names for one committee member, for one-round
/// FROST signing (`docs/PROTOCOL.md` §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCommitment {
    /// The member whose commitments these are.
    pub member: AccountId,
    /// The id the member gave them.
    pub id: [u8; 16],
    /// frost's serialized signing commitments.
    pub commitments: Vec<u8>,
}

/// A user's request for a signature: the payload of the envelope sent to `POST /v1/relay`.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureRequest {
    /// The registered key that should sign.
    pub verifying_key: VerifyingKey,
    /// A recent block: freshness, program oracle data and committee seed all come from it.
    pub block: u64,
    /// How the message becomes the 32-byte prehash.
    pub hashing: HashingAlgorithm,
    /// Auxiliary data, one entry per program of the key, in the key's program order.
    pub aux_data: Vec<Vec<u8>>,
    /// The message to sign (at most [`crate::MAX_MESSAGE_SIZE`] bytes; checked by the nodes, not
    /// by the codec, so an oversized message gets its own error).
    pub message: Vec<u8>,
}

impl std::fmt::Debug for SignatureRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureRequest")
            .field("verifying_key", &self.verifying_key)
            .field("block", &self.block)
            .field("hashing", &self.hashing)
            .field("aux_data_items", &self.aux_data.len())
            .field("message_len", &self.message.len())
            .finish()
    }
}

/// The one-byte code of a hashing algorithm in binary payloads.
pub fn hashing_code(algorithm: HashingAlgorithm) -> u8 {
    match algorithm {
        HashingAlgorithm::Keccak256 => 0,
        HashingAlgorithm::Sha256 => 1,
        HashingAlgorithm::Sha3_256 => 2,
        HashingAlgorithm::Blake2b256 => 3,
        HashingAlgorithm::Identity => 4,
        HashingAlgorithm::None => 5,
        HashingAlgorithm::Custom(index) => 0x80 | index,
    }
}

/// The hashing algorithm of a one-byte code.
pub fn hashing_from_code(code: u8) -> Result<HashingAlgorithm, PrimitiveError> {
    Ok(match code {
        0 => HashingAlgorithm::Keccak256,
        1 => HashingAlgorithm::Sha256,
        2 => HashingAlgorithm::Sha3_256,
        3 => HashingAlgorithm::Blake2b256,
        4 => HashingAlgorithm::Identity,
        5 => HashingAlgorithm::None,
        c if c & 0x80 != 0 && usize::from(c & 0x7f) < MAX_PROGRAMS_PER_KEY => {
            HashingAlgorithm::Custom(c & 0x7f)
        }
        c => return Err(PrimitiveError::UnknownHashingAlgorithm(format!("code {c}"))),
    })
}

/// Reads a binary payload front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PrimitiveError> {
        if self.bytes.len() < n {
            return Err(PrimitiveError::Malformed {
                what: self.what,
                reason: format!("truncated at {field}"),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PrimitiveError> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PrimitiveError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, PrimitiveError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], PrimitiveError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    fn version(&mut self) -> Result<(), PrimitiveError> {
        self.expect_version(REQUEST_VERSION)
    }

    fn expect_version(&mut self, expected: u8) -> Result<(), PrimitiveError> {
        match self.u8("version")? {
            v if v == expected => Ok(()),
            v => Err(PrimitiveError::Malformed {
                what: self.what,
                reason: format!("unsupported version {v}"),
            }),
        }
    }

    fn finish(self) -> Result<(), PrimitiveError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(PrimitiveError::Malformed {
                what: self.what,
                reason: format!("{} trailing bytes", self.bytes.len()),
            })
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

impl SignatureRequest {
    /// The binary form: `version(1) ‖ verifying_key(33) ‖ block(8) ‖ hashing(1) ‖
    /// aux_count(1) ‖ (len(4) ‖ aux)* ‖ len(4) ‖ message`.
    pub fn encode(&self) -> Vec<u8> {
        let aux_len: usize = self.aux_data.iter().map(|a| 4 + a.len()).sum();
        let mut out = Vec::with_capacity(48 + aux_len + 4 + self.message.len());
        out.push(REQUEST_VERSION);
        out.extend_from_slice(self.verifying_key.as_bytes());
        out.extend_from_slice(&self.block.to_be_bytes());
        out.push(hashing_code(self.hashing));
        out.push(u8::try_from(self.aux_data.len()).unwrap_or(u8::MAX));
        for aux in &self.aux_data {
            put_bytes(&mut out, aux);
        }
        put_bytes(&mut out, &self.message);
        out
    }

    /// Parses [`SignatureRequest::encode`]'s form; any deviation is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, PrimitiveError> {
        let mut r = Reader {
            bytes,
            what: "signature request",
        };
        r.version()?;
        let verifying_key = VerifyingKey::from_slice(r.take(33, "verifying key")?)?;
        let block = r.u64("block")?;
        let hashing = hashing_from_code(r.u8("hashing")?)?;
        let count = usize::from(r.u8("aux count")?);
        if count > MAX_PROGRAMS_PER_KEY {
            return Err(PrimitiveError::InvalidCount {
                what: "auxiliary data",
                min: 0,
                max: MAX_PROGRAMS_PER_KEY,
                actual: count,
            });
        }
        let aux_data = (0..count)
            .map(|_| r.bytes("aux data").map(<[u8]>::to_vec))
            .collect::<Result<_, _>>()?;
        let message = r.bytes("message")?.to_vec();
        r.finish()?;
        Ok(Self {
            verifying_key,
            block,
            hashing,
            aux_data,
            message,
        })
    }
}

/// What a relayer sends each committee member: the payload of the envelope sent to
/// `POST /v1/sign`.
#[derive(Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    /// Which attempt this is (0 first); part of the committee seed.
    pub attempt: u32,
    /// The committee the relayer computed, ascending by account id.
    pub committee: Vec<AccountId>,
    /// Offenders the relayer left out of selection (ledger exclusions it saw), ascending.
    pub excluded: Vec<AccountId>,
    /// The relayer's session ticket signature (`docs/PROTOCOL.md` §8.2): what a member's
    /// offence report proves the session with.
    pub ticket: Ed25519Signature,
    /// The user's signed envelope plaintext (`docs/PROTOCOL.md` §3.1) exactly as the relayer
    /// decrypted it, so every signer checks the user's own signature.
    pub user_plaintext: Vec<u8>,
    /// For one-round signing of an Ed25519 or BIP-340 key: one member's commitments made
    /// ahead per committee member, ascending by member; empty for the interactive path.
    pub prepared: Vec<NamedCommitment>,
}

impl std::fmt::Debug for ForwardedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedRequest")
            .field("attempt", &self.attempt)
            .field("committee", &self.committee)
            .field("excluded", &self.excluded)
            .field("user_plaintext_len", &self.user_plaintext.len())
            .field("prepared", &self.prepared.len())
            .finish()
    }
}

impl ForwardedRequest {
    /// The binary form: `version(1) = 2 ‖ attempt(4) ‖ count(1) ‖ account(32)* ‖ count(1) ‖
    /// excluded account(32)* ‖ ticket signature(64) ‖ len(4) ‖ user plaintext ‖ count(1) ‖
    /// (member(32) ‖ id(16) ‖ len(2) ‖ commitments)*`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            76 + 32 * (self.committee.len() + self.excluded.len()) + self.user_plaintext.len(),
        );
        out.push(FORWARD_VERSION);
        out.extend_from_slice(&self.attempt.to_be_bytes());
        for list in [&self.committee, &self.excluded] {
            out.push(u8::try_from(list.len()).unwrap_or(u8::MAX));
            for member in list {
                out.extend_from_slice(member.as_bytes());
            }
        }
        out.extend_from_slice(self.ticket.as_bytes());
        put_bytes(&mut out, &self.user_plaintext);
        out.push(u8::try_from(self.prepared.len()).unwrap_or(u8::MAX));
        for named in &self.prepared {
            out.extend_from_slice(named.member.as_bytes());
            out.extend_from_slice(&named.id);
            let len = u16::try_from(named.commitments.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&named.commitments);
        }
        out
    }

    /// Parses [`ForwardedRequest::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Self, PrimitiveError> {
        let mut r = Reader {
            bytes,
            what: "forwarded request",
        };
        r.expect_version(FORWARD_VERSION)?;
        let attempt = r.u32("attempt")?;
        let count = usize::from(r.u8("committee size")?);
        let committee = (0..count)
            .map(|_| AccountId::from_slice(r.take(32, "committee member")?))
            .collect::<Result<_, _>>()?;
        let count = usize::from(r.u8("excluded count")?);
        let excluded = (0..count)
            .map(|_| AccountId::from_slice(r.take(32, "excluded account")?))
            .collect::<Result<_, _>>()?;
        let ticket = Ed25519Signature::from_slice(r.take(64, "ticket signature")?)?;
        let user_plaintext = r.bytes("user plaintext")?.to_vec();
        let count = usize::from(r.u8("prepared count")?);
        let prepared = (0..count)
            .map(|_| {
                let member = AccountId::from_slice(r.take(32, "prepared member")?)?;
                let id: [u8; 16] = r
                    .take(16, "prepared id")?
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("16 bytes"));
                let len = u16::from_be_bytes(
                    r.take(2, "commitments length")?
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("2 bytes")),
                );
                let commitments = r.take(usize::from(len), "commitments")?.to_vec();
                Ok(NamedCommitment {
                    member,
                    id,
                    commitments,
                })
            })
            .collect::<Result<_, PrimitiveError>>()?;
        r.finish()?;
        Ok(Self {
            attempt,
            committee,
            excluded,
            ticket,
            user_plaintext,
            prepared,
        })
    }
}

/// A relayer's request for a signer's commitments made ahead: the payload of the envelope sent
/// to `POST /v1/nonces` (`docs/PROTOCOL.md` §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceRequest {
    /// The scheme (Ed25519 or BIP-340).
    pub scheme: crate::KeyScheme,
    /// How many the relayer wants.
    pub count: u16,
}

impl NonceRequest {
    /// The binary form: `version(1) = 1 ‖ scheme(1): 1 ed25519, 2 bip340 ‖ count(2)`.
    pub fn encode(&self) -> [u8; 4] {
        let code = match self.scheme {
            crate::KeyScheme::EcdsaSecp256k1 => 0,
            crate::KeyScheme::Ed25519 => 1,
            crate::KeyScheme::Bip340 => 2,
        };
        let count = self.count.to_be_bytes();
        [REQUEST_VERSION, code, count[0], count[1]]
    }

    /// Parses [`NonceRequest::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Self, PrimitiveError> {
        let mut r = Reader {
            bytes,
            what: "nonce request",
        };
        r.version()?;
        let scheme = match r.u8("scheme")? {
            1 => crate::KeyScheme::Ed25519,
            2 => crate::KeyScheme::Bip340,
            other => return Err(PrimitiveError::UnknownScheme(format!("code {other}"))),
        };
        let count = u16::from_be_bytes(
            r.take(2, "count")?
                .try_into()
                .unwrap_or_else(|_| unreachable!("2 bytes")),
        );
        r.finish()?;
        Ok(Self { scheme, count })
    }
}

/// One commitment a signer made ahead, as `POST /v1/nonces` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedNonce {
    /// The id the forwarded request names it by (16 bytes).
    #[serde(with = "crate::bytes::hex_vec")]
    pub id: Vec<u8>,
    /// frost's serialized signing commitments.
    #[serde(with = "crate::bytes::hex_vec")]
    pub commitments: Vec<u8>,
}

/// A signer's answer to `POST /v1/nonces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceBatch {
    /// The scheme they are for.
    pub scheme: crate::KeyScheme,
    /// The epoch the signer made them in (`docs/PROTOCOL.md` §7.8): a relayer keeps them only
    /// for a pool of the same epoch.
    #[serde(with = "crate::bytes::hex_array")]
    pub epoch: [u8; 32],
    /// The new commitments (fewer than asked when the relayer already holds many).
    pub nonces: Vec<IssuedNonce>,
}

/// One committee member's signed statement that it produced `signature` for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The signer's account.
    pub signer: AccountId,
    /// Its ed25519 signature over the attestation bytes (`docs/PROTOCOL.md` §7.4).
    pub attestation: Ed25519Signature,
}

/// A committee member's answer to `POST /v1/sign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerResponse {
    /// The signature: `r ‖ s ‖ v` for ECDSA, 64 bytes for Ed25519 and BIP-340.
    pub signature: Signature,
    /// The member's attestation.
    #[serde(flatten)]
    pub attestation: Attestation,
}

/// The relayer's answer to `POST /v1/relay`, also kept for `GET /v1/signature/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayResponse {
    /// The user's request id.
    pub request_id: RequestId,
    /// The key that signed.
    pub verifying_key: VerifyingKey,
    /// The 32-byte prehash that was signed, 0x-hex; for hashing `none` (Ed25519), the SHA-256
    /// of the message, which was signed as it is.
    #[serde(with = "crate::bytes::hex_array")]
    pub message_hash: [u8; 32],
    /// The signature: `r ‖ s ‖ v` for ECDSA, 64 bytes for Ed25519 and BIP-340.
    pub signature: Signature,
    /// The request's block.
    pub block: u64,
    /// The attempt that succeeded (0 first).
    pub attempt: u32,
    /// The committee that signed, ascending.
    pub committee: Vec<AccountId>,
    /// The relayer that forwarded it.
    pub relayer: AccountId,
    /// Every committee member's attestation.
    pub attestations: Vec<Attestation>,
    /// Every attempt, the failed ones with their error.
    #[serde(default)]
    pub attempts: Vec<AttemptReport>,
    /// Offences the ledger holds for this request's sessions.
    #[serde(default)]
    pub offences: Vec<OffenceSummary>,
}

/// One attempt of a request: the committee asked and, if it failed, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptReport {
    /// Attempt number (0 first).
    pub attempt: u32,
    /// The committee, ascending.
    pub committee: Vec<AccountId>,
    /// Signers left out of selection as offenders, ascending.
    pub excluded: Vec<AccountId>,
    /// Why it failed; absent for the attempt that signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// An offence the ledger holds for one of a request's signing sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffenceSummary {
    /// The attempt whose session it concerns.
    pub attempt: u32,
    /// The accused signer.
    pub offender: AccountId,
    /// What it did.
    pub kind: crate::FaultKind,
    /// Committee members that reported it.
    pub reporters: Vec<AccountId>,
    /// The block that recorded it; absent while reports are still short of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u64>,
    /// Stake slashed.
    pub slashed: u64,
}

/// The state of a request kept by a relayer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Still being signed.
    Pending,
    /// Signed; the result is attached.
    Done,
    /// Refused or failed; the error is attached.
    Failed,
}

/// The body of an API error: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable error code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: crate::ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

/// `GET /v1/signature/{request_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureStatus {
    /// The request id asked about.
    pub request_id: RequestId,
    /// Where it stands.
    pub status: RequestStatus,
    /// The result once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RelayResponse>,
    /// The error once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// Attempts so far (also in `result` once done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptReport>,
    /// Offences recorded or reported for the request's sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offences: Vec<OffenceSummary>,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's account.
    pub account: AccountId,
    /// Its x25519 key (envelopes are sealed to it).
    pub x25519: X25519PublicKey,
    /// The endpoint it publishes on the ledger.
    pub endpoint: String,
    /// Software version.
    pub version: String,
    /// Whether the node can serve requests: a validator, following the ledger, and, if a signer,
    /// holding its key share.
    pub ready: bool,
    /// Whether it is a validator on the ledger.
    pub validator: bool,
    /// Whether it is in the signer set.
    pub signer: bool,
    /// The ledger head it last saw.
    pub head: u64,
    /// The network key, once the jump start is done.
    pub network_key: Option<VerifyingKey>,
    /// The threshold engine's parameter set: `production` or `test`.
    pub security_parameters: String,
    /// How this node's signing path is configured (benchmarks report and check it).
    #[serde(default)]
    pub path: PathSettings,
}

/// The switches that turn a node's signing path into the Entropy-style baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSettings {
    /// `persistent` (one validator connection per peer, kept) or `per-session` (a new
    /// connection and handshake for every session).
    pub connections: String,
    /// `per-program` (each program gets the whole fuel budget) or `shared`.
    pub program_fuel: String,
    /// Compiled programs kept in memory; 0 compiles on every evaluation.
    pub program_cache: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> VerifyingKey {
        let mut b = [0u8; 33];
        b[0] = 0x02;
        // The secp256k1 generator's x coordinate.
        b[1..].copy_from_slice(
            &hex::decode("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
                .unwrap(),
        );
        VerifyingKey::from_slice(&b).unwrap()
    }

    #[test]
    fn signature_request_round_trips_and_refuses_deviations() {
        let request = SignatureRequest {
            verifying_key: key(),
            block: 42,
            hashing: HashingAlgorithm::Custom(2),
            aux_data: vec![vec![1, 2], vec![]],
            message: b"hello".to_vec(),
        };
        let bytes = request.encode();
        assert_eq!(bytes.len(), 1 + 33 + 8 + 1 + 1 + 6 + 4 + 4 + 5);
        assert_eq!(SignatureRequest::decode(&bytes).unwrap(), request);
        for cut in 0..bytes.len() {
            assert!(
                SignatureRequest::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SignatureRequest::decode(&longer).is_err());
        let mut bad_version = bytes.clone();
        bad_version[0] = 2;
        assert!(SignatureRequest::decode(&bad_version).is_err());
        let mut bad_hash = bytes;
        bad_hash[42] = 9;
        assert!(SignatureRequest::decode(&bad_hash).is_err());
    }

    fn account(byte: u8) -> AccountId {
        let key = ed25519_dalek::SigningKey::from_bytes(&[byte; 32]).verifying_key();
        AccountId::from_bytes(key.to_bytes()).unwrap()
    }

    #[test]
    fn forwarded_request_round_trips() {
        let request = ForwardedRequest {
            attempt: 3,
            committee: vec![account(1), account(2)],
            excluded: vec![account(3)],
            ticket: Ed25519Signature::from_bytes([4; 64]).unwrap(),
            user_plaintext: vec![7; 10],
            prepared: vec![],
        };
        let bytes = request.encode();
        assert_eq!(ForwardedRequest::decode(&bytes).unwrap(), request);
        assert!(ForwardedRequest::decode(&bytes[..bytes.len() - 1]).is_err());
        let prepared = ForwardedRequest {
            prepared: vec![
                NamedCommitment {
                    member: account(1),
                    id: [5; 16],
                    commitments: vec![6; 69],
                },
                NamedCommitment {
                    member: account(2),
                    id: [8; 16],
                    commitments: vec![9; 69],
                },
            ],
            ..request
        };
        let bytes = prepared.encode();
        assert_eq!(
            bytes.len(),
            1 + 4 + 1 + 64 + 1 + 32 + 64 + 4 + 10 + 1 + 2 * (32 + 16 + 2 + 69)
        );
        assert_eq!(ForwardedRequest::decode(&bytes).unwrap(), prepared);
        for cut in 0..bytes.len() {
            assert!(
                ForwardedRequest::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut old = bytes.clone();
        old[0] = 1;
        assert!(
            ForwardedRequest::decode(&old).is_err(),
            "version 1 is refused"
        );
    }

    #[test]
    fn hashing_codes_round_trip() {
        for alg in HashingAlgorithm::BUILT_IN
            .into_iter()
            .chain((0..5).map(HashingAlgorithm::Custom))
        {
            assert_eq!(hashing_from_code(hashing_code(alg)).unwrap(), alg);
        }
        assert!(hashing_from_code(0x85).is_err());
        assert!(hashing_from_code(6).is_err());
    }
}
